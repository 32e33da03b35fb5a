"""flows/qos.py: HTB config validation, rules on the table simulator, the tc classifier
for the userspace datapath, and controller/tc.py's readers on real `tc` output."""
import pytest
from ryu.ofproto import ofproto_v1_3 as ofp, ofproto_v1_3_parser as parser

from controller import ofcompile, pipeline, tc
from flows import qos
from flows.spec import FlowSpec, Match, MeterRef, Output, Owner
from tests.support.ofsim import Switch, frame
from tests.support.l2_app import FakeDatapath

LAB_PORT = {"max_rate": "10M", "queues": {"0": {"min_rate": "3M", "max_rate": "10M"},
                                          "1": {"min_rate": "1M", "max_rate": "10M"},
                                          "2": {"min_rate": "6M", "max_rate": "10M"}}}
SENDERS = ("192.168.100.100", "192.168.100.101", "192.168.100.102")
RECEIVER = "192.168.100.200"
NAMES = {1: "s1-eth1", 2: "s1-eth2", 3: "s1-eth3", 4: "s1-eth4"}


def resolve(ref):
    for number, name in NAMES.items():
        if ref in (number, str(number), name):
            return number
    raise ValueError(f"no port {ref!r}")


def lab_ports():
    return {4: qos.port_qos_from_dict(LAB_PORT)}


def lab_rules(ports=None, tc_classified=True):
    ports = lab_ports() if ports is None else ports
    return [qos.rule_from_dict(q + 1, {"match": {"ipv4_src": ip, "ipv4_dst": RECEIVER},
                                       "queue": q, "port": "s1-eth4"}, resolve, ports,
                               tc_classified) for q, ip in enumerate(SENDERS)]


@pytest.mark.parametrize("text, bits", [("10M", 10_000_000), ("1.5G", 1_500_000_000),
                                        ("500k", 500_000), (3000, 3000), ("10Mbit", 10_000_000),
                                        ("2 mbps", 2_000_000), (2.5e6, 2_500_000)])
def test_rates_parse(text, bits):
    assert qos.parse_rate(text, "rate") == bits


@pytest.mark.parametrize("value", ["-1", -5, "abc", "10X", True, None, [1], 0, float("nan")])
def test_bad_rates_are_refused(value):
    with pytest.raises(ValueError, match="rate"):
        qos.parse_rate(value, "rate")


def _port(**changes):
    body = {"max_rate": "10M", "queues": {"0": {"min_rate": "3M"}, "1": {"min_rate": "1M"}}}
    body.update(changes)
    return body


@pytest.mark.parametrize("body, message", [
    (_port(queues={"0": {"min_rate": "5M", "max_rate": "4M"}}), "min_rate 5000000 is above"),
    (_port(queues={"0": {"min_rate": "1M", "max_rate": "20M"}}), "above the port's max_rate"),
    (_port(queues={"0": {"min_rate": "6M"}, "1": {"min_rate": "6M"}}), "add up to 12000000"),
    (_port(queues={"0": {"min_rate": "-3M"}}), "must be a number|negative"),
    (_port(queues={"0": {"min_rate": "fast"}}), "must be a number"),
    (_port(max_rate=-10), "negative"),
    (_port(max_rate="ten"), "must be a number"),
    (_port(queues={"1024": {"min_rate": "1M"}}), "queue id must be an integer 0..1023"),
    (_port(queues={"x": {"min_rate": "1M"}}), "queue id"),
    (_port(queues={"0": {"min_rate": "1M", "priority": 8}}), "priority must be an integer 0..7"),
    (_port(queues={"0": {"max_rate": "1M"}}), "needs a min_rate"),
    (_port(queues={"0": {"min_rate": "1M", "speed": 3}}), "unknown key"),
    (_port(queues={}), "non-empty"),
    ({"queues": {"0": {"min_rate": "1M"}}}, "queues need the port's max_rate"),
    ({}, "needs max_rate and queues"),
    ({"ingress_policing": {"burst": "1M"}}, "needs a rate"),
    ({"ingress_policing": {"rate": "0"}}, "above 0"),
    ([1], "JSON object"),
])
def test_port_qos_validation(body, message):
    with pytest.raises(ValueError, match=message):
        qos.port_qos_from_dict(body)


