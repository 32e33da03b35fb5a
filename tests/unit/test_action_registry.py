"""One registry per action kind (controller/ofactions.py, and the simulator's half in
tests/support/ofsim.py): every kind of flows.spec.ACTION_KINDS compiles, comes back from
the wire as the same spec value, prints, and runs in the simulator; ofwire's packed bytes
are Ryu's. A kind missing from any of these fails here."""
import typing

import pytest
from ryu.ofproto import ofproto_v1_3_parser as parser

from controller import ofactions, ofcompile, ofctl_text, readback
from flows import spec
from flows.spec import (CONTROLLER, FLOOD, Bucket, Ct, CtClear, FlowDelete, FlowSpec, Group,
                        GroupDelete, GroupRef, GroupSpec, Learn, Match, MeterDelete, MeterRef,
                        MeterSpec, Move, Nat, Output, Owner, PopVlan, PushVlan, Resubmit, SetField, SetQueue,
                        DecTtl, Conjunction)
from tests.support import ofsim, wire

LB = Owner("lb", "vip")
EXAMPLES = {   # at least one value of every kind, with every field away from its default
    Output: [Output(3), Output(FLOOD), Output(CONTROLLER, 128)],
    SetField: [SetField("vlan_vid", 5), SetField("ipv4_dst", "10.0.0.1"),
               SetField("eth_src", "00:00:00:00:00:0a")],
    Move: [Move("eth_src", "eth_dst"), Move("arp_spa", "arp_tpa")],
    Ct: [Ct(5), Ct(7, "vip"), Ct(9, None, True, "reg0"),
         Ct(3, "vip", True, mark=1, label=1 << 100),
         Ct(3, None, True, mark=(0x10, 0xF0)),                   # masked: Nicira reg_load2
         Ct(4, "vip", True, nat=Nat("src", "203.0.113.1", "203.0.113.9", 1024, 2047)),
         Ct(4, "vip", True, nat=Nat("src", "203.0.113.1", port_min=1024), mark_from="reg0"),
         Ct(6, "vip", nat=Nat()),
         Ct(65535, "vip", True, nat=Nat("dst", "2001:db8::1", "2001:db8::ff", 80, 81),
            mark=7)],
    CtClear: [CtClear()],
    Resubmit: [Resubmit("l2_src")],
    PushVlan: [PushVlan(), PushVlan(0x88A8)],
    PopVlan: [PopVlan()],
    DecTtl: [DecTtl()],
    Conjunction: [Conjunction(7, 1, 2), Conjunction(0xFFFFFFFF, 3, 3)],
    Group: [Group(GroupRef(LB, 3))],
    SetQueue: [SetQueue(2)],
    Learn: [Learn("l2_dst", Owner("l2_switch", "learned"), (("eth_dst", "eth_src"),
                                                            ("vlan_vid", "vlan_vid")),
                  "in_port", True, (("tunnel_id", "tunnel_id"),), 120, 30, 60,
                  (("vlan_pcp", 0),))],
}
ALL_EXAMPLES = [a for kind in spec.ACTION_KINDS for a in EXAMPLES.get(kind, [])]


def test_every_action_kind_is_in_every_half_of_the_registry():
    assert set(typing.get_args(spec.Action)) == set(spec.ACTION_KINDS)
    assert set(ofactions.KINDS) == set(spec.ACTION_KINDS), "compile/decode"
    assert set(ofctl_text.ACTIONS) == set(spec.ACTION_KINDS), "print (ovs-ofctl syntax)"
    assert set(ofsim.SIMULATE) == set(spec.ACTION_KINDS), "tests/support/ofsim.py"
    assert set(EXAMPLES) == set(spec.ACTION_KINDS), "an example here"
    assert len({k.ryu for k in ofactions.KINDS.values()}) == len(ofactions.KINDS)


def _wire_action(ryu_action):
    buf = bytearray()
    ryu_action.serialize(buf, 0)
    return bytes(buf), parser.OFPAction.parser(bytes(buf), 0)


