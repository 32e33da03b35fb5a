"""The app combination matrix on real OVS: every app alone, every pair that can share
a network, all together, on one switch and on a looped ring, in both learning modes.

Data-driven: `APPS` declares per app its config section for a topology and its basic
check; a combination is a set of apps; `run(combination)` merges the sections, starts
ryu-manager with those apps on a fresh Mininet network and runs every loaded app's
check, collecting every failure (one broken app does not hide another). Used by
tests/integration/test_combinations_ovs.py (the `make test` subset) and
bench/combinations.py (the whole matrix, `make reliability`).

What "alone" and "can share" mean here:
- The learning app is the forwarding plane the others were built on (README: QoS, LB
  and topology run next to it), so each of qos, lb and topology "alone" is that app
  plus l2_switch, in the chosen learning mode. vlan and bond also run without it
  (README: "apps/vlan.py alone: VLAN isolation, flooding only"; a bonded bridge
  forwards with NORMAL), so they appear alone too, and l2_switch alone.
- A pair is l2_switch plus two of vlan, qos, lb, topology, bond: all of these share
  one switch through the pipeline, except the bond app, which claims its bonded
  bridges (controller/claims.py) unless the topology app runs: then the bonded bridges
  stay in the loop-free fabric (apps/bond.py). Bond pairs therefore share the network
  and the controller: on one switch the bonded pair is a separate island (s2 = s3); on
  the ring the bonded pair is one hop of the loop (s3 = s4), which is exactly where a
  NORMAL bridge would meet the topology app's flood tree.
- The ring always runs the topology app (plain flooding storms on a loop by design).
- The overlay has bridges of its own (each hypervisor's br-int/br-tun, claimed), so
  it cannot share a switch with anyone: it runs alone and with the others in the same
  ryu-manager on its own lab (which then have no switch of their own there), as the
  six-app test in test_overlay_ovs.py does; its check is both tenants pinging across.

Every combination starts its own network: the harness could keep one Mininet network
and restart ryu-manager on the same OpenFlow port (Controller.stop/start keep
of_port), but an app that is not loaded in the next set does not remove what it left
(QoS/Queue rows and tc trees, bond Ports replacing their members, flows and groups),
so each set would need a hand-written reset of OVSDB and tc that is itself untested.
"""
import itertools
import re
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Tuple

from mininet.topo import Topo

from mininet_topos import harness
from mininet_topos.topos import DatapathAware

APP_FILES = {name: f"apps/{name}.py" for name in
             ("l2_switch", "vlan", "qos", "lb", "topology", "bond", "overlay")}
SHARING = ("vlan", "qos", "lb", "topology", "bond")   # beside l2_switch
IPS = {"h1": "10.0.0.1", "h2": "10.0.0.2", "h3": "10.0.0.3", "h4": "10.0.0.4",
       "b1": "10.0.0.11", "b2": "10.0.0.12", "hb1": "10.0.0.21", "hb2": "10.0.0.22"}
VLAN_OF = {"h1": 10, "h2": 10, "h4": 10, "b1": 10, "b2": 10, "h3": 20}
VIP = "10.0.0.100"


@dataclass(frozen=True)
class Layout:
    """Where each host sits ((switch, port)), the links between switches, and which
    links are the bonded pair's (always present on the ring; on one switch only when
    the bond app runs, since two parallel links without it are a loop)."""
    name: str
    switches: Tuple[str, ...]
    hosts: Dict[str, Tuple[str, int]]
    links: Tuple[Tuple[str, int, str, int], ...]
    bond_links: Tuple[Tuple[str, int, str, int], ...]
    bond_always: bool

    def bonds(self):
        members = {}
        for a, pa, b, pb in self.bond_links:
            members.setdefault(a, []).append(pa)
            members.setdefault(b, []).append(pb)
        return members


SINGLE = Layout(
    "single", ("s1", "s2", "s3"),
    {"h1": ("s1", 1), "h2": ("s1", 2), "h3": ("s1", 3), "h4": ("s1", 4),
     "b1": ("s1", 11), "b2": ("s1", 12), "hb1": ("s2", 1), "hb2": ("s3", 1)},
    (), (("s2", 3, "s3", 3), ("s2", 4, "s3", 4)), bond_always=False)
RING = Layout(
    "ring", ("s1", "s2", "s3", "s4"),
    {"h1": ("s1", 3), "h2": ("s1", 4), "b1": ("s1", 11), "b2": ("s1", 12),
     "h3": ("s2", 3), "h4": ("s2", 4), "hb1": ("s3", 3), "hb2": ("s4", 3)},
    (("s1", 1, "s2", 2), ("s2", 1, "s3", 2), ("s4", 1, "s1", 2)),
    (("s3", 1, "s4", 2), ("s3", 5, "s4", 5)), bond_always=True)
