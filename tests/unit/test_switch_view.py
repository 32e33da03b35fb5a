"""A switch's whole pipeline over REST (controller/switch_view.py,
GET /v1/runtime/switches/{dpid}/flows): every entry read back, named by table, owner,
match and actions, with its counters; anyone's entries as "not ours"."""
import json

import webob
from ryu.controller import ofp_event
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser

from controller import pipeline, switch_view
from flows import vlan
from flows.spec import FlowSpec, Match, Output
from tests.support.l2_app import Features, stats_of
from tests.support.vlan_app import bring_up, make_vlan_app

ACCESS = FlowSpec("ingress", 20, Match.of(in_port=1, vlan_vid="untagged"), vlan.CLASSIFY,
                  goto="police")


def get(app, path):
    resp = webob.Request.blank(path).get_response(app.wsgi)
    return resp.status_int, json.loads(resp.body)


def test_every_entry_of_a_served_switch_comes_back_named(monkeypatch, tmp_path):
    app = make_vlan_app(monkeypatch, tmp_path)
    misses = pipeline.table_misses()
    datapath = bring_up(app, holding=[ACCESS] + misses)
    # the app's dispatch tells the runtime it serves the switch (what Ryu does on connect)
    app.get_handlers(ofp_event.EventOFPSwitchFeatures(Features(datapath)))
    status, body = get(app, "/v1/runtime/switches/0x1/flows")
    assert status == 200 and body["dpid"] == "0000000000000001" and body["pipeline"] == "main"
    access = [f for f in body["flows"] if f["owner"] == "vlan/default"]
    assert access == [{
        "table": 0, "table_name": "ingress", "owner": "vlan/default",
        "cookie": f"{pipeline.cookie(vlan.CLASSIFY):#x}", "priority": 20,
        "match": "in_port=1,vlan_vid=0", "actions": "goto_table:1", "idle_timeout": 0,
        "hard_timeout": 0, "n_packets": 3, "n_bytes": 180, "duration_s": 5.0}]
    assert sum(f["owner"] == "pipeline/miss" for f in body["flows"]) == len(misses)
    tables = [f["table"] for f in body["flows"]]
    assert tables == sorted(tables)


def test_an_unknown_or_gone_switch_is_a_404_and_a_bad_reference_a_400(monkeypatch, tmp_path):
    app = make_vlan_app(monkeypatch, tmp_path)
    assert get(app, "/v1/runtime/switches/7/flows")[0] == 404
    status, body = get(app, "/v1/runtime/switches/0xzz/flows")
    assert status == 400 and "0xzz" in body["error"]
    assert get(app, "/v1/runtime/switches/nope/flows")[0] == 404   # a name, of no switch
    datapath = bring_up(app)
    app.get_handlers(ofp_event.EventOFPSwitchFeatures(Features(datapath)))
    app.runtime.gone(datapath)
    assert get(app, "/v1/runtime/switches/1/flows")[0] == 404


def test_anyone_elses_entries_are_not_ours_and_keep_what_ryu_says_of_them():
    ours = stats_of(FlowSpec("l2_dst", 100, Match.of(eth_dst="00:00:00:00:00:01"),
                             pipeline.canary_owner("l2_switch"), (Output(1),)))
    foreign = parser.OFPFlowStats(
        table_id=12, duration_sec=1, duration_nsec=500_000_000, priority=7, idle_timeout=0,
        hard_timeout=0, flags=0, cookie=0x0, packet_count=1, byte_count=60,
        match=parser.OFPMatch(eth_type=0x0800, ipv4_dst=("10.0.0.0", "255.0.0.0")),
        instructions=[parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS,
                                                   [parser.OFPActionCopyTtlOut()])])
    view = switch_view.describe([foreign, ours])
    first, second = view["flows"]
    assert (first["table_name"], second["owner"]) == ("l2_dst", NOT_OURS := "not ours")
    assert second["table_name"] == "12" and second["duration_s"] == 1.5
    assert second["match"] == "eth_type=0x800,nw_dst=10.0.0.0/255.0.0.0"
    assert "OFPActionCopyTtlOut" in second["actions"] and NOT_OURS == pipeline.NOT_OURS


