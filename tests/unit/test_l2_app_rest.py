"""apps/l2_switch.py driven by synthetic events, and its REST API at the WSGI level."""

import time

import pytest
from ryu.controller import ofp_event
from ryu.ofproto import ofproto_v1_3 as ofp, ofproto_v1_3_parser as parser

from controller import pipeline, rest
from flows import l2, topology
from tests.support.l2_app import (FakeDatapath, FakeOvsdb, Features, H1, H2, app, call, connect,
                                  eth, flow_mods, make_app, packet_in, switch_holding)


def reconnect(app, holding, dpid=1):
    datapath = FakeDatapath(dpid, answer=switch_holding(app, holding))
    app._switch_connected(ofp_event.EventOFPSwitchFeatures(Features(datapath)))
    app._reconcile(app.switches[dpid])  # what the switch's arrival in MAIN state starts
    return datapath


def test_a_new_switch_gets_misses_and_defaults_and_nothing_is_deleted(app):
    datapath = reconnect(app, [])
    mods = flow_mods(datapath)
    assert {m.command for m in mods} == {ofp.OFPFC_ADD}
    assert len(mods) == len(pipeline.PIPELINE) + 1 + 3  # misses, the canary, defaults
    assert isinstance(datapath.sent[0], parser.OFPSetConfig) and datapath.sent[0].miss_send_len == 128


def test_a_restarted_controller_keeps_what_is_right_adopts_hosts_and_removes_only_stale(app):
    settings = l2.L2Settings()
    stale = l2.switch_defaults(l2.L2Settings(mode="datapath"))[0]  # a learn() default
    holding = pipeline.table_misses() + [pipeline.canary(l2.APP)] + \
        l2.switch_defaults(settings)[1:] + [stale] + l2.learn_host(H1, 1, None, 300)
    datapath = reconnect(app, holding)
    mods = flow_mods(datapath)
    adds = [m for m in mods if m.command == ofp.OFPFC_ADD]
    deletes = [m for m in mods if m.command != ofp.OFPFC_ADD]
    assert [(m.table_id, m.priority) for m in adds] == [(pipeline.table_id("l2_src"), 1)]
    assert [(m.command, m.table_id, m.priority) for m in deletes] == []  # replaced in place
    assert [e.mac for e in app.switches[1].macs.entries()] == [H1]
    status, macs, _ = call(app, "GET", "/v1/switches/1/macs")
    assert [m["mac"] for m in macs] == [H1]
    # a stale entry in a slot nothing wants is deleted, strictly, after the adds
    holding = pipeline.table_misses() + [pipeline.canary(l2.APP)] + l2.switch_defaults(settings) + [
        l2.fabric_ports(settings, topology.build({1, 2}, [topology.Link((1, 5), (2, 5))], ()),
                        1)[0]]
    datapath = reconnect(app, holding, dpid=2)
    mods = flow_mods(datapath)
    assert [m.command for m in mods] == [ofp.OFPFC_DELETE_STRICT]


def test_packet_in_learns_source_with_two_entries(app):
    datapath = connect(app)
    datapath.sent.clear()
    app._packet_in(packet_in(datapath, 3, eth(H1, H2)))
    mods = flow_mods(datapath)
    assert [(m.table_id, m.match.get("eth_src"), m.match.get("eth_dst")) for m in mods] == [
        (pipeline.table_id("l2_src"), H2, None), (pipeline.table_id("l2_dst"), None, H2)]
    app._packet_in(packet_in(datapath, 3, eth(H1, H2)))  # raced duplicate: nothing new
    assert len(flow_mods(datapath)) == 2


