"""The router's entries: gateways per VLAN, inter-VLAN routing, static routes, SNAT and
floating IPs (the settings: flows/router_model.py).

Frames reach the router's tables after MAC learning, in their VLAN (the VLAN app's
tag inside the pipeline):

- `router` (8): the gateways answer ARP and ping themselves, in flows (the reply
  built in place and sent back out of the asking port, untagged where that port's
  VLAN leaves untagged). ARP replies to a gateway, and a copy of every ARP request
  for one, go to the controller: that is how it learns the hosts' MACs. What is sent
  to the gateway MAC from an internal VLAN is routed; on its way out to the external
  network it is SNATed (to the external address, or its floating IP) through
  conntrack in the router's zone, after a ct_clear (the security groups tracked it
  in a zone of theirs). From the external VLAN only the external address (replies:
  conntrack undoes the SNAT) and floating IPs (DNAT) get in. Anything else sent to
  the gateway MAC is dropped. What comes in translated is sent through the pipeline
  again from the security stage (`sg`), marked in TRANSLATED, so the VM's security
  group checks it by its inside address, as Neutron's firewall sees it after the L3
  agent's DNAT; the mark then takes it from `vip` back to `router` (past the load
  balancer, QoS and learning, which saw it on its first pass) and on to `route`. A
  frame from outside whose source claims an inside address is dropped before any
  translation: the VMs' groups trust inside addresses.
- `route` (9): longest prefix first (priority grows with the prefix length). A
  known host or next hop: TTL less one, the gateway MAC as source, the host's as
  destination, its VLAN, then l2_dst forwards it like any frame of that VLAN. Not
  known yet: to the controller, which ARPs for it and sends the frame again once it
  is known. A TTL that would run out here (0 or 1): to the controller, which sends
  the sender a time-exceeded.

The gateway MAC is never learnt (an l2_src entry above learning): routed frames carry
it as their source, into every VLAN, from whichever port the router serves them.

IPv6, between the internal interfaces' `address6` networks (directly connected only):
neighbour and router solicitations for a gateway (its address and its link-local
one) go to the controller, which answers them (flows/ndp.py says why not the switch)
and learns the asker; advertisements sent to the gateway MAC go there too. Echo
requests to a gateway are answered in flows, like IPv4's. What an internal VLAN sends
to the gateway MAC for a connected IPv6 network is routed as IPv4 is: hop limit less
one, MACs rewritten, retagged; no NAT, and nothing from the external VLAN.
"""
import ipaddress
import struct
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

from flows import arp, ndp, probes
from flows.router_model import (APP, Interface, RouterSettings, Route, RouterState,
                                interface_for)
from flows.spec import (CONTROLLER, IN_PORT, TAGGED, Ct, CtClear, DecTtl, FlowSpec, Match,
                        Move, Nat, Output, Owner, PopVlan, SetField)

IPV4, ICMP = 0x0800, 1
IPV6, ICMPV6 = ndp.IPV6, ndp.ICMPV6
ZONE = 0x5000   # the router's conntrack zone (security groups: 0x4000 + network; LB: VIP ids)
# reg2 = 1: the router translated this frame from outside and sent it through the
# security stage again (reg0: the LB's backend mark, reg1: the egress port). Registers
# start at 0 for every frame a port receives and survive a recirculation, so the
# outside cannot forge it.
TRANSLATED = "reg2"
AGAIN_FROM = "sg"   # where a translated frame starts over (a plain miss without the app)

DEFAULTS = Owner(APP, "default")     # the gateway MAC not learnt; the drop
GATEWAY = Owner(APP, "gateway")      # ARP and ping answers, what is routed
NAT = Owner(APP, "nat")              # SNAT, floating IPs
ROUTES = Owner(APP, "route")         # connected networks and static routes
NEIGHBOURS = Owner(APP, "neighbour")  # a known host: its MAC and VLAN
EXPIRED = Owner(APP, "expired")      # TTL 0 or 1 to route: to the controller (time-exceeded)

