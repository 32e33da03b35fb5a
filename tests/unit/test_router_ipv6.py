"""The router's IPv6 (flows/router.py, flows/ndp.py): directly connected networks routed
between two tenant VLANs on the table simulator with the VLAN and learning apps'
entries; neighbour and router discovery answered by the controller's bytes, which are
checked field by field and by checksum; what the controller learns from ND frames; and
the time-exceeded a gateway sends when a routed packet's TTL (hop limit) runs out."""
import ipaddress
import struct

import pytest
from hypothesis import given, settings as hsettings, strategies as st
from ryu.ofproto import ofproto_v1_3 as ofp, ofproto_v1_3_parser as parser

from controller import events, ofcompile, pipeline
from flows import l2, ndp, router, security, vlan
from flows.probes import checksum
from flows.router_model import RouterSettings, RouterState
from flows.security_model import binding_from_dict, groups_from_dict
from flows.spec import Owner
from tests.support.l2_app import FakeDatapath, call, flow_mods
from tests.support.ofsim import Switch, frame, one_frame_each as out
from apps import router as router_app
from tests.support.router_app import make_app, packet_in, packet_outs
from tests.support.vlan_app import bring_up

GW_MAC = "02:00:00:00:fe:01"
GW_LL = "fe80::ff:fe00:fe01"           # the modified EUI-64 of GW_MAC
H1, H2, OUT, TRUNK, H3 = 1, 2, 3, 4, 5
MACS = {H1: "00:00:00:00:00:01", H2: "00:00:00:00:00:02", OUT: "00:00:00:00:00:fe",
        H3: "00:00:00:00:00:03"}
IPS = {H1: "fd00:10::2", H2: "fd00:20::2", OUT: "2001:db8::2", H3: "fd00:30::2"}
VLANS = {H1: 10, H2: 20, OUT: 100, H3: 30}
CONFIG = {"interfaces": [{"vlan": 10, "address": "10.0.10.1/24", "address6": "fd00:10::1/64"},
                         {"vlan": 20, "address": "10.0.20.1/24", "address6": "fd00:20::1/64"},
                         {"vlan": 30, "address": "10.0.30.1/24"},
                         {"vlan": 100, "address": "203.0.113.1/24", "external": True}]}
SETTINGS = RouterSettings(**CONFIG)
STATE = RouterState(SETTINGS, route_overrides={
    "192.0.2.0/24": {"prefix": "192.0.2.0/24", "next_hop": "10.0.20.2"}})
KNOWN = {IPS[p]: router.Neighbour(IPS[p], MACS[p], VLANS[p]) for p in (H1, H2)}


def network(neighbours=KNOWN):
    configured = {p: vlan.PortVlan(p, tag=v) for p, v in VLANS.items()}
    configured[TRUNK] = vlan.PortVlan(TRUNK, trunks=(10, 20))
    ports = vlan.effective_ports(configured, sorted(configured))
    untagged = vlan.untagged_egress_pairs(ports)
    sw = Switch(sorted(configured))
    sw.apply(pipeline.table_misses())
    sw.apply(vlan.switch_plan(ports, configured))
    sw.apply(l2.switch_defaults(l2.L2Settings(mode="datapath"), untagged))
    sw.apply(router.desired(RouterState(SETTINGS), neighbours, untagged))
    for port in (H1, H2, OUT, H3):
        sw.process(frame(port, MACS[port], "33:33:00:00:00:01", eth_type=0x86DD,
                         ip_proto=17, ipv6_src=IPS[port], ipv6_dst="ff02::1"))
    return sw


def icmp6(port, dst, kind, dst_mac=GW_MAC, src=None, **more):
    return frame(port, MACS[port], dst_mac, eth_type=0x86DD, ip_proto=58, icmpv6_type=kind,
                 ipv6_src=src or IPS[port], ipv6_dst=dst, ip_ttl=more.pop("ttl", 64), **more)