def test_moved_host_gets_old_entries_deleted_first(app):
    datapath = connect(app)
    app._packet_in(packet_in(datapath, 3, eth(H1, H2)))
    datapath.sent.clear()
    app._packet_in(packet_in(datapath, 4, eth(H1, H2)))
    commands = [(m.command, m.table_id) for m in flow_mods(datapath)]
    src, dst = pipeline.table_id("l2_src"), pipeline.table_id("l2_dst")
    assert commands == [(ofp.OFPFC_DELETE_STRICT, src), (ofp.OFPFC_DELETE_STRICT, dst),
                        (ofp.OFPFC_ADD, src), (ofp.OFPFC_ADD, dst)]


def test_rest_lists_switches_and_macs_with_dpid_in_hex_or_decimal(app):
    datapath = connect(app, dpid=0x1A)
    app._packet_in(packet_in(datapath, 2, eth(H1, H2, vlan=7)))
    status, switches, _ = call(app, "GET", "/v1/switches")
    assert status == 200 and switches[0]["dpid"] == "000000000000001a"
    assert switches[0]["macs"] == 1 and switches[0]["packet_ins"] == 1
    for dpid in ("000000000000001a", "26"):
        status, macs, _ = call(app, "GET", f"/v1/switches/{dpid}/macs")
        assert status == 200
        assert [(m["mac"], m["port"], m["vlan"]) for m in macs] == [(H2, 2, 7)]


def test_rest_flush(app):
    datapath = connect(app)
    app._packet_in(packet_in(datapath, 2, eth(H1, H2)))
    status, body, _ = call(app, "DELETE", "/v1/switches/1/macs")
    assert status == 200 and body == {"flushed": 1}
    assert call(app, "GET", "/v1/switches/1/macs")[1] == []
    deletes = [m for m in flow_mods(datapath) if m.command == ofp.OFPFC_DELETE][-2:]
    assert {m.cookie for m in deletes} == {pipeline.cookie(l2.HOSTS), pipeline.cookie(l2.LEARNED)}


def test_rest_errors_are_json_with_the_right_status(app):
    connect(app)
    status, body, _ = call(app, "GET", "/v1/switches/99/macs")
    assert status == 404 and "no switch 0000000000000063" in body["error"]
    status, body, _ = call(app, "GET", "/v1/switches/zz/macs")   # could be a bridge's name
    assert status == 404 and "no connected switch is named 'zz'" in body["error"]
    status, body, _ = call(app, "GET", "/v1/switches/0xzz/macs")
    assert status == 400 and "bad switch '0xzz'" in body["error"]
    status, body, resp = call(app, "POST", "/v1/switches/1/macs")
    assert status == 405 and resp.headers["Allow"] == "DELETE, GET"
    status, body, _ = call(app, "GET", "/v2/nothing")
    assert status == 404 and body["error"] == "no such resource: /v2/nothing"


def test_flow_removed_of_an_expired_source_forgets_the_host(app):
    datapath = connect(app)
    app._packet_in(packet_in(datapath, 2, eth(H1, H2)))
    datapath.sent.clear()
    removed = parser.OFPFlowRemoved(datapath, cookie=pipeline.cookie(l2.HOSTS), priority=100,
                                    reason=ofp.OFPRR_IDLE_TIMEOUT,
                                    table_id=pipeline.table_id("l2_src"),
                                    match=parser.OFPMatch(in_port=2, eth_src=H2))
    app._flow_removed(ofp_event.EventOFPFlowRemoved(removed))
    assert len(app.switches[1].macs) == 0
    assert [m.table_id for m in flow_mods(datapath)] == [pipeline.table_id("l2_src"),
                                                         pipeline.table_id("l2_dst")]


def test_datapath_is_parsed_only_at_the_boundary():
    assert rest.parse_dpid("00000000000000ff") == 255
    assert rest.parse_dpid("255") == 255
    with pytest.raises(rest.ApiError):
        rest.parse_dpid("-1")


def test_datapath_mode_caps_l2_dst_at_max_macs_plus_its_fixed_entries(monkeypatch):
    app = make_app(monkeypatch, mode="datapath", max_macs=50)
    connect(app)
    app._enforce_mac_cap(app.switches[1])
    assert app.ovsdb.calls == [("set", 1, pipeline.table_id("l2_dst"), 52, "l2_switch")]
    assert app.switches[1].mac_cap == "switch (OVSDB Flow_Table flow_limit=52)"