PRIO_NO_LEARN = 40                   # l2_src: above learning, below the port and MAC bans
PRIO_SENT_IN = 4                     # l2_dst: past a fabric's flood guard
OFPP_CONTROLLER = 0xFFFFFFFD         # the in_port of what the controller sends in
# router: what is sent to the gateway MAC is decided by its destination's longest
# prefix (4 per prefix length step, the source's rank inside: floating IP 2, SNAT 1, as
# it is 0), above the drop; the answers and the outside's ways in above every prefix
PRIO_DROP, PRIO_DECIDE = 10, 100
PRIO_FROM_OUTSIDE, PRIO_FLOATING_IN, PRIO_TRANSLATED, PRIO_SPOOFED = 900, 910, 920, 950
PRIO_BACK = 500                      # vip: a translated frame back to the router
PRIO_ANSWER, PRIO_ARP_REPLY = 1000, 1050
RANK_AS_IS, RANK_SNAT, RANK_FLOATING = 0, 1, 2
PRIO_PREFIX, PRIO_NEIGHBOUR, PRIO_EXPIRED, PRIO_OWN_ADDRESS, PRIO_INVALID = \
    100, 300, 800, 900, 1000

Untagged = Iterable[Tuple[int, int]]   # (port, VLAN) pairs that leave untagged


@dataclass(frozen=True)
class Neighbour:
    ip: str
    mac: str
    vlan: int


def _net(prefix) -> object:
    """A prefix as a match value: an address for a /32, (network, mask) for a shorter
    one, None (no match on it) for 0.0.0.0/0."""
    net = ipaddress.IPv4Network(prefix)
    if net.prefixlen == 0:
        return None
    if net.prefixlen == 32:
        return str(net.network_address)
    return str(net.network_address), str(net.netmask)


def _to_gateway(settings: RouterSettings, vlan: int, **more) -> Match:
    return Match.of(eth_dst=settings.mac, vlan_vid=vlan, **more)


def _answered(prio, fields: dict, owner, actions, untagged) -> List[FlowSpec]:
    """An answer built in place out of the asking port: the tag kept, and above it one
    per (port, VLAN) that leaves untagged, which pops it."""
    entries = [FlowSpec("router", prio, Match.of(**fields), owner, actions=actions)]
    entries += [FlowSpec("router", prio + 1, Match.of(in_port=port, **fields), owner,
                         actions=(PopVlan(),) + actions)
                for port, vlan in sorted(untagged) if vlan == fields["vlan_vid"]]
    return entries


def _ping_answer(gateway_ip: str, mac: str):
    return (Move("eth_src", "eth_dst"), SetField("eth_src", mac),
            Move("ipv4_src", "ipv4_dst"), SetField("ipv4_src", gateway_ip),
            SetField("icmpv4_type", 0), Output(IN_PORT))


def gateway_entries(settings: RouterSettings, untagged: Untagged) -> List[FlowSpec]:
    """Per interface: ARP for the gateway answered (and copied to the controller, which
    learns the asker), ARP replies to it to the controller, ping answered for every
    gateway address the VLAN may reach (the external interface: its own only)."""
    untagged = tuple(untagged)
    mac, entries = settings.mac, []
    internal_ips = [i.ip for i in settings.internal()]
    for iface in settings.interfaces:
        vlan = iface.vlan
        entries += arp_answer(iface.ip, vlan, mac, untagged)
        entries.append(FlowSpec("router", PRIO_ARP_REPLY,
                                Match.of(eth_type=arp.ARP, arp_op=2, arp_tpa=iface.ip,
                                         vlan_vid=vlan), GATEWAY,
                                actions=(Output(CONTROLLER, 128),)))
        for ip in ([iface.ip] if iface.external else internal_ips):
            entries += _answered(PRIO_ANSWER, dict(
                eth_dst=mac, vlan_vid=vlan, eth_type=IPV4, ip_proto=ICMP, icmpv4_type=8,
                ipv4_dst=ip), GATEWAY, _ping_answer(ip, mac), untagged)
        if iface.address6 is not None:
            entries += _gateway6_entries(settings, iface, untagged)
    return entries


def gateway6_addresses(settings: RouterSettings, iface: Interface) -> Tuple[str, ...]:
    """The addresses the router answers for in an IPv6 VLAN: its gateway address there
    and its link-local one (router advertisements come from that one)."""
    return (iface.ip6, ndp.link_local(settings.mac))


