"""Run a controller and a Mininet network we own, measure traffic, clean up.

Used by the integration tests, the demo and the benchmarks. Everything started
here is stopped by the owner's `stop()` (or the context managers) even when
the caller fails: the ryu-manager process group we spawned, the Mininet hosts,
the bridges and veths of our topology. Nothing else on the machine is touched
(no global `mn -c`).
"""
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from mininet.log import setLogLevel
from mininet.net import Mininet
from mininet.node import OVSSwitch, RemoteController

from mininet_topos.topos import kill_9

REPO = Path(__file__).resolve().parents[1]
OFP_ERROR_MARK = "OpenFlow error from switch"  # logged by controller.southbound.SdnApp
_PROBLEM = re.compile(r"Traceback \(most recent call last\)|" + re.escape(OFP_ERROR_MARK))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ovs_running() -> bool:
    return subprocess.run(["ovs-vsctl", "--timeout=3", "show"], capture_output=True).returncode == 0


def ensure_ovs():
    if not ovs_running():
        subprocess.run(["/usr/share/openvswitch/scripts/ovs-ctl", "start"], check=True,
                       capture_output=True)
    if not ovs_running():
        raise RuntimeError("Open vSwitch is not running and ovs-ctl could not start it")


class Controller:
    """A ryu-manager subprocess on free ports, logging to a file we read back."""

    def __init__(self, apps=("apps/l2_switch.py",), config=None, log_dir=None,
                 rest_host="127.0.0.1", tls=None):
        self.tls = tls  # {"privkey", "cert", "ca"} file paths: OpenFlow over TLS only
        self.apps = [str(REPO / a) if a.endswith(".py") else a for a in apps]
        self.of_port, self.rest_port = free_port(), free_port()
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="sdn-ctl-"))
        self.log_path = self.log_dir / "ryu-manager.log"
        self.config_path = None
        if config is not None:
            self.set_config(config)
        self.rest_host = rest_host  # None: leave ryu-manager's --wsapi-host at its default
        self.of_host = None  # --ofp-listen-host; None: the controller's own (127.0.0.1)
        self.state_dir = self.log_dir / "state"  # REST changes persist here across restarts
        self.process = None

    def set_config(self, config):
        """The config file the next start() uses."""
        self.config_path = self.log_dir / "sdn.yaml"
        self.config_path.write_text(json.dumps(config))  # JSON is YAML

    def start(self, timeout=30, probe_rest=True):
        """Start ryu-manager; wait until our REST API answers (probe_rest=False, for
        peers without it: until the OpenFlow port listens)."""
        ryu_manager = Path(sys.executable).parent / "ryu-manager"
        env = dict(os.environ, PYTHONWARNINGS="ignore", SDN_STATE_DIR=str(self.state_dir))
        if self.config_path:
            env["SDN_CONFIG"] = str(self.config_path)
        host = ["--wsapi-host", self.rest_host] if self.rest_host else []
        listen = ["--ofp-listen-host", self.of_host] if self.of_host else []
        listen += ["--ofp-tcp-listen-port", str(self.of_port)] if not self.tls else [
            "--ofp-ssl-listen-port", str(self.of_port), "--ctl-privkey", self.tls["privkey"],
            "--ctl-cert", self.tls["cert"], "--ca-certs", self.tls["ca"]]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(ryu_manager), *listen, *host,
                 "--wsapi-port", str(self.rest_port), *self.apps],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                cwd=REPO, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ryu-manager exited with {self.process.returncode}:\n"
                                   + self.log_tail())
            with contextlib.suppress(OSError):
                if probe_rest:
                    self.rest("GET", "/v1/switches")
                else:
                    socket.create_connection(("127.0.0.1", self.of_port), timeout=1).close()
                return self
            time.sleep(0.2)
        raise RuntimeError("ryu-manager did not come up in time:\n" + self.log_tail())

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def kill(self):
        """kill -9, as a crash would: no cleanup of any kind."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def rest(self, method, path, body=None, timeout=10):
        """(status, decoded JSON) for a REST call (text for a reply that is not JSON);
        HTTP errors are returned, not raised."""
        data = None if body is None else (body if isinstance(body, bytes)
                                          else json.dumps(body).encode())
        request = urllib.request.Request(f"http://127.0.0.1:{self.rest_port}{path}", data=data,
                                         method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as reply:
                raw = reply.read()
                if not reply.headers.get_content_type().endswith("json"):
                    return reply.status, raw.decode(errors="replace")
                return reply.status, json.loads(raw or b"null")
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                return err.code, json.loads(raw)
            except ValueError:
                return err.code, raw.decode(errors="replace")

    def reconciled_switches(self):
        """Datapath ids (16 hex digits) of the connected switches every app has
        reconciled or left alone, as the controller says (GET /v1/runtime/switches)."""
        try:
            status, switches = self.rest("GET", "/v1/runtime/switches", timeout=2)
        except OSError:
            return set()
        if status != 200:
            return set()
        return {entry["dpid"] for entry in switches if entry["reconciled"]}

    def wait_reconciled(self, network, timeout=10):
        """Until every app has reconciled every switch of `network` the controller
        manages (a standalone switch forwards by itself): OVS says a switch is connected
        before the apps have installed anything (with fail_mode secure it forwards
        nothing until then). Gives up quietly after `timeout` (a test then sees what is
        missing)."""
        wanted = {switch.dpid for switch in network.switches
                  if getattr(switch, "failMode", "secure") != "standalone"}
        wait_until(lambda: wanted <= self.reconciled_switches(), timeout, step=0.05)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines=40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def problems(self):
        """Log lines showing a traceback or an OpenFlow error from a switch."""
        return [line for line in self.log_text().splitlines() if _PROBLEM.search(line)]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class StandaloneOVSSwitch(OVSSwitch):
    """No controller: OVS falls back to its own NORMAL learning switch (the baseline)."""

    def __init__(self, name, **params):
        params["failMode"] = "standalone"
        super().__init__(name, **params)


class ListeningController(RemoteController):
    """A RemoteController without Mininet's check that it listens (Controller.start
    has waited for that): the check telnets to the port, and when the controller's
    HELLO arrives before telnet quits, its random xid bytes can crash Mininet's UTF-8
    decoder (seen in CI)."""

    def checkListening(self):
        pass


class RstpOVSSwitch(StandaloneOVSSwitch):
    """NORMAL with OVS's own rapid spanning tree, from the moment the bridge exists (a
    looped topology would storm before a later `ovs-vsctl set`)."""

    def bridgeOpts(self):
        return super().bridgeOpts() + " rstp_enable=true"


class Network:
    """A Mininet network of `topo` attached to `controller` (None: OVS NORMAL, no
    controller, with RSTP if `rstp`); `stop()` removes it all."""

    def __init__(self, topo, controller=None, rstp=False):
        setLogLevel(os.environ.get("SDN_MININET_LOG", "warning"))
        self.topo = topo
        self.controlled = controller is not None
        switch = OVSSwitch if self.controlled else (RstpOVSSwitch if rstp
                                                    else StandaloneOVSSwitch)
        self.net = Mininet(topo=topo, switch=switch, controller=None, autoSetMacs=True,
                           build=False)
        if self.controlled:
            self.net.addController("c0", controller=ListeningController, ip="127.0.0.1",
                                   port=controller.of_port,
                                   protocol="ssl" if controller.tls else "tcp")

    def start(self, timeout=30):
        ensure_ovs()
        try:
            self.net.build()
            self.net.start()
            if self.controlled and not self.net.waitConnected(timeout=timeout):
                raise RuntimeError("switches did not connect to the controller in time")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        with contextlib.suppress(Exception):  # cleanup must go on whatever broke
            self.net.stop()
        for name in self.topo.switches():  # bridges a half-built net may have left
            subprocess.run(["ovs-vsctl", "--if-exists", "del-br", name], capture_output=True)

    def __getitem__(self, name):
        return self.net[name]

    @property
    def hosts(self):
        return self.net.hosts

    @property
    def switches(self):
        return self.net.switches

    def pingall(self, timeout="1"):
        """Loss in percent over all host pairs."""
        return self.net.pingAll(timeout=timeout)

    def dump_flows(self, switch, table=None):
        args = ["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", switch]
        if table is not None:
            args.append(f"table={table}")
        out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
        return [line.strip() for line in out.splitlines()[1:] if line.strip()]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


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


def apply_ovs_port_vlans(network, config):
    """Configure the `vlan` section of our config as OVS's *own* port VLANs (tag, trunks,
    vlan_mode) on a controller-less network: the reference our apps are compared with.
    Switches by bridge name or dpid, ports by interface name or OpenFlow number."""
    for entry in config["vlan"]["ports"]:
        switch = next(s for s in network.switches
                      if entry["switch"] in (s.name, int(s.dpid, 16)))
        port = next(i.name for i in switch.intfList()
                    if entry["port"] in (i.name, switch.ports.get(i)))
        args = ["ovs-vsctl", "set", "port", port]
        if "tag" in entry:
            args.append(f"tag={entry['tag']}")
        if "trunks" in entry:
            args.append("trunks=" + ",".join(map(str, entry["trunks"])))
        if "native_mode" in entry:
            args.append(f"vlan_mode={entry['native_mode']}")
        subprocess.run(args, check=True, capture_output=True)


def inter_switch_interfaces(network):
    """(switch, interface) for every interface of a switch that links to another switch
    (the links a loop runs over)."""
    for switch in network.switches:
        for intf in switch.intfList():
            link = intf.link
            if link is None:
                continue
            other = link.intf2 if link.intf1 is intf else link.intf1
            if other.node in network.switches:
                yield switch, intf


def wait_until(predicate, timeout, step=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def wait_vlans_programmed(controller, network, timeout=20):
    """Until the VLAN app has programmed every switch (GET /v1/vlans lists their ports)."""
    def programmed():
        members = controller.rest("GET", "/v1/vlans")[1]
        return isinstance(members, dict) and {m["dpid"] for ms in members.values()
                                              for m in ms} == {s.dpid for s in network.switches}
    if not wait_until(programmed, timeout):
        raise RuntimeError("the VLAN app did not program every switch in time")


def wait_qos_ready(controller, timeout=20):
    """Until the QoS app reports its first switch's HTB trees as OVSDB describes them
    with its classifier on; returns that switch's GET /v1/qos entry."""
    def ready():
        status, body = controller.rest("GET", "/v1/qos")
        return status == 200 and body and body[0]["tc_applied"] >= 1 and \
            all(p.get("tc_problems") == [] for p in body[0]["ports"] if "queues" in p)
    if not wait_until(ready, timeout):
        raise RuntimeError(f"the QoS app did not build its trees in time: "
                           f"{controller.rest('GET', '/v1/qos')}")
    return controller.rest("GET", "/v1/qos")[1][0]


