"""The router and the security groups on one switch (the simulator), as the cloud
chapter's tenant network: what the router lets in from outside (a floating IP's DNAT, the
replies SNAT undoes) comes through the security stage again by its inside address, so
the VM's group decides, as in Neutron, where the firewall sees a packet after the L3
agent's DNAT. Routed frames between the tenants are checked by their destination's group
as well, and a rule removed cuts a connection through the floating IP."""
from controller import pipeline
from flows import diff, l2, router, security, vlan
from flows.router_model import RouterSettings, RouterState
from flows.security_model import binding_from_dict, groups_from_dict
from tests.support.ofsim import Switch, frame, one_frame_each as delivered

GW_MAC = "02:00:00:00:fe:01"
WEB_VM, APP_VM, OUT = 1, 2, 3                       # ports
MACS = {WEB_VM: "00:00:00:00:00:01", APP_VM: "00:00:00:00:00:02", OUT: "00:00:00:00:00:fe"}
IPS = {WEB_VM: "10.0.20.2", APP_VM: "10.0.10.2", OUT: "203.0.113.254"}
VLANS = {WEB_VM: 20, APP_VM: 10, OUT: 100}
FAR, FLOATING, EXTERNAL = "198.51.100.7", "203.0.113.10", "203.0.113.1"
ROUTER = {"interfaces": [{"vlan": 10, "address": "10.0.10.1/24"},
                         {"vlan": 20, "address": "10.0.20.1/24"},
                         {"vlan": 100, "address": "203.0.113.1/24", "external": True}],
          "routes": [{"prefix": "0.0.0.0/0", "next_hop": "203.0.113.254"}],
          "snat": [10, 20], "floating_ips": [{"external": FLOATING, "internal": IPS[WEB_VM]}]}
GROUPS = {"web": [{"direction": "ingress", "protocol": "tcp", "ports": 80}],
          "tenant": [{"direction": "ingress", "remote": "10.0.10.0/24"}]}
BINDINGS = {WEB_VM: {"addresses": [IPS[WEB_VM]], "groups": ["web"]},
            APP_VM: {"addresses": [IPS[APP_VM]], "groups": ["tenant"]}}
SYN, SYN_ACK, ACK = 0x02, 0x12, 0x10


def security_plan(groups=GROUPS):
    return security.desired({p: binding_from_dict(b) for p, b in BINDINGS.items()},
                            groups_from_dict(groups))


def network(with_security=True):
    configured = {p: vlan.PortVlan(p, tag=v) for p, v in VLANS.items()}
    ports = vlan.effective_ports(configured, sorted(configured))
    untagged = vlan.untagged_egress_pairs(ports)
    known = {IPS[p]: router.Neighbour(IPS[p], MACS[p], VLANS[p]) for p in VLANS}
    sw = Switch(sorted(configured))
    sw.apply(pipeline.table_misses())
    sw.apply(vlan.switch_plan(ports, configured))
    sw.apply(l2.switch_defaults(l2.L2Settings(mode="datapath"), untagged))
    sw.apply(router.desired(RouterState(RouterSettings(**ROUTER)), known, untagged))
    if with_security:
        sw.apply(security_plan())
    for port in VLANS:   # every host has spoken once: learnt
        sw.process(frame(port, MACS[port], "ff:ff:ff:ff:ff:ff", eth_type=0x0806, arp_op=1,
                         arp_spa=IPS[port], arp_tpa="10.9.9.9", arp_sha=MACS[port]))
    return sw


def packet(port, src, dst, proto, dst_mac=GW_MAC, **fields):
    return frame(port, MACS[port], dst_mac, ipv4_src=src, ipv4_dst=dst, ip_proto=proto,
                 ip_ttl=64, **fields)


def tcp(port, src, dst, sport, dport, flags):
    return packet(port, src, dst, 6, tcp_src=sport, tcp_dst=dport, tcp_flags=flags)


def ping(port, src, dst, kind=8):
    return packet(port, src, dst, 1, icmpv4_type=kind, icmpv4_code=0, icmp_id=9)


def test_the_floating_ip_takes_only_what_the_vms_group_allows():
    sw = network()
    came = delivered(sw, tcp(OUT, FAR, FLOATING, 5000, 80, SYN))
    assert set(came) == {WEB_VM} and came[WEB_VM]["ipv4_dst"] == IPS[WEB_VM]
    answer = delivered(sw, tcp(WEB_VM, IPS[WEB_VM], FAR, 80, 5000, SYN_ACK))
    assert set(answer) == {OUT} and answer[OUT]["ipv4_src"] == FLOATING
    assert set(delivered(sw, tcp(OUT, FAR, FLOATING, 5000, 80, ACK))) == {WEB_VM}
    # the rest is refused by the group, not let in by the DNAT
    assert delivered(sw, ping(OUT, FAR, FLOATING)) == {}
    assert delivered(sw, tcp(OUT, FAR, FLOATING, 5001, 8080, SYN)) == {}
    # without the security app the same floating IP lets everything in (the router
    # alone is no firewall): the checks above are the security stage's doing
    open_sw = network(with_security=False)
    assert set(delivered(open_sw, ping(OUT, FAR, FLOATING))) == {WEB_VM}