def _gateway6_entries(settings: RouterSettings, iface: Interface, untagged) -> List[FlowSpec]:
    """Solicitations for the gateway (neighbour and router) to the controller, which
    answers; advertisements to the gateway MAC (answers to its own solicitations) to
    the controller, which learns the host; echo requests to any gateway address the
    VLAN may reach answered in place."""
    vlan, mac, entries = iface.vlan, settings.mac, []
    nd = dict(vlan_vid=vlan, eth_type=IPV6, ip_proto=ICMPV6)
    for target in gateway6_addresses(settings, iface):
        entries.append(FlowSpec("router", PRIO_ANSWER, Match.of(
            icmpv6_type=ndp.NS, ipv6_nd_target=target, **nd), GATEWAY,
            actions=(Output(CONTROLLER, 0xFFFF),)))
    entries.append(FlowSpec("router", PRIO_ANSWER, Match.of(icmpv6_type=ndp.RS, **nd),
                            GATEWAY, actions=(Output(CONTROLLER, 0xFFFF),)))
    entries.append(FlowSpec("router", PRIO_ARP_REPLY, Match.of(
        eth_dst=mac, icmpv6_type=ndp.NA, **nd), GATEWAY, actions=(Output(CONTROLLER, 0xFFFF),)))
    reachable = [i.ip6 for i in settings.internal() if i.address6 is not None]
    for ip in reachable + [ndp.link_local(mac)]:
        entries += _answered(PRIO_ANSWER, dict(eth_dst=mac, icmpv6_type=ndp.ECHO_REQUEST,
                                               ipv6_dst=ip, **nd),
                             GATEWAY, _ping6_answer(ip, mac), untagged)
    return entries


def _ping6_answer(gateway_ip: str, mac: str):
    return (Move("eth_src", "eth_dst"), SetField("eth_src", mac),
            Move("ipv6_src", "ipv6_dst"), SetField("ipv6_src", gateway_ip),
            SetField("icmpv6_type", ndp.ECHO_REPLY), Output(IN_PORT))


def _track(nat: Optional[Nat], commit: bool):
    return (CtClear(), Ct(ZONE, table="route", commit=commit, nat=nat))


def _track_in(nat: Nat, commit: bool):
    """From outside: translated, then through the security stage again, marked."""
    return (SetField(TRANSLATED, 1), CtClear(),
            Ct(ZONE, table=AGAIN_FROM, commit=commit, nat=nat))


def arp_answer(ip: str, vlan: int, mac: str, untagged: Untagged, owner=GATEWAY):
    """ARP for `ip` in `vlan` answered with `mac` (and a copy of the question to the
    controller, which learns the asker)."""
    return _answered(PRIO_ANSWER, dict(eth_type=arp.ARP, arp_op=1, arp_tpa=ip, vlan_vid=vlan),
                     owner, (Output(CONTROLLER, 128),) + arp.reply_actions(ip, mac), untagged)


def _egress(state: RouterState):
    """Every destination prefix the router knows, longest first, with whether it leaves
    through the external interface: (prefix, connected, external)."""
    settings = state.settings
    found = [(str(i.network), True, i.external) for i in settings.interfaces]
    found += [(r.prefix, False, interface_for(settings, r.next_hop).external)
              for r in state.routes().values()]
    return sorted(found, key=lambda f: (-ipaddress.IPv4Network(f[0]).prefixlen, f[0]))


def _decided(prefix: str, connected: bool, rank: int) -> int:
    length = ipaddress.IPv4Network(prefix).prefixlen
    return PRIO_DECIDE + 4 * (2 * length + (1 if connected else 0)) + rank