def udp6(port, dst, dst_mac=GW_MAC, ttl=64):
    return frame(port, MACS[port], dst_mac, eth_type=0x86DD, ip_proto=17, ipv6_src=IPS[port],
                 ipv6_dst=dst, ip_ttl=ttl, udp_src=40000, udp_dst=53)


def test_solicitations_for_a_gateway_go_to_the_controller_and_nowhere_else():
    sw = network()
    for target in ("fd00:10::1", GW_LL):
        result = sw.process(icmp6(H1, ndp.solicited_node(target), ndp.NS,
                                  dst_mac=ndp.multicast_mac(ndp.solicited_node(target)),
                                  ipv6_nd_target=target, ttl=255))
        assert result.outputs == {} and len(result.packet_ins) == 1
    rs = sw.process(icmp6(H1, "ff02::2", ndp.RS, dst_mac="33:33:00:00:00:02", ttl=255))
    assert rs.outputs == {} and len(rs.packet_ins) == 1
    # another host's solicitation is the learning app's: flooded in the VLAN, not answered
    other = sw.process(icmp6(H1, ndp.solicited_node("fd00:10::3"), ndp.NS,
                             dst_mac=ndp.multicast_mac(ndp.solicited_node("fd00:10::3")),
                             ipv6_nd_target="fd00:10::3", ttl=255))
    assert set(other.outputs) == {TRUNK} and other.packet_ins == []
    # a VLAN with no IPv6 gateway gets nothing for another VLAN's
    assert sw.process(icmp6(H3, ndp.solicited_node("fd00:10::1"), ndp.NS,
                            dst_mac="33:33:ff:00:00:01", ipv6_nd_target="fd00:10::1",
                            ttl=255)).packet_ins == []


def test_the_gateways_answer_ping6_in_the_switch():
    sw = network()
    for gateway in ("fd00:10::1", "fd00:20::1", GW_LL):
        reply = out(sw, icmp6(H1, gateway, ndp.ECHO_REQUEST))
        assert set(reply) == {H1}
        got = reply[H1]
        assert (got["icmpv6_type"], got["ipv6_src"], got["ipv6_dst"]) == \
            (ndp.ECHO_REPLY, gateway, IPS[H1])
        assert (got["eth_src"], got["eth_dst"], got["vlan_vid"]) == (GW_MAC, MACS[H1], None)
    tagged = out(sw, dict(icmp6(H1, "fd00:10::1", ndp.ECHO_REQUEST), in_port=TRUNK,
                          vlan_vid=10))
    assert tagged[TRUNK]["vlan_vid"] == 10
    assert out(sw, icmp6(H3, "fd00:10::1", ndp.ECHO_REQUEST)) == {}      # no IPv6 gateway
    assert out(sw, icmp6(OUT, "fd00:10::1", ndp.ECHO_REQUEST)) == {}     # the outside


def test_routing_between_ipv6_networks_rewrites_macs_retags_and_decrements_the_hop_limit():
    sw = network()
    there = out(sw, udp6(H1, IPS[H2]))
    assert set(there) == {H2}
    got = there[H2]
    assert (got["eth_src"], got["eth_dst"], got["vlan_vid"], got["ip_ttl"]) == \
        (GW_MAC, MACS[H2], None, 63)
    assert (got["ipv6_src"], got["ipv6_dst"]) == (IPS[H1], IPS[H2])
    back = out(sw, udp6(H2, IPS[H1]))
    assert set(back) == {H1} and back[H1]["eth_dst"] == MACS[H1]
    assert out(sw, udp6(H1, IPS[H2], ttl=1)) == {}                       # hop limit runs out
    # no way in from outside, from a VLAN without an IPv6 gateway, to nowhere connected
    assert out(sw, udp6(OUT, IPS[H1])) == {}
    assert out(sw, udp6(H3, IPS[H1])) == {}
    assert out(sw, udp6(H1, "2001:db8:99::1")) == {}
    assert out(sw, udp6(H1, "fd00:20::1")) == {}                         # a gateway: not routed
    # a link-local (or multicast, or unspecified) source is never routed (RFC 4291)
    for source in ("fe80::1", "ff02::1", "::"):
        assert out(sw, dict(udp6(H1, IPS[H2]), ipv6_src=source)) == {}, source