def test_replies_to_snat_come_back_through_the_group_and_the_outside_gets_no_further():
    sw = network()
    left = delivered(sw, ping(APP_VM, IPS[APP_VM], FAR))
    assert set(left) == {OUT} and left[OUT]["ipv4_src"] == EXTERNAL
    back = delivered(sw, ping(OUT, FAR, EXTERNAL, kind=0))
    assert set(back) == {APP_VM} and back[APP_VM]["ipv4_dst"] == IPS[APP_VM]
    # a connection the VM did not open, to the external address: nowhere
    assert delivered(sw, tcp(OUT, FAR, EXTERNAL, 5000, 22, SYN)) == {}
    # to a private address directly (no translation, so no mark): dropped
    assert delivered(sw, tcp(OUT, FAR, IPS[APP_VM], 5000, 22, SYN)) == {}


def test_routed_frames_between_tenants_meet_the_destinations_group():
    sw = network()
    # the app VM's network may reach the web VM on 80 (routed, TTL less one)
    there = delivered(sw, tcp(APP_VM, IPS[APP_VM], IPS[WEB_VM], 40000, 80, SYN))
    assert set(there) == {WEB_VM} and there[WEB_VM]["ip_ttl"] == 63
    assert set(delivered(sw, tcp(WEB_VM, IPS[WEB_VM], IPS[APP_VM], 80, 40000,
                                 SYN_ACK))) == {APP_VM}
    assert delivered(sw, ping(APP_VM, IPS[APP_VM], IPS[WEB_VM])) == {}
    # the web VM (VLAN 20) is not in the app tenant's 10.0.10.0/24: it cannot get in
    assert delivered(sw, tcp(WEB_VM, IPS[WEB_VM], IPS[APP_VM], 40001, 22, SYN)) == {}
    assert delivered(sw, ping(WEB_VM, IPS[WEB_VM], IPS[APP_VM])) == {}


def test_a_removed_rule_cuts_a_connection_through_the_floating_ip():
    sw = network()
    assert set(delivered(sw, tcp(OUT, FAR, FLOATING, 5000, 80, SYN))) == {WEB_VM}
    assert set(delivered(sw, tcp(WEB_VM, IPS[WEB_VM], FAR, 80, 5000, SYN_ACK))) == {OUT}
    without = dict(GROUPS, web=[])
    sw.apply(diff.plan_changes(security_plan(), security_plan(without)))
    assert delivered(sw, tcp(OUT, FAR, FLOATING, 5000, 80, ACK)) == {}
    assert delivered(sw, tcp(WEB_VM, IPS[WEB_VM], FAR, 80, 5000, ACK)) == {}
    sw.apply(diff.plan_changes(security_plan(without), security_plan()))
    assert set(delivered(sw, tcp(OUT, FAR, FLOATING, 5000, 80, ACK))) == {WEB_VM}
    assert set(delivered(sw, tcp(WEB_VM, IPS[WEB_VM], FAR, 80, 5000, ACK))) == {OUT}


def test_from_outside_a_source_claiming_an_inside_address_is_dropped_before_any_nat():
    """The groups trust inside addresses (a remote prefix, a remote group's members): a
    frame from outside that claims one would otherwise pass the VM's group once its
    floating IP is translated."""
    groups = dict(GROUPS, web=GROUPS["web"] + GROUPS["tenant"])   # web trusts 10.0.10.0/24
    sw = network()
    sw.apply(diff.plan_changes(security_plan(), security_plan(groups)))
    spoofed = tcp(OUT, IPS[APP_VM], FLOATING, 5000, 22, SYN)
    assert delivered(sw, spoofed) == {}
    assert delivered(sw, tcp(OUT, FAR, FLOATING, 5000, 22, SYN)) == {}   # not trusted: no
    assert set(delivered(sw, tcp(OUT, FAR, FLOATING, 5000, 80, SYN))) == {WEB_VM}
    # from inside the same source is the VM itself: it reaches the web VM routed
    assert set(delivered(sw, tcp(APP_VM, IPS[APP_VM], IPS[WEB_VM], 5001, 22, SYN))) == {WEB_VM}


def test_a_translated_frame_meets_the_load_balancer_and_qos_tables_once():
    """Its second pass goes from vip straight back to the router: a QoS meter or an LB
    entry would otherwise count it twice."""
    sw = network()
    result = sw.process(tcp(OUT, FAR, FLOATING, 5000, 80, SYN))
    assert set(result.outputs) == {WEB_VM}
    visited = result.tables_visited
    assert visited.count("qos") == 1 and visited.count("l2_src") == 1, visited
    assert visited.count("sg_in") == 2 and visited.count("router") == 2, visited
