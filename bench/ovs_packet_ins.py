"""`make bench`: packet-ins answered per second on real OVS, and which side is the limit.

One netdev bridge (userspace datapath), a veth pair into port 1 where this process
sends raw frames, each from a new source MAC (02:cb + a counter) to an unknown
unicast MAC, at stepped offered rates; a veth pair on port 2 where flooded frames
come out. In the same run, on a fresh bridge each:
  - an instant controller (bench/instant_controller.py: struct, two flow-mods as
    l2_switch sends and a packet-out per packet-in): what ovs-vswitchd itself gets
    through, the OVS side's limit;
  - our l2_switch (reactive): answered = source MACs it learned into l2_src;
  - Ryu's simple_switch_13: answered = packet-outs (its floods) out of port 2;
and the flow-mods/s ovs-vswitchd accepts on its own: `ovs-ofctl add-flows` of a file
of distinct flows, confirmed by a barrier (bench/flow_install.py's entries). The CPU
of ovs-vswitchd, the controller and the generator is printed with every row (all
three share the machine's cores), and ovs-vswitchd's CPU per answer.
"""
import argparse
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import record
from bench.controller_load import cpu_seconds
from bench.flow_install import ofctl_line
from bench.flow_install_app import bench_flows
from bench.instant_controller import LEARN_TABLE
from controller import pipeline
from mininet_topos import harness
from mininet_topos.labkit.controller import free_port

BRIDGE, DPID = "sdnbenchpi", 0x5049
GEN, SINK = ("sdnpi-g0", "sdnpi-g1"), ("sdnpi-s0", "sdnpi-s1")   # (ours, the bridge's)
ETHERTYPE = 0x88B5   # IEEE local experimental: the kernel leaves these frames alone
DST = bytes.fromhex("02dd00000001")   # never a source: always unknown unicast
L2_SRC = pipeline.table_id("l2_src")
OURS_CONFIG = {"l2_switch": {"mode": "reactive", "max_macs": 1_000_000,
                             # one port, every frame a new MAC: port security and the
                             # packet-in meter would (rightly) stop that; off here
                             "max_macs_per_port": 0, "packet_in_rate": 0}}


def sh(*args):
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


class Rig:
    """The veth pairs (made here, removed on exit) and the bench bridge."""

    def __enter__(self):
        for ours, theirs in (GEN, SINK):
            sh("ip", "link", "add", ours, "type", "veth", "peer", "name", theirs)
            for name in (ours, theirs):   # no IPv6 chatter: the only frames are ours
                sh("sysctl", "-qw", f"net.ipv6.conf.{name}.disable_ipv6=1")
                sh("ip", "link", "set", name, "up")
        return self

    def __exit__(self, *exc):
        subprocess.run(["ovs-vsctl", "--if-exists", "del-br", BRIDGE], capture_output=True)
        for ours, _ in (GEN, SINK):
            subprocess.run(["ip", "link", "del", ours], capture_output=True)

    @staticmethod
    def fresh_bridge(controller=None):
        sh("ovs-vsctl", "--if-exists", "del-br", BRIDGE)
        sh("ovs-vsctl", "add-br", BRIDGE, "--", "set", "bridge", BRIDGE,
           "datapath_type=netdev", "fail_mode=secure", "protocols=OpenFlow13",
           f"other-config:datapath-id={DPID:016x}",
           "--", "add-port", BRIDGE, GEN[1], "--", "set", "interface", GEN[1], "ofport_request=1",
           "--", "add-port", BRIDGE, SINK[1], "--", "set", "interface", SINK[1],
           "ofport_request=2")
        if controller:
            sh("ovs-vsctl", "set-controller", BRIDGE, controller)

    @staticmethod
    def flows(table=None):
        out = sh("ovs-ofctl", "-O", "OpenFlow13", "dump-aggregate", BRIDGE,
                 *([f"table={table}"] if table is not None else []))
        return int(out.split("flow_count=")[1].split()[0])

    @staticmethod
    def frames_out():
        return int(Path(f"/sys/class/net/{SINK[0]}/statistics/rx_packets").read_text())