def test_an_unknown_ipv6_host_goes_to_the_controller_which_asks_for_it_itself():
    sw = network(neighbours={})
    result = sw.process(udp6(H1, IPS[H2]))
    assert result.outputs == {} and [p["ipv6_dst"] for p in result.packet_ins] == [IPS[H2]]
    target, iface = router.next_hop(RouterState(SETTINGS), IPS[H2])
    assert (target, iface.vlan) == (IPS[H2], 20)
    assert router.next_hop(RouterState(SETTINGS), "2001:db8::1") is None
    assert router.next_hop(RouterState(SETTINGS), "fd00:20::1") is None   # its own


def _valid_icmpv6(data: bytes, offset: int):
    ip = data[offset:]
    length = struct.unpack("!H", ip[4:6])[0]
    pseudo = ip[8:40] + struct.pack("!I3xB", length, 58)
    assert checksum(pseudo + ip[40:40 + length]) == 0
    return ip


def test_a_solicitation_for_the_gateway_is_answered_with_a_router_advertisement_of_it():
    ask = ndp.solicitation(MACS[H1], IPS[H1], "fd00:10::1", vlan=10)
    read = router.parse_frame(ask)
    assert read.nd == ndp.NdMessage(ndp.NS, "fd00:10::1", MACS[H1], 255)
    answer = router.nd_answer(SETTINGS, read, tagged=False)
    ip = _valid_icmpv6(answer, 14)
    assert answer[:12] == bytes.fromhex("000000000001" "02000000fe01")    # to the asker
    got = router.parse_frame(answer)
    assert (got.vlan, got.ipv6_src, got.ipv6_dst, got.eth_src) == \
        (None, "fd00:10::1", IPS[H1], GW_MAC)
    assert got.nd == ndp.NdMessage(ndp.NA, "fd00:10::1", GW_MAC, 255)
    assert struct.unpack("!I", ip[44:48])[0] == ndp.NA_ROUTER | ndp.NA_SOLICITED | ndp.NA_OVERRIDE
    # for its link-local address too, tagged where the port carries the VLAN tagged
    tagged = router.nd_answer(SETTINGS, router.parse_frame(
        ndp.solicitation(MACS[H1], "fe80::1", GW_LL, vlan=10)), tagged=True)
    assert router.parse_frame(tagged).vlan == 10 and router.parse_frame(tagged).nd.target == GW_LL
    # not for someone else's address, another VLAN's gateway, or a hop limit below 255
    for bad in (ndp.solicitation(MACS[H1], IPS[H1], "fd00:10::3", vlan=10),
                ndp.solicitation(MACS[H1], IPS[H1], "fd00:20::1", vlan=10),
                ndp.solicitation(MACS[H1], IPS[H1], "fd00:10::1", vlan=30)):
        assert router.nd_answer(SETTINGS, router.parse_frame(bad), tagged=False) is None
    routed = bytearray(ask)
    routed[18 + 7] = 64
    assert router.nd_answer(SETTINGS, router.parse_frame(bytes(routed)), False) is None


def test_a_router_solicitation_gets_the_vlans_prefix_for_autoconfiguration():
    rs = ndp.icmpv6_frame(MACS[H1], "33:33:00:00:00:02", "fe80::1", "ff02::2",
                          struct.pack("!BBHI", ndp.RS, 0, 0, 0) + b"\x01\x01"
                          + bytes.fromhex("000000000001"), vlan=20)
    answer = router.nd_answer(SETTINGS, router.parse_frame(rs), tagged=False)
    ip = _valid_icmpv6(answer, 14)
    got = router.parse_frame(answer)
    assert (got.ipv6_src, got.ipv6_dst, answer[:6]) == \
        (GW_LL, "ff02::1", bytes.fromhex("333300000001"))
    message = ip[40:]
    assert message[0] == ndp.RA and struct.unpack("!H", message[6:8])[0] == ndp.ROUTER_LIFETIME_S
    prefix = message[16 + 8:]
    assert (prefix[0], prefix[2], prefix[3]) == (ndp.OPT_PREFIX, 64, 0xC0)
    assert ipaddress.IPv6Address(prefix[16:32]) == ipaddress.IPv6Address("fd00:20::")