def forwarding_entries(state: RouterState, untagged: Untagged = ()) -> List[FlowSpec]:
    """What an internal VLAN sends to the gateway MAC, by its destination's longest
    prefix: a destination inside goes on to `route` as it is; one that leaves through
    the external interface goes through SNAT (its floating IP, or the external address
    for a VLAN in `snat`, from that VLAN's own network only) or is dropped, so no
    private address ever leaves. From the external VLAN only the external address
    (replies) and the floating IPs (each answered for ARP there) get in. No prefix
    (no route): dropped, as everything else sent to the gateway MAC."""
    settings = state.settings
    outside, floating = settings.external(), state.floating_ips()
    entries = [FlowSpec("router", PRIO_DROP, Match.of(eth_dst=settings.mac), DEFAULTS)]
    egress = _egress(state)
    for iface in settings.internal():
        fips = sorted((f for f in floating.values()
                       if interface_for(settings, f.internal) == iface),
                      key=lambda f: f.internal)
        for prefix, connected, external in egress:
            to = dict(eth_type=IPV4, ipv4_dst=_net(prefix))
            if not external:
                entries.append(FlowSpec("router", _decided(prefix, connected, RANK_AS_IS),
                                        _to_gateway(settings, iface.vlan, **to), GATEWAY,
                                        goto="route"))
                continue
            for fip in fips:
                entries.append(FlowSpec("router", _decided(prefix, connected, RANK_FLOATING),
                                        _to_gateway(settings, iface.vlan, ipv4_src=fip.internal,
                                                    **to), NAT,
                                        actions=_track(Nat("src", fip.external), True)))
            if iface.vlan in settings.snat:
                entries.append(FlowSpec("router", _decided(prefix, connected, RANK_SNAT),
                                        _to_gateway(settings, iface.vlan,
                                                    ipv4_src=_net(iface.network), **to), NAT,
                                        actions=_track(Nat("src", outside.ip), True)))
    entries += _forwarding6_entries(settings)
    if outside is None:
        return entries
    entries.append(FlowSpec("router", PRIO_FROM_OUTSIDE, _to_gateway(
        settings, outside.vlan, eth_type=IPV4, ipv4_dst=outside.ip), NAT,
        actions=_track_in(Nat(), False)))
    # back from the security stage, translated: routed by its inside address (one
    # that was not translated, a new connection to the external address, is dropped
    # there as an own address)
    entries.append(FlowSpec("router", PRIO_TRANSLATED, _to_gateway(
        settings, outside.vlan, eth_type=IPV4, **{TRANSLATED: 1}), NAT, goto="route"))
    entries.append(FlowSpec("vip", PRIO_BACK, Match.of(eth_type=IPV4, **{TRANSLATED: 1}),
                            NAT, goto="router"))
    # from outside, a source inside (a tenant network, a route to one): a spoof that
    # the VMs' groups would trust once translated; dropped above every way in (the
    # gateway's own ARP and ping answers stay above it: they go back out where it came)
    for prefix, _, external in egress:
        if not external and ipaddress.IPv4Network(prefix).prefixlen:
            entries.append(FlowSpec("router", PRIO_SPOOFED, _to_gateway(
                settings, outside.vlan, eth_type=IPV4, ipv4_src=_net(prefix)), NAT))
    for fip in sorted(floating.values(), key=lambda f: f.external):
        entries.append(FlowSpec("router", PRIO_FLOATING_IN, _to_gateway(
            settings, outside.vlan, eth_type=IPV4, ipv4_dst=fip.external), NAT,
            actions=_track_in(Nat("dst", fip.internal), True)))
        entries += arp_answer(fip.external, outside.vlan, settings.mac, untagged, NAT)
    return entries


def _forwarding6_entries(settings: RouterSettings) -> List[FlowSpec]:
    """IPv6 to the gateway MAC from an internal VLAN with an IPv6 gateway, for a
    connected IPv6 network: on to `route` (the networks do not overlap: one priority).
    A link-local, multicast or unspecified source is never routed (RFC 4291 2.5.6),
    dropped above every prefix and below the gateway's own answers (a ping to its
    link-local address comes from one)."""
    sixes = [i for i in settings.internal() if i.address6 is not None]
    if not sixes:
        return []
    entries = [FlowSpec("router", PRIO_DECIDE, _to_gateway(
        settings, src.vlan, eth_type=IPV6, ipv6_dst=_net6(dst.network6)), GATEWAY, goto="route")
        for src in sixes for dst in sixes]
    entries += [FlowSpec("router", PRIO_SPOOFED, Match.of(
        eth_dst=settings.mac, eth_type=IPV6, ipv6_src=_net6(ipaddress.IPv6Network(net))),
        DEFAULTS) for net in NOT_ROUTED_SOURCES6]
    return entries


NOT_ROUTED_SOURCES6 = ("fe80::/10", "ff00::/8", "::/128")


def _net6(network: ipaddress.IPv6Network):
    """As _net: a /128 is an address (OVS reports a full mask as none)."""
    if network.prefixlen == 128:
        return str(network.network_address)
    return (str(network.network_address), str(network.netmask))


def _prefix_priority(prefix: str, connected: bool) -> int:
    return PRIO_PREFIX + 2 * ipaddress.IPv4Network(prefix).prefixlen + (1 if connected else 0)


def _deliver(settings: RouterSettings, mac: str, vlan: int):
    return (DecTtl(), SetField("eth_src", settings.mac), SetField("eth_dst", mac),
            SetField("vlan_vid", vlan))


