"""flows/lb.py on the table simulator: the VIP's ARP answer, the select group and its
NAT/DSR backends, connection pinning through conntrack marks, reply rewriting,
health-probe entries, and VIP validation."""
import ipaddress

import pytest
from ryu.ofproto import ofproto_v1_3 as ofp, ofproto_v1_3_parser as parser

from controller import ofcompile, pipeline
from flows import diff, lb
from flows.spec import FlowSpec, GroupRef, Match, Output, Owner
from tests.support.ofsim import Switch, frame
from tests.support.l2_app import FakeDatapath

SUBNETS = [ipaddress.IPv4Network("10.0.0.0/24")]
CLIENT_MAC, CLIENT_IP = "00:00:00:00:00:01", "10.0.0.1"
BACKENDS = [("10.0.0.11", "00:00:00:00:00:0b", 11), ("10.0.0.12", "00:00:00:00:00:0c", 12),
            ("10.0.0.13", "00:00:00:00:00:0d", 13), ("10.0.0.14", "00:00:00:00:00:0e", 14)]
VIP_BODY = {"vip": "10.0.0.100", "protocol": "tcp", "port": 80, "mode": "nat",
            "backends": [{"ip": ip, "port": 8080} for ip, _, _ in BACKENDS]}


def make_vip(**changes):
    return lb.vip_from_dict(1, dict(VIP_BODY, **changes), SUBNETS)


def located(vip, backends=BACKENDS):
    return [lb.Located(vip.backend(ip), mac, port) for ip, mac, port in backends
            if vip.backend(ip)]


def lb_switch(vip, live=None):
    switch = Switch([1, 2] + [port for _, _, port in BACKENDS])
    switch.apply(pipeline.table_misses())
    return switch.apply(lb.vip_flows(vip, located(vip) if live is None else live, False,
                                     located(vip)) + lb.reply_flows([(vip, located(vip))]))


def syn(sport, dst="10.0.0.100", dport=80, src=CLIENT_IP):
    return frame(1, CLIENT_MAC, lb.vip_mac(1), ipv4_src=src, ipv4_dst=dst, ip_proto=6,
                 tcp_src=sport, tcp_dst=dport)


def only_output(result):
    (port, pkts), = result.outputs.items()
    return port, pkts[0]


def test_the_switch_answers_arp_for_the_vip():
    switch = lb_switch(make_vip())
    request = frame(1, CLIENT_MAC, "ff:ff:ff:ff:ff:ff", eth_type=0x0806, arp_op=1,
                    arp_sha=CLIENT_MAC, arp_spa=CLIENT_IP, arp_tha="00:00:00:00:00:00",
                    arp_tpa="10.0.0.100")
    port, reply = only_output(switch.process(request))
    assert port == 1
    assert (reply["eth_src"], reply["eth_dst"], reply["arp_op"]) == (lb.vip_mac(1), CLIENT_MAC, 2)
    assert (reply["arp_sha"], reply["arp_spa"]) == (lb.vip_mac(1), "10.0.0.100")
    assert (reply["arp_tha"], reply["arp_tpa"]) == (CLIENT_MAC, CLIENT_IP)


def test_nat_sends_a_new_connection_to_one_backend_rewritten_and_pins_it():
    switch = lb_switch(make_vip())
    first = switch.process(syn(40000))
    port, pkt = only_output(first)
    ip, mac, switch_port = next(b for b in BACKENDS if b[2] == port)
    assert (pkt["eth_dst"], pkt["ipv4_dst"], pkt["tcp_dst"]) == (mac, ip, 8080)
    key = (1, CLIENT_IP, "10.0.0.100", 6, 40000, 80)
    assert switch.conntrack == {key: lb.mark_of(ip)}      # committed with its backend
    again = switch.process(syn(40000))
    assert only_output(again)[0] == port
    pinned = [e for e in switch.tables["vip"] if e.spec.priority == lb.PRIO_PINNED and e.packets]
    assert [e.spec.match.get("ct_mark") for e in pinned] == [lb.mark_of(ip)]