LAYOUTS = {"single": SINGLE, "ring": RING}


class LayoutTopo(DatapathAware, Topo):
    def build(self, layout=SINGLE, bonded=False):
        with_pair = bonded or layout.bond_always
        used = {s for s, _ in layout.hosts.values()} if with_pair else {"s1"}
        for name in layout.switches:
            if name in used or with_pair:
                self.addSwitch(name, dpid="%016x" % int(name[1:]))
        for host, (switch, port) in layout.hosts.items():
            if switch in self.switches():
                self.addLink(self.addHost(host, ip=f"{IPS[host]}/24"), switch, port2=port)
        for a, pa, b, pb in layout.links + (layout.bond_links if with_pair else ()):
            self.addLink(a, b, port1=pa, port2=pb)


# --- config sections ------------------------------------------------------------------

def vlan_section(layout):
    return {"ports": [{"switch": layout.hosts[h][0], "port": layout.hosts[h][1], "tag": tag}
                      for h, tag in VLAN_OF.items()]}


def qos_section(layout):
    switch, port = layout.hosts["h4"]
    name = f"{switch}-eth{port}"
    return {"ports": [{"switch": switch, "port": name, "max_rate": "10M",
                       "queues": {"0": {"min_rate": "3M"}, "1": {"min_rate": "1M"}}}],
            "rules": [{"switch": switch, "id": 1, "queue": 1, "port": name,
                       "match": {"ipv4_src": IPS["h1"], "ipv4_dst": IPS["h4"]}}],
            "check_interval": 1}


def lb_section(layout):
    return {"subnets": ["10.0.0.0/24"],
            "vips": [{"vip": VIP, "protocol": "tcp", "port": 80, "mode": "nat",
                      "backends": [{"ip": IPS[b], "port": 8080} for b in ("b1", "b2")],
                      "health": {"interval_s": 0.5, "timeout_s": 0.5}}]}


def bond_section(layout):
    return {"bonds": [{"switch": switch, "name": f"{switch}-bond",
                       "members": [f"{switch}-eth{p}" for p in ports], "mode": "active-backup",
                       "primary": f"{switch}-eth{ports[0]}"}
                      for switch, ports in layout.bonds().items()]}


# --- basic checks (each raises AssertionError with what it saw) -----------------------

def check_learning(ctx):
    pairs = [("h1", "h2"), ("h1", "h4"), ("h2", "h4")]
    bad = [p for p in pairs if not harness.wait_until(
        lambda p=p: harness.ping(ctx.host(p[0]), ctx.host(p[1]), timeout=1), 8)]
    assert not bad, f"no ping between {bad}"


def check_vlan(ctx):
    assert harness.wait_until(lambda: harness.ping(ctx.host("h1"), ctx.host("h2")), 8), \
        "h1 -> h2 (both VLAN 10) fails"
    leaks = [(a, b) for a, b in (("h1", "h3"), ("h3", "h2"), ("h3", "h4"))
             if harness.ping(ctx.host(a), ctx.host(b))]
    assert not leaks, f"VLAN 10 and 20 reach each other: {leaks}"


def _icmp_in_echos(host):
    text = host.cmd("cat /proc/net/snmp")
    names, values = [line.split()[1:] for line in text.splitlines() if line.startswith("Icmp:")]
    return int(values[names.index("InEchos")])


def check_qos(ctx):
    switch, port = ctx.layout.hosts["h4"]
    path = f"/v1/qos/{int(switch[1:])}/{switch}-eth{port}"

    def ready():
        status, body = ctx.controller.rest("GET", path)
        return status == 200 and body.get("tc_problems") == [] and body.get("queues")
    assert harness.wait_until(ready, 15), f"QoS never ready: {ctx.controller.rest('GET', path)}"
    h1, h4 = ctx.host("h1"), ctx.host("h4")
    harness.wait_until(lambda: harness.ping(h1, h4), 8)   # ARP settled

    def queue_packets():
        stats = ctx.controller.rest("GET", path + "/stats")[1]
        return stats["queues"]["1"]["tx_packets"]
    before_q, before_rx = queue_packets(), _icmp_in_echos(h4)
    h1.cmd(f"ping -q -c 50 -i 0.02 -W 1 {h4.IP()}")
    arrived = _icmp_in_echos(h4) - before_rx
    assert arrived == 50, f"h4 got {arrived} of 50 echo requests (lost through queue 1)"
    counted = 0
    for _ in range(10):   # OVS refreshes queue counters about once a second
        counted = queue_packets() - before_q
        if counted >= 50:
            break
        time.sleep(0.5)
    assert counted >= 50, f"queue 1 counted {counted} packets of h1's 50"


