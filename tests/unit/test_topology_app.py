"""apps/topology.py driven by synthetic OpenFlow events and a fake clock, its REST API
at the WSGI level, and the learning app's reaction to a fabric (no switch, no root)."""
import pytest
from ryu.controller import ofp_event
from ryu.ofproto import ofproto_v1_3 as ofp, ofproto_v1_3_parser as parser

from apps import topology as topology_app
from controller import events, pipeline
from flows import lldp, topology
from tests.support.l2_app import FakeDatapath, Features, eth, flow_mods, make_app, packet_in

import webob
from tests.support.topology_app import Clock, app, bring_up, lldp_in, port_down


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(topology_app.time, "monotonic", clock)
    return clock


def get(app, path):
    resp = webob.Request.blank(path).get_response(app.wsgi)
    return resp.status_int, resp


def test_connect_traps_lldp_sends_it_out_of_every_port_and_floods_nothing_yet(app):
    datapath = bring_up(app, 1)
    adds = [m for m in flow_mods(datapath) if m.command == ofp.OFPFC_ADD]
    assert any(m.table_id == 0 and m.match.get("eth_type") == lldp.ETH_TYPE_LLDP for m in adds)
    outs = [m for m in datapath.sent if isinstance(m, parser.OFPPacketOut)]
    assert sorted(lldp.parse(bytes(m.data)) for m in outs) == [(1, 1), (1, 2)]
    flood = next(m for m in adds if m.table_id == pipeline.table_id("flood"))
    assert flood.instructions == []  # a drop: every port is pending


def test_lldp_makes_a_link_edge_ports_follow_and_a_port_down_removes_it(app, clock):
    one, two = bring_up(app, 1), bring_up(app, 2)
    lldp_in(app, two, 1, lldp.frame(1, 1))
    assert app.fabric.links == {topology.Link((1, 1), (2, 1))}
    assert app.sent_events[-1].fabric is app.fabric
    clock.now += 3.5
    app._refresh()
    assert app.fabric.edge == {(1, 2), (2, 2)}
    status, resp = get(app, "/v1/topology")
    view = resp.json
    assert status == 200 and view["pending_ports"] == 0
    assert [p["role"] for p in view["switches"][0]["ports"]] == ["tree", "edge"]
    assert view["links"] == [{"a": {"dpid": "%016x" % 1, "port": 1},
                              "b": {"dpid": "%016x" % 2, "port": 1}, "in_tree": True}]
    one.sent.clear()
    port_down(app, one, 1)
    assert app.fabric.links == frozenset()
    allowed = {m.match.get("in_port") for m in flow_mods(one)
               if m.command == ofp.OFPFC_ADD and m.table_id == pipeline.table_id("l2_dst")}
    assert 1 not in allowed  # the dead port no longer feeds flooding


def test_links_time_out_and_foreign_or_broken_lldp_is_ignored(app, clock):
    bring_up(app, 1)
    two = bring_up(app, 2)
    lldp_in(app, two, 1, lldp.frame(9, 1))           # a switch we do not know
    lldp_in(app, two, 1, lldp.frame(1, 1)[:30])      # truncated
    lldp_in(app, two, 1, b"\x00" * 5)
    assert app.fabric.links == frozenset()
    lldp_in(app, two, 1, lldp.frame(1, 1))
    clock.now += 3.6
    app._refresh()
    assert app.fabric.links == frozenset()           # not heard again: gone


def test_svg_picture(app, clock):
    bring_up(app, 1)
    status, resp = get(app, "/v1/topology.svg")
    assert status == 200 and resp.content_type == "image/svg+xml"
    assert resp.text.startswith("<svg")


def test_learning_app_routes_a_host_from_every_switch(monkeypatch):
    l2 = make_app(monkeypatch, mode="reactive")
    datapaths = {}
    for dpid in (1, 2):
        datapaths[dpid] = FakeDatapath(dpid)
        l2._switch_connected(ofp_event.EventOFPSwitchFeatures(Features(datapaths[dpid])))
    fabric = topology.build({1, 2}, [topology.Link((1, 1), (2, 1))], [(1, 2), (2, 2)])
    l2._topology(events.EventTopology(fabric))
    no_learn = [m for m in flow_mods(datapaths[2]) if m.table_id == pipeline.table_id("l2_src")
                and m.priority == 3]
    assert [m.match.get("in_port") for m in no_learn] == [1]
    datapaths[2].sent.clear()
    l2._packet_in(packet_in(datapaths[1], 1, eth("ff:ff:ff:ff:ff:ff", "02:00:00:00:00:01")))
    assert flow_mods(datapaths[2]) == []             # heard on a core port: not learned
    l2._packet_in(packet_in(datapaths[1], 2, eth("ff:ff:ff:ff:ff:ff", "02:00:00:00:00:01")))
    route = [m for m in flow_mods(datapaths[2]) if m.table_id == pipeline.table_id("l2_dst")]
    assert [(m.match.get("eth_dst"), m.instructions[0].actions[0].port) for m in route] == \
        [("02:00:00:00:00:01", 1)]                   # s2 reaches it over the link


def test_a_restarted_controller_keeps_the_old_guard_and_trusts_its_edge_ports(app, clock):
    fabric = topology.build({1, 2}, [topology.Link((1, 1), (2, 1))], [(1, 2), (2, 2)])
    holding = topology.discovery_trap() + topology.flood_guard(fabric, 1) + \
        [pipeline.canary(topology.APP)]
    one = bring_up(app, 1, holding)
    assert flow_mods(one) == []                      # nothing touched
    assert app.fabric.edge == {(1, 1), (1, 2)}       # both flooded before: edge at once...
    two = bring_up(app, 2)
    lldp_in(app, two, 1, lldp.frame(1, 1))
    assert app.fabric.edge == {(1, 2)}               # ...until LLDP shows port 1 is a link
    assert app.fabric.tree == {topology.Link((1, 1), (2, 1))}
