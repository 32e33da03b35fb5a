"""bench/flow_table.py: the bench's fake switches keep what they are sent and answer
flow-stats from it, in bytes Ryu parses back to the same specs (so the controller's
canary watch finds its canary there, as on OVS, and an idle bench measures rest, not
a repair every poll)."""
import struct

from ryu.ofproto import ofproto_v1_3 as ofp, ofproto_v1_3_parser as parser

from bench.flow_table import FlowTable
from controller import ofcompile, pipeline
from flows import l2
from flows.spec import FlowDelete, Owner
from tests.support.l2_app import FakeDatapath

DATAPATH = FakeDatapath(1)


def send(table, items):
    for message in ofcompile.compile_all(DATAPATH, items):
        message.serialize()
        table.apply(bytes(message.buf[8:]))


def stats(table, owner):
    request = ofcompile.flow_stats_request(DATAPATH, owner)
    request.set_xid(42)
    request.serialize()
    specs, flags = [], []
    for raw in table.stats_replies(42, bytes(request.buf[8:])):
        version, kind, length, xid = struct.unpack_from(ofp.OFP_HEADER_PACK_STR, raw)
        assert (kind, length, xid) == (ofp.OFPT_MULTIPART_REPLY, len(raw), 42)
        reply = parser.msg_parser(DATAPATH, version, kind, length, xid, raw)
        flags.append(reply.flags)
        specs += [ofcompile.decode_flow(stat) for stat in reply.body]
    return specs, flags


def test_what_the_switch_was_sent_comes_back_by_cookie():
    table = FlowTable()
    canary, misses = pipeline.canary(l2.APP), pipeline.table_misses()
    defaults = l2.switch_defaults(l2.L2Settings())
    send(table, misses + [canary] + defaults)
    assert stats(table, pipeline.canary_owner(l2.APP)) == ([canary], [0])
    assert stats(table, pipeline.canary_owner("vlan")) == ([], [0])
    assert sorted(stats(table, Owner(l2.APP))[0], key=repr) == sorted([canary] + defaults,
                                                                      key=repr)


def test_an_add_replaces_and_deletes_take_what_a_switch_would():
    table = FlowTable()
    canary = pipeline.canary(l2.APP)
    send(table, [canary, canary] + pipeline.table_misses())
    assert len(table.entries) == 1 + len(pipeline.PIPELINE)
    send(table, [FlowDelete(pipeline.canary_owner(l2.APP), priority=canary.priority + 1,
                            match=canary.match, table="ingress")])   # strict: not this one
    assert stats(table, pipeline.canary_owner(l2.APP))[0] == [canary]
    send(table, [FlowDelete(Owner(l2.APP))])
    assert stats(table, Owner(l2.APP))[0] == []
    assert len(stats(table, pipeline.MISSES)[0]) == len(pipeline.PIPELINE)


def test_a_long_answer_comes_in_parts():
    table = FlowTable()
    hosts = [spec for n in range(1200)
             for spec in l2.learn_host(f"02:00:00:00:{n >> 8:02x}:{n & 255:02x}", 1, None, 300)]
    send(table, hosts)
    specs, flags = stats(table, Owner(l2.APP))
    assert len(specs) == len(hosts) and len(flags) > 1
    assert flags == [ofp.OFPMPF_REPLY_MORE] * (len(flags) - 1) + [0]
