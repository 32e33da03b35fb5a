"""Stateful labs on conntrack: the flow specs of a small firewall, SNAT and a floating IP
(DNAT), packets to send through them, and the one compile path both the simulator
(tests/unit/test_conntrack_sim.py) and real OVS (tests/integration/
test_conntrack_differential_ovs.py) get them through.

A lab runs on a bridge of its own with two ports: 1 inside (the tenant's VM, 10.0.0.5
and 10.0.0.8), 2 outside (a server, 198.51.100.7). Its flows use the main pipeline's
first two tables by number only (ingress = 0 sends into conntrack, police = 1 decides
on the ct_state), none of their meaning: the security-group pipeline is later work, so
nothing is declared for it yet and the simulator runs these undeclared.
"""
from typing import List, Tuple

from controller import ofcompile
from flows.spec import Ct, CtClear, FlowSpec, Match, Nat, Output, Owner, Resubmit
from tests.support import ofsim, wire

INSIDE, OUTSIDE = 1, 2
TRACK, DECIDE = "ingress", "police"
OWNER = Owner("pipeline", "rule")
INSIDE_MAC, OUTSIDE_MAC = "02:c7:00:00:00:01", "02:c7:00:00:00:02"
CLIENT, CLIENT2, SERVER = "10.0.0.5", "10.0.0.8", "198.51.100.7"
SNAT_IP, FLOATING_IP = "203.0.113.1", "203.0.113.10"
CLIENT6, SERVER6 = "2001:db8:1::5", "2001:db8:2::7"
IPV4, IPV6, TCP, UDP, ICMPV6 = 0x0800, 0x86DD, 6, 17, 58
HTTP, ECHO_PORT, MARKED_PORT = 80, 5000, 5001
FIREWALL_ZONE, SNAT_ZONE, FIP_ZONE = 1, 10, 20


def flow(table, priority, actions=(), **match) -> FlowSpec:
    return FlowSpec(table, priority, Match.of(**match), OWNER, tuple(actions))


def _track(zone, nat=None) -> List[FlowSpec]:
    """Every IP packet goes through conntrack in `zone`, then to DECIDE."""
    return [flow(TRACK, 10, [Ct(zone, DECIDE, nat=nat)], eth_type=eth_type)
            for eth_type in (IPV4, IPV6)]


def firewall(zone=FIREWALL_ZONE) -> List[FlowSpec]:
    """Inside may open TCP 80 and UDP 5000 (committed), UDP 5001 too but committed with
    mark 1, which the pipeline drops once established: Neutron's way of cutting the
    connections of a removed rule. Established packets and replies pass both ways;
    anything new from outside, anything invalid, is dropped. IPv6 neighbour discovery
    is allowed before conntrack (conntrack does not track it)."""
    out = {INSIDE: OUTSIDE, OUTSIDE: INSIDE}
    specs = _track(zone) + [
        flow(TRACK, 20, [Output(out[port])], in_port=port, eth_type=IPV6, ip_proto=ICMPV6,
             icmpv6_type=kind) for port in out for kind in (135, 136)]
    specs += [
        flow(DECIDE, 50, [], ct_state="+trk+inv"),
        flow(DECIDE, 45, [], ct_state="+trk", ct_mark=1),
        flow(DECIDE, 40, [Output(OUTSIDE)], in_port=INSIDE, ct_state="+trk+est-rpl"),
        flow(DECIDE, 40, [Output(INSIDE)], in_port=OUTSIDE, ct_state="+trk+est+rpl"),
        flow(DECIDE, 39, [Output(INSIDE)], in_port=OUTSIDE, ct_state="+trk+est-rpl"),
        flow(DECIDE, 38, [Output(OUTSIDE)], in_port=INSIDE, ct_state="+trk+est+rpl"),
        flow(DECIDE, 30, [], in_port=OUTSIDE, ct_state="+trk+new"),
    ]
    for eth_type in (IPV4, IPV6):
        specs += [
            flow(DECIDE, 20, [Ct(zone, commit=True), Output(OUTSIDE)], in_port=INSIDE,
                 ct_state="+trk+new", eth_type=eth_type, ip_proto=TCP, tcp_dst=HTTP),
            flow(DECIDE, 20, [Ct(zone, commit=True), Output(OUTSIDE)], in_port=INSIDE,
                 ct_state="+trk+new", eth_type=eth_type, ip_proto=UDP, udp_dst=ECHO_PORT),
            flow(DECIDE, 20, [Ct(zone, commit=True, mark=1), Output(OUTSIDE)],
                 in_port=INSIDE, ct_state="+trk+new", eth_type=eth_type, ip_proto=UDP,
                 udp_dst=MARKED_PORT)]
    return specs


def snat(zone=SNAT_ZONE, ports=None) -> List[FlowSpec]:
    """Inside's new connections leave with SNAT_IP as their source (ports from `ports`,
    (low, high), or kept); every packet goes through ct(nat), so later ones of either
    direction are translated as their connection says."""
    low, high = ports or (None, None)
    return _track(zone, Nat()) + [
        flow(DECIDE, 20, [Ct(zone, commit=True, nat=Nat("src", SNAT_IP, port_min=low,
                                                         port_max=high)), Output(OUTSIDE)],
             in_port=INSIDE, ct_state="+trk+new", eth_type=IPV4),
        flow(DECIDE, 30, [Output(OUTSIDE)], in_port=INSIDE, ct_state="+trk+est"),
        flow(DECIDE, 30, [Output(INSIDE)], in_port=OUTSIDE, ct_state="+trk+est+rpl"),
    ]


