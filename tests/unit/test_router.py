"""The router (flows/router.py, flows/router_model.py) on the table simulator with the
VLAN and learning apps' entries, as the cloud chapter's network: two tenant VLANs with
their gateways, an external VLAN with the upstream router, SNAT of the tenants to the
external address and a floating IP for one VM."""
import ipaddress

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from controller import pipeline
from flows import l2, router, vlan
from flows.router_model import RouterSettings, RouterState, route_from_dict
from tests.support.ofsim import Switch, frame, one_frame_each as out

GW_MAC = "02:00:00:00:fe:01"
H1, H2, OUT, TRUNK, H3 = 1, 2, 3, 4, 5          # ports
MACS = {H1: "00:00:00:00:00:01", H2: "00:00:00:00:00:02", OUT: "00:00:00:00:00:fe",
        H3: "00:00:00:00:00:03", "h1b": "00:00:00:00:00:11"}
IPS = {H1: "10.0.10.2", H2: "10.0.20.2", OUT: "203.0.113.254", H3: "10.0.30.2",
       "h1b": "10.0.10.3"}
VLANS = {H1: 10, H2: 20, OUT: 100, H3: 30}
FAR = "198.51.100.7"            # a host beyond the upstream router
CONFIG = {"interfaces": [{"vlan": 10, "address": "10.0.10.1/24"},
                         {"vlan": 20, "address": "10.0.20.1/24"},
                         {"vlan": 100, "address": "203.0.113.1/24", "external": True}],
          "routes": [{"prefix": "0.0.0.0/0", "next_hop": "203.0.113.254"}],
          "snat": [10, 20],
          "floating_ips": [{"external": "203.0.113.10", "internal": "10.0.20.2"}]}
ALL_KNOWN = {IPS[p]: router.Neighbour(IPS[p], MACS[p], VLANS[p]) for p in (H1, H2, OUT)}


def network(config=CONFIG, neighbours=ALL_KNOWN, routes=None):
    """One switch: the VLAN app's access ports (and a trunk of 10 and 20), the learning
    app in datapath mode, the router; every host has spoken once (learnt)."""
    configured = {p: vlan.PortVlan(p, tag=v) for p, v in VLANS.items()}
    configured[TRUNK] = vlan.PortVlan(TRUNK, trunks=(10, 20))
    ports = vlan.effective_ports(configured, sorted(configured))
    untagged = vlan.untagged_egress_pairs(ports)
    state = RouterState(RouterSettings(**config), route_overrides=routes or {})
    sw = Switch(sorted(configured))
    sw.apply(pipeline.table_misses())
    sw.apply(vlan.switch_plan(ports, configured))
    sw.apply(l2.switch_defaults(l2.L2Settings(mode="datapath"), untagged))
    sw.apply(router.desired(state, neighbours, untagged))
    for port in (H1, H2, OUT, H3):   # each host says something: the switch learns it
        sw.process(frame(port, MACS[port], "ff:ff:ff:ff:ff:ff", eth_type=0x0806, arp_op=1,
                         arp_spa=IPS[port], arp_tpa="10.9.9.9", arp_sha=MACS[port]))
    return sw


def ip_packet(port, dst_ip, dst_mac=GW_MAC, src_ip=None, proto=17, vlan_id=None, **more):
    fields = dict(ip_proto=proto, ipv4_src=src_ip or IPS[port], ipv4_dst=dst_ip, ip_ttl=64)
    if proto == 17:
        fields.update(udp_src=more.pop("sport", 40000), udp_dst=more.pop("dport", 53))
    elif proto == 1:
        fields.update(icmpv4_type=more.pop("kind", 8), icmpv4_code=0, icmp_id=7)
    fields.update(more)
    return frame(port, MACS.get(port, "00:00:00:00:00:99"), dst_mac, vlan=vlan_id, **fields)