def recreate_bridge(name):
    """Delete bridge `name` and add it back as it was (type, datapath id, fail mode,
    protocols, controller, ports with their OpenFlow numbers) but empty: what an OVS
    that lost its datapath, or an admin's del-br/add-br, does to a switch."""
    def vsctl(*args):
        return subprocess.run(["ovs-vsctl", *args], capture_output=True, text=True,
                              check=True).stdout.strip()
    columns = {c: vsctl("get", "Bridge", name, c)
               for c in ("datapath_type", "other_config", "fail_mode", "protocols")}
    ports = {p: vsctl("get", "Interface", p, "ofport") for p in vsctl("list-ports", name).split()}
    target = vsctl("get-controller", name)
    vsctl("del-br", name)
    args = ["add-br", name, "--", "set", "Bridge", name,
            *[f"{c}={v}" for c, v in columns.items() if v not in ("[]", "{}")]]
    for port, number in ports.items():
        args += ["--", "add-port", name, port, "--", "set", "Interface", port,
                 f"ofport_request={number}"]
    vsctl(*args, "--", "set-controller", name, *target.split())


OVS_CTL = "/usr/share/openvswitch/scripts/ovs-ctl"
VSWITCHD_PIDFILE = Path("/var/run/openvswitch/ovs-vswitchd.pid")