def check_lb(ctx):
    servers = [harness.start_http(ctx.host(b), b, 8080) for b in ("b1", "b2")]
    ctx.cleanups += [s.kill for s in servers]

    def healthy():
        body = ctx.controller.rest("GET", "/v1/lb/vips/1")[1]
        return sum(b["healthy"] for b in body["backends"]) == 2
    assert harness.wait_until(healthy, 10), \
        f"backends never healthy: {ctx.controller.rest('GET', '/v1/lb/vips/1')[1]}"
    result = harness.http_requests(ctx.host("h1"), VIP, 80, 20)
    assert result["failed"] == 0 and set(result["served"]) <= {"b1", "b2"} and \
        sum(result["served"].values()) == 20, f"VIP served {result}"


def check_bond(ctx):
    hb1, hb2 = ctx.host("hb1"), ctx.host("hb2")
    assert harness.wait_until(lambda: harness.ping(hb1, hb2, timeout=0.5), 15), \
        "no ping across the bond"
    a, pa, b, pb = ctx.layout.bond_links[0]            # the primary members' link
    for name in (f"{a}-eth{pa}", f"{b}-eth{pb}"):
        subprocess.run(["ip", "link", "set", name, "down"], check=True)
    try:
        assert harness.wait_until(lambda: harness.ping(hb1, hb2, timeout=0.5), 10), \
            "no failover: the bond's primary link down and hb1 cannot reach hb2"
    finally:
        for name in (f"{a}-eth{pa}", f"{b}-eth{pb}"):
            subprocess.run(["ip", "link", "set", name, "up"], check=True)
    assert_no_storm(ctx.network, 2)


def check_topology(ctx):
    # with the topology app loaded the bond app claims nothing: bonded bridges stay
    # in the fabric (apps/bond.py), so the fabric has every switch
    want = len(ctx.network.switches)

    def converged():
        view = ctx.controller.rest("GET", "/v1/topology")[1]
        return len(view["switches"]) == want and view["pending_ports"] == 0
    assert_no_storm(ctx.network, 1)      # already looping: nothing else is worth a wait
    assert harness.wait_until(converged, 20), ctx.controller.rest("GET", "/v1/topology")[1]
    ctx.network.pingall(timeout="0.5")   # broadcasts everywhere: a loop would storm now
    assert_no_storm(ctx.network, 3)


def link_tx_packets(network):
    """{interface: tx packets} of every switch-to-switch interface."""
    return {intf.name: int(open(f"/sys/class/net/{intf.name}/statistics/tx_packets").read())
            for _, intf in harness.inter_switch_interfaces(network)}


class Storm(AssertionError):
    """A loop is flooding: every other check would only wait out its timeouts (and the
    storm takes the machine's cores meanwhile), so the run stops at once."""


def assert_no_storm(network, seconds):
    before = link_tx_packets(network)
    if not before:
        return
    time.sleep(seconds)
    after = link_tx_packets(network)
    rates = {n: (after[n] - before[n]) / seconds for n in before}
    if max(rates.values()) >= 300:
        raise Storm(f"storm: frames/s per link {rates}")


@dataclass(frozen=True)
class App:
    section: Callable   # layout -> config section (None: the app needs none)
    check: Callable     # ctx -> None, raises AssertionError


APPS = {
    "l2_switch": App(None, check_learning),
    "vlan": App(vlan_section, check_vlan),
    "qos": App(qos_section, check_qos),
    "lb": App(lb_section, check_lb),
    "topology": App(lambda layout: {"lldp_interval_s": 1, "edge_after_s": 3}, check_topology),
    "bond": App(bond_section, check_bond),
}
# check order: the loop-freedom checks first (a storm makes every other check moot)
ORDER = ("topology", "bond", "l2_switch", "vlan", "qos", "lb")


@dataclass(frozen=True)
class Combination:
    layout: str
    mode: str
    apps: Tuple[str, ...]

    @property
    def id(self):
        return f"{self.layout}-{self.mode}-" + "+".join(self.apps)

    def config(self):
        layout = LAYOUTS[self.layout]
        data = {name: APPS[name].section(layout) for name in self.apps
                if APPS[name].section is not None}
        data["l2_switch"] = {"mode": self.mode}
        return data


def full_matrix():
    """Every combination: both topologies, both modes, with the pairs; the overlay
    alone, with each app and with all of them."""
    return [c for layout in LAYOUTS for mode in MODES
            for c in combinations(layout, mode, pairs=True)] + \
        overlay_combinations(None) + overlay_combinations(OVERLAY_SETS[1:])


MODES = ("reactive", "datapath")


