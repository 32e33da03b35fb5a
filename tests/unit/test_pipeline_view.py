"""A switch's whole pipeline over REST (controller/pipeline_view.py,
GET /v1/runtime/switches/{dpid}/flows): every entry read back, named by table, owner,
match and actions, with its counters; anyone's entries as "not ours"."""
import json

import webob
from ryu.controller import ofp_event
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser

from controller import pipeline, pipeline_view
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


def test_an_unknown_or_gone_switch_is_a_404_and_a_bad_id_a_400(monkeypatch, tmp_path):
    app = make_vlan_app(monkeypatch, tmp_path)
    assert get(app, "/v1/runtime/switches/7/flows")[0] == 404
    status, body = get(app, "/v1/runtime/switches/nope/flows")
    assert status == 400 and "bad datapath id" in body["error"]
    datapath = bring_up(app)
    app.get_handlers(ofp_event.EventOFPSwitchFeatures(Features(datapath)))
    app.runtime.gone(datapath)
    assert get(app, "/v1/runtime/switches/1/flows")[0] == 404


def test_anyone_elses_entries_are_not_ours_and_keep_what_ryu_says_of_them():
    ours = stats_of(FlowSpec("l2_dst", 100, Match.of(eth_dst="00:00:00:00:00:01"),
                             pipeline.canary_owner("l2_switch"), (Output(1),)))
    foreign = parser.OFPFlowStats(
        table_id=9, duration_sec=1, duration_nsec=500_000_000, priority=7, idle_timeout=0,
        hard_timeout=0, flags=0, cookie=0x0, packet_count=1, byte_count=60,
        match=parser.OFPMatch(eth_type=0x0800, ipv4_dst=("10.0.0.0", "255.0.0.0")),
        instructions=[parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS,
                                                   [parser.OFPActionDecNwTtl()])])
    view = pipeline_view.describe([foreign, ours])
    first, second = view["flows"]
    assert (first["table_name"], second["owner"]) == ("l2_dst", NOT_OURS := "not ours")
    assert second["table_name"] == "9" and second["duration_s"] == 1.5
    assert second["match"] == "eth_type=0x800,nw_dst=10.0.0.0/255.0.0.0"
    assert "OFPActionDecNwTtl" in second["actions"] and NOT_OURS == pipeline_view.NOT_OURS
