"""The declared pipeline, the cookie scheme, and spec -> OpenFlow compilation."""
import pytest
from ryu.ofproto import ofproto_protocol, ofproto_v1_3 as ofp, ofproto_v1_3_parser as parser

from controller import ofcompile, pipeline
from controller.pipeline import PipelineError
from flows import l2
from flows.spec import (CONTROLLER, FLOOD, TAGGED, UNTAGGED, FlowDelete, FlowSpec, Group,
                        GroupRef, Learn, Match, Output, Owner, PopVlan, PushVlan, SetField,
                        SetQueue)

DP = ofproto_protocol.ProtocolDesc(ofp.OFP_VERSION)
OWNER = Owner("l2_switch", "host")


def spec(**kw):
    base = dict(table="l2_dst", priority=100, match=Match.of(eth_dst="00:00:00:00:00:01"),
                owner=OWNER, actions=(Output(1),))
    base.update(kw)
    return FlowSpec(**base)


def test_tables_are_numbered_in_order_and_each_goes_forward():
    ids = [t.table_id for t in pipeline.PIPELINE]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for table in pipeline.PIPELINE:
        for nxt in table.next_tables:
            assert pipeline.TABLES[nxt].table_id > table.table_id


@pytest.mark.parametrize("bad, message", [
    (dict(table="nowhere"), "unknown table 'nowhere'"),
    (dict(goto="ingress"), "may not go to 'ingress'"),
    (dict(table="l2_src", match=Match.of(ipv4_dst="10.0.0.1")), "cannot match on ipv4_dst"),
    (dict(priority=70000), "priority 70000 out of range"),
    (dict(owner=Owner("nobody", "host")), "unknown app 'nobody'"),
    (dict(table="l2_dst", actions=(Learn("l2_src", OWNER, (("eth_dst", "eth_src"),)),)),
     "must write that table or a later one"),
])
def test_validation_rejects_specs_the_pipeline_does_not_allow(bad, message):
    with pytest.raises(PipelineError, match=message):
        pipeline.validate(spec(**bad))


def test_cookies_name_app_and_purpose_and_decode_back():
    cookie = pipeline.cookie(OWNER)
    assert cookie >> 56 == pipeline.APP_IDS["l2_switch"]
    assert pipeline.owner_of(cookie) == OWNER
    assert pipeline.owner_of(0) is None
    whole_app = Owner("l2_switch")
    # the app-wide mask selects every purpose of this app and nothing of another app
    assert pipeline.cookie(OWNER) & pipeline.cookie_mask(whole_app) == pipeline.cookie(whole_app)
    assert (pipeline.cookie(Owner("vlan", "host")) & pipeline.cookie_mask(whole_app)
            != pipeline.cookie(whole_app))


def test_every_app_gets_a_distinct_cookie_byte():
    assert len(set(pipeline.APP_IDS.values())) == len(pipeline.APP_IDS)


def serialize(msg):
    msg.serialize()
    return msg.buf


@pytest.mark.parametrize("actions", [
    (Output(1),), (Output(FLOOD),), (Output(CONTROLLER, max_len=128),),
    (PushVlan(), SetField("vlan_vid", 101), Output(2)), (PopVlan(), Output(3)),
    (SetField("eth_dst", "00:00:00:00:00:09"), Output(1)), (SetQueue(1), Output(1)),
    (Group(GroupRef(Owner("lb", "vip"), 7)),),
])
def test_every_action_kind_compiles_to_a_message_that_serializes(actions):
    msg = ofcompile.flow_mod(DP, spec(actions=actions))
    assert len(serialize(msg)) > 56


def test_learn_compiles_to_a_nicira_learn_into_the_named_table():
    settings = l2.L2Settings(mode="datapath", idle_timeout=42)
    src_default = next(s for s in l2.switch_defaults(settings) if s.table == "l2_src")
    msg = ofcompile.flow_mod(DP, src_default)
    serialize(msg)
    learn = msg.instructions[0].actions[0]
    assert isinstance(learn, parser.NXActionLearn)
    assert learn.table_id == pipeline.table_id("l2_dst") and learn.hard_timeout == 42
    assert learn.cookie == pipeline.cookie(l2.LEARNED)


def test_vlan_values_get_the_present_bit_only_on_the_wire():
    assert ofcompile.compile_match(Match.of(vlan_vid=101))["vlan_vid"] == 101 | ofp.OFPVID_PRESENT
    assert ofcompile.compile_match(Match.of(vlan_vid=UNTAGGED))["vlan_vid"] == ofp.OFPVID_NONE
    assert ofcompile.compile_match(Match.of(vlan_vid=TAGGED))["vlan_vid"] == (0x1000, 0x1000)


def test_flow_mod_carries_table_number_cookie_timeouts_and_removal_flag():
    msg = ofcompile.flow_mod(DP, spec(idle_timeout=30, notify_removed=True))
    assert msg.table_id == pipeline.table_id("l2_dst") and msg.cookie == pipeline.cookie(OWNER)
    assert msg.idle_timeout == 30 and msg.flags & ofp.OFPFF_SEND_FLOW_REM


def test_deletes_are_by_cookie_and_strict_only_with_a_priority():
    everything = ofcompile.flow_delete(DP, FlowDelete(Owner("l2_switch")))
    assert everything.command == ofp.OFPFC_DELETE and everything.table_id == ofp.OFPTT_ALL
    assert everything.cookie_mask == 0xFF << 56
    strict = ofcompile.flow_delete(DP, l2.forget_host("00:00:00:00:00:01", 1, None)[0])
    assert strict.command == ofp.OFPFC_DELETE_STRICT and strict.priority == l2.HOST_PRIORITY
    serialize(everything), serialize(strict)


def test_a_compiled_flow_decodes_back_to_the_same_spec():
    original = spec(match=Match.of(vlan_vid=5, eth_dst="00:00:00:00:00:01"),
                    actions=(PopVlan(), Output(3)), goto=None, idle_timeout=9)
    msg = ofcompile.flow_mod(DP, original)
    stats = parser.OFPFlowStats(table_id=msg.table_id, priority=msg.priority,
                                idle_timeout=msg.idle_timeout, hard_timeout=0, flags=msg.flags,
                                cookie=msg.cookie, match=msg.match,
                                instructions=msg.instructions)
    assert ofcompile.decode_flow(stats) == original


@pytest.mark.parametrize("wire, domain", [
    ((0x0000, 0x0FFF), 0),            # what learn() writes for an untagged frame
    ((0x0065, 0x0FFF), 101),          # learned in VLAN 101
    ((0x1000, 0x1000), TAGGED),
    (0x1000 | 7, 7),
    (0x0000, UNTAGGED),
])
def test_vlan_matches_read_back_from_a_switch(wire, domain):
    assert ofcompile.decode_match(parser.OFPMatch(vlan_vid=wire)).get("vlan_vid") == domain


def test_stripping_learn_compiles_with_a_load_of_zero_into_the_tci():
    settings = l2.L2Settings(mode="datapath")
    strip = next(s for s in l2.switch_defaults(settings, {(3, 103)})
                 if s.priority == l2.STRIP_PRIORITY)
    msg = ofcompile.flow_mod(DP, strip)
    serialize(msg)
    learn = msg.instructions[0].actions[0]
    loads = [s for s in learn.specs if isinstance(s, parser.NXFlowSpecLoad)]
    assert [(s.src, s.dst, s.n_bits) for s in loads] == [(0, ("vlan_tci", 0), 16)]
    assert msg.match["in_port"] == 3 and msg.match["vlan_vid"] == 103 | ofp.OFPVID_PRESENT
