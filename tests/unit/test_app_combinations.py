"""Every combination of the apps that share a switch, on the table simulator.

The apps were each tested alone and in a few chosen pairs; what broke (issue 16,
2a-2c) broke only in combinations. Here one switch gets the desired entries of every
subset of {l2_switch (both modes), vlan, qos, lb, bond}, composed the way `sdn plan`
composes them (controller/plan.py: the same flows/ functions each app calls when the
switch connects), and each loaded app's basic behaviour is checked with simulated
frames, together with invariants no combination may break:

- a frame a host sent never leaves through its own in_port, and every frame that
  reaches a host port leaves untagged (every host port here is an access port, or an
  untagged port when no VLAN app runs);
- with the VLAN app, nothing crosses from VLAN 10 to VLAN 20.

Per app: learning forwards a unicast to the learned port only (reactive: the packet-in
answered as the app answers it, `l2.learn_host`; datapath: the switch's own learn());
VLAN isolation (a broadcast stays in its VLAN); the QoS rule sets queue 1 and the frame
still reaches its receiver as the receiver's port wants it; a TCP SYN to the VIP goes
through the select group to a backend, rewritten; the VIP's ARP answer goes back to
the asker as it can read it; the bond's bridge is the bond app's alone whatever else
runs, and loading the bond app changes nothing on the shared switch.

Not here: the topology app (its entries depend on the links LLDP finds; its fabric is
simulated in test_topology.py) and the overlay (its bridges are its own, planned in
test_plan.py). The integration matrix (tests/integration/test_combinations_ovs.py)
covers both on real OVS.
"""
import itertools

import pytest

from controller import plan
from flows import l2, lb, vlan
from flows.spec import NORMAL, Output
from tests.support.ofsim import Switch, frame

DPID, BONDED = 1, 2
HOSTS = {  # name: (port, mac, ip, VLAN when the VLAN app runs)
    "h1": (1, "00:00:00:00:00:01", "10.0.0.1", 10),
    "h2": (2, "00:00:00:00:00:02", "10.0.0.2", 10),
    "h3": (3, "00:00:00:00:00:03", "10.0.0.3", 20),
    "h4": (4, "00:00:00:00:00:04", "10.0.0.4", 10),     # the QoS receiver
    "b1": (11, "00:00:00:00:00:0b", "10.0.0.11", 10),   # the VIP's backends
    "b2": (12, "00:00:00:00:00:0c", "10.0.0.12", 10),
}
PORTS = {port: f"s1-eth{port}" for port, _, _, _ in HOSTS.values()}
VIP = "10.0.0.100"
BROADCAST = "ff:ff:ff:ff:ff:ff"

# one config section per app; a combination's config is the merge of its apps' sections
SECTIONS = {
    "vlan": {"ports": [{"switch": DPID, "port": port, "tag": tag}
                       for port, _, _, tag in HOSTS.values()]},
    "qos": {"ports": [{"switch": DPID, "port": "s1-eth4", "max_rate": "10M",
                       "queues": {"0": {"min_rate": "3M"}, "1": {"min_rate": "1M"}}}],
            "rules": [{"switch": DPID, "id": 1, "queue": 1, "port": "s1-eth4",
                       "match": {"ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.4"}}]},
    "lb": {"subnets": ["10.0.0.0/24"],
           "vips": [{"vip": VIP, "protocol": "tcp", "port": 80, "mode": "nat",
                     "backends": [{"ip": "10.0.0.11", "port": 8080},
                                  {"ip": "10.0.0.12", "port": 8080}]}]},
    "bond": {"bonds": [{"switch": BONDED, "name": "s2-bond", "members": ["s2-eth1", "s2-eth2"],
                        "mode": "active-backup"}]},
}
OTHERS = ("vlan", "qos", "lb", "bond")
# every subset of the other apps, with no learning app or with it in either mode
COMBINATIONS = [(mode, others) for mode in (None, "reactive", "datapath")
                for n in range(len(OTHERS) + 1) for others in itertools.combinations(OTHERS, n)
                if mode or others]


def combo_id(combo):
    mode, others = combo
    return "+".join(([f"l2-{mode}"] if mode else []) + list(others))


def config_of(mode, others):
    data = {name: SECTIONS[name] for name in others}
    if mode:
        data["l2_switch"] = {"mode": mode}
    return data