def test_the_gateway_answers_arp_in_the_switch_untagged_and_tells_the_controller():
    sw = network()
    ask = frame(H1, MACS[H1], "ff:ff:ff:ff:ff:ff", eth_type=0x0806, arp_op=1,
                arp_sha=MACS[H1], arp_spa=IPS[H1], arp_tha="00:00:00:00:00:00",
                arp_tpa="10.0.10.1")
    result = sw.process(ask)
    assert set(result.outputs) == {H1}
    answer = result.outputs[H1][0]
    assert (answer["arp_op"], answer["arp_spa"], answer["arp_sha"]) == (2, "10.0.10.1", GW_MAC)
    assert (answer["eth_dst"], answer["arp_tpa"], answer["vlan_vid"]) == (MACS[H1], IPS[H1], None)
    assert [p["arp_spa"] for p in result.packet_ins] == [IPS[H1]]   # the controller gleans
    # the same question from a tagged trunk is answered tagged
    tagged = dict(ask, in_port=TRUNK, vlan_vid=10)
    assert out(sw, tagged)[TRUNK]["vlan_vid"] == 10
    # a VLAN without a gateway gets no answer for another VLAN's
    assert set(sw.process(dict(ask, in_port=H3)).outputs) == set()


def test_the_gateways_answer_ping_in_the_switch():
    sw = network()
    for gateway in ("10.0.10.1", "10.0.20.1"):
        reply = out(sw, ip_packet(H1, gateway, proto=1))
        assert set(reply) == {H1}
        got = reply[H1]
        assert (got["icmpv4_type"], got["ipv4_src"], got["ipv4_dst"]) == (0, gateway, IPS[H1])
        assert (got["eth_src"], got["eth_dst"], got["vlan_vid"]) == (GW_MAC, MACS[H1], None)
    # from outside only the external address answers
    assert set(out(sw, ip_packet(OUT, "203.0.113.1", proto=1))) == {OUT}
    assert out(sw, ip_packet(OUT, "10.0.10.1", proto=1)) == {}


def test_routing_between_vlans_rewrites_macs_retags_and_decrements_the_ttl():
    sw = network()
    there = out(sw, ip_packet(H1, IPS[H2]))
    assert set(there) == {H2}
    got = there[H2]
    assert (got["eth_src"], got["eth_dst"], got["vlan_vid"], got["ip_ttl"]) == \
        (GW_MAC, MACS[H2], None, 63)
    assert (got["ipv4_src"], got["ipv4_dst"]) == (IPS[H1], IPS[H2])   # no NAT inside
    back = out(sw, ip_packet(H2, IPS[H1], sport=53, dport=40000))
    assert set(back) == {H1} and back[H1]["eth_dst"] == MACS[H1]
    assert out(sw, ip_packet(H1, IPS[H2], ip_ttl=1)) == {}               # TTL runs out
    # frames within a VLAN are the learning app's, untouched (to h1b: flooded in VLAN 10)
    same = out(sw, ip_packet(H1, IPS["h1b"], dst_mac=MACS["h1b"]))
    assert set(same) == {TRUNK}
    assert (same[TRUNK]["eth_src"], same[TRUNK]["ip_ttl"], same[TRUNK]["vlan_vid"]) == \
        (MACS[H1], 64, 10)


def test_an_unknown_host_goes_to_the_controller_which_picks_the_address_to_arp_for():
    sw = network(neighbours={})
    result = sw.process(ip_packet(H1, IPS[H2]))
    assert result.outputs == {}
    assert [p["ipv4_dst"] for p in result.packet_ins] == [IPS[H2]]
    state = RouterState(RouterSettings(**CONFIG))
    assert router.next_hop(state, IPS[H2])[0] == IPS[H2]
    assert router.next_hop(state, FAR)[0] == "203.0.113.254"
    assert router.next_hop(state, "10.0.20.1") is None   # the gateway itself