def test_pinned_connections_survive_a_new_backend():
    vip = make_vip()
    switch = lb_switch(vip)
    first = {sport: only_output(switch.process(syn(sport)))[0] for sport in range(40000, 40100)}
    fifth = ("10.0.0.15", "00:00:00:00:00:0f", 15)
    grown = lb.vip_from_dict(1, dict(VIP_BODY, backends=VIP_BODY["backends"] + [
        {"ip": fifth[0], "port": 8080}]), SUBNETS)
    switch.ports.append(15)
    switch.apply(lb.vip_flows(grown, located(grown, BACKENDS + [fifth]), True,
                              located(grown, BACKENDS + [fifth])))
    assert all(only_output(switch.process(syn(sport)))[0] == port
               for sport, port in first.items())
    # without the pins some of those connections would have moved
    fresh = lb_switch(grown, located(grown, BACKENDS + [fifth]))
    fresh.ports.append(15)
    assert any(only_output(fresh.process(syn(sport)))[0] != port for sport, port in first.items())
    assert {only_output(switch.process(syn(s)))[0] for s in range(50000, 50200)} == {
        11, 12, 13, 14, 15}


def test_replies_of_vip_connections_get_the_vip_back_and_direct_ones_do_not():
    switch = lb_switch(make_vip())
    port, _ = only_output(switch.process(syn(40000)))
    ip, mac, _ = next(b for b in BACKENDS if b[2] == port)
    seen = []
    switch.apply([FlowSpec("l2_dst", 1, Match(), Owner("l2_switch", "default"),
                           actions=(Output(2),))])  # the forwarding stage, here: to port 2

    def reply(src_ip, sport, dport):
        result = switch.process(frame(port, mac, CLIENT_MAC, ipv4_src=src_ip,
                                      ipv4_dst=CLIENT_IP, ip_proto=6, tcp_src=sport,
                                      tcp_dst=dport))
        (out,) = result.outputs[2]
        seen.append((out["ipv4_src"], out["tcp_src"]))

    reply(ip, 8080, 40000)            # the VIP connection's reply: from the VIP
    reply(ip, 8080, 50000)            # the client talking to the backend directly
    assert seen == [("10.0.0.100", 80), (ip, 8080)]


def test_dsr_rewrites_the_mac_only_and_leaves_replies_alone():
    vip = make_vip(mode="dsr", backends=[{"ip": ip} for ip, _, _ in BACKENDS])
    switch = lb_switch(vip)
    port, pkt = only_output(switch.process(syn(40001)))
    assert pkt["ipv4_dst"] == "10.0.0.100" and pkt["tcp_dst"] == 80
    assert pkt["eth_dst"] == next(mac for _, mac, p in BACKENDS if p == port)
    assert not [f for f in switch.flows("vip") if f.priority in (
        lb.PRIO_REPLY, lb.PRIO_NOT_A_REPLY, lb.PRIO_REPLY_OF_VIP)]


def test_weights_and_dead_backends_shape_the_group():
    vip = make_vip(backends=[{"ip": ip, "port": 8080, "weight": w}
                             for (ip, _, _), w in zip(BACKENDS, (3, 1, 1, 1))])
    (group,) = [i for i in lb.vip_flows(vip, located(vip), False) if isinstance(i, lb.GroupSpec)]
    assert group.type == "select" and [b.weight for b in group.buckets] == [3, 1, 1, 1]
    switch = lb_switch(vip, live=located(vip)[1:])        # 10.0.0.11 failed its check
    assert 11 not in {only_output(switch.process(syn(s)))[0] for s in range(40000, 40100)}
    empty = lb_switch(vip, live=[])
    assert empty.process(syn(40000)).outputs == {}


def test_forgetting_a_vip_leaves_nothing_of_it():
    vip = make_vip()
    switch = lb_switch(vip)
    switch.process(syn(40000))
    other = lb.vip_from_dict(2, dict(VIP_BODY, vip="10.0.0.101"), SUBNETS)
    switch.apply(lb.vip_flows(other, located(other), False))
    switch.apply(lb.forget_vip(1))
    assert not switch.flows(owner=lb.vip_owner(1))
    assert GroupRef(lb.vip_owner(1), 1) not in switch.groups
    assert switch.flows(owner=lb.vip_owner(2))


def test_probe_replies_reach_the_controller():
    switch = Switch([1, 11])
    switch.apply(pipeline.table_misses() + lb.probe_flows("10.0.0.254"))
    synack = frame(11, "00:00:00:00:00:0b", lb.PROBE_MAC, ipv4_src="10.0.0.11",
                   ipv4_dst="10.0.0.254", ip_proto=6, tcp_src=8080, tcp_dst=33000)
    assert len(switch.process(synack).packet_ins) == 1
    arp = frame(11, "00:00:00:00:00:0b", "ff:ff:ff:ff:ff:ff", eth_type=0x0806, arp_op=1,
                arp_sha="00:00:00:00:00:0b", arp_spa="10.0.0.11", arp_tpa="10.0.0.254")
    port, reply = only_output(switch.process(arp))
    assert port == 11 and reply["arp_sha"] == lb.PROBE_MAC