def test_the_controller_learns_hosts_from_nd_and_only_on_their_own_vlan():
    ns = router.parse_frame(ndp.solicitation(MACS[H1], IPS[H1], "fd00:10::1", vlan=10))
    assert router.gleaned6(SETTINGS, ns) == router.Neighbour(IPS[H1], MACS[H1], 10)
    na = router.parse_frame(ndp.advertisement(MACS[H2], IPS[H2], GW_MAC, "fd00:20::1", vlan=20))
    assert router.gleaned6(SETTINGS, na) == router.Neighbour(IPS[H2], MACS[H2], 20)
    wrong_vlan = router.parse_frame(ndp.advertisement(MACS[H2], IPS[H2], GW_MAC, "fd00:20::1",
                                                      vlan=10))
    link_local = router.parse_frame(ndp.solicitation(MACS[H1], "fe80::1", GW_LL, vlan=10))
    own = router.parse_frame(ndp.advertisement(MACS[H2], "fd00:20::1", GW_MAC, "fd00:20::1",
                                               vlan=20))
    multicast = router.parse_frame(ndp.advertisement("01:00:5e:00:00:01", IPS[H2], GW_MAC,
                                                     "fd00:20::1", vlan=20))
    for frame_read in (wrong_vlan, link_local, own, multicast):
        assert router.gleaned6(SETTINGS, frame_read) is None


def test_link_local_and_multicast_addresses_follow_the_rfcs():
    assert ndp.link_local(GW_MAC) == GW_LL
    assert ndp.solicited_node("fd00:10::1:2345") == "ff02::1:ff01:2345"
    assert ndp.multicast_mac("ff02::1:ff01:2345") == "33:33:ff:01:23:45"


@hsettings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_any_ipv6_bytes_parse_or_are_refused_without_raising(tail):
    for head in (bytes(12) + b"\x86\xdd", bytes(12) + b"\x81\x00\x00\x0a\x86\xdd"):
        data = head + bytes([0x60]) + tail
        read = router.parse_frame(data)
        if read is not None:
            router.gleaned6(SETTINGS, read)
            router.nd_answer(SETTINGS, read, True)
            router.replayable(RouterState(SETTINGS), read)
            router.time_exceeded(STATE, read, router.ip_packet(data, read), True)


@hsettings(max_examples=300, deadline=None)
@given(st.binary(min_size=20, max_size=120), st.sampled_from(["10.0.10.2", "192.0.2.7"]))
def test_any_expired_ipv4_bytes_get_an_answer_or_none_without_raising(tail, source):
    packet = bytes([0x40 | tail[0] & 0x0F]) + tail[1:12] + \
        ipaddress.IPv4Address(source).packed + tail[12:]
    data = _tagged(MACS[H1], packet, 10)
    read = router.parse_frame(data)
    if read is not None:
        router.time_exceeded(STATE, read, router.ip_packet(data, read), False)


@pytest.mark.parametrize("interface, message", [
    ({"vlan": 10, "address": "10.0.10.1/24", "address6": "fd00:10::1"}, "prefix length"),
    ({"vlan": 10, "address": "10.0.10.1/24", "address6": "fd00:10::/64"}, "subnet-router"),
    ({"vlan": 10, "address": "10.0.10.1/24", "address6": "fe80::1/64"}, "cannot be"),
    ({"vlan": 10, "address": "10.0.10.1/24", "address6": "10.0.10.1/24"}, "IPv6 address"),
    ({"vlan": 10, "address": "10.0.10.1/24", "address6": 7}, "IPv6 address"),
    ({"vlan": 10, "address": "10.0.10.1/24", "address6": "fd00::1/8"}, "/16../127"),
    ({"vlan": 10, "address": "10.0.10.1/24", "address6": "fec0::1/64"}, "cannot be"),
    ({"vlan": 10, "address": "10.0.10.1/24", "address6": "::5/16"}, "cannot be"),
    ({"vlan": 100, "address": "203.0.113.1/24", "external": True,
      "address6": "2001:db8::1/64"}, "external interface has no IPv6"),
])
def test_a_bad_ipv6_interface_is_refused_naming_what_is_wrong(interface, message):
    with pytest.raises(ValueError, match=message):
        RouterSettings(interfaces=[interface])