def route_entries(state: RouterState, neighbours: Mapping[str, Neighbour]) -> List[FlowSpec]:
    """Longest prefix first: connected networks and static routes (to the controller
    while the next hop is not known), known hosts above them."""
    settings = state.settings
    to_gw = dict(eth_dst=settings.mac, eth_type=IPV4, vlan_vid=TAGGED)  # retagged: OVS
    # refuses a set_field vlan_vid unless the match says there is a tag
    entries = [FlowSpec("route", PRIO_INVALID, Match.of(eth_type=IPV4, ct_state="+trk+inv",
                                                        ct_zone=ZONE), DEFAULTS),
               # no prefix for it (a floating IP's DNAT to a host no route covers): drop,
               # never on to l2_dst, where a frame for the gateway MAC would be flooded
               FlowSpec("route", PRIO_DROP, Match.of(eth_dst=settings.mac), DEFAULTS)]
    entries += [FlowSpec("route", PRIO_OWN_ADDRESS, Match.of(ipv4_dst=i.ip, **to_gw), DEFAULTS)
                for i in settings.interfaces]
    for iface in settings.interfaces:
        entries.append(FlowSpec("route", _prefix_priority(str(iface.network), True),
                                Match.of(ipv4_dst=_net(iface.network), **to_gw), ROUTES,
                                actions=(Output(CONTROLLER, 0xFFFF),)))
    for route in sorted(state.routes().values(), key=lambda r: r.prefix):
        hop = neighbours.get(route.next_hop)
        actions = (_deliver(settings, hop.mac, hop.vlan) if hop is not None
                   else (Output(CONTROLLER, 0xFFFF),))
        entries.append(FlowSpec("route", _prefix_priority(route.prefix, False),
                                Match.of(ipv4_dst=_net(route.prefix), **to_gw), ROUTES,
                                actions=actions, goto="l2_dst" if hop is not None else None))
    to_gw6 = dict(to_gw, eth_type=IPV6)
    # a TTL (hop limit) that would run out here: to the controller, which answers with
    # time-exceeded. Matched rather than left to dec_ttl's invalid-TTL packet-in, which
    # OVS delivers only to a connection whose async config asks for it, and an OF1.3
    # set-async that asks would drop its packet-out, group and action-set reasons too
    families = [to_gw] + ([to_gw6] if any(i.address6 for i in settings.internal()) else [])
    entries += [FlowSpec("route", PRIO_EXPIRED, Match.of(nw_ttl=ttl, **fields), EXPIRED,
                         actions=(Output(CONTROLLER, 0xFFFF),))
                for fields in families for ttl in (0, 1)]
    for iface in settings.internal():
        if iface.address6 is not None:
            entries.append(FlowSpec("route", PRIO_OWN_ADDRESS, Match.of(
                ipv6_dst=iface.ip6, **to_gw6), DEFAULTS))
            entries.append(FlowSpec("route", PRIO_PREFIX, Match.of(
                ipv6_dst=_net6(iface.network6), **to_gw6), ROUTES,
                actions=(Output(CONTROLLER, 0xFFFF),)))
    for ip, host in sorted(neighbours.items()):
        six = ipaddress.ip_address(ip).version == 6
        match = Match.of(ipv6_dst=ip, **to_gw6) if six else Match.of(ipv4_dst=ip, **to_gw)
        entries.append(FlowSpec("route", PRIO_NEIGHBOUR, match, NEIGHBOURS,
                                actions=_deliver(settings, host.mac, host.vlan),
                                goto="l2_dst"))
    return entries


def desired(state: RouterState, neighbours: Mapping[str, Neighbour] = None,
            untagged: Untagged = ()) -> List[FlowSpec]:
    """Everything the router wants on one switch (the same on every switch but for
    the answers' untagged ports)."""
    if not state.settings.interfaces:
        return []
    neighbours = known_neighbours(state.settings, neighbours or {})
    return ([FlowSpec("l2_src", PRIO_NO_LEARN, Match.of(eth_src=state.settings.mac), DEFAULTS,
                      goto="router"),
             FlowSpec("l2_dst", PRIO_SENT_IN, Match.of(in_port=OFPP_CONTROLLER,
                                                       eth_src=state.settings.mac),
                      DEFAULTS, goto="flood")]
            + gateway_entries(state.settings, untagged) + forwarding_entries(state, untagged)
            + route_entries(state, neighbours))


def known_neighbours(settings: RouterSettings, neighbours: Mapping[str, Neighbour]
                     ) -> Dict[str, Neighbour]:
    """The neighbours still on a connected network in their VLAN (a config change may
    have moved a network), the gateways themselves left out."""
    gateways = {i.ip for i in settings.interfaces} | {i.ip6 for i in settings.interfaces}
    out = {}
    for ip, host in neighbours.items():
        iface = interface_for(settings, ip)
        if iface is not None and iface.vlan == host.vlan and ip not in gateways:
            out[ip] = host
    return out


