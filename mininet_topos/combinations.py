"""The app combination matrix on real OVS: every app alone, every pair that can share
a network, all together, on one switch and on a looped ring, in both learning modes.

Data-driven: `APPS` declares per app its config section for a topology and its basic
check; a combination is a set of apps; `run(combination)` merges the sections, starts
ryu-manager with those apps on a fresh Mininet network and runs every loaded app's
check, collecting every failure (one broken app does not hide another). Used by
tests/integration/test_combinations_ovs.py (the `make test` subset) and
bench/combinations.py (the whole matrix, `make reliability`).

What "alone" and "can share" mean here:
- The learning app is the forwarding plane the others were built on (docs/tutorials: QoS,
  LB and topology run next to it), so each of qos, lb and topology "alone" is that app
  plus l2_switch, in the chosen learning mode. vlan and bond also run without it
  (docs/tutorials/vlan.md: "apps/vlan.py alone: VLAN isolation, flooding only"; a bonded bridge
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

Split by concern: mininet_topos/combination_layouts.py (where each host sits, the two
layouts as Mininet topologies), mininet_topos/combination_checks.py (each app's config
section and check). Here: which apps combine and the runner.
"""
import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Callable, List, Tuple

from mininet_topos import harness
from mininet_topos.combination_checks import (Storm, bond_section, check_bond, check_lb,
                                              check_learning, check_qos, check_security,
                                              check_topology, check_vlan, lb_section,
                                              qos_section, security_section, vlan_section)
from mininet_topos.combination_layouts import LAYOUTS, VLAN_OF, LayoutTopo

APP_FILES = {name: f"apps/{name}.py" for name in
             ("l2_switch", "vlan", "qos", "lb", "topology", "bond", "overlay", "security")}
SHARING = ("vlan", "qos", "lb", "topology", "bond", "security")   # beside l2_switch


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
    "security": App(security_section, check_security),
}
# check order: the loop-freedom checks first (a storm makes every other check moot)
ORDER = ("topology", "bond", "l2_switch", "vlan", "qos", "lb", "security")


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


OVERLAY_SETS = (("overlay",), ("l2_switch", "vlan", "qos", "lb", "topology", "bond", "security",
                              "overlay"))


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