def floating_ip(zone=FIP_ZONE, fixed=CLIENT) -> List[FlowSpec]:
    """A floating IP: new connections from outside to FLOATING_IP go to `fixed`; the
    replies leave with FLOATING_IP as their source again."""
    return _track(zone, Nat()) + [
        flow(DECIDE, 20, [Ct(zone, commit=True, nat=Nat("dst", fixed)), Output(INSIDE)],
             in_port=OUTSIDE, ct_state="+trk+new", eth_type=IPV4, ipv4_dst=FLOATING_IP),
        flow(DECIDE, 30, [Output(INSIDE)], in_port=OUTSIDE, ct_state="+trk+est-rpl"),
        flow(DECIDE, 30, [Output(OUTSIDE)], in_port=INSIDE, ct_state="+trk+est+rpl"),
    ]


def rezoned(first_zone, second_zone, clear=True) -> List[FlowSpec]:
    """Tracked in one zone, then again in another (two networks' conntrack on one
    path: a router's and a port's). The second stage takes untracked packets only, so
    a packet of the first zone's established connection must be ct_clear'ed first;
    `clear=False` leaves that out. A commit (ct without a table) leaves the packet
    untracked by itself. Inside opens, replies come back."""
    second, third = "qos", "l2_src"
    return [
        flow(TRACK, 10, [Ct(first_zone, DECIDE)], eth_type=IPV4),
        flow(DECIDE, 20, [Ct(first_zone, commit=True), Resubmit(second)], in_port=INSIDE,
             ct_state="+trk+new", ct_zone=first_zone, eth_type=IPV4),
        flow(DECIDE, 10, [CtClear()] * clear + [Resubmit(second)], ct_state="+trk+est",
             ct_zone=first_zone),
        flow(second, 20, [Ct(second_zone, third)], ct_state="-trk", eth_type=IPV4),
        flow(third, 20, [Ct(second_zone, commit=True), Output(OUTSIDE)], in_port=INSIDE,
             ct_state="+trk+new", ct_zone=second_zone, eth_type=IPV4),
        flow(third, 10, [Output(OUTSIDE)], in_port=INSIDE, ct_state="+trk+est",
             ct_zone=second_zone),
        flow(third, 10, [Output(INSIDE)], in_port=OUTSIDE, ct_state="+trk+est",
             ct_zone=second_zone),
    ]


# --- the one compile path -----------------------------------------------------------


def on_the_wire(specs) -> List[Tuple[bytes, FlowSpec]]:
    """Each spec as the bytes of its flow-mod (the project's compiler; undeclared, so
    not validated against the pipeline) and as what those bytes decode back to."""
    out = []
    for spec in specs:
        mod = ofcompile.ryu_flow_mod(wire.DP, spec)
        mod.serialize()
        data = bytes(mod.buf)
        out.append((data, ofcompile.decode_message(wire.parse(data))))
    return out


def switch(specs) -> ofsim.Switch:
    """A simulated lab bridge running what the switch is told for `specs`."""
    decoded = [spec for _, spec in on_the_wire(specs)]
    return ofsim.Switch([INSIDE, OUTSIDE], declared=False, through_wire=False).apply(decoded)


# --- packets --------------------------------------------------------------------------


def _ip(in_port, src, dst, proto, **fields):
    six = ":" in src
    macs = (INSIDE_MAC, OUTSIDE_MAC) if in_port == INSIDE else (OUTSIDE_MAC, INSIDE_MAC)
    addresses = {"ipv6_src": src, "ipv6_dst": dst} if six else {"ipv4_src": src, "ipv4_dst": dst}
    return ofsim.frame(in_port, *macs, eth_type=IPV6 if six else IPV4, ip_proto=proto,
                       **addresses, **fields)


def udp(in_port, src, sport, dst, dport):
    return _ip(in_port, src, dst, UDP, udp_src=sport, udp_dst=dport)


def tcp(in_port, src, sport, dst, dport, flags=0x02):
    return _ip(in_port, src, dst, TCP, tcp_src=sport, tcp_dst=dport, tcp_flags=flags)


def icmpv6(in_port, src, dst, kind, **fields):
    return _ip(in_port, src, dst, ICMPV6, icmpv6_type=kind, icmpv6_code=0, **fields)


def delivered(sw: ofsim.Switch, pkt):
    """(port, packet) of the one copy that left, None when it was dropped."""
    outputs = sw.process(pkt).outputs
    if not outputs:
        return None
    (port, (out,)), = outputs.items()
    return port, out


def address(pkt, side) -> Tuple[str, int]:
    """(IP, port) of a packet's source ("src") or destination ("dst")."""
    ip = pkt.get(f"ipv4_{side}") or pkt.get(f"ipv6_{side}")
    return ip, pkt.get(f"udp_{side}", pkt.get(f"tcp_{side}"))