def test_reactive_mode_removes_an_old_switch_cap_and_enforces_its_own(app):
    connect(app)
    app._enforce_mac_cap(app.switches[1])
    assert app.ovsdb.calls == [("clear", 1, pipeline.table_id("l2_dst"), "l2_switch")]
    assert app.switches[1].mac_cap == "controller"


def test_unreachable_ovsdb_is_reported_not_fatal(monkeypatch):
    app = make_app(monkeypatch, mode="datapath")
    app.ovsdb = FakeOvsdb(error="cannot reach OVSDB at tcp:127.0.0.1:6640")
    connect(app)
    app._enforce_mac_cap(app.switches[1])
    assert app.switches[1].mac_cap == "not enforced: cannot reach OVSDB at tcp:127.0.0.1:6640"


def learned_entry(mac, port, age, priority=100):
    return parser.OFPFlowStats(
        table_id=4, duration_sec=age, priority=priority, idle_timeout=0, hard_timeout=300, flags=0,
        cookie=pipeline.cookie(l2.LEARNED), packet_count=1, byte_count=60,
        match=parser.OFPMatch(vlan_vid=(0, 0x0FFF), eth_dst=mac),
        instructions=[parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS,
                                                   [parser.OFPActionOutput(port)])])


def test_datapath_mode_lists_macs_from_a_two_part_flow_stats_reply(monkeypatch):
    from ryu.lib import hub
    app = make_app(monkeypatch, mode="datapath")

    def switch_answers(msg):
        if isinstance(msg, parser.OFPFlowStatsRequest):
            for body, more in (([learned_entry(H1, 1, 7)], ofp.OFPMPF_REPLY_MORE),
                               ([learned_entry(H2, 2, 3)], 0)):
                reply = parser.OFPFlowStatsReply(msg.datapath, body=body)
                reply.xid, reply.flags = msg.xid, more
                hub.spawn(app._multipart_reply, ofp_event.EventOFPFlowStatsReply(reply))

    datapath = FakeDatapath(1, answer=switch_answers)
    app._switch_connected(ofp_event.EventOFPSwitchFeatures(Features(datapath)))
    status, macs, _ = call(app, "GET", "/v1/switches/1/macs")
    assert status == 200
    assert macs == [{"mac": H1, "port": 1, "vlan": None, "age_s": 7},
                    {"mac": H2, "port": 2, "vlan": None, "age_s": 3}]


def test_datapath_mode_lists_a_vlan_0_mac_once_though_it_has_two_entries(monkeypatch):
    from ryu.lib import hub
    app = make_app(monkeypatch, mode="datapath")

    def switch_answers(msg):   # OpenFlow 1.3 stats do not show the PCP-0 twin's match
        if isinstance(msg, parser.OFPFlowStatsRequest):
            body = [learned_entry(H1, 1, 7), learned_entry(H1, 1, 7, l2.VLAN0_UNTAGGED_PRIORITY)]
            reply = parser.OFPFlowStatsReply(msg.datapath, body=body)
            reply.xid, reply.flags = msg.xid, 0
            hub.spawn(app._multipart_reply, ofp_event.EventOFPFlowStatsReply(reply))

    app._switch_connected(ofp_event.EventOFPSwitchFeatures(Features(
        FakeDatapath(1, answer=switch_answers))))
    status, macs, _ = call(app, "GET", "/v1/switches/1/macs")
    assert status == 200 and macs == [{"mac": H1, "port": 1, "vlan": None, "age_s": 7}]