def test_overlapping_ipv6_networks_are_refused():
    with pytest.raises(ValueError, match="overlaps"):
        RouterSettings(interfaces=[
            {"vlan": 10, "address": "10.0.10.1/24", "address6": "fd00:10::1/64"},
            {"vlan": 20, "address": "10.0.20.1/24", "address6": "fd00:10::8001/65"}])


def test_every_ipv6_entry_fits_the_pipeline_and_reads_back_as_itself():
    """Reconcile compares what the switch reports with what is wanted: an entry that
    decodes back differently would be replaced on every pass."""
    datapath = FakeDatapath(1)
    for entry in router.desired(RouterState(SETTINGS), KNOWN, [(1, 10)]):
        pipeline.validate(entry)
        msg = ofcompile.ryu_flow_mod(datapath, entry)
        msg.serialize()
        stats = parser.OFPFlowStats(table_id=msg.table_id, priority=msg.priority,
                                    idle_timeout=0, hard_timeout=0, flags=msg.flags,
                                    cookie=msg.cookie, match=msg.match,
                                    instructions=msg.instructions)
        assert ofcompile.decode_flow(stats) == entry


# --- the app: ND packet-ins answered and learnt from, unknown hosts asked for ---------

def _app(monkeypatch, tmp_path):
    app = make_app(monkeypatch, tmp_path, CONFIG)
    datapath = bring_up(app)
    app._port_vlans(events.EventPortVlans(1, {(1, 10), (2, 20)}))
    datapath.sent.clear()
    return app, datapath


def test_the_app_answers_a_solicitation_out_of_the_port_it_came_by(monkeypatch, tmp_path):
    app, datapath = _app(monkeypatch, tmp_path)
    ask = ndp.solicitation(MACS[H1], IPS[H1], "fd00:10::1", vlan=10)
    app._packet_in(packet_in(datapath, 1, ask, "router", router.GATEWAY))
    (answer,) = packet_outs(datapath)
    assert [a.port for a in answer.actions] == [1]
    got = router.parse_frame(answer.data)
    assert (got.vlan, got.nd.kind, got.nd.link_addr) == (None, ndp.NA, GW_MAC)  # untagged port
    assert app.neighbours[IPS[H1]] == router.Neighbour(IPS[H1], MACS[H1], 10)
    # from a port that carries VLAN 10 tagged, the answer is tagged
    datapath.sent.clear()
    app._packet_in(packet_in(datapath, 4, ask, "router", router.GATEWAY))
    assert router.parse_frame(packet_outs(datapath)[0].data).vlan == 10


def test_an_unknown_ipv6_host_is_solicited_learnt_and_the_frame_sent_again(monkeypatch,
                                                                           tmp_path):
    app, datapath = _app(monkeypatch, tmp_path)
    data = ndp.icmpv6_frame(MACS[H1], GW_MAC, IPS[H1], IPS[H2],
                            struct.pack("!BBHI", ndp.ECHO_REQUEST, 0, 0, 7), vlan=10,
                            hop_limit=64)
    app._packet_in(packet_in(datapath, 1, data, "route", router.ROUTES))
    (asked,) = packet_outs(datapath)
    assert asked.actions[0].port == ofp.OFPP_TABLE and asked.in_port == ofp.OFPP_CONTROLLER
    question = router.parse_frame(asked.data)
    assert (question.vlan, question.ipv6_src, question.ipv6_dst, question.nd.kind,
            question.nd.target) == (20, "fd00:20::1", "ff02::1:ff00:2", ndp.NS, IPS[H2])
    _valid_icmpv6(asked.data, 18)
    datapath.sent.clear()
    answer = ndp.advertisement(MACS[H2], IPS[H2], GW_MAC, "fd00:20::1", vlan=20)
    app._packet_in(packet_in(datapath, 2, answer, "router", router.GATEWAY))
    assert router.NEIGHBOURS in [Owner(o.app, o.purpose) for o in owners(datapath)]
    resent = [m for m in packet_outs(datapath) if m.actions[0].port == ofp.OFPP_TABLE]
    assert [m.in_port for m in resent] == [1]
    assert router.parse_frame(resent[0].data).ipv6_dst == IPS[H2]
    _, body, _ = call(app, "GET", "/v1/router")
    assert {"ip": IPS[H2], "mac": MACS[H2], "vlan": 20} in body["neighbours"]
    assert body["interfaces"][0]["address6"] == "fd00:10::1/64"