def test_port_qos_round_trip_and_ovsdb_forms():
    body = dict(LAB_PORT, ingress_policing={"rate": "5M", "burst": "500k"})
    parsed = qos.port_qos_from_dict(body)
    assert qos.port_qos_from_dict(qos.port_qos_to_dict(parsed)) == parsed
    assert qos.ovsdb_queue_configs(parsed) == {
        q: {"min-rate": str(m), "max-rate": "10000000"}
        for q, m in ((0, 3_000_000), (1, 1_000_000), (2, 6_000_000))}
    assert qos.ovsdb_policing(parsed.policing) == (5000, 500)
    assert qos.ovsdb_policing(None) == (0, 0)
    # a policer without a burst gets a tenth of a second's worth
    assert qos.port_qos_from_dict({"ingress_policing": {"rate": "5M"}}).policing.burst == 500_000


def test_queue_burst_and_priority_reach_ovsdb():
    parsed = qos.port_qos_from_dict({"max_rate": "1G", "queues": {
        "7": {"min_rate": "100M", "burst": "1M", "priority": 2}}})
    assert qos.ovsdb_queue_configs(parsed) == {7: {"min-rate": "100000000",
                                                   "max-rate": "1000000000",
                                                   "burst": "1000000", "priority": "2"}}


@pytest.mark.parametrize("body, message", [
    ({"match": {"ipv4_src": "10.0.0.1"}, "queue": 5, "port": 4}, "port 4 has no queue 5"),
    ({"match": {"ipv4_src": "10.0.0.1"}, "queue": 0, "port": 2}, "port 2 has no queues"),
    ({"match": {"ipv4_src": "10.0.0.1"}, "queue": 9}, "no port of this switch has a queue 9"),
    ({"match": {"ipv4_src": "10.0.0.1"}, "queue": 0, "port": "s1-eth9"}, "no port 's1-eth9'"),
    ({"match": {"in_port": 1}, "queue": 0}, "userspace datapath.*cannot see in_port"),
    ({"match": {"ipv4_src": "10.0.0.300"}, "queue": 0}, "IPv4 address or prefix"),
    ({"match": {"tcp_dst": 80, "ip_proto": 17}, "queue": 0}, "tcp_dst needs ip_proto 6"),
    ({"match": {"ipv4_src": "10.0.0.1", "eth_type": "0x86dd"}, "queue": 0}, "need eth_type"),
    ({"match": {"udp_dst": 70000}, "queue": 0}, "udp_dst must be an integer 0..65535"),
    ({"match": {"color": "red"}, "queue": 0}, "unknown key"),
    ({"match": {"ipv4_src": "10.0.0.1"}}, "needs a queue, a meter, or both"),
    ({"match": {}, "meter": {"rate": "2M"}, "port": 4}, "meter-only rule has no port"),
    ({"match": {}, "meter": {"rate": "-2M"}}, "meter rate"),
    ({"match": {}, "queue": 0, "priority": 0}, "priority must be an integer 1..65535"),
])
def test_rule_validation(body, message):
    with pytest.raises(ValueError, match=message):
        qos.rule_from_dict(1, body, resolve, lab_ports(), tc_classified=True)


def test_rule_match_gets_its_prerequisites():
    rule = qos.rule_from_dict(4, {"match": {"tcp_dst": "80", "ipv4_dst": "10.1.2.3/24"},
                                  "queue": 1}, resolve, lab_ports(), tc_classified=True)
    assert dict(rule.match) == {"tcp_dst": 80, "ip_proto": 6, "eth_type": 0x0800,
                                "ipv4_dst": "10.1.2.0/24"}
    # in_port is fine where set_queue itself works (kernel datapath) and for meters
    assert qos.rule_from_dict(5, {"match": {"in_port": "s1-eth1"}, "queue": 1}, resolve,
                              lab_ports(), tc_classified=False).field("in_port") == 1
    assert qos.rule_from_dict(6, {"match": {"in_port": 1}, "meter": {"rate": "1M"}}, resolve,
                              lab_ports(), tc_classified=True).meter.rate == 1_000_000


