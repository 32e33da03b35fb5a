"""apps/overlay.py driven by synthetic OpenFlow events and a fake OVSDB: the tunnel mesh
it asks for, what it pushes (and when it pushes nothing), and its REST API."""
import json

import pytest
from ryu.ofproto import ofproto_v1_3 as ofp

from controller.state import SqliteStateStore
from tests.support.l2_app import call, flow_mods
from tests.support.overlay_app import HVS, SECTION, bring_up, connect, make_app


def test_connect_builds_the_mesh_and_both_bridges(monkeypatch, tmp_path):
    app = make_app(monkeypatch, tmp_path, SECTION)
    int1, tun1 = bring_up(app, 1)
    assert ("br-tun", {"vx-hv2": ("vxlan", "192.168.50.2")}, "overlay") in app.fake_ovsdb.meshes
    tables = {m.table_id for m in flow_mods(tun1) if m.command == ofp.OFPFC_ADD}
    assert tables == {0, 1, 2, 3, 10, 20, 21}
    vni = [m for m in flow_mods(tun1) if m.table_id == 3 and "tunnel_id" in m.match]
    assert [m.match["tunnel_id"] for m in vni] == [100]       # hv1 hosts VNI 100 only
    ingress = {m.match.get("in_port") for m in flow_mods(int1) if m.table_id == 0}
    assert {2, 100} <= ingress
    status, body, _ = call(app, "GET", "/v1/overlay/hypervisors/hv1")
    assert status == 200 and body["local_vlans"] == {"100": 1} and body["programmed"]


def test_unchanged_plans_are_not_pushed_again(monkeypatch, tmp_path):
    app = make_app(monkeypatch, tmp_path, SECTION)
    int1, tun1 = bring_up(app, 1)
    int1.sent.clear(), tun1.sent.clear()
    app.program()
    assert int1.sent == [] and tun1.sent == []
    status, _, _ = call(app, "POST", "/v1/overlay/networks", b'{"vni": 300}')
    assert status == 201 and int1.sent == [] and tun1.sent == []   # nothing uses it yet
    status, _, _ = call(app, "POST", "/v1/overlay/ports",
                        b'{"hypervisor": "hv1", "port": 3, "vni": 300}')
    assert status == 201 and flow_mods(int1) and flow_mods(tun1)


@pytest.mark.parametrize("path, body, status, message", [
    ("networks", {"vni": 100}, 409, "VNI 100 exists"),
    ("networks", {"vni": 0}, 400, "vni must be"),
    ("networks", {"vni": 5, "tunnel_type": "geneve"}, 400, "tunnel_type"),
    ("hypervisors", dict(HVS[0], name="hv9"), 409, "already has underlay_ip"),
    ("hypervisors", dict(HVS[0], name="hv9", underlay_ip="10.9.9.9"), 409, "datapath"),
    ("hypervisors", {"name": "hv9"}, 400, "needs int_dpid"),
    ("ports", {"hypervisor": "hv7", "port": "x", "vni": 100}, 400, "unknown hypervisor"),
    ("ports", {"hypervisor": "hv1", "port": "nope", "vni": 100}, 400, "has no port 'nope'"),
    ("ports", {"hypervisor": "hv1", "port": 2, "vni": 200}, 409, "already attached"),
    ("ports", {"hypervisor": "hv1", "port": 3, "vni": 999}, 400, "unknown network"),
])
def test_bad_input_is_refused_and_changes_nothing(monkeypatch, tmp_path, path, body, status,
                                                  message):
    app = make_app(monkeypatch, tmp_path, SECTION)
    bring_up(app, 1)
    before = call(app, "GET", "/v1/overlay")[1]
    code, reply, _ = call(app, "POST", f"/v1/overlay/{path}", json.dumps(body).encode())
    assert code == status and message in reply["error"], reply
    assert call(app, "GET", "/v1/overlay")[1] == before
    assert SqliteStateStore("overlay", tmp_path).load()[0] == {}


def test_deletes_in_use_404s_and_persistence(monkeypatch, tmp_path):
    app = make_app(monkeypatch, tmp_path, SECTION)
    bring_up(app, 1)
    assert call(app, "DELETE", "/v1/overlay/networks/100")[0] == 409
    assert call(app, "DELETE", "/v1/overlay/hypervisors/hv1")[0] == 409
    assert call(app, "DELETE", "/v1/overlay/networks/555")[0] == 404
    assert call(app, "GET", "/v1/overlay/hypervisors/hv9")[0] == 404
    assert call(app, "DELETE", "/v1/overlay/ports/hv1/2")[0] == 200     # by number
    assert call(app, "DELETE", "/v1/overlay/ports/hv1/hv1-eth2")[0] == 404
    assert call(app, "POST", "/v1/overlay/networks", b'{"vni": 7, "tunnel_type": "gre"}')[0] == 201
    again = make_app(monkeypatch, tmp_path, SECTION)
    body = call(again, "GET", "/v1/overlay")[1]
    assert [n["vni"] for n in body["networks"]] == [100, 200, 7]
    assert [p["port"] for p in body["ports"]] == ["hv2-eth2"]
    assert again.model.tunnel_ports("hv1") == {"vx-hv2": ("vxlan", "192.168.50.2"),
                                               "gre-hv2": ("gre", "192.168.50.2")}


def test_a_foreign_switch_is_left_alone(monkeypatch, tmp_path):
    app = make_app(monkeypatch, tmp_path, SECTION)
    stranger = connect(app, 0x99, {1: "eth1"})
    assert flow_mods(stranger) == []


def test_bad_config_stops_the_app(monkeypatch, tmp_path):
    with pytest.raises(SystemExit, match="networks\\[1\\]: VNI 100 exists"):
        make_app(monkeypatch, tmp_path, dict(SECTION, networks=[{"vni": 100}, {"vni": 100}]))


def test_a_409_over_another_writers_state_leaves_a_model_that_matches_it(monkeypatch, tmp_path):
    """The other writer removed a network (and its local VLAN): after our 409 the model
    follows that state at once, so the next read does not trip over the VLAN gone."""
    from controller.state import SqliteStateStore
    from tests.support.l2_app import call
    from tests.support.overlay_app import SECTION, bring_up, make_app
    app = make_app(monkeypatch, tmp_path, SECTION)
    bring_up(app, 1)
    assert call(app, "POST", "/v1/overlay/networks", b'{"vni": 300}')[0] == 201
    assert call(app, "POST", "/v1/overlay/ports",
                b'{"hypervisor": "hv1", "port": 3, "vni": 300}')[0] == 201
    other = SqliteStateStore("overlay", tmp_path)
    doc, rev = other.load()
    doc["ports"]["hv1/hv1-eth3"], doc["networks"]["300"] = None, None
    doc["local_vlans"]["hv1"] = {k: v for k, v in doc["local_vlans"]["hv1"].items()
                                 if k != "300"}
    other.save(doc, rev)
    assert call(app, "POST", "/v1/overlay/networks", b'{"vni": 400}')[0] == 409
    status, body, _ = call(app, "GET", "/v1/overlay")   # before any apply has run
    assert status == 200, body
    assert 300 not in {n["vni"] for n in body["networks"]}