def test_every_ipv6_network_is_advertised_through_one_switch(monkeypatch, tmp_path):
    app, datapath = _app(monkeypatch, tmp_path)
    app.advertise_all()
    sent = [router.parse_frame(m.data) for m in packet_outs(datapath)]
    assert [(f.vlan, f.nd.kind, f.ipv6_src) for f in sent] == \
        [(10, ndp.RA, GW_LL), (20, ndp.RA, GW_LL)]


def owners(datapath):
    return [pipeline.owner_of(m.cookie) for m in flow_mods(datapath)
            if m.command == ofp.OFPFC_ADD]


def test_routed_ipv6_meets_the_destinations_security_group_and_nd_still_works():
    groups = groups_from_dict({"web6": [{"direction": "ingress", "protocol": "tcp",
                                         "ports": 80, "ethertype": "IPv6"}]})
    bindings = {H1: binding_from_dict({"addresses": ["10.0.10.2", IPS[H1]], "groups": []}),
                H2: binding_from_dict({"addresses": ["10.0.20.2", IPS[H2]],
                                       "groups": ["web6"]})}
    sw = network()
    sw.apply(security.desired(bindings, groups))

    def tcp6(port, dst, sport, dport, flags):
        return frame(port, MACS[port], GW_MAC, eth_type=0x86DD, ip_proto=6,
                     ipv6_src=IPS[port], ipv6_dst=dst, ip_ttl=64, tcp_src=sport,
                     tcp_dst=dport, tcp_flags=flags)
    there = out(sw, tcp6(H1, IPS[H2], 40000, 80, 0x02))
    assert set(there) == {H2} and there[H2]["ip_ttl"] == 63
    assert set(out(sw, tcp6(H2, IPS[H1], 80, 40000, 0x12))) == {H1}    # the reply
    assert out(sw, tcp6(H1, IPS[H2], 40001, 22, 0x02)) == {}            # not allowed
    assert out(sw, udp6(H1, IPS[H2])) == {}
    # the gateway is still found: the solicitation reaches the controller
    asked = sw.process(icmp6(H2, ndp.solicited_node("fd00:20::1"), ndp.NS,
                             dst_mac=ndp.multicast_mac(ndp.solicited_node("fd00:20::1")),
                             ipv6_nd_target="fd00:20::1", ttl=255))
    assert len(asked.packet_ins) == 1
    # and a spoofed source is the security stage's to drop before any routing
    spoofed = frame(H1, MACS[H1], GW_MAC, eth_type=0x86DD, ip_proto=17,
                    ipv6_src="fd00:10::99", ipv6_dst=IPS[H2], ip_ttl=64, udp_src=1, udp_dst=80)
    assert out(sw, spoofed) == {}


# --- time exceeded: what traceroute sees of the router -----------------------------

def _ipv4_packet(src, dst, ttl=1, proto=17, payload=b"\x9c\x40\x82\x9b\x00\x10\x00\x00" * 2,
                 frag=0):
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, frag, ttl, proto, 0,
                         ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed)
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + payload


def _tagged(mac, packet, vlan, ethertype=0x0800):
    return bytes.fromhex(GW_MAC.replace(":", "") + mac.replace(":", "")) + \
        struct.pack("!HHH", 0x8100, vlan, ethertype) + packet