# --- what the controller decides on a packet-in -----------------------------------

def next_hop(state: RouterState, dst: str) -> Optional[Tuple[str, Interface]]:
    """(the address to ARP for, its interface) for a packet to `dst`: the host itself
    on a connected network, else the longest matching route's next hop."""
    address = ipaddress.ip_address(dst)
    settings = state.settings
    connected = interface_for(settings, dst)
    if address.version == 6:   # connected networks only
        return (dst, connected) if connected is not None and dst != connected.ip6 else None
    best: Optional[Route] = None
    for route in state.routes().values():
        if address in route.network and (best is None or route.network.prefixlen
                                          > best.network.prefixlen):
            best = route
    if connected is not None and (best is None or connected.network.prefixlen
                                  >= best.network.prefixlen):
        return (dst, connected) if dst != connected.ip else None
    if best is None:
        return None
    return best.next_hop, interface_for(settings, best.next_hop)


@dataclass(frozen=True)
class Frame:
    """What the router reads from a frame the switch sent it."""
    vlan: Optional[int]
    arp_op: Optional[int] = None
    sender_mac: Optional[str] = None
    sender_ip: Optional[str] = None
    target_ip: Optional[str] = None
    ipv4_src: Optional[str] = None
    ipv4_dst: Optional[str] = None
    tag_offset: int = 0          # where the 802.1Q tag starts (12) or 0: none
    ipv6_src: Optional[str] = None
    ipv6_dst: Optional[str] = None
    nd: Optional[ndp.NdMessage] = None   # an ICMPv6 message of an IPv6 packet
    eth_src: Optional[str] = None

    @property
    def ip_dst(self) -> Optional[str]:
        return self.ipv4_dst or self.ipv6_dst

    @property
    def ip_src(self) -> Optional[str]:
        return self.ipv4_src or self.ipv6_src


def _mac(data: bytes) -> str:
    return ":".join(f"{b:02x}" for b in data)


def parse_frame(data: bytes) -> Optional[Frame]:
    """An ARP, IPv4 or IPv6 frame, with at most one 802.1Q tag; None for anything else
    or a frame too short for its headers."""
    if len(data) < 14:
        return None
    ethertype, offset, vlan, tag = struct.unpack("!H", data[12:14])[0], 14, None, 0
    if ethertype == 0x8100:
        if len(data) < 18:
            return None
        vlan = struct.unpack("!H", data[14:16])[0] & 0x0FFF
        ethertype, offset, tag = struct.unpack("!H", data[16:18])[0], 18, 12
    body = data[offset:]
    if ethertype == arp.ARP and len(body) >= 28:
        htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", body[:8])
        if (htype, ptype, hlen, plen) != (1, IPV4, 6, 4):
            return None
        return Frame(vlan, arp_op=op, sender_mac=_mac(body[8:14]),
                     sender_ip=str(ipaddress.IPv4Address(body[14:18])),
                     target_ip=str(ipaddress.IPv4Address(body[24:28])), tag_offset=tag)
    if ethertype == IPV4 and len(body) >= 20 and body[0] >> 4 == 4:
        return Frame(vlan, ipv4_src=str(ipaddress.IPv4Address(body[12:16])),
                     ipv4_dst=str(ipaddress.IPv4Address(body[16:20])), tag_offset=tag,
                     eth_src=_mac(data[6:12]))
    if ethertype == IPV6 and len(body) >= 40 and body[0] >> 4 == 6:
        return Frame(vlan, ipv6_src=str(ipaddress.IPv6Address(body[8:24])),
                     ipv6_dst=str(ipaddress.IPv6Address(body[24:40])), tag_offset=tag,
                     nd=ndp.parse_icmpv6(body), eth_src=_mac(data[6:12]))
    return None


def ip_packet(data: bytes, frame: Frame) -> bytes:
    """The frame's bytes after its Ethernet header (and tag): the same whether the
    switch sent the frame up tagged or the controller sent it again untagged, so the
    controller knows a frame it already sent again."""
    return data[14 + (4 if frame.tag_offset else 0):]


def untag(data: bytes, frame: Frame) -> bytes:
    """The frame without its 802.1Q tag (to send it again from a port whose VLAN
    comes in untagged)."""
    if not frame.tag_offset:
        return data
    return data[:12] + data[16:]


