"""A controller cluster on this machine, for `make lab-ha`, its integration test and the
failover benchmark: a three-member etcd cluster, N ryu-manager nodes (own OpenFlow and
REST ports, state and log directories) reaching etcd through relays of their own (so
that one node alone can be cut off from etcd), and a Mininet network whose every switch
lists every node as a controller target. Everything is stopped on exit whatever
happened (`running()`).

Who is master is read from the nodes themselves (GET /v1/runtime/switches: each
node's role per switch); a sampler keeps that view every SAMPLE_S, so a lab can say
"never two masters" over a whole run and draw who held each switch when.
"""
import contextlib
import os
import signal
import threading
import time

from mininet_topos import harness
from mininet_topos.labkit import etcd
from mininet_topos.labkit.relay import Relay

SAMPLE_S = 0.1
PREFIX, CLUSTER = "/sdn-ha", "lab-ha"


def node_config(name, endpoints, apps_config, lease_s=2):
    return dict(apps_config, cluster={"node_id": name, "lease_s": lease_s},
                state={"backend": "etcd", "etcd": {"endpoints": endpoints, "prefix": PREFIX,
                                                   "cluster": CLUSTER, "timeout_s": 2}})


def new_hosts(network, names, serial):
    """Make hosts `names` new to the network: no IPv6 (Mininet's hosts send neighbour
    discovery as their links come up, and any frame gets a host learned), a fresh MAC,
    link down. `bring_up` then lets them speak: their first frames are those of hosts
    no controller has seen."""
    for index, name in enumerate(names):
        intf = network[name].defaultIntf().name
        mac = "02:5d:%02x:%02x:%02x:%02x" % (serial >> 8 & 255, serial & 255, index, 1)
        network[name].cmd(f"sysctl -qw net.ipv6.conf.{intf}.disable_ipv6=1; "
                          f"ip link set {intf} down; ip link set {intf} address {mac}; "
                          f"ip neigh flush dev {intf}")


def bring_up(network, names):
    for name in names:
        network[name].cmd(f"ip link set {network[name].defaultIntf().name} up")


def switch_side(network, name):
    """The switch interface host `name` is plugged into."""
    intf = network[name].defaultIntf()
    return intf.link.intf2 if intf.link.intf1 is intf else intf.link.intf1


def learned(network, name):
    """Is host `name`'s MAC in a learned entry (dl_src=) of the switch it is plugged into?"""
    intf = network[name].defaultIntf()
    mac = network[name].cmd(f"cat /sys/class/net/{intf.name}/address").strip()
    return any(f"dl_src={mac}" in flow.match_text
               for flow in network.flows(switch_side(network, name).node.name))


class Node(harness.Controller):
    """One ryu-manager of the cluster, with its relays to every etcd member."""

    def __init__(self, name, apps, apps_config, members, log_dir, lease_s=2):
        self.name = name
        self.relays = [Relay("127.0.0.1", member.client_port) for member in members]
        log_dir.mkdir(parents=True, exist_ok=True)
        super().__init__(apps, node_config(name, [r.url for r in self.relays], apps_config,
                                           lease_s), log_dir=log_dir)
        self.paused = False

    def roles(self, timeout=0.5):
        """{dpid: role} as this node says (empty when it does not answer)."""
        switches = self.switches(timeout) or {}
        return {dpid: entry.get("role", "master") for dpid, entry in switches.items()}

    def switches(self, timeout=0.5):
        """{dpid: its GET /v1/runtime/switches entry}; {} when the node is stopped or
        paused, None when it should answer and does not."""
        if self.paused or self.process is None or self.process.poll() is not None:
            return {}
        try:
            status, switches = self.rest("GET", "/v1/runtime/switches", timeout=timeout)
        except OSError:
            return None
        if status != 200 or not isinstance(switches, list):
            return None
        return {entry["dpid"]: entry for entry in switches}

    def pause(self):
        os.killpg(self.process.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self):
        os.killpg(self.process.pid, signal.SIGCONT)
        self.paused = False

    def cut_off(self):
        for relay in self.relays:
            relay.cut()

    def reconnect(self):
        for relay in self.relays:
            relay.restore()

    def close(self):
        if self.paused:
            self.resume()
        self.stop()
        for relay in self.relays:
            relay.close()