def test_a_ttl_that_runs_out_while_routed_gets_a_time_exceeded_from_the_gateway():
    sw = network(dict(KNOWN, **{"10.0.20.2": router.Neighbour("10.0.20.2", MACS[H2], 20)}))
    expired = sw.process(frame(H1, MACS[H1], GW_MAC, eth_type=0x0800, ip_proto=17,
                               ipv4_src="10.0.10.2", ipv4_dst="10.0.20.2", ip_ttl=1,
                               udp_src=40000, udp_dst=33434))
    # the route table hands it to the controller as it came (TTL 1), not on
    assert expired.outputs == {} and [p["ip_ttl"] for p in expired.packet_ins] == [1]
    for ttl, six in ((0, False), (1, True)):
        send = udp6(H1, IPS[H2], ttl=ttl) if six else dict(expired.packet_ins[0], ip_ttl=ttl,
                                                             vlan_vid=None, in_port=H1)
        assert len(sw.process(send).packet_ins) == 1 and out(sw, send) == {}
    assert set(out(sw, udp6(H1, IPS[H2], ttl=2))) == {H2}                 # 2 gets through
    sent = _ipv4_packet("10.0.10.2", "10.0.20.2")
    data = _tagged(MACS[H1], sent, 10)
    answer = router.time_exceeded(STATE, router.parse_frame(data), sent, tagged=False)
    got = router.parse_frame(answer)
    assert (got.vlan, got.eth_src, answer[:6]) == (None, GW_MAC, bytes.fromhex("000000000001"))
    assert (got.ipv4_src, got.ipv4_dst) == ("10.0.10.1", "10.0.10.2")
    ip = answer[14:]
    assert checksum(ip[:20]) == 0 and checksum(ip[20:]) == 0
    assert (ip[20], ip[21]) == (11, 0) and ip[28:] == sent     # quotes the packet whole
    # IPv6: ICMPv6 time exceeded (type 3) from the VLAN's IPv6 gateway
    six = ndp.icmpv6_frame(MACS[H1], GW_MAC, IPS[H1], IPS[H2],
                           struct.pack("!BBHI", ndp.ECHO_REQUEST, 0, 0, 1), vlan=10, hop_limit=1)
    answer6 = router.time_exceeded(STATE, router.parse_frame(six), six[18:], tagged=True)
    got6 = router.parse_frame(answer6)
    assert (got6.vlan, got6.ipv6_src, got6.ipv6_dst, got6.nd.kind) == \
        (10, "fd00:10::1", IPS[H1], 3)
    _valid_icmpv6(answer6, 18)


@pytest.mark.parametrize("why, packet, vlan", [
    ("an ICMP error is never answered with one",
     _ipv4_packet("10.0.10.2", "10.0.20.2", proto=1, payload=bytes([11, 0]) + bytes(30)), 10),
    ("a fragment past the first", _ipv4_packet("10.0.10.2", "10.0.20.2", frag=0x0010), 10),
    ("a source off the VLAN's network (SNAT already translated it)",
     _ipv4_packet("203.0.113.1", "198.51.100.7"), 10),
    ("behind a route, but through another VLAN", _ipv4_packet("192.0.2.7", "10.0.20.2"), 10),
    ("the network's broadcast address", _ipv4_packet("10.0.10.255", "10.0.20.2"), 10),
    ("the outside", _ipv4_packet("198.51.100.7", "10.0.20.2"), 100),
    ("a VLAN with no gateway", _ipv4_packet("10.0.30.2", "10.0.20.2"), 40),
])
def test_no_time_exceeded_where_none_is_due(why, packet, vlan):
    data = _tagged(MACS[H1], packet, vlan)
    assert router.time_exceeded(STATE, router.parse_frame(data), packet, False) is None, why