def gleaned(settings: RouterSettings, frame: Frame) -> Optional[Neighbour]:
    """The host an ARP frame to a gateway tells about: its sender, when the sender's
    address lies on the interface of the frame's VLAN (not the gateway itself)."""
    if frame.arp_op not in (1, 2) or frame.sender_ip is None:
        return None
    iface = interface_for(settings, frame.sender_ip)
    if iface is None or iface.vlan != frame.vlan or frame.sender_ip in (
            iface.ip, str(iface.network.network_address), str(iface.network.broadcast_address)):
        return None
    if int(frame.sender_mac.split(":")[0], 16) & 1 or frame.sender_mac == settings.mac:
        return None
    return Neighbour(frame.sender_ip, frame.sender_mac, iface.vlan)


def gleaned6(settings: RouterSettings, frame: Frame) -> Optional[Neighbour]:
    """The host an ND frame to a gateway tells about: a solicitation's sender (by its
    source address and link-layer option), an advertisement's target (by its target
    link-layer option, else the frame's source MAC), when that address is a host of
    the IPv6 network of the frame's VLAN. Only frames with hop limit 255 count: ND
    that crossed a router is forged (RFC 4861)."""
    nd = frame.nd
    if not _valid_nd(frame) or nd.kind not in (ndp.NS, ndp.NA):
        return None
    ip, mac = (frame.ipv6_src, nd.link_addr) if nd.kind == ndp.NS \
        else (nd.target, nd.link_addr or frame.eth_src)
    iface = interface_for(settings, ip) if ip is not None else None
    if iface is None or iface.vlan != frame.vlan or mac is None or \
            ipaddress.IPv6Address(ip) in (iface.network6.network_address,
                                          ipaddress.IPv6Address(iface.ip6)):
        return None
    if int(mac.split(":")[0], 16) & 1 or mac in (settings.mac, "00:00:00:00:00:00"):
        return None
    return Neighbour(str(ipaddress.IPv6Address(ip)), mac, iface.vlan)


def _valid_nd(frame: Frame) -> bool:
    """RFC 4861's checks a node makes of an ND message before it acts on it: hop limit
    255 (it crossed no router), code 0, a source that is not multicast."""
    nd = frame.nd
    return nd is not None and nd.hop_limit == ndp.HOP_LIMIT and nd.code == 0 and \
        frame.ipv6_src is not None and not ipaddress.IPv6Address(frame.ipv6_src).is_multicast


def nd_answer(settings: RouterSettings, frame: Frame, tagged: bool) -> Optional[bytes]:
    """What the router answers an ND frame the switch sent it, as bytes to send back out
    of the port it came in by (`tagged`: with the VLAN's tag): a neighbour advertisement
    for a solicitation of one of its addresses in that VLAN, a router advertisement for
    a router solicitation; None for anything else (or a frame not worth an answer)."""
    nd = frame.nd
    iface = next((i for i in settings.internal()
                  if i.vlan == frame.vlan and i.address6 is not None), None)
    if not _valid_nd(frame) or iface is None or frame.eth_src is None:
        return None
    vlan = frame.vlan if tagged else None
    if nd.kind == ndp.NS and nd.target in gateway6_addresses(settings, iface):
        if ipaddress.IPv6Address(frame.ipv6_src).is_unspecified:
            # a host's duplicate address detection: our address is taken
            return ndp.advertisement(settings.mac, nd.target, ndp.multicast_mac(ndp.ALL_NODES),
                                     ndp.ALL_NODES, vlan, solicited=False)
        return ndp.advertisement(settings.mac, nd.target, frame.eth_src, frame.ipv6_src,
                                 vlan)
    if nd.kind == ndp.RS:
        return advertise(settings, iface, vlan)
    return None


ICMP_ERRORS = (3, 4, 5, 11, 12)   # ICMPv4 types that are errors (ICMPv6: below 128)
QUOTED_V4 = 548                   # RFC 1812 4.3.2.3: as much as fits 576 bytes
QUOTED_V6 = 1232                  # RFC 4443 2.4: as much as fits the minimum MTU