def test_vip_flows_compile_to_a_weighted_select_group_with_learn():
    vip = make_vip(backends=[{"ip": "10.0.0.11", "port": 8080, "weight": 3}])
    messages = ofcompile.compile_all(FakeDatapath(1), lb.vip_flows(vip, located(vip), False,
                                                                     located(vip)))
    group = messages[0]
    assert isinstance(group, parser.OFPGroupMod) and group.type == ofp.OFPGT_SELECT
    assert group.command == ofp.OFPGC_ADD and [b.weight for b in group.buckets] == [3]
    kinds = [type(a).__name__ for a in group.buckets[0].actions]
    assert kinds == ["OFPActionSetField", "NXActionResubmitTable"]
    assert group.buckets[0].actions[1].table_id == pipeline.table_id("vip")
    commits = [m for m in messages[1:] if m.priority == lb.PRIO_COMMIT]
    (ct,) = [a for a in commits[0].instructions[0].actions if type(a).__name__ == "NXActionCT"]
    assert ct.flags == 1 and ct.zone_ofs_nbits == 1 and ct.recirc_table == 0xFF
    (track,) = [m for m in messages[1:] if m.priority == lb.PRIO_TRACK]
    assert track.instructions[0].actions[0].recirc_table == pipeline.table_id("vip")
    assert track.match["ct_state"] == (0, 0x20)
    for message in messages:
        message.serialize()
    modify = ofcompile.compile_all(FakeDatapath(1), lb.vip_flows(vip, [], True))[0]
    assert modify.command == ofp.OFPGC_MODIFY and modify.buckets == []


@pytest.mark.parametrize("changes, message", [
    ({"vip": "192.168.9.9"}, "inside no known subnet"),
    ({"vip": "10.0.0.300"}, "vip must be an IPv4 address"),
    ({"backends": []}, "non-empty list"),
    ({"backends": [{"ip": "10.0.0.11", "weight": 0}]}, "weight must be an integer 1..255"),
    ({"backends": [{"ip": "10.0.0.11"}, {"ip": "10.0.0.11"}]}, "listed twice"),
    ({"backends": [{"ip": "10.0.1.11"}]}, "must be a host of the VIP's subnet"),
    ({"backends": [{"ip": "bad"}]}, "backend ip must be an IPv4 address"),
    ({"mode": "magic"}, "mode must be nat or dsr"),
    ({"protocol": "sctp"}, "protocol must be tcp or udp"),
    ({"port": 0}, "port must be an integer 1..65535"),
    ({"mode": "dsr"}, "dsr does not rewrite ports"),
    ({"health": {"interval_s": 0}}, "interval_s must be 0.1..60"),
    ({"color": "red"}, "unknown key"),
])
def test_vip_validation(changes, message):
    with pytest.raises(ValueError, match=message):
        make_vip(**changes)


def test_vip_round_trip():
    vip = make_vip(health={"interval_s": 0.5, "timeout_s": 2})
    assert lb.vip_from_dict(1, {k: v for k, v in lb.vip_to_dict(vip).items() if k != "id"},
                            SUBNETS) == vip


def test_plan_changes_send_only_what_differs():
    vip = make_vip()
    first = lb.vip_flows(vip, located(vip), False, located(vip))
    assert diff.plan_changes([], first) == first
    same = lb.vip_flows(vip, located(vip), True, located(vip))
    assert diff.plan_changes(first, same) == []          # group exists now: nothing to send
    fewer = lb.vip_flows(vip, located(vip)[1:], True, located(vip)[1:])
    changes = diff.plan_changes(same, fewer)
    groups = [i for i in changes if isinstance(i, lb.GroupSpec)]
    assert len(groups) == 1 and groups[0].modify and len(groups[0].buckets) == 3
    deletes = [i for i in changes if isinstance(i, lb.FlowDelete)]
    assert deletes and all(d.priority is not None for d in deletes)   # strict, gone slots
    assert {d.match.get("reg0") or d.match.get("ct_mark") or d.match.get("ipv4_src")
            for d in deletes} <= {lb.mark_of("10.0.0.11"), "10.0.0.11"}
    assert not [i for i in changes if isinstance(i, FlowSpec)]   # the rest stays as it is