class Generator:
    """Prebuilt frames, a new source MAC each, sent paced in 1 ms ticks."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        self.sock.bind((GEN[0], 0))
        self.frame = bytearray(DST + b"\x02\xcb" + bytes(4) + struct.pack("!H", ETHERTYPE)
                               + bytes(46))
        self.serial = 0

    def offer(self, rate, seconds):
        """Send `rate` frames/s for `seconds`; (frames sent, generator CPU seconds)."""
        cpu, start = time.process_time(), time.monotonic()
        sent, frame, send = 0, self.frame, self.sock.send
        while True:
            elapsed = time.monotonic() - start
            if elapsed >= seconds:
                break
            due = min(int(elapsed * rate) + max(1, rate // 1000), int(seconds * rate))
            while sent < due:
                self.serial += 1
                struct.pack_into("!I", frame, 8, self.serial)
                send(frame)   # (a full backlog drops in the kernel, it does not block)
                sent += 1
            time.sleep(max(0.0, start + (sent + 1) / rate - time.monotonic()))
        return sent, time.process_time() - cpu

    def close(self):
        self.sock.close()


def until_still(count, timeout=3.0, step=0.2):
    """Poll `count()` until it stops growing; (last value, when it last grew)."""
    last, when = count(), time.monotonic()
    deadline = when + timeout
    while time.monotonic() < deadline:
        time.sleep(step)
        now = count()
        if now == last:
            break
        last, when = now, time.monotonic()
    return last, when


def measure(generator, answered, controller_pid, rates, seconds):
    """One row per offered rate: answered/s and the CPU of each side."""
    vswitchd = int(harness.VSWITCHD_PIDFILE.read_text().strip())
    rows = []
    for rate in rates:
        a0, f0 = answered(), Rig.frames_out()
        ovs0, ctl0 = cpu_seconds(vswitchd), cpu_seconds(controller_pid)
        start = time.monotonic()
        sent, gen_cpu = generator.offer(rate, seconds)
        a1, last = until_still(answered)
        elapsed = max(last, start + seconds) - start
        rows.append({"offered": sent / seconds, "answered": (a1 - a0) / elapsed,
                     "out": (Rig.frames_out() - f0) / elapsed, "lost": sent - (a1 - a0),
                     "ovs_cpu": (cpu_seconds(vswitchd) - ovs0) / elapsed,
                     "ctl_cpu": (cpu_seconds(controller_pid) - ctl0) / elapsed,
                     "gen_cpu": gen_cpu / seconds})
        time.sleep(0.5)
    return rows


def ready(check, what, timeout=20):
    if not harness.wait_until(check, timeout, step=0.1):
        raise RuntimeError(f"{what} did not program the bench bridge in time")


def run_instant(generator, rates, seconds):
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "bench.instant_controller", str(port)],
                               cwd=harness.REPO)
    try:
        Rig.fresh_bridge(f"tcp:127.0.0.1:{port}")
        ready(lambda: Rig.flows(0) >= 1, "the instant controller")
        return measure(generator, lambda: Rig.flows(LEARN_TABLE), process.pid, rates, seconds), []
    finally:
        process.terminate()
        process.wait(timeout=10)


def run_ryu(generator, apps, config, ours, answered, rates, seconds):
    controller = harness.Controller(apps, config)
    controller.start(probe_rest=ours)
    try:
        Rig.fresh_bridge(f"tcp:127.0.0.1:{controller.of_port}")
        if ours:
            ready(lambda: f"{DPID:016x}" in controller.reconciled_switches(), "l2_switch")
        else:
            ready(lambda: Rig.flows(0) >= 1, "simple_switch_13")
        time.sleep(1.0)   # past the connect-time pushes
        return (measure(generator, answered, controller.process.pid, rates, seconds),
                controller.problems())
    finally:
        controller.stop()


def ofctl_flow_mods(count):
    """flow-mods/s ovs-vswitchd accepts from `ovs-ofctl add-flows` (barrier-confirmed)."""
    Rig.fresh_bridge()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "flows.txt"
        path.write_text("\n".join(ofctl_line(s) for s in bench_flows(count)) + "\n")
        start = time.monotonic()
        sh("ovs-ofctl", "-O", "OpenFlow13", "add-flows", BRIDGE, str(path))
        seconds = time.monotonic() - start
    if Rig.flows() != count:
        raise RuntimeError(f"ovs-ofctl add-flows left {Rig.flows()} flows, not {count}")
    return count / seconds


def print_rows(results, rec, seconds):
    """Record the rows in `rec` and print them from the recorded rows."""
    table = rec.table(f"new source MACs at stepped offered rates, {seconds:g} s each", [
        record.Column("controller"), record.Column("offered", "frames/s"),
        record.Column("answered", "1/s"), record.Column("frames out", "1/s"),
        record.Column("lost"), record.Column("ovs CPU", "%"), record.Column("ctl CPU", "%"),
        record.Column("gen CPU", "%"), record.Column("ovs per answer", "µs")])
    for label, rows in results:
        for r in rows:
            per_answer = round(r["ovs_cpu"] / r["answered"] * 1e6) if r["answered"] else None
            table.add(label, round(r["offered"]), round(r["answered"]), round(r["out"]),
                      r["lost"], round(r["ovs_cpu"] * 100), round(r["ctl_cpu"] * 100),
                      round(r["gen_cpu"] * 100), per_answer,
                      peer=label == "OVS alone (instant ctl)")
    print(f"\n{'controller':<26}{'offered/s':>10}{'answered/s':>11}{'frames out/s':>13}"
          f"{'lost':>7}{'ovs CPU':>8}{'ctl CPU':>8}{'gen CPU':>8}{'ovs us/answer':>14}")
    for label, offered, answered, out, lost, ovs, ctl, gen, per_answer in table.rows:
        per_answer = float("nan") if per_answer is None else per_answer
        print(f"{label:<26}{offered:>10.0f}{answered:>11.0f}{out:>13.0f}{lost:>7}{ovs:>7}%"
              f"{ctl:>7}%{gen:>7}%{per_answer:>14.0f}")


def verdict(best, flow_mods_per_s, flow_mods_per_answer=2):
    """Which side limits our packet-ins: OVS (ours gets as far as OVS does with an
    instant controller) or the controller."""
    ours, ovs = best["l2_switch reactive"], best["OVS alone (instant ctl)"]
    share = ours["answered"] / ovs["answered"]
    busy = ours["ovs_cpu"] + ours["ctl_cpu"] + ours["gen_cpu"]
    if ours["ctl_cpu"] >= 0.9:   # a Python controller is one core
        side = "the controller (a full core)"
    elif share >= 0.9:
        side = "ovs-vswitchd"
    else:   # neither gets as far as OVS alone, and the controller has CPU to spare
        side = (f"ovs-vswitchd and the cores (the controller uses only "
                f"{ours['ctl_cpu']:.0%} of one)")
    print(f"\nlimit: {side}. l2_switch answers {ours['answered']:.0f} packet-ins/s, "
          f"{share:.0%} of the {ovs['answered']:.0f}/s ovs-vswitchd answers with an instant "
          f"controller (ovs-vswitchd CPU {ours['ovs_cpu']:.0%} vs {ovs['ovs_cpu']:.0%}; "
          f"ovs-vswitchd + controller + generator {busy:.0%} of {os.cpu_count()} cores).")
    print(f"l2_switch's {flow_mods_per_answer} flow-mods per answer: "
          f"{flow_mods_per_answer * ours['answered']:.0f} flow-mods/s, "
          f"{flow_mods_per_answer * ours['answered'] / flow_mods_per_s:.0%} of the "
          f"{flow_mods_per_s:.0f}/s ovs-vswitchd accepts from ovs-ofctl add-flows.")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3, help="per offered rate")
    parser.add_argument("--rates", default="2500,5000,10000,20000",
                        help="offered frames/s, comma separated")
    parser.add_argument("--flows", type=int, default=20000, help="for ovs-ofctl add-flows")
    args = parser.parse_args(argv)
    rates = [int(r) for r in args.rates.split(",")]
    rec = record.Run("ovs_packet_ins", "Packet-ins on real OVS")
    harness.ensure_ovs()
    print(f"bench: packet-ins on one netdev bridge, new source MACs, {args.seconds:g} s per "
          f"offered rate")
    with Rig():
        generator = Generator()
        try:
            results, problems = [], []
            for label, run in (
                    ("OVS alone (instant ctl)", lambda: run_instant(generator, rates,
                                                                    args.seconds)),
                    ("l2_switch reactive", lambda: run_ryu(
                        generator, ("apps/l2_switch.py",), OURS_CONFIG, True,
                        lambda: Rig.flows(L2_SRC), rates, args.seconds)),
                    ("ryu simple_switch_13", lambda: run_ryu(
                        generator, ("ryu.app.simple_switch_13",), None, False,
                        Rig.frames_out, rates, args.seconds))):
                rows, logged = run()
                results.append((label, rows))
                problems += logged
                print(f"  measured: {label}", flush=True)
        finally:
            generator.close()
        flow_mods = ofctl_flow_mods(args.flows)
    print_rows(results, rec, args.seconds)
    ofctl = rec.table("ovs-vswitchd alone: `ovs-ofctl add-flows` of distinct flows, until "
                      "confirmed", [record.Column("flows"), record.Column("rate", "flow-mods/s")])
    ofctl.add(args.flows, round(flow_mods))
    for flows, rate in ofctl.rows:
        print(f"{'ovs-ofctl add-flows':<26}{flows:>10} flows: {rate:.0f} flow-mods/s accepted")
    best = {label: max(rows, key=lambda r: r["answered"]) for label, rows in results}
    verdict(best, flow_mods)
    rec.write()
    for line in problems:
        print("controller problem:", line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