def test_a_source_behind_a_static_route_gets_its_time_exceeded_through_the_next_hop():
    sent = _ipv4_packet("192.0.2.7", "10.0.10.2")
    answer = router.time_exceeded(STATE, router.parse_frame(_tagged(MACS[H2], sent, 20)),
                                  sent, tagged=False)
    got = router.parse_frame(answer)
    assert (got.ipv4_src, got.ipv4_dst, answer[:6]) == \
        ("10.0.20.1", "192.0.2.7", bytes.fromhex("000000000002"))   # to the next hop's MAC


def test_the_app_answers_an_expired_ttl_within_its_rate_limit(monkeypatch, tmp_path):
    app, datapath = _app(monkeypatch, tmp_path)
    data = _tagged(MACS[H1], _ipv4_packet("10.0.10.2", "10.0.20.2"), 10)
    event = packet_in(datapath, 1, data, "route", router.EXPIRED)
    app.clock = lambda: 1000.0
    for _ in range(router_app.ICMP_ERRORS_PER_S + 20):
        app._packet_in(event)
    sent = packet_outs(datapath)
    assert len(sent) == router_app.ICMP_ERRORS_PER_S          # the burst, then nothing
    assert [a.port for a in sent[0].actions] == [1]
    assert router.parse_frame(sent[0].data).ipv4_src == "10.0.10.1"
    app.clock = lambda: 1000.5                                 # half a second refills half
    for _ in range(router_app.ICMP_ERRORS_PER_S):
        app._packet_in(event)
    assert len(packet_outs(datapath)) == router_app.ICMP_ERRORS_PER_S * 3 // 2


def test_one_mac_cannot_fill_the_neighbour_table_with_made_up_sources(monkeypatch, tmp_path):
    app, datapath = _app(monkeypatch, tmp_path)
    for n in range(100):
        ask = ndp.solicitation(MACS[H1], f"fd00:10::{n + 2:x}", "fd00:10::1", vlan=10)
        app._packet_in(packet_in(datapath, 1, ask, "router", router.GATEWAY))
    assert len(app.neighbours) == router_app.MAX_ADDRESSES_PER_MAC
    other = ndp.solicitation(MACS[H2], IPS[H2], "fd00:20::1", vlan=20)
    app._packet_in(packet_in(datapath, 2, other, "router", router.GATEWAY))
    assert IPS[H2] in app.neighbours                       # another host is still learnt
    # a solicitation with a nonzero code, or from a multicast source, is not acted on
    bad_code = bytearray(ndp.solicitation(MACS[H2], "fd00:20::9", "fd00:20::1", vlan=20))
    bad_code[18 + 41] = 1
    assert router.nd_answer(SETTINGS, router.parse_frame(bytes(bad_code)), False) is None
    assert router.gleaned6(SETTINGS, router.parse_frame(bytes(bad_code))) is None


def test_a_ttl_match_goes_on_the_wire_after_the_fields_it_needs():
    """OVS reads a match's fields in order and refuses nw_ttl before eth_type
    (OFPBMC_BAD_PREREQ); Ryu alone would put the Nicira field first."""
    expired = [e for e in router.desired(RouterState(SETTINGS), KNOWN)
               if e.owner == router.EXPIRED]
    assert len(expired) == 4                                   # TTL 0 and 1, both families
    for entry in expired:
        names = [name for name, _ in ofcompile.compile_match(entry.match)._fields2]
        assert names.index("eth_type") < names.index("nw_ttl"), names


def test_router_solicitations_from_one_port_get_one_advertisement_a_second(monkeypatch,
                                                                            tmp_path):
    app, datapath = _app(monkeypatch, tmp_path)
    rs = ndp.icmpv6_frame(MACS[H1], "33:33:00:00:00:02", "fe80::1", "ff02::2",
                          struct.pack("!BBHI", ndp.RS, 0, 0, 0), vlan=10)
    app.clock = lambda: 50.0
    for port in (1, 1, 1, 4):
        app._packet_in(packet_in(datapath, port, rs, "router", router.GATEWAY))
    assert [m.actions[0].port for m in packet_outs(datapath)] == [1, 4]
    app.clock = lambda: 51.5
    app._packet_in(packet_in(datapath, 1, rs, "router", router.GATEWAY))
    assert len(packet_outs(datapath)) == 3