class Sampler:
    """Every SAMPLE_S: which node claims master of which switch. `samples` is
    [(t, {dpid: [nodes claiming master]})]."""

    def __init__(self, nodes):
        self.nodes, self.samples, self.started = nodes, [], time.monotonic()
        self._stop = threading.Event()
        self.events = []   # (t, label) the lab marks on the timeline
        self.unanswered = 0   # polls of a running node that got no answer
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def now(self):
        return time.monotonic() - self.started

    def mark(self, label):
        self.events.append((self.now(), label))

    def _run(self):
        while not self._stop.is_set():
            claims = {}
            for node in self.nodes:
                switches = node.switches()
                if switches is None:   # a running node that did not answer: counted
                    self.unanswered += 1
                for dpid, entry in (switches or {}).items():
                    if entry.get("role", "master") == "master":
                        claims.setdefault(dpid, []).append(node.name)
            self.samples.append((self.now(), claims))
            self._stop.wait(SAMPLE_S)

    def double_masters(self):
        """Samples in which a switch had two nodes claiming master: [(t, dpid, nodes)]."""
        return [(t, dpid, names) for t, claims in self.samples
                for dpid, names in claims.items() if len(names) > 1]

    def longest_gaps(self, dpids, start, end):
        """{dpid: the longest time in [start, end] (sampler seconds) it had no master}."""
        gaps = {}
        for dpid in dpids:
            longest, since = 0.0, None
            for t, claims in self.samples:
                if t < start or t > end:
                    continue
                if claims.get(dpid):
                    if since is not None:
                        longest = max(longest, t - since)
                    since = None
                elif since is None:
                    since = t
            if since is not None:
                longest = max(longest, min(end, self.now()) - since)
            gaps[dpid] = longest
        return gaps

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)


class Cluster:
    def __init__(self, directory, apps, apps_config, size=3, lease_s=2):
        self.directory, self.apps, self.apps_config = directory, apps, apps_config
        self.size, self.lease_s = size, lease_s
        self.members, self.nodes, self.network = [], [], None

    def node(self, name):
        return next(n for n in self.nodes if n.name == name)

    def masters(self):
        """{dpid: [nodes that say they are its master]} right now."""
        claims = {}
        for node in self.nodes:
            for dpid, role in node.roles().items():
                if role == "master":
                    claims.setdefault(dpid, []).append(node.name)
        return claims

    def one_master_each(self, dpids):
        claims = self.masters()
        return all(len(claims.get(dpid, [])) == 1 for dpid in dpids)

    def master_of(self, dpid):
        names = self.masters().get(dpid, [])
        return self.node(names[0]) if len(names) == 1 else None

    def wait_masters(self, dpids, timeout=15):
        return harness.wait_until(lambda: self.one_master_each(dpids), timeout, step=0.05)

    def etcd_leader(self):
        for member in self.members:
            if member.process is not None:
                with contextlib.suppress(Exception):
                    if member.is_leader():
                        return member
        return None

    def problems(self):
        return [f"{node.name}: {line}" for node in self.nodes for line in node.problems()]


@contextlib.contextmanager
def running(topo, apps, apps_config, directory, size=3, lease_s=2):
    """A Cluster with its etcd members started, its nodes started and its network up
    with every switch's master settled (or a RuntimeError saying what is missing)."""
    cluster = Cluster(directory, apps, apps_config, size, lease_s)
    with etcd.running_cluster(directory / "etcd", 3) as members:
        cluster.members = members
        try:
            for index in range(1, size + 1):
                name = f"n{index}"
                cluster.nodes.append(Node(name, apps, apps_config, members,
                                          directory / name, lease_s))
            for node in cluster.nodes:
                node.start()
            cluster.network = harness.Network(topo, cluster.nodes)
            try:
                cluster.network.start()
                dpids = [s.dpid for s in cluster.network.switches]
                if not cluster.wait_masters(dpids, 20):
                    raise RuntimeError(f"no single master for every switch in 20 s: "
                                       f"{cluster.masters()}")
                for node in cluster.nodes:
                    master_of = [d for d, names in cluster.masters().items()
                                 if node.name in names]
                    harness.wait_until(lambda: set(master_of) <= node.reconciled_switches(),
                                       10, step=0.05)
                yield cluster
            finally:
                cluster.network.stop()
        finally:
            for node in cluster.nodes:
                node.close()
