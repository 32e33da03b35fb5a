"""The learning app under test: built with a fake OVSDB and REST, a switch (the fake
switch) connecting, packet-ins, REST calls, and a switch that holds given entries."""
import json

import pytest
import webob
from ryu.controller import ofp_event
from ryu.ofproto import ofproto_v1_3 as ofp, ofproto_v1_3_parser as parser

from apps import l2_switch
from controller import config, ofcompile, ovsdb, pipeline, rest
from tests.support.fakeswitch import FakeSwitch


H1, H2 = "00:00:00:00:00:01", "00:00:00:00:00:02"


class FakeDatapath(FakeSwitch):
    """The fake switch without an app to answer: it keeps and simulates what it is sent;
    `answer` is called with each message, like a switch replying."""

    def __init__(self, dpid, answer=None):
        super().__init__(dpid, None, answer)


class Features:
    def __init__(self, datapath):
        self.datapath = datapath


def eth(dst, src, vlan=None):
    tag = b"" if vlan is None else b"\x81\x00" + vlan.to_bytes(2, "big")
    return bytes.fromhex(dst.replace(":", "")) + bytes.fromhex(src.replace(":", "")) + tag + \
        b"\x08\x00" + bytes(100)


def packet_in(datapath, in_port, data, table="l2_src"):
    msg = parser.OFPPacketIn(datapath, buffer_id=ofp.OFP_NO_BUFFER, total_len=len(data),
                             reason=ofp.OFPR_ACTION, table_id=pipeline.table_id(table),
                             cookie=0, match=parser.OFPMatch(in_port=in_port), data=data[:128])
    return ofp_event.EventOFPPacketIn(msg)


class FakeOvsdb:
    """Records what the app asks of OVSDB; unit tests never touch a real one."""

    def __init__(self, error=None):
        self.calls, self.error = [], error

    def set_flow_limit(self, dpid, table_id, limit, owner, name):
        self._call("set", dpid, table_id, limit, owner)

    def clear_flow_limit(self, dpid, table_id, owner):
        self._call("clear", dpid, table_id, owner)

    def _call(self, *args):
        if self.error:
            raise ovsdb.OvsdbError(self.error)
        self.calls.append(args)


def make_app(monkeypatch, runtime=None, **settings):
    """`runtime`: the one another app of the same ryu-manager has (default: its own)."""
    monkeypatch.setattr(config, "load_file", lambda path=None: {"l2_switch": settings})
    wsgi = rest.WSGIApplication()
    app = l2_switch.L2Switch(wsgi=wsgi, runtime=runtime)
    app.wsgi, app.ovsdb = wsgi, FakeOvsdb()
    return app


@pytest.fixture
def app(monkeypatch):
    return make_app(monkeypatch)


def connect(app, dpid=1):
    datapath = FakeDatapath(dpid)
    app._switch_connected(ofp_event.EventOFPSwitchFeatures(Features(datapath)))
    return datapath


def call(app, method, path, body=None):
    req = webob.Request.blank(path, method=method)
    if body is not None:
        req.body = body
    resp = req.get_response(app.wsgi)
    assert resp.content_type == "application/json", resp.body
    return resp.status_int, json.loads(resp.body), resp


def flow_mods(datapath):
    return [m for m in datapath.sent if isinstance(m, parser.OFPFlowMod)]


def stats_of(spec, seconds=5):
    """A flow-stats entry for `spec`, as a switch would report it."""
    mod = ofcompile.ryu_flow_mod(FakeDatapath(0), spec)
    return parser.OFPFlowStats(
        table_id=mod.table_id, duration_sec=seconds, duration_nsec=0, priority=mod.priority,
        idle_timeout=mod.idle_timeout, hard_timeout=mod.hard_timeout, flags=mod.flags,
        cookie=mod.cookie, packet_count=3, byte_count=180, match=mod.match,
        instructions=mod.instructions)


def switch_holding(app, specs):
    """A FakeDatapath answer function: flow stats from `specs` (by cookie/mask), and
    barrier replies."""
    from ryu.lib import hub

    def answer(msg):
        if isinstance(msg, parser.OFPFlowStatsRequest):
            body = [stats_of(s) for s in specs
                    if pipeline.cookie(s.owner) & msg.cookie_mask == msg.cookie]
            reply = parser.OFPFlowStatsReply(msg.datapath, body=body)
            reply.xid, reply.flags = msg.xid, 0
            hub.spawn(app._multipart_reply, ofp_event.EventOFPFlowStatsReply(reply))
        elif isinstance(msg, parser.OFPBarrierRequest):
            reply = parser.OFPBarrierReply(msg.datapath)
            reply.xid = msg.xid
            hub.spawn(app._barrier_reply, ofp_event.EventOFPBarrierReply(reply))
    return answer
