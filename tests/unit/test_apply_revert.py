"""Invariants of every app on a switch that keeps what it is sent (tests/support/fakeswitch.py):
a REST change applied and then reverted leaves the switch's flows, groups and meters
identical, a restarted app takes over a switch without sending anything, and nothing
ever deletes entries without naming their owner (no wildcard delete of all tables)."""
import json

from ryu.ofproto import ofproto_v1_3 as ofp, ofproto_v1_3_parser as parser

from tests.support import lb_app as lb_tests
from tests.support import overlay_app as overlay_tests
from tests.support import qos_app as qos_tests
from tests.support.l2_app import call


def no_wildcard_deletes(*switches):
    for switch in switches:
        for msg in switch.sent:
            if isinstance(msg, parser.OFPFlowMod) and msg.command in (
                    ofp.OFPFC_DELETE, ofp.OFPFC_DELETE_STRICT):
                assert msg.cookie_mask != 0, "a delete of entries of every owner"


def applied_and_reverted(app, switches, apply, revert):
    before = [s.table() for s in switches]
    apply()
    changed = [s.table() for s in switches]
    assert changed != before, "the change did nothing to the switch"
    revert()
    assert [s.table() for s in switches] == before
    no_wildcard_deletes(*switches)


def test_qos_rule_and_port_changes_revert_cleanly(monkeypatch, tmp_path):
    app = qos_tests.make_app(monkeypatch, tmp_path, qos_tests.QOS_LAB_CONFIG["qos"])
    switch = qos_tests.bring_up(app)
    rules = "/v1/qos/0000000000000001/rules"
    rule = {"match": {"udp_dst": 5001}, "queue": 2, "meter": {"rate": "2M"}}
    applied_and_reverted(app, [switch],
                         lambda: call(app, "POST", rules, json.dumps(rule).encode()),
                         lambda: call(app, "DELETE", rules + "/4"))
    policing = b'{"ingress_policing": {"rate": "5M", "burst": "500k"}}'
    applied_and_reverted(app, [switch], lambda: call(app, "PUT", "/v1/qos/1/1", policing),
                         lambda: call(app, "DELETE", "/v1/qos/1/1"))


def test_qos_restart_sends_nothing(monkeypatch, tmp_path):
    first = qos_tests.make_app(monkeypatch, tmp_path, qos_tests.QOS_LAB_CONFIG["qos"])
    switch = qos_tests.bring_up(first)
    call(first, "POST", "/v1/qos/1/rules", json.dumps(
        {"match": {"udp_dst": 5001}, "queue": 2, "meter": {"rate": "2M"}}).encode())
    before = switch.table()
    assert before[2], "a meter to take over"
    second = qos_tests.make_app(monkeypatch, tmp_path, qos_tests.QOS_LAB_CONFIG["qos"])
    switch.app, switch.sent = second, []
    second._switch_connected(qos_tests.ofp_event.EventOFPSwitchFeatures(
        qos_tests.Features(switch)))
    second._port_desc(qos_tests.port_desc(switch, qos_tests.NAMES, "s1"))
    changes = [m for m in switch.sent if isinstance(m, (parser.OFPFlowMod, parser.OFPMeterMod))]
    assert changes == [] and switch.table() == before


def test_lb_vip_and_backend_changes_revert_cleanly(monkeypatch, tmp_path):
    app = lb_tests.make_app(monkeypatch, tmp_path)
    switch = lb_tests.connect(app)
    lb_tests.healthy_backends(app, switch)
    second = dict(lb_tests.VIP_BODY, vip="10.0.0.101")
    applied_and_reverted(app, [switch],
                         lambda: call(app, "POST", "/v1/lb/vips", json.dumps(second).encode()),
                         lambda: call(app, "DELETE", "/v1/lb/vips/2"))
    weights = [dict(b, weight=3) for b in lb_tests.VIP_BODY["backends"]]
    applied_and_reverted(
        app, [switch],
        lambda: call(app, "PATCH", "/v1/lb/vips/1", json.dumps({"backends": weights}).encode()),
        lambda: call(app, "PATCH", "/v1/lb/vips/1", json.dumps(
            {"backends": lb_tests.VIP_BODY["backends"]}).encode()))


def test_overlay_port_and_network_changes_revert_cleanly(monkeypatch, tmp_path):
    app = overlay_tests.make_app(monkeypatch, tmp_path, overlay_tests.SECTION)
    bridges = list(overlay_tests.bring_up(app, 1)) + list(overlay_tests.bring_up(app, 2))

    def apply():
        call(app, "POST", "/v1/overlay/networks", b'{"vni": 300}')
        call(app, "POST", "/v1/overlay/ports", b'{"hypervisor": "hv1", "port": 3, "vni": 300}')

    def revert():
        call(app, "DELETE", "/v1/overlay/ports/hv1/3")
        call(app, "DELETE", "/v1/overlay/networks/300")
    applied_and_reverted(app, bridges, apply, revert)


def test_overlay_restart_sends_nothing(monkeypatch, tmp_path):
    first = overlay_tests.make_app(monkeypatch, tmp_path, overlay_tests.SECTION)
    bridges = list(overlay_tests.bring_up(first, 1))
    before = [b.table() for b in bridges]
    second = overlay_tests.make_app(monkeypatch, tmp_path, overlay_tests.SECTION)
    for bridge in bridges:
        bridge.app, bridge.sent = second, []
        second._switch_connected(overlay_tests.ofp_event.EventOFPSwitchFeatures(
            overlay_tests.Features(bridge)))
        names = {1: "patch-int", 2: "vx-hv2"} if bridge.id > 0x2000 else \
            {100: "patch-tun", 2: "hv1-eth2", 3: "hv1-eth3"}
        second._port_desc(overlay_tests.port_desc(bridge, names, "br"))
    assert [m for b in bridges for m in b.sent if isinstance(m, parser.OFPFlowMod)] == []
    assert [b.table() for b in bridges] == before