def test_the_longest_prefix_wins():
    routes = {"10.1.0.0/16": {"prefix": "10.1.0.0/16", "next_hop": "10.0.20.254"},
              "10.1.2.0/24": {"prefix": "10.1.2.0/24", "next_hop": "10.0.10.254"}}
    hops = dict(ALL_KNOWN, **{"10.0.20.254": router.Neighbour("10.0.20.254", MACS[H2], 20),
                              "10.0.10.254": router.Neighbour("10.0.10.254", MACS["h1b"], 10)})
    sw = network(neighbours=hops, routes=routes)
    via_24 = out(sw, ip_packet(H2, "10.1.2.3"))   # to h1b, which learning does not know:
    assert set(via_24) == {H1, TRUNK}             # flooded in VLAN 10
    assert all(f["eth_dst"] == MACS["h1b"] for f in via_24.values())
    via_16 = out(sw, ip_packet(H1, "10.1.3.3"))
    assert set(via_16) == {H2} and via_16[H2]["eth_dst"] == MACS[H2]
    state = RouterState(RouterSettings(**CONFIG), route_overrides=routes)
    assert router.next_hop(state, "10.1.2.3")[0] == "10.0.10.254"
    assert router.next_hop(state, "10.1.3.3")[0] == "10.0.20.254"
    assert router.next_hop(state, "10.0.10.9")[0] == "10.0.10.9"   # connected: itself


def test_snat_hides_the_tenants_behind_the_external_address_and_replies_come_back():
    sw = network()
    leaving = out(sw, ip_packet(H1, FAR, sport=40001, dport=53))
    assert set(leaving) == {OUT}
    got = leaving[OUT]
    assert (got["ipv4_src"], got["ipv4_dst"]) == ("203.0.113.1", FAR)
    assert (got["eth_dst"], got["eth_src"]) == (MACS[OUT], GW_MAC)
    reply = frame(OUT, MACS[OUT], GW_MAC, ip_proto=17, ipv4_src=FAR, ipv4_dst="203.0.113.1",
                  udp_src=53, udp_dst=got["udp_src"], ip_ttl=64)
    back = out(sw, reply)
    assert set(back) == {H1}
    assert (back[H1]["ipv4_dst"], back[H1]["udp_dst"], back[H1]["eth_dst"]) == \
        (IPS[H1], 40001, MACS[H1])


def test_the_outside_reaches_no_private_address_and_no_unsolicited_connection():
    sw = network()
    direct = frame(OUT, MACS[OUT], GW_MAC, ip_proto=17, ipv4_src=FAR, ipv4_dst=IPS[H1],
                   udp_src=53, udp_dst=40000)
    assert out(sw, direct) == {}
    unsolicited = dict(direct, ipv4_dst="203.0.113.1", udp_dst=40999)
    assert out(sw, unsolicited) == {}


def test_a_floating_ip_serves_the_vm_to_the_outside_and_its_replies_leave_as_it():
    sw = network()
    ask = frame(OUT, MACS[OUT], "ff:ff:ff:ff:ff:ff", eth_type=0x0806, arp_op=1,
                arp_sha=MACS[OUT], arp_spa=IPS[OUT], arp_tpa="203.0.113.10")
    answered = out(sw, ask)                        # the outside finds it by ARP
    assert set(answered) == {OUT} and answered[OUT]["arp_sha"] == GW_MAC
    inside = sw.process(dict(ask, in_port=H1)).outputs   # not answered in a tenant VLAN
    assert H1 not in inside and all(f["arp_op"] == 1 for fs in inside.values() for f in fs)
    incoming = frame(OUT, MACS[OUT], GW_MAC, ip_proto=17, ipv4_src=FAR,
                     ipv4_dst="203.0.113.10", udp_src=5000, udp_dst=80, ip_ttl=64)
    arrived = out(sw, incoming)
    assert set(arrived) == {H2} and arrived[H2]["ipv4_dst"] == IPS[H2]
    answer = out(sw, ip_packet(H2, FAR, sport=80, dport=5000))
    assert set(answer) == {OUT}
    assert (answer[OUT]["ipv4_src"], answer[OUT]["udp_src"]) == ("203.0.113.10", 80)
    # its own connections out leave as the floating IP, not the shared address
    own = out(sw, ip_packet(H2, FAR, sport=41000, dport=443))
    assert own[OUT]["ipv4_src"] == "203.0.113.10"