def time_exceeded(state: RouterState, frame: Frame, packet: bytes,
                  tagged: bool) -> Optional[bytes]:
    """The time-exceeded a gateway sends the source of a packet whose TTL (hop limit)
    ran out as the router forwarded it (`packet`: its IP packet), so traceroute sees
    the hop: from the gateway address of the VLAN it came in on, to its sender's MAC,
    quoting it. None when none is due (RFC 1812, RFC 4443): a source the router does
    not reach back through that VLAN (neither a host of its network nor behind a
    static route whose next hop is on it: the outside, or a packet SNAT already
    translated, whose sender the switch's conntrack knows, not the controller), an
    ICMP error itself, a fragment past the first."""
    settings = state.settings
    iface = next((i for i in settings.internal() if i.vlan == frame.vlan), None)
    if iface is None or frame.eth_src is None or frame.ip_src is None:
        return None
    if frame.ipv4_src is not None:
        return _time_exceeded_v4(state, iface, frame, packet, tagged)
    if iface.address6 is None or len(packet) < 41:
        return None
    source = ipaddress.IPv6Address(frame.ipv6_src)
    if source not in iface.network6 or source in (iface.network6.network_address,
                                                   ipaddress.IPv6Address(iface.ip6)) or \
            (packet[6] == ICMPV6 and packet[40] < 128):
        return None
    packet = packet[:40 + struct.unpack("!H", packet[4:6])[0]]   # not the frame's padding
    message = struct.pack("!BBHI", 3, 0, 0, 0) + packet[:QUOTED_V6]
    return ndp.icmpv6_frame(settings.mac, frame.eth_src, iface.ip6, frame.ipv6_src, message,
                            frame.vlan if tagged else None, hop_limit=64)


def _returns_through(state: RouterState, iface: Interface, source) -> bool:
    """Whether the router reaches IPv4 `source` back through `iface`: a host of its
    network, or behind a static route whose next hop is on it."""
    if source in (iface.network.network_address, iface.network.broadcast_address):
        return False
    found = next_hop(state, str(source))
    return found is not None and found[1] == iface


def _time_exceeded_v4(state, iface, frame, packet, tagged):
    settings = state.settings
    header = (packet[0] & 0x0F) * 4
    source = ipaddress.IPv4Address(frame.ipv4_src)
    packet = packet[:struct.unpack("!H", packet[2:4])[0]]   # not the frame's padding
    if header < 20 or len(packet) < header or not _returns_through(state, iface, source):
        return None
    if struct.unpack("!H", packet[6:8])[0] & 0x1FFF or \
            (packet[9] == ICMP and len(packet) > header and packet[header] in ICMP_ERRORS):
        return None
    icmp = struct.pack("!BBHI", 11, 0, 0, 0) + packet[:QUOTED_V4]
    icmp = icmp[:2] + struct.pack("!H", probes.checksum(icmp)) + icmp[4:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 0, 0, 64, ICMP, 0,
                     ipaddress.IPv4Address(iface.ip).packed, source.packed)
    ip = ip[:10] + struct.pack("!H", probes.checksum(ip)) + ip[12:]
    return probes.ethernet(frame.eth_src, settings.mac, IPV4, frame.vlan if tagged else None) \
        + ip + icmp


def advertise(settings: RouterSettings, iface: Interface, vlan=None) -> bytes:
    """A router advertisement of `iface`'s IPv6 network, to all nodes."""
    return ndp.router_advertisement(settings.mac, iface.network6, vlan)


def replayable(state: RouterState, frame: Frame) -> bool:
    """Whether a frame the route table sent up may be sent through the switch again
    once its next hop is known: from an internal VLAN and not translated yet (a frame
    already NATed would be tracked again as a new connection)."""
    settings = state.settings
    iface = next((i for i in settings.interfaces if i.vlan == frame.vlan), None)
    if iface is None or iface.external or frame.ip_src is None:
        return False
    if frame.ipv6_src is not None:
        return frame.nd is None or frame.nd.kind not in (ndp.NS, ndp.NA, ndp.RS, ndp.RA)
    outside = settings.external()
    translated = {f.external for f in state.floating_ips().values()}
    if outside is not None:
        translated.add(outside.ip)
    return frame.ipv4_src not in translated


# --- the plan protocol (flows/app_plan.py): `sdn plan` finds the app through it -------

SETTINGS = RouterSettings


def plan(settings: RouterSettings, switch, facts):
    """The config file's router on this switch, with no host known yet."""
    from flows.app_plan import UNTAGGED, SwitchPlan
    untagged = [(p, v) for p, v in facts.get(UNTAGGED, ())]
    return SwitchPlan(items=desired(RouterState(settings), {}, untagged))