def lab_switch(rules, ports=None, meter_policing=True):
    switch = Switch(NAMES)
    switch.apply(pipeline.table_misses())
    ports = lab_ports() if ports is None else ports
    return switch.apply(qos.forget(NAMES, rules) + qos.switch_plan(ports, rules, meter_policing))


def test_lab_rules_enqueue_each_sender_to_its_queue_on_the_receiver_port():
    switch = lab_switch(lab_rules())
    for queue, ip in enumerate(SENDERS):
        pkt = frame(queue + 1, "00:00:00:00:00:0%d" % (queue + 1), "00:00:00:00:00:04",
                    ipv4_src=ip, ipv4_dst=RECEIVER, ip_proto=17)
        result = switch.process(pkt)
        assert list(result.outputs) == [4]
        assert result.outputs[4][0]["queue"] == queue
    # the same sender to someone else is not enqueued: it goes on to MAC learning
    other = switch.process(frame(1, "00:00:00:00:00:01", "00:00:00:00:00:02",
                                 ipv4_src=SENDERS[0], ipv4_dst=SENDERS[1], ip_proto=17))
    assert "l2_src" in other.tables_visited and not other.outputs
    arp = switch.process(frame(1, "00:00:00:00:00:01", "ff:ff:ff:ff:ff:ff", eth_type=0x0806))
    assert "l2_src" in arp.tables_visited


def test_queue_rule_without_a_port_sets_the_queue_and_goes_on():
    rule = qos.rule_from_dict(1, {"match": {"udp_dst": 5001}, "queue": 2}, resolve, lab_ports(),
                              tc_classified=True)
    switch = lab_switch([rule])
    switch.apply([FlowSpec("l2_dst", 1, Match(), Owner("l2_switch", "default"),
                               actions=(Output(4),))])
    result = switch.process(frame(1, "00:00:00:00:00:01", "00:00:00:00:00:04",
                                  ipv4_src=SENDERS[0], ipv4_dst=RECEIVER, ip_proto=17,
                                  udp_dst=5001))
    assert result.outputs[4][0]["queue"] == 2


def test_meter_rule_and_ingress_policing_meter_their_packets():
    ports = {**lab_ports(), 1: qos.port_qos_from_dict({"ingress_policing": {"rate": "5M"}})}
    meter_rule = qos.rule_from_dict(9, {"match": {"ipv4_src": SENDERS[1]}, "priority": 200,
                                        "meter": {"rate": "2M", "burst": "200k"}}, resolve, ports,
                                    tc_classified=True)
    switch = lab_switch(lab_rules(ports) + [meter_rule], ports)
    switch.apply([FlowSpec("l2_dst", 1, Match(), Owner("l2_switch", "default"),
                               actions=(Output(4),))])
    # the meter rule outranks h2's enqueue rule: metered, then normal forwarding
    from_h2 = switch.process(frame(2, "00:00:00:00:00:02", "00:00:00:00:00:04",
                                   ipv4_src=SENDERS[1], ipv4_dst=RECEIVER))
    out = from_h2.outputs[4][0]
    assert [(m.rate, m.burst) for m in out["meters"]] == [(2_000_000, 200_000)]
    assert "queue" not in out and "l2_dst" in from_h2.tables_visited
    from_h1 = switch.process(frame(1, "00:00:00:00:00:01", "00:00:00:00:00:04",
                                   ipv4_src=SENDERS[0], ipv4_dst=RECEIVER))
    assert [m.rate for m in from_h1.outputs[4][0]["meters"]] == [5_000_000]
    # on the kernel datapath the policer is OVS's own (OVSDB), not a meter
    kernel = lab_switch(lab_rules(ports), ports, meter_policing=False)
    assert not kernel.flows("police", qos.POLICE) and MeterRef(qos.POLICE, 1) not in kernel.meters


def test_reprogramming_is_idempotent_and_forgetting_leaves_nothing():
    ports = {**lab_ports(), 1: qos.port_qos_from_dict({"ingress_policing": {"rate": "5M"}})}
    rules = lab_rules(ports) + [qos.rule_from_dict(9, {"match": {}, "meter": {"rate": "1M"}},
                                                   resolve, ports, True)]
    switch = lab_switch(rules, ports)
    before = switch.snapshot()
    switch.apply(qos.forget(NAMES, rules) + qos.switch_plan(ports, rules, True))  # no EXISTS
    assert switch.snapshot() == before
    switch.apply(qos.forget(NAMES, rules))
    assert not switch.flows(owner=qos.RULES) and not switch.flows(owner=qos.POLICE)
    assert not switch.meters