def test_port_counters_come_back_per_port_without_the_local_port(monkeypatch, tmp_path):
    from ryu.lib import hub
    app = make_vlan_app(monkeypatch, tmp_path)

    def answer(msg):
        if isinstance(msg, parser.OFPPortStatsRequest):
            body = [parser.OFPPortStats(port_no=port, rx_packets=10 * port, tx_packets=port,
                                        rx_bytes=1000 * port, tx_bytes=100 * port,
                                        rx_dropped=0, tx_dropped=0, rx_errors=0, tx_errors=0,
                                        rx_frame_err=0, rx_over_err=0, rx_crc_err=0,
                                        collisions=0, duration_sec=2, duration_nsec=0)
                    for port in (2, 1, ofp.OFPP_LOCAL)]
            reply = parser.OFPPortStatsReply(msg.datapath, body=body)
            reply.xid, reply.flags = msg.xid, 0
            hub.spawn(app._multipart_reply, ofp_event.EventOFPPortStatsReply(reply))
    datapath = bring_up(app)
    datapath.answer = answer
    app.get_handlers(ofp_event.EventOFPSwitchFeatures(Features(datapath)))
    status, body = get(app, "/v1/runtime/switches/1/ports")
    assert status == 200 and [p["port"] for p in body["ports"]] == [1, 2]
    assert body["ports"][1]["tx_bytes"] == 200 and body["ports"][1]["rx_packets"] == 20
    assert get(app, "/v1/runtime/switches/9/ports")[0] == 404


def test_entries_no_printer_knows_are_shown_as_ryu_sees_them_not_a_failed_listing():
    """A move of vlan_tci and a learn() of the PCP bits (anyone's, no app of ours writes
    them) are listed with Ryu's words; the other entries keep ovs-ofctl's."""
    odd = [parser.NXActionRegMove(src_field="vlan_tci", dst_field="reg3", n_bits=16),
           parser.NXActionLearn(table_id=5, specs=[parser.NXFlowSpecMatch(
               src=("vlan_tci", 13), dst=("vlan_tci", 13), n_bits=3)])]
    foreign = [parser.OFPFlowStats(
        table_id=5, duration_sec=1, duration_nsec=0, priority=9, idle_timeout=0,
        hard_timeout=0, flags=0, cookie=0, packet_count=0, byte_count=0,
        match=parser.OFPMatch(), instructions=[parser.OFPInstructionActions(
            ofp.OFPIT_APPLY_ACTIONS, [action])]) for action in odd]
    ours = stats_of(ACCESS)
    view = switch_view.describe(foreign + [ours])
    texts = {f["priority"]: f["actions"] for f in view["flows"]}
    assert texts[20] == "goto_table:1" and len(view["flows"]) == 3
    assert all("NXAction" in f["actions"] for f in view["flows"] if f["priority"] == 9)


def test_a_match_on_the_vid_bits_shows_its_value_and_mask():
    """What learn() writes for an untagged host (VID bits 0 under 0x0fff) is not "any
    tagged frame": the listing keeps the wire's value and mask."""
    untagged_host = parser.OFPFlowStats(
        table_id=5, duration_sec=1, duration_nsec=0, priority=100, idle_timeout=0,
        hard_timeout=0, flags=0, cookie=0, packet_count=0, byte_count=0,
        match=parser.OFPMatch(vlan_vid=(0x0000, 0x0fff), eth_dst="00:00:00:00:00:01"),
        instructions=[])
    tagged = stats_of(FlowSpec("l2_dst", 5, Match.of(vlan_vid="tagged"), vlan.CLASSIFY))
    view = switch_view.describe([untagged_host, tagged])
    shown = {f["priority"]: f["match"] for f in view["flows"]}
    assert shown[100] == "eth_dst=00:00:00:00:00:01,vlan_vid=0x0000/0x0fff"
    assert shown[5] == "vlan_vid=0x1000/0x1000"
