"""apps/vlan.py driven by synthetic OpenFlow events, its REST API at the WSGI level, and
the learning app's reaction to the VLAN app's event (no switch, no root)."""

import pytest
from ryu.ofproto import ofproto_v1_3 as ofp

from controller import events, pipeline
from controller.state import SqliteStateStore
from flows import l2
from tests.support.l2_app import call, connect, flow_mods, make_app
from tests.support.vlan_app import SECTION, bring_up, make_vlan_app


def test_ports_by_name_or_number_are_programmed_and_announced(monkeypatch, tmp_path):
    app = make_vlan_app(monkeypatch, tmp_path, SECTION)
    datapath = bring_up(app)
    adds = [m for m in flow_mods(datapath) if m.command == ofp.OFPFC_ADD]
    ingress = {(m.match.get("in_port"), m.priority) for m in adds if m.table_id == 0}
    assert {(1, 20), (2, 20), (3, 20), (1, 10), (2, 10), (3, 10)} <= ingress
    floods = {m.match.get("vlan_vid") for m in adds if m.table_id == pipeline.table_id("flood")}
    assert {10 | 0x1000, 20 | 0x1000, 0x1000} <= floods
    assert [(e.dpid, e.untagged) for e in app.sent_events] == [(1, {(1, 10), (2, 20)})]


def test_rest_put_validates_then_applies_and_persists(monkeypatch, tmp_path):
    app = make_vlan_app(monkeypatch, tmp_path, SECTION)
    bring_up(app)
    path = "/v1/switches/1/ports/uplink/vlan"
    for body in (b'{"tag": 0}', b'{"tag": 4095}', b'{"tag": 1, "trunks": [2]}', b"[1]", b"{",
                 b'{"trunks": [1, 1]}'):
        status, reply, _ = call(app, "PUT", path, body)
        assert status == 400 and reply["error"], body
    assert SqliteStateStore("vlan", tmp_path).load()[0] == {}  # nothing was stored
    status, reply, _ = call(app, "PUT", path, b'{"trunks": [30]}')
    assert status == 200 and reply["trunks"] == [30] and reply["port"] == 3
    assert SqliteStateStore("vlan", tmp_path).load()[0] == {
        "0000000000000001": {"3": {"trunks": [30]}}}
    # a new controller process reads it back
    again = make_vlan_app(monkeypatch, tmp_path, SECTION)
    bring_up(again)
    assert call(again, "GET", path)[1]["trunks"] == [30]


def test_rest_errors(monkeypatch, tmp_path):
    app = make_vlan_app(monkeypatch, tmp_path, SECTION)
    bring_up(app)
    assert call(app, "GET", "/v1/switches/1/ports/eth9/vlan")[0] == 400
    assert call(app, "GET", "/v1/switches/2/ports/1/vlan")[0] == 404
    status, _, resp = call(app, "POST", "/v1/switches/1/ports/1/vlan")
    assert status == 405 and resp.headers["Allow"] == "DELETE, GET, PUT"


def test_delete_returns_a_port_to_trunk_all_and_members_follow(monkeypatch, tmp_path):
    app = make_vlan_app(monkeypatch, tmp_path, SECTION)
    bring_up(app)
    status, reply, _ = call(app, "DELETE", "/v1/switches/1/ports/vm1/vlan")
    assert status == 200 and reply["mode"] == "trunk" and not reply["configured"]
    members = call(app, "GET", "/v1/vlans")[1]
    assert {m["name"] for m in members["10"]} == {"vm1", "uplink"}   # vm1 trunks everything
    assert {m["name"] for m in members["20"]} == {"vm1", "vm2", "uplink"}


@pytest.mark.parametrize("section, message", [
    ({"ports": [{"switch": "br0", "tag": 5}]}, "needs switch and port"),
    ({"ports": [{"switch": "br0", "port": 1, "tag": 5000}]}, "tag must be"),
    ({"flood_vlans": [5000]}, "flood_vlans must list"),
    ({"colour": 1}, "unknown key"),
])
def test_bad_vlan_config_stops_the_app_with_a_clear_message(monkeypatch, tmp_path, section,
                                                             message):
    with pytest.raises(SystemExit, match=message):
        make_vlan_app(monkeypatch, tmp_path, section)


def test_learning_app_moves_to_pops_when_told_about_untagged_ports(monkeypatch):
    app = make_app(monkeypatch, mode="datapath")
    datapath = connect(app)
    app._port_vlans(events.EventPortVlans(1, {(1, 10)}))  # before reconciliation: noted
    assert flow_mods(datapath) == [] and app.switches[1].untagged == {(1, 10)}
    app.switches[1].reconciled = True
    app._port_vlans(events.EventPortVlans(1, {(1, 10), (2, 20)}))
    mods = flow_mods(datapath)
    deletes = {m.cookie for m in mods if m.command == ofp.OFPFC_DELETE}
    assert deletes == {pipeline.cookie(l2.LEARNED)}  # learned entries baked the old tags
    strip = [m for m in mods if m.priority == l2.STRIP_PRIORITY]
    assert [m.match["in_port"] for m in strip] == [2]  # the new one; port 1's stays
    datapath.sent.clear()
    app._port_vlans(events.EventPortVlans(1, {(1, 10), (2, 20)}))  # again: nothing to do
    assert datapath.sent == []


def test_a_restarted_controller_leaves_a_correct_switch_untouched(monkeypatch, tmp_path):
    from flows import vlan
    from flows.spec import UNTAGGED, FlowSpec, Match
    plan = make_vlan_app(monkeypatch, tmp_path, SECTION)
    bring_up(plan)
    stale = FlowSpec("ingress", 20, Match.of(in_port=9, vlan_vid=UNTAGGED), vlan.CLASSIFY)
    app = make_vlan_app(monkeypatch, tmp_path, SECTION)
    datapath = bring_up(app, holding=pipeline.table_misses() + plan.plans[1]
                        + [pipeline.canary(vlan.APP), stale])
    assert [(m.command, m.match.get("in_port")) for m in flow_mods(datapath)] == \
        [(ofp.OFPFC_DELETE_STRICT, 9)]


def test_a_controller_restarted_on_an_old_state_document_finds_its_ports(monkeypatch, tmp_path):
    """Documents are keyed by 16 hex digits on disk (as before datapath ids became ints
    inside): one written by an older controller is read as it was meant."""
    SqliteStateStore("vlan", tmp_path).save({"0000000000000001": {"3": {"trunks": [30]}},
                                             "0000000000000002": {"1": {"tag": 40}}}, 0)
    app = make_vlan_app(monkeypatch, tmp_path, SECTION)
    bring_up(app)
    assert call(app, "GET", "/v1/switches/1/ports/uplink/vlan")[1]["trunks"] == [30]
    assert call(app, "PUT", "/v1/switches/0x1/ports/vm2/vlan", b'{"tag": 50}')[0] == 200
    assert SqliteStateStore("vlan", tmp_path).load()[0] == {   # switch 2's entry kept, same form
        "0000000000000001": {"3": {"trunks": [30]}, "2": {"tag": 50}},
        "0000000000000002": {"1": {"tag": 40}}}