def test_rule_compiles_to_a_meter_mod_and_a_flow_with_meter_then_actions():
    rule = qos.rule_from_dict(3, {"match": {"ipv4_src": "10.0.0.0/8"}, "queue": 1, "port": 4,
                                  "meter": {"rate": "2.0005M", "burst": "100k"}}, resolve,
                              lab_ports(), tc_classified=True)
    meter_mod, flow_mod = ofcompile.compile_all(FakeDatapath(1), qos.rule_flows(rule))
    assert meter_mod.meter_id == pipeline.meter_id(MeterRef(qos.RULES, 3))
    assert meter_mod.flags == ofp.OFPMF_KBPS | ofp.OFPMF_BURST | ofp.OFPMF_STATS
    assert [(b.rate, b.burst_size) for b in meter_mod.bands] == [(2001, 100)]  # kbit, up
    meter, actions, goto = flow_mod.instructions
    assert isinstance(meter, parser.OFPInstructionMeter) and meter.meter_id == meter_mod.meter_id
    # set_queue and the port it is for in OUT_PORT; the output itself is the egress stage's
    assert [type(a).__name__ for a in actions.actions] == ["OFPActionSetQueue",
                                                           "OFPActionSetField"]
    assert actions.actions[1].key == "reg1" and actions.actions[1].value == 4
    assert goto.table_id == pipeline.table_id("l2_src")
    assert flow_mod.match["ipv4_src"] == ("10.0.0.0", "255.0.0.0")


# --- the tc classifier ----------------------------------------------------------------

def test_lab_tc_plan_and_batch():
    plan = qos.tc_plan(4, lab_ports()[4], lab_rules(), socket_buffer_bytes=212992)
    assert plan.leaves == (("1:1", "2000:", 20), ("1:2", "2001:", 20), ("1:3", "2002:", 20))
    assert qos.tc_batch("s1-eth4", plan) == [
        "filter del dev s1-eth4 parent 1:",
        "qdisc replace dev s1-eth4 parent 1:1 handle 2000: pfifo_head_drop limit 20",
        "qdisc replace dev s1-eth4 parent 1:2 handle 2001: pfifo_head_drop limit 20",
        "qdisc replace dev s1-eth4 parent 1:3 handle 2002: pfifo_head_drop limit 20",
    ] + [line for i, ip in enumerate(SENDERS) for line in (
        f"filter add dev s1-eth4 parent 1: protocol ip prio {100 + 2 * i} u32 match ip dst "
        f"192.168.100.200/32 match ip src {ip}/32 flowid 1:{i + 1}",
        # the same rule for frames that leave tagged (a trunk port): IPv4 behind the tag
        f"filter add dev s1-eth4 parent 1: protocol 0x8100 prio {101 + 2 * i} u32 "
        f"match u16 0x0800 0xffff at -2 match ip dst 192.168.100.200/32 match ip src "
        f"{ip}/32 flowid 1:{i + 1}")]


def test_tc_filters_follow_rule_priority_and_cover_every_field():
    ports = lab_ports()
    rules = [qos.rule_from_dict(1, {"match": {"eth_src": "00:00:00:00:00:01"}, "queue": 0},
                                resolve, ports, True),
             qos.rule_from_dict(2, {"match": {"udp_dst": 5001, "ipv4_src": "10.0.0.0/8"},
                                    "queue": 2, "priority": 300}, resolve, ports, True),
             qos.rule_from_dict(3, {"match": {}, "queue": 1, "priority": 1}, resolve, ports,
                                True),
             qos.rule_from_dict(4, {"match": {"eth_type": "0x88b5"}, "queue": 1}, resolve,
                                ports, True),
             qos.rule_from_dict(5, {"match": {}, "meter": {"rate": "1M"}}, resolve, ports, True)]
    filters = qos.tc_plan(4, ports[4], rules, 212992).filters
    ip_keys = ("match ip protocol 17 0xff", "match ip src 10.0.0.0/8",
               "match ip dport 5001 0xffff")
    assert [(f.pref, f.protocol, f.selectors, f.classid) for f in filters] == [
        (100, "ip", ip_keys, "1:3"),
        (101, "0x8100", ("match u16 0x0800 0xffff at -2",) + ip_keys, "1:3"),
        (102, "all", ("match ether src 00:00:00:00:00:01",), "1:1"),
        (103, "0x8100", ("match u32 0x00000000 0xffffffff at -12",
                         "match u32 0x00010000 0xffff0000 at -8"), "1:1"),
        (104, "0x88b5", ("match u32 0 0",), "1:2"),
        (105, "0x8100", ("match u16 0x88b5 0xffff at -2",), "1:2"),
        (106, "all", ("match u32 0 0",), "1:2"),   # a catch-all takes tagged frames too
    ]
    # a rule enqueueing to another port has no filter here
    assert qos.tc_plan(3, qos.port_qos_from_dict(LAB_PORT), lab_rules(), 212992).filters == ()