def restart_vswitchd(timeout=30):
    """kill -9 the host's ovs-vswitchd and start it again (ovsdb-server keeps running):
    a crash. The new daemon builds every bridge from OVSDB with empty flow tables,
    opens the ports again and reconnects to the controllers."""
    kill_9(int(VSWITCHD_PIDFILE.read_text().strip()), timeout)
    ensure_vswitchd(timeout)


def ensure_vswitchd(timeout=30):
    """Start ovs-vswitchd unless it runs (what a test that killed it leaves behind)."""
    running = subprocess.run([OVS_CTL, "status"], capture_output=True, text=True)
    if "ovs-vswitchd is running" not in running.stdout:
        subprocess.run([OVS_CTL, "--no-ovsdb-server", "start"], capture_output=True,
                       text=True, check=True, timeout=timeout)


def ping(src, dst, count=1, timeout=1) -> bool:
    out = src.cmd(f"ping -c {count} -W {timeout} {dst.IP()}")
    return bool(re.search(rf"\b{count} received", out))


_SEND_RAW = ("import socket, sys; s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); "
             "s.bind((sys.argv[1], 0)); "
             "[s.send(bytes.fromhex(f)) for f in sys.argv[2:]]")


def send_frames(host, frames, intf=None):
    """Send raw Ethernet frames (bytes) from `host`'s interface: tagged frames
    without the kernel's 802.1Q support, which some kernels lack."""
    intf = intf or host.defaultIntf().name
    out, err, code = host.pexec("python3", "-c", _SEND_RAW, intf, *[f.hex() for f in frames])
    if code != 0:
        raise RuntimeError(f"sending raw frames from {host.name} failed: {err or out}")


