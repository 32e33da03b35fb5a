"""tcpdump captures on host interfaces, read back as (src, dst, VLAN) per frame."""
import re
import signal
import subprocess
import tempfile
import time
from pathlib import Path


class CaptureLost(RuntimeError):
    """tcpdump reported frames it did not capture: a comparison would be wrong."""


class Capture:
    """tcpdump on host interfaces while a block runs, frames *received* only (a host's own
    transmissions are not what it sees). `vlans(intf, text)` lists the VLAN id (None:
    untagged) of every frame whose line mentions `text`; `frames(intf)` gives
    (src, dst, vlan) of each.

    tcpdump writes to a pcap file, read back when the block ends: a pipe read only at
    the end filled up after about 64 KiB (190 frames) and tcpdump then stalled and lost
    what came later. If tcpdump says the kernel or the interface dropped frames, the
    capture raises CaptureLost instead of answering with a partial picture."""

    FILTER = "arp or ip or (vlan and (arp or ip))"
    BUFFER_KIB = 8192  # the kernel's capture buffer (-B): room for bursts of probes
    SNAP_BYTES = 256   # bytes kept per frame: every header the tests read

    def __init__(self, hosts_and_intfs, bpf=FILTER):
        self.targets = hosts_and_intfs  # [(host, interface name)]
        self.bpf = bpf
        self.procs, self.lines, self.stats = {}, {}, {}
        self.dir = Path(tempfile.mkdtemp(prefix="sdn-capture-"))

    def _pcap(self, intf):
        return self.dir / f"{intf}.pcap"

    def __enter__(self):
        for host, intf in self.targets:
            self.procs[intf] = host.popen(
                # -Z root: Debian's tcpdump otherwise opens the file as user tcpdump;
                # --immediate-mode: without it frames still in the kernel's ring block
                # when the block ends are never written; -s: the ring holds frames of
                # the snap length, so headers only make room for long bursts
                ["tcpdump", "-i", intf, "-Q", "in", "-nn", "-U", "-Z", "root",
                 "--immediate-mode", "-s", str(self.SNAP_BYTES), "-B", str(self.BUFFER_KIB),
                 "-w", str(self._pcap(intf)), self.bpf],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for intf, proc in self.procs.items():  # tcpdump says so once it is capturing
            said = []
            while not said or ("listening on" not in said[-1] and said[-1]):
                said.append(proc.stderr.readline())
            if "listening on" not in said[-1]:
                self._stop_all()
                raise RuntimeError(f"tcpdump on {intf} did not start: {''.join(said)}")
        return self

    def _stop_all(self):
        said = {}
        for intf, proc in self.procs.items():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            try:
                _, said[intf] = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, said[intf] = proc.communicate(timeout=10)
        return said

    def __exit__(self, *exc):
        time.sleep(0.3)  # frames in flight
        said = self._stop_all()
        try:
            for intf in self.procs:
                self.stats[intf] = capture_stats(said[intf])
                read = subprocess.run(["tcpdump", "-r", str(self._pcap(intf)), "-e", "-nn"],
                                      capture_output=True, text=True, timeout=60)
                self.lines[intf] = read.stdout.splitlines()
        finally:
            for path in self.dir.iterdir():
                path.unlink()
            self.dir.rmdir()
        lost = {intf: s for intf, s in self.stats.items()
                if s.get("dropped by kernel") or s.get("dropped by interface")}
        if lost and not exc[0]:
            raise CaptureLost(f"tcpdump lost frames, so this capture is incomplete: {lost}")

    def vlans(self, intf, text):
        return [_vlan_of(line) for line in self.lines[intf] if text in line]

    def frames(self, intf):
        found = []
        for line in self.lines[intf]:
            macs = re.match(r"\S+ ([0-9a-f:]{17}) > ([0-9a-f:]{17}),", line)
            if macs:
                found.append((macs.group(1), macs.group(2), _vlan_of(line)))
        return found


def capture_stats(said: str) -> dict:
    """tcpdump's closing counts ("12 packets captured", "0 packets dropped by kernel",
    ...) as {"captured": 12, "dropped by kernel": 0, ...}."""
    return {what: int(count) for count, what in
            re.findall(r"^(\d+) packets? (captured|received by filter|dropped by kernel|"
                       r"dropped by interface)", said, re.M)}


def _vlan_of(line):
    tag = re.search(r"\bvlan (\d+)", line)
    return int(tag.group(1)) if tag else None