def test_leaf_limits_share_the_socket_buffer():
    assert qos.leaf_limit(212992, 3) == 20
    assert qos.leaf_limit(212992, 100) == 4           # never below a few packets
    assert qos.leaf_limit(4 * 1024 * 1024, 1) == 1213


def test_tc_tree_problems():
    want = lab_ports()[4]
    good = {"1:fffe": (10_000_000, 10_000_000), "1:1": (3_000_000, 10_000_000),
            "1:2": (1_000_000, 10_000_000), "1:3": (6_000_000, 10_000_000)}
    assert qos.tc_tree_problems(want, ("htb", "1:"), good) == []
    assert "TCLink" in qos.tc_tree_problems(want, ("htb", "5:"), {})[0]
    assert "no root qdisc" in qos.tc_tree_problems(want, None, {})[0]
    bad = dict(good, **{"1:2": (5_000_000, 10_000_000)})
    del bad["1:3"]
    assert qos.tc_tree_problems(want, ("htb", "1:"), bad) == [
        "class 1:2 rate is 5000000 bit/s, OVSDB says 1000000", "class 1:3 is missing"]


# real `tc` output (iproute2 6.1) for a lab-like tree
CLASSES = """class htb 1:1 parent 1:fffe leaf 1000: prio 0 rate 3Mbit ceil 10Mbit burst 1599b cburst 1600b
class htb 1:fffe root rate 10Mbit ceil 10Mbit burst 1600b cburst 1600b
class htb 1:2 parent 1:fffe prio 0 rate 1Mbit ceil 10Mbit burst 1600b cburst 1600b
"""
QDISCS = [{"kind": "htb", "handle": "1:", "root": True, "refcnt": 3, "options": {"r2q": 10}},
          {"kind": "pfifo", "handle": "1000:", "parent": "1:1", "options": {"limit": 20}}]
FILTERS = ('[{"protocol":"ip","pref":100,"kind":"u32","chain":0},{"protocol":"ip","pref":100,'
           '"kind":"u32","chain":0,"options":{"fh":"800:","ht_divisor":1}},{"protocol":"ip",'
           '"pref":100,"kind":"u32","chain":0,"options":{"fh":"800::800","order":2048,'
           '"key_ht":"800","bkt":"0","flowid":"1:1","not_in_hw":true,"match":{"value":'
           '"c0a86464","mask":"ffffffff","offmask":"","off":12},"match":{"value":"c0a864c8",'
           '"mask":"ffffffff","offmask":"","off":16}}},{"protocol":"ip","pref":101,"kind":"u32",'
           '"chain":0,"options":{"fh":"801::800","flowid":"1:2"}}]')


def test_tc_readers():
    assert tc.parse_classes(CLASSES) == {"1:1": (3_000_000, 10_000_000),
                                         "1:fffe": (10_000_000, 10_000_000),
                                         "1:2": (1_000_000, 10_000_000)}
    assert tc.parse_qdiscs(QDISCS) == (("htb", "1:"), {"1:1": ("pfifo", 20)})
    assert tc.parse_filters(FILTERS) == {
        (100, "1:1", "ip", frozenset({(0xc0a86464, 0xffffffff, 12),
                                      (0xc0a864c8, 0xffffffff, 16)})),
        (101, "1:2", "ip", frozenset())}
    assert tc.parse_rate("1500Kbit") == 1_500_000 and tc.parse_rate("96bit") == 96
    with pytest.raises(tc.TcError):
        tc.parse_rate("fast")