def test_a_vlan_without_a_gateway_cannot_use_the_router():
    sw = network()
    assert out(sw, ip_packet(H3, IPS[H1])) == {}


def test_the_gateway_mac_is_never_learnt():
    """The controller's ARP request comes in from the CONTROLLER port with the gateway
    MAC as its source: flooded in its VLAN only, and learning does not learn it."""
    sw = network()
    asked = frame(router.OFPP_CONTROLLER, GW_MAC, "ff:ff:ff:ff:ff:ff", vlan=20,
                  eth_type=0x0806, arp_op=1, arp_sha=GW_MAC, arp_spa="10.0.20.1",
                  arp_tpa="10.0.20.9")
    flooded = out(sw, asked)
    assert set(flooded) == {H2, TRUNK} and flooded[H2]["vlan_vid"] is None
    out(sw, ip_packet(H1, IPS[H2]))
    learned = [e.spec for e in sw.tables["l2_dst"] if e.spec.match.get("eth_dst") == GW_MAC]
    assert learned == []


def test_nothing_without_a_route_and_no_private_address_leaves():
    """No route: dropped before any NAT. A VLAN not in snat, or a source outside its
    VLAN's network, never leaves for the outside."""
    no_route = dict(CONFIG, routes=[])
    sw = network(no_route)
    assert out(sw, ip_packet(H1, FAR)) == {} and sw.ct.entries() == []
    sw = network(dict(CONFIG, snat=[10], floating_ips=[]))
    assert out(sw, ip_packet(H2, FAR)) == {}                         # VLAN 20: no SNAT
    assert out(sw, ip_packet(H1, FAR, src_ip="10.0.20.9")) == {}     # not VLAN 10's
    assert set(out(sw, ip_packet(H1, FAR))) == {OUT}                 # VLAN 10's own: SNAT


def test_nat_follows_the_longest_prefix():
    """An internal route covering the external network: the connected external /24 is
    longer, so its hosts are reached through SNAT; the rest of the /8 goes inside as it
    is."""
    routes = {"203.0.0.0/8": {"prefix": "203.0.0.0/8", "next_hop": "10.0.20.254"}}
    hops = dict(ALL_KNOWN, **{"10.0.20.254": router.Neighbour("10.0.20.254", MACS[H2], 20)})
    sw = network(neighbours=hops, routes=routes)
    outside = out(sw, ip_packet(H1, IPS[OUT]))
    assert set(outside) == {OUT} and outside[OUT]["ipv4_src"] == "203.0.113.1"
    inside = out(sw, ip_packet(H1, "203.1.1.1"))
    assert set(inside) == {H2} and inside[H2]["ipv4_src"] == IPS[H1]


def test_the_controller_learns_hosts_from_their_arp_and_only_on_their_own_vlan():
    settings = RouterSettings(**CONFIG)
    data = _arp_frame(2, MACS[H2], IPS[H2], "10.0.20.1", vlan_id=20)
    parsed = router.parse_frame(data)
    assert router.gleaned(settings, parsed) == router.Neighbour(IPS[H2], MACS[H2], 20)
    assert router.gleaned(settings, router.parse_frame(
        _arp_frame(2, MACS[H2], IPS[H2], "10.0.20.1", vlan_id=10))) is None   # wrong VLAN
    assert router.gleaned(settings, router.parse_frame(
        _arp_frame(2, MACS[H2], "10.0.20.1", "10.0.20.9", vlan_id=20))) is None  # a gateway
    untagged = router.untag(data, parsed)
    assert len(untagged) == len(data) - 4 and router.parse_frame(untagged).vlan is None


