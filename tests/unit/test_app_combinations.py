"""Every combination of the apps that share a switch, on the table simulator.

The apps were each tested alone and in a few chosen pairs; what broke (issue 16,
2a-2c) broke only in combinations. Here one switch gets the desired entries of every
subset of {l2_switch (both modes), vlan, qos, lb, bond, security, router (with
vlan)}, composed the way `sdn plan`
composes them (controller/plan.py: the same flows/ functions each app calls when the
switch connects), and each loaded app's basic behaviour is checked with simulated
frames, together with invariants no combination may break:

- a frame a host sent never leaves through its own in_port, and every frame that
  reaches a host port leaves untagged (every host port here is an access port, or an
  untagged port when no VLAN app runs);
- with the VLAN app, nothing crosses from VLAN 10 to VLAN 20 but what the router
  routes (it leaves with the router's MAC as its source).

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
import pytest

from controller import plan
from flows import lb, router
from flows.router_model import RouterSettings, RouterState
from flows.spec import NORMAL, Output
from tests.support.combinations import (BONDED, BROADCAST, COMBINATIONS, DPID, HOSTS, PORTS,
                                        ROUTER_MAC, VIP, Combination, combo_id, config_of)

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


def check_security(combo):
    """h2 is a web server: h4 reaches its TCP 80 and gets the answer, not its port 22, not
    with a ping; h2 cannot send from an address that is not its own. (Without the
    learning or the VLAN app nothing forwards: only the refusals are checked.)"""
    forwards = combo.mode is not None or "vlan" in combo.apps
    to_h2 = dict(ipv4_src="10.0.0.4", ipv4_dst="10.0.0.2", ip_proto=6, tcp_src=40000)
    syn = combo.send("h4", HOSTS["h2"][1], tcp_dst=80, tcp_flags=0x02, **to_h2)
    assert "h2" in syn or not forwards, f"TCP 80 to the web server went to {sorted(syn)}"
    back = combo.send("h2", HOSTS["h4"][1], ipv4_src="10.0.0.2", ipv4_dst="10.0.0.4",
                      ip_proto=6, tcp_src=80, tcp_dst=40000, tcp_flags=0x12)
    assert ("h4" in back) == bool(forwards), f"the web server's answer went to {sorted(back)}"
    ssh = combo.send("h4", HOSTS["h2"][1], tcp_dst=22, tcp_flags=0x02, **dict(to_h2, tcp_src=40001))
    assert "h2" not in ssh, "TCP 22 reached the web server"
    # TCP 8080 from the remote group's member h1 only
    member = combo.send("h1", HOSTS["h2"][1], ipv4_src="10.0.0.1", ipv4_dst="10.0.0.2",
                        ip_proto=6, tcp_src=40002, tcp_dst=8080, tcp_flags=0x02)
    assert "h2" in member or not forwards, f"h1's TCP 8080 (a member) went to {sorted(member)}"
    stranger = combo.send("h4", HOSTS["h2"][1], tcp_dst=8080, tcp_flags=0x02,
                          **dict(to_h2, tcp_src=40003))
    assert "h2" not in stranger, "h4's TCP 8080 reached the web server: not a member"
    ping = combo.send("h4", HOSTS["h2"][1], ipv4_src="10.0.0.4", ipv4_dst="10.0.0.2", ip_proto=1,
                      icmpv4_type=8, icmpv4_code=0, icmp_id=1)
    assert "h2" not in ping, "a ping reached the web server"
    spoofed = combo.send("h2", HOSTS["h4"][1], ipv4_src="10.0.0.99", ipv4_dst="10.0.0.4",
                         ip_proto=17, udp_src=5000, udp_dst=5000)
    assert spoofed == {}, f"a spoofed source left to {sorted(spoofed)}"
    to_h1 = dict(ipv4_src="10.0.0.4", ipv4_dst="10.0.0.1", ip_proto=17, udp_src=5000)
    discard = combo.send("h4", HOSTS["h1"][1], udp_dst=9, **to_h1)
    assert "h1" not in discard, "h4's UDP 9 got past its port's drop ACL"
    other = combo.send("h4", HOSTS["h1"][1], udp_dst=10, **to_h1)
    assert ("h1" in other) == bool(forwards), f"h4's UDP 10 went to {sorted(other)}"


def check_router(combo):
    """h4 (VLAN 10) pings its gateway and is answered by the switch, untagged; once the
    router knows h3 (VLAN 20) at 10.0.20.3, h4's frame to it through the gateway
    reaches h3 only, rewritten as a router does; IPv6 (ping6, routing) alike."""
    ping = combo.send("h4", ROUTER_MAC, ipv4_src="10.0.10.4", ipv4_dst="10.0.10.1",
                      ip_proto=1, icmpv4_type=8, icmpv4_code=0, icmp_id=1)
    assert set(ping) == {"h4"}, f"the gateway's ping answer went to {sorted(ping)}"
    assert [(f["icmpv4_type"], f["ipv4_src"]) for f in ping["h4"]] == [(0, "10.0.10.1")]
    settings = plan.config.section(RouterSettings, "router", combo.data)
    h3 = router.Neighbour("10.0.20.3", HOSTS["h3"][1], 20)
    combo.switch.apply(router.route_entries(RouterState(settings), {h3.ip: h3}))
    routed = combo.send("h4", ROUTER_MAC, ipv4_src="10.0.10.4", ipv4_dst=h3.ip, ip_proto=17,
                        udp_src=5000, udp_dst=5001, ip_ttl=64)
    assert set(routed) == {"h3"}, f"a routed frame for h3 went to {sorted(routed)}"
    assert [(f["eth_src"], f["eth_dst"], f["ip_ttl"]) for f in routed["h3"]] == \
        [(ROUTER_MAC, HOSTS["h3"][1], 63)]
    # IPv6 alike: the gateway answers ping6, and a frame for h3's IPv6 address is routed
    ping6 = combo.send("h4", ROUTER_MAC, eth_type=0x86DD, ipv6_src="fd00:10::4",
                       ipv6_dst="fd00:10::1", ip_proto=58, icmpv6_type=128, ip_ttl=64)
    assert [(f["icmpv6_type"], f["ipv6_src"]) for f in ping6.get("h4", [])] == \
        [(129, "fd00:10::1")], f"the gateway's ping6 answer went to {sorted(ping6)}"
    h3v6 = router.Neighbour("fd00:20::3", HOSTS["h3"][1], 20)
    combo.switch.apply(router.route_entries(RouterState(settings), {h3v6.ip: h3v6}))
    routed6 = combo.send("h4", ROUTER_MAC, eth_type=0x86DD, ipv6_src="fd00:10::4",
                         ipv6_dst=h3v6.ip, ip_proto=17, udp_src=5000, udp_dst=5001, ip_ttl=64)
    assert set(routed6) == {"h3"}, f"a routed IPv6 frame for h3 went to {sorted(routed6)}"
    assert [(f["eth_src"], f["ip_ttl"]) for f in routed6["h3"]] == [(ROUTER_MAC, 63)]


CHECKS = {"vlan": check_vlan_isolation, "qos": check_qos_queue, "lb": check_vip,
          "bond": check_bond, "security": check_security, "router": check_router}


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