class Combination:
    """The shared switch programmed by the apps of one combination."""

    def __init__(self, mode, others):
        self.mode, self.apps = mode, set(others)
        self.data = config_of(mode, others)
        shared = plan.planned_switch("s1", DPID, PORTS)
        planned = plan.plan(self.data, shared, datapath="system")
        assert planned["problems"] == []
        self.planned = dict(planned["apps"])
        self.entries = dict(planned["apps"])
        self.untagged = vlan.untagged_egress_pairs(vlan.effective_ports(
            vlan.configured_ports(plan.config.section(vlan.VlanSettings, "vlan", self.data).ports,
                                  shared.is_named, shared.resolve),
            shared.ports)) if "vlan" in self.apps else frozenset()
        if "lb" in self.apps:   # the app's push once ARP has located both backends
            (vip,) = lb.vips_from(plan.config.section(lb.LbSettings, "lb", self.data),
                                  {}).values()
            # as the app sees them: a backend's VLAN is the tag its replies arrive with
            located = [lb.Located(vip.backend(HOSTS[b][2]), HOSTS[b][1], HOSTS[b][0],
                                  HOSTS[b][3] if "vlan" in self.apps else None)
                       for b in ("b1", "b2")]
            self.entries["lb"] = [e for e in self.entries["lb"] if not _is_vip_item(e)] + \
                lb.vip_flows(vip, located, False, located, self.untagged)
        self.switch = Switch(sorted(PORTS))
        for items in self.entries.values():
            self.switch.apply(items)

    def send(self, host, dst_mac, **fields):
        """Send a frame from `host`; check the invariants on what comes out; answer the
        packet-ins as the reactive learning app does. {host: [frames]} delivered."""
        port, mac, ip, _ = HOSTS[host]
        fields.setdefault("ipv4_src", ip)
        result = self.switch.process(frame(port, mac, dst_mac, **fields))
        delivered = {}
        by_port = {p: name for name, (p, _, _, _) in HOSTS.items()}
        for out, frames in result.outputs.items():
            for sent in frames:
                if sent["eth_src"] == mac:
                    assert out != port, f"{host}'s frame went back out of its in_port"
                assert sent["vlan_vid"] is None, \
                    f"frame from {host} left port {out} tagged {sent['vlan_vid']}: {sent}"
                if "vlan" in self.apps:
                    assert HOSTS[by_port[out]][3] == HOSTS[host][3], \
                        f"frame from {host} (VLAN {HOSTS[host][3]}) crossed to {by_port[out]}"
                delivered.setdefault(by_port[out], []).append(sent)
        if self.mode == "reactive":
            for copy in result.packet_ins:
                vid = copy["vlan_vid"]
                self.switch.apply(l2.learn_host(copy["eth_src"], copy["in_port"], vid, 300,
                                                (copy["in_port"], vid) in self.untagged))
        return delivered


def _is_vip_item(item):
    owner = getattr(item, "owner", None) or getattr(getattr(item, "ref", None), "owner", None)
    return owner is not None and owner.purpose == "vip"


# --- each app's basic check --------------------------------------------------------------

def check_learning(combo):
    combo.send("h1", HOSTS["h2"][1])          # h1 unknown to the switch: flooded, learned
    back = combo.send("h2", HOSTS["h1"][1])
    assert set(back) == {"h1"}, f"h2 -> h1 after learning went to {sorted(back)}"
    again = combo.send("h1", HOSTS["h2"][1])
    assert set(again) == {"h2"}, f"h1 -> h2 after learning went to {sorted(again)}"


def check_vlan_isolation(combo):
    from_h1 = combo.send("h1", BROADCAST)
    assert "h3" not in from_h1 and {"h2", "h4"} <= set(from_h1), sorted(from_h1)
    from_h3 = combo.send("h3", BROADCAST)
    assert set(from_h3) == set(), sorted(from_h3)     # alone in VLAN 20


def check_qos_queue(combo):
    got = combo.send("h1", HOSTS["h4"][1], ipv4_dst="10.0.0.4")
    assert set(got) == {"h4"}, sorted(got)
    assert [f.get("queue") for f in got["h4"]] == [1], got["h4"]


def check_vip(combo):
    syn = dict(ipv4_dst=VIP, ip_proto=6, tcp_src=40000, tcp_dst=80)
    got = combo.send("h1", lb.vip_mac(1), **syn)
    assert len(got) == 1 and set(got) <= {"b1", "b2"}, sorted(got)
    (backend, (sent,)), = got.items()
    assert (sent["ipv4_dst"], sent["tcp_dst"]) == (HOSTS[backend][2], 8080), sent
    assert combo.switch.groups, "no select group"
    arp = combo.send("h1", BROADCAST, eth_type=0x0806, arp_op=1, arp_tpa=VIP,
                     arp_spa="10.0.0.1", arp_sha=HOSTS["h1"][1], arp_tha="00:00:00:00:00:00")
    answers = [f for f in arp.get("h1", []) if f.get("arp_op") == 2]
    assert answers and answers[0]["arp_spa"] == VIP, arp


def check_bond(combo):
    switch = plan.planned_switch("s2", BONDED, {1: "s2-eth1", 2: "s2-eth2", 3: "s2-eth3"})
    bonded = plan.plan(combo.data, switch)
    assert list(bonded["apps"]) == ["bond"], bonded["apps"]
    assert any(Output(NORMAL) in getattr(e, "actions", ()) for e in bonded["apps"]["bond"])
    without = config_of(combo.mode, sorted(combo.apps - {"bond"}))
    if without:   # the shared switch is planned as if the bond app were not there
        shared = plan.plan(without, plan.planned_switch("s1", DPID, PORTS), datapath="system")
        assert {k: v for k, v in combo.planned.items() if k != "bond"} == shared["apps"]


CHECKS = {"vlan": check_vlan_isolation, "qos": check_qos_queue, "lb": check_vip,
          "bond": check_bond}


@pytest.mark.parametrize("combo", COMBINATIONS, ids=combo_id)
def test_every_loaded_app_still_does_its_job(combo):
    mode, others = combo
    combination = Combination(mode, others)
    checks = ([check_learning] if mode else []) + [CHECKS[name] for name in others]
    failures = []
    for check in checks:   # every check runs, so a report lists every app a combo breaks
        try:
            check(combination)
        except AssertionError as err:
            failures.append(f"{check.__name__}: {err}")
    assert not failures, "\n".join(failures)