# what iproute2 6.1 printed for these filters (tc -j filter show), one per line of SELECTORS
TC_SHOWED = ('[{"protocol":"ip","pref":100,"kind":"u32","chain":0,"options":{"fh":"800::800",'
             '"flowid":"1:1","match":{"value":"c0a864c8","mask":"ffffffff","offmask":"",'
             '"off":16},"match":{"value":"a000000","mask":"ff000000","offmask":"","off":12}}},'
             '{"protocol":"ip","pref":101,"kind":"u32","chain":0,"options":{"fh":"801::800",'
             '"flowid":"1:2","match":{"value":"110000","mask":"ff0000","offmask":"","off":8},'
             '"match":{"value":"71389","mask":"ffffffff","offmask":"","off":20}}},'
             '{"protocol":"all","pref":102,"kind":"u32","chain":0,"options":{"fh":"802::800",'
             '"flowid":"1:2","match":{"value":"2000000","mask":"ffffffff","offmask":"",'
             '"off":-8},"match":{"value":"10000","mask":"ffff0000","offmask":"","off":-4},'
             '"match":{"value":"200","mask":"ffff","offmask":"","off":-16},"match":{"value":'
             '"2","mask":"ffffffff","offmask":"","off":-12}}},{"protocol":"arp","pref":103,'
             '"kind":"u32","chain":0,"options":{"fh":"803::800","flowid":"1:1","match":'
             '{"value":"0","mask":"0","offmask":"","off":0}}},{"protocol":"[34997]","pref":104,'
             '"kind":"u32","chain":0,"options":{"fh":"804::800","flowid":"1:1","match":'
             '{"value":"0","mask":"0","offmask":"","off":0}}}]')
SELECTORS = [
    qos.TcFilter(100, "ip", ("match ip dst 192.168.100.200/32", "match ip src 10.0.0.0/8"),
                 "1:1"),
    qos.TcFilter(101, "ip", ("match ip protocol 17 0xff", "match ip dport 5001 0xffff",
                             "match ip sport 7 0xffff"), "1:2"),   # one word at 20
    qos.TcFilter(102, "all", ("match ether src 02:00:00:00:00:01",
                              "match ether dst 02:00:00:00:00:02"), "1:2"),
    qos.TcFilter(103, "0x0806", ("match u32 0 0",), "1:1"),
    qos.TcFilter(104, "0x88b5", ("match u32 0 0",), "1:1"),
]


def test_our_filters_read_back_from_tc_as_themselves():
    assert tc.parse_filters(TC_SHOWED) == {f.identity() for f in SELECTORS}
    changed = qos.TcFilter(101, "ip", ("match ip protocol 17 0xff",
                                       "match ip dport 5002 0xffff"), "1:2")
    assert changed.identity() not in tc.parse_filters(TC_SHOWED)
    with pytest.raises(ValueError, match="no u32 key"):
        qos.u32_keys(["match ip tos 0x10 0xff"])


def test_tc_in_place_needs_exactly_the_plans_filters_and_leaves_on_the_device():
    plan = qos.tc_plan(4, lab_ports()[4], lab_rules(), socket_buffer_bytes=212992)
    filters = frozenset(f.identity() for f in plan.filters)
    leaves = {classid: ("pfifo_head_drop", limit) for classid, _, limit in plan.leaves}
    assert qos.tc_in_place(plan, filters, leaves)
    assert not qos.tc_in_place(plan, frozenset(), leaves)    # OVS rebuilt the tree
    assert not qos.tc_in_place(plan, filters, {})
    # tail-drop leaves (an earlier version's, or someone's by hand) get replaced: a full
    # one makes OVS drop the rest of its send batch
    tail_drop = {classid: ("pfifo", limit) for classid, _, limit in plan.leaves}
    assert not qos.tc_in_place(plan, filters, tail_drop)
    other = qos.tc_plan(4, lab_ports()[4], lab_rules()[:2], socket_buffer_bytes=212992)
    assert not qos.tc_in_place(other, filters, leaves)