def combinations(layout, mode, pairs=True):
    """Every app alone, (every pair,) all together, for one topology and mode."""
    base = ("topology",) if layout == "ring" else ()
    others = [a for a in SHARING if a not in base]
    sets = [base + ("l2_switch",)]
    sets += [base + ("l2_switch", a) for a in others]
    if layout == "single" and mode == "reactive":   # without l2_switch: no mode to vary
        sets += [("vlan",), ("bond",)]            # the two that forward without it
    if pairs:
        sets += [base + ("l2_switch",) + p for p in itertools.combinations(others, 2)]
    sets.append(base + ("l2_switch",) + tuple(others))
    unique = list(dict.fromkeys(tuple(sorted(s, key=ORDER.index)) for s in sets))
    return [Combination(layout, mode, s) for s in unique]


@dataclass
class Context:
    combination: Combination
    controller: object
    network: object
    cleanups: List[Callable] = field(default_factory=list)

    @property
    def layout(self):
        return LAYOUTS[self.combination.layout]

    @property
    def apps(self):
        return self.combination.apps

    def host(self, name):
        return self.network[name]


def run(combination):
    """(failures, seconds, controller problems): every loaded app's check on a fresh
    network; failures are "app: what went wrong" strings."""
    started = time.monotonic()
    layout = LAYOUTS[combination.layout]
    topo = LayoutTopo(layout=layout, bonded="bond" in combination.apps)
    apps = [APP_FILES[a] for a in ORDER if a in combination.apps]
    failures, problems = [], []
    with harness.running(topo, apps=apps, config=combination.config()) as (controller, network):
        ctx = Context(combination, controller, network)
        try:
            if "vlan" in combination.apps:
                with_vlans = [s for s in network.switches if s.name in
                              {layout.hosts[h][0] for h in VLAN_OF}]
                _wait_vlans(controller, with_vlans)
            storm = False
            for name in (n for n in ORDER if n in combination.apps):
                if storm:
                    failures.append(f"{name}: not checked (storm)")
                    continue
                try:
                    APPS[name].check(ctx)
                except Storm as err:
                    failures.append(f"{name}: {_short(err)}")
                    storm = True
                # a broken app may also answer REST with something unexpected
                except (AssertionError, RuntimeError, KeyError, TypeError, ValueError) as err:
                    failures.append(f"{name}: {_short(err)}")
        finally:
            for cleanup in ctx.cleanups:
                cleanup()
        problems = controller.problems()
    return failures, time.monotonic() - started, problems


OVERLAY_SETS = (("overlay",), ("l2_switch", "vlan", "qos", "lb", "topology", "bond", "overlay"))


def overlay_combinations(sets=OVERLAY_SETS, others=SHARING):
    """The overlay alone, with every other app (`sets`), or with each one (pairs)."""
    if sets is None:
        sets = [("overlay",)] + [("l2_switch", a, "overlay") for a in others]
    return [Combination("overlay", "reactive", s) for s in sets]


def run_overlay(combination, rundir):
    """The overlay lab with `combination`'s apps in one ryu-manager: both tenants ping
    across all three hypervisors (the other apps have no switch there)."""
    from mininet_topos.overlay_topo import OverlayLab  # only this part needs it
    started = time.monotonic()
    apps = [APP_FILES[a] for a in ORDER + ("overlay",) if a in combination.apps]
    failures = []

    def topo(controller):
        return OverlayLab(hypervisors=3, rundir=str(rundir), controller_port=controller.of_port)
    with harness.running(topo, apps=apps, config=lambda t: t.app_config()) as (controller,
                                                                               network):
        def programmed():
            body = controller.rest("GET", "/v1/overlay")[1]
            return body["hypervisors"] and all(h["programmed"] and "problem" not in h
                                               for h in body["hypervisors"])
        if not harness.wait_until(programmed, 30):
            failures.append(f"overlay: not programmed: {controller.rest('GET', '/v1/overlay')}")
        bad = [(a, b, t) for a, b in ((1, 2), (1, 3), (2, 3)) for t in "ab"
               if not harness.wait_until(lambda a=a, b=b, t=t: harness.ping(
                   network[f"vm{a}{t}"], network[f"vm{b}{t}"], timeout=2), 10)]
        if bad:
            failures.append(f"overlay: no ping between (vm, vm, tenant) {bad}")
        problems = controller.problems()
    return failures, time.monotonic() - started, problems


def _wait_vlans(controller, switches, timeout=15):
    def programmed():
        members = controller.rest("GET", "/v1/vlans")[1]
        return isinstance(members, dict) and {s.dpid for s in switches} <= \
            {m["dpid"] for ms in members.values() for m in ms}
    harness.wait_until(programmed, timeout)


def _short(err, limit=300):
    text = re.sub(r"\s+", " ", str(err)).strip()
    return text if len(text) <= limit else text[:limit] + "..."