def test_a_switch_that_does_not_answer_is_a_timeout_not_a_hang(monkeypatch):
    from controller import southbound
    app = make_app(monkeypatch, mode="datapath")
    datapath = connect(app)
    request = parser.OFPFlowStatsRequest(datapath)
    with pytest.raises(southbound.SwitchTimeout, match="did not answer OFPFlowStatsRequest"):
        app.request(datapath, request, timeout=0.1)
    assert app._waiting == {}


def test_a_switch_that_answers_a_read_with_an_error_fails_it_at_once(monkeypatch):
    """Not after the 5 s timeout: the error names what the switch said, and REST (the
    console's pipeline read) answers 502 with it."""
    from ryu.lib import hub
    from controller import southbound

    def refuse(msg):
        if isinstance(msg, parser.OFPFlowStatsRequest):
            error = parser.OFPErrorMsg(msg.datapath, type_=ofp.OFPET_BAD_REQUEST,
                                       code=ofp.OFPBRC_BAD_MULTIPART, data=b"")
            error.xid = msg.xid
            hub.spawn(app._log_switch_error, ofp_event.EventOFPErrorMsg(error))

    app = make_app(monkeypatch, mode="datapath")
    datapath = FakeDatapath(1, answer=refuse)
    app._switch_connected(ofp_event.EventOFPSwitchFeatures(Features(datapath)))
    started = time.monotonic()
    with pytest.raises(southbound.SwitchRefused, match=r"OpenFlow error \(type 0x1, code 0x2\)"):
        app.request(datapath, parser.OFPFlowStatsRequest(datapath), timeout=5)
    assert time.monotonic() - started < 1 and app._waiting == {}


def test_port_security_bans_a_port_that_floods_new_macs_once(monkeypatch):
    app = make_app(monkeypatch, mode="reactive", max_macs_per_port=5, ban_s=20)
    datapath = connect(app)
    for n in range(50):
        app._packet_in(packet_in(datapath, 1, eth("ff:ff:ff:ff:ff:ff", "02:77:00:00:00:%02x" % n)))
    bans = [m for m in flow_mods(datapath) if m.cookie == pipeline.cookie(l2.BANS)]
    assert [(b.match["in_port"], b.hard_timeout, b.priority) for b in bans] == \
        [(1, 20, l2.BAN_PORT_PRIORITY)]
    assert len(app.switches[1].macs) == 5
    status, switches, _ = call(app, "GET", "/v1/switches")
    assert [b["port"] for b in switches[0]["bans"]] == [1] and switches[0]["not_learned"] == 45
    app._packet_in(packet_in(datapath, 2, eth("ff:ff:ff:ff:ff:ff", H2)))  # others still learn
    assert H2 in {e.mac for e in app.switches[1].macs.entries()}


def test_a_flapping_mac_is_banned_and_forgotten(monkeypatch):
    app = make_app(monkeypatch, mode="reactive", flap_moves=3)
    datapath = connect(app)
    for port in (1, 2, 1, 2):
        app._packet_in(packet_in(datapath, port, eth("ff:ff:ff:ff:ff:ff", H1)))
    bans = [m for m in flow_mods(datapath) if m.cookie == pipeline.cookie(l2.BANS)]
    assert [(b.match["eth_src"], b.priority) for b in bans] == [(H1, l2.BAN_MAC_PRIORITY)]
    assert H1 not in {e.mac for e in app.switches[1].macs.entries()}


def test_a_switch_that_lost_its_canary_gets_everything_back(monkeypatch):
    app = make_app(monkeypatch, mode="reactive")
    holding = pipeline.table_misses() + [pipeline.canary(l2.APP)] + l2.switch_defaults(l2.L2Settings())
    datapath = reconnect(app, holding)
    assert app.canary_gone(l2.APP, datapath) is False
    datapath.answer = switch_holding(app, [])            # an ovs-ofctl del-flows
    assert app.canary_gone(l2.APP, datapath) is True
    datapath.sent.clear()
    app._reconcile(app.switches[1])
    assert len(flow_mods(datapath)) == len(holding)      # all of it back