def _arp_frame(op, mac, ip, target, vlan_id=None):
    mac_bytes = bytes.fromhex(mac.replace(":", ""))
    tag = b"" if vlan_id is None else b"\x81\x00" + vlan_id.to_bytes(2, "big")
    return (b"\xff" * 6 + mac_bytes + tag + b"\x08\x06" + b"\x00\x01\x08\x00\x06\x04"
            + op.to_bytes(2, "big") + mac_bytes + ipaddress.IPv4Address(ip).packed
            + bytes(6) + ipaddress.IPv4Address(target).packed)


@hsettings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_any_bytes_parse_or_are_refused_without_raising(data):
    frame_read = router.parse_frame(data)
    if frame_read is not None:
        router.gleaned(RouterSettings(**CONFIG), frame_read)
        router.untag(data, frame_read)


@pytest.mark.parametrize("config, message", [
    ({"interfaces": [{"vlan": 10, "address": "10.0.10.1"}]}, "prefix length"),
    ({"interfaces": [{"vlan": 0, "address": "10.0.10.1/24"}]}, "VLAN id"),
    ({"interfaces": [{"vlan": 10, "address": "10.0.10.0/24"}]}, "host of"),
    ({"interfaces": [{"vlan": 10, "address": "10.0.10.1/24", "mtu": 9000}]}, "unknown key"),
    ({"interfaces": [{"vlan": 10, "address": "10.0.10.1/24"},
                     {"vlan": 20, "address": "10.0.10.129/25"}]}, "overlaps"),
    ({"interfaces": [{"vlan": 10, "address": "10.0.10.1/24"},
                     {"vlan": 10, "address": "10.0.20.1/24"}]}, "two gateways"),
    ({"interfaces": [{"vlan": 10, "address": "10.0.10.1/24"}],
      "routes": [{"prefix": "0.0.0.0/0", "next_hop": "192.0.2.1"}]}, "connected"),
    ({"interfaces": [{"vlan": 10, "address": "10.0.10.1/24"}],
      "routes": [{"prefix": "10.1.0.1/16", "next_hop": "10.0.10.9"}]}, "host bits"),
    ({"interfaces": [{"vlan": 10, "address": "10.0.10.1/24"}], "snat": [10]}, "external"),
    ({"interfaces": CONFIG["interfaces"], "snat": [100]}, "internal"),
    ({"interfaces": CONFIG["interfaces"],
      "floating_ips": [{"external": "198.51.100.1", "internal": "10.0.10.2"}]}, "external"),
    ({"interfaces": CONFIG["interfaces"],
      "floating_ips": [{"external": "203.0.113.5", "internal": "10.0.10.2"},
                       {"external": "203.0.113.6", "internal": "10.0.10.2"}]}, "has one"),
    ({"mac": "01:00:5e:00:00:01"}, "unicast"),
    ({"interfaces": CONFIG["interfaces"],                 # the upstream router's address
      "routes": [{"prefix": "0.0.0.0/0", "next_hop": "203.0.113.254"}],
      "floating_ips": [{"external": "203.0.113.254", "internal": "10.0.10.2"}]}, "next hop"),
    ({"interfaces": CONFIG["interfaces"],
      "routes": [{"prefix": "0.0.0.0/0", "next_hop": "203.0.113.255"}]}, "next hop"),
    ({"interfaces": CONFIG["interfaces"],
      "floating_ips": [{"external": "203.0.113.9", "internal": "10.0.10.255"}]}, "internal"),
    ({"interfaces": "vlan 10"}, "must be a list"),
])
def test_a_bad_config_is_refused_naming_what_is_wrong(config, message):
    with pytest.raises(ValueError, match=message):
        RouterSettings(**config)


def test_every_entry_fits_the_declared_pipeline():
    for entry in router.desired(RouterState(RouterSettings(**CONFIG)), ALL_KNOWN, [(1, 10)]):
        pipeline.validate(entry)
    assert route_from_dict({"prefix": "10.1.0.0/16", "next_hop": "10.0.10.9"}).prefix == \
        "10.1.0.0/16"