def ethernet_frame(src, dst, vlan=None, ethertype=0x88B5, payload=bytes(46)):
    """A frame as bytes; ethertype 0x88b5 is the IEEE local-experimental type."""
    tag = b"" if vlan is None else (0x8100).to_bytes(2, "big") + vlan.to_bytes(2, "big")
    return (bytes.fromhex(dst.replace(":", "")) + bytes.fromhex(src.replace(":", "")) + tag
            + ethertype.to_bytes(2, "big") + payload)


def iperf3(client, server, seconds=2, port=5201) -> float:
    """TCP throughput client -> server in bit/s (receiver side)."""
    listening = lambda: f":{port} " in server.cmd("ss -ltnH")  # noqa: E731
    wait_until(lambda: not listening(), 5)  # a previous one-off server may still be closing
    server.cmd(f"iperf3 -s -1 -D -p {port}")
    wait_until(listening, 5, step=0.1)
    out = client.cmd(f"iperf3 -c {server.IP()} -p {port} -t {seconds} -J")
    try:
        result = json.loads(out)
        return float(result["end"]["sum_received"]["bits_per_second"])
    except (ValueError, KeyError) as err:
        raise RuntimeError(f"iperf3 failed: {out[-500:]}") from err


def udp_streams(receiver, streams, rate="20M", interval=0.5, length=1400, base_port=5301):
    """iperf3 UDP streams into `receiver`, measured where they arrive. `streams` is
    [(sender, start_s, seconds)]; returns per stream [(t, bit/s)] for each interval,
    t being its end in seconds since the first stream started. Rates are UDP payload."""
    ports = [base_port + i for i in range(len(streams))]
    servers = [receiver.popen(["iperf3", "-s", "-1", "-p", str(port), "-J", "-i", str(interval)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for port in ports]
    try:
        listening = lambda: all(f":{p} " in receiver.cmd("ss -ltn") for p in ports)  # noqa: E731
        if not wait_until(listening, 5, step=0.1):
            raise RuntimeError("iperf3 servers did not start")
        clients = [sender.popen(["sh", "-c", f"sleep {start}; exec iperf3 -u -b {rate} "
                                 f"-l {length} -t {seconds} -c {receiver.IP()} -p {port}"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                   for (sender, start, seconds), port in zip(streams, ports)]
        for client, (_, start, seconds) in zip(clients, streams):
            out, _ = client.communicate(timeout=start + seconds + 20)
            if client.returncode != 0:
                raise RuntimeError(f"iperf3 client failed: {out[-500:]}")
        results = []
        for server, (_, start, _) in zip(servers, streams):
            out, _ = server.communicate(timeout=20)
            try:
                intervals = json.loads(out)["intervals"]
            except (ValueError, KeyError) as err:
                raise RuntimeError(f"iperf3 server output unreadable: {out[-500:]}") from err
            results.append([(round(start + i["sum"]["end"], 2), i["sum"]["bits_per_second"])
                            for i in intervals if i["sum"]["seconds"] >= interval / 2])
        return results
    finally:
        for server in servers:
            if server.poll() is None:
                server.kill()


HTTPLOAD = REPO / "mininet_topos" / "httpload.py"


def start_http(host, name, port=8080):
    """A tiny HTTP server on `host` answering every GET with `name`; stop with .kill()."""
    proc = host.popen(["python3", str(HTTPLOAD), "serve", name, str(port)],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_until(lambda: f":{port} " in host.cmd("ss -ltn"), 5, step=0.1):
        proc.kill()
        raise RuntimeError(f"HTTP server on {host.name}:{port} did not start")
    return proc


def http_requests(client, ip, port, count, pause=0.0):
    """`count` GETs from `client`, each on a new connection: {"served": {name: n},
    "failed": n}."""
    out = client.cmd(f"python3 {HTTPLOAD} get {ip} {port} {count} {pause}")
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError) as err:
        raise RuntimeError(f"HTTP client on {client.name} failed: {out[-500:]}") from err


def mean_rate(samples, skip=1.0):
    """Mean bit/s of (t, bit/s) samples after the first `skip` seconds of the stream
    (the start is a burst: HTB and meters hand out their buckets' tokens first)."""
    first = samples[0][0] - (samples[1][0] - samples[0][0] if len(samples) > 1 else 0)
    steady = [rate for t, rate in samples if t > first + skip + 1e-6] or [r for _, r in samples]
    return sum(steady) / len(steady)


@contextlib.contextmanager
def running(topo, apps=("apps/l2_switch.py",), config=None, tls=None):
    """A controller and a network, both stopped on exit whatever happened. `topo` may
    be a function of the controller (a topology that must know its OpenFlow port),
    `config` a function of the topology; `tls` see Controller (OVS needs `set-ssl`)."""
    controller = Controller(apps, None if callable(config) else config, tls=tls)
    if callable(topo):
        topo = topo(controller)
    # a topology whose switches reach the controller over a network of its own (the
    # overlay's management network, made only when the network starts) says where
    controller.of_host = getattr(topo, "CONTROLLER_LISTEN_HOST", controller.of_host)
    if callable(config):
        controller.set_config(config(topo))
    try:
        controller.start()
        network = Network(topo, controller)
        try:
            network.start()
            controller.wait_reconciled(network)
            yield controller, network
        finally:
            network.stop()
    finally:
        controller.stop()