@pytest.mark.parametrize("action", ALL_EXAMPLES, ids=repr)
def test_an_action_comes_back_from_the_wire_as_itself(action):
    data, parsed = _wire_action(ofactions.compile_action(action))
    assert ofactions.decode_action(parsed, ofcompile.table_names()) == action
    assert ofctl_text.action_text(action)
    packed = ofactions.pack(action)
    if packed is not None:   # controller/ofwire.py's fast path: Ryu's bytes exactly
        assert packed == data


def test_what_no_kind_decodes_stays_unequal_to_every_spec():
    other = parser.NXActionDecTtl()
    decoded = ofactions.decode_action(other, ofcompile.table_names())
    assert isinstance(decoded, ofactions.Unknown) and decoded not in ALL_EXAMPLES
    with pytest.raises(TypeError):
        ofactions.compile_action(object())


MATCH = Match.of(in_port=1, vlan_vid=10, eth_dst=("01:00:00:00:00:00", "01:00:00:00:00:00"))
ITEMS = [
    GroupSpec(GroupRef(LB, 3), "select", (Bucket((SetField("ipv4_dst", "10.0.0.11"),
                                                  Output(11)), 2),
                                          Bucket((Output(12),), 1))),
    GroupSpec(GroupRef(LB, 4), "all", (Bucket((Output(1),)), Bucket((Output(2),))), True),
    MeterSpec(MeterRef(Owner("qos", "rule"), 7), 5000, 2000),
    FlowSpec("l2_dst", 100, MATCH, Owner("l2_switch", "default"), (PopVlan(), Output(3)),
             "flood", 30, 60, True, MeterRef(Owner("qos", "rule"), 7)),
    FlowSpec("vip", 200, Match.of(eth_type=0x0800, ip_proto=6, ipv4_dst="10.0.0.100",
                                  tcp_dst=80, ct_state="+trk-rpl"), LB, tuple(ALL_EXAMPLES[6:9])),
    FlowSpec("sg_in", 90, Match.of(eth_type=0x0800, conj_id=0x10002), Owner("security", "rule", 2),
             (CtClear(),), "vip"),
    FlowSpec("sg_in", 90, Match.of(eth_type=0x0800, ipv4_src="10.0.0.9", ct_state="+trk-rpl"),
             Owner("security", "default"), (Conjunction(0x10002, 2, 2), Conjunction(9, 2, 2))),
    FlowDelete(Owner("l2_switch")),
    FlowDelete(Owner("l2_switch", "host"), "l2_dst", MATCH, 40),
    GroupDelete(GroupRef(LB, 3)),
    MeterDelete(MeterRef(Owner("qos", "rule"), 7)),
]


@pytest.mark.parametrize("item", ITEMS, ids=lambda i: type(i).__name__)
def test_a_message_decodes_to_the_spec_it_was_compiled_from(item):
    assert wire.compiled([item]) == [item]


def test_readback_compares_values_so_nxm_spelled_fields_still_match():
    """OVS reports reg_move fields in NXM form; as values the entry is the one we sent."""
    flow = FlowSpec("vip", 300, Match.of(eth_type=0x0806, arp_op=1, arp_tpa="10.0.0.100"), LB,
                    (Move("eth_src", "eth_dst"), Output("in_port")))
    sent = readback.desired(wire.DP, [flow])[0]
    mod = ofcompile.ryu_flow_mod(wire.DP, flow)
    nxm = parser.OFPInstructionActions(mod.instructions[0].type, [
        parser.NXActionRegMove(src_field="eth_src_nxm", dst_field="eth_dst_nxm", n_bits=48),
        mod.instructions[0].actions[1]])
    stat = parser.OFPFlowStats(table_id=mod.table_id, priority=mod.priority, idle_timeout=0,
                               hard_timeout=0, flags=0, cookie=mod.cookie, match=mod.match,
                               instructions=[nxm])
    assert readback.flow_entries([stat])[0].key == sent.key
    other = parser.OFPFlowStats(table_id=mod.table_id, priority=mod.priority, idle_timeout=0,
                                hard_timeout=0, flags=0, cookie=mod.cookie, match=mod.match,
                                instructions=[parser.OFPInstructionActions(
                                    mod.instructions[0].type, [mod.instructions[0].actions[1]])])
    assert readback.flow_entries([other])[0].key != sent.key       # a missing action shows
