"""flows/bond.py (validation, OVSDB settings, the NORMAL entry) and apps/bond.py driven
by synthetic events with a fake OVSDB: what it asks of OVSDB, what it installs, REST."""
import json

import pytest
from ryu.base import app_manager
from ryu.controller import handler, ofp_event
from ryu.controller.handler import DEAD_DISPATCHER
from ryu.ofproto import ofproto_v1_3 as ofp

from apps import bond as bond_app
from controller import pipeline, southbound
from controller.state import SqliteStateStore
from flows import bond
from tests.support.fakeswitch import FakeSwitch
from tests.support import l2_app as l2_tests
from tests.support.l2_app import Features, call
from tests.support.vlan_app import port_desc
from tests.support.bond_app import BODY, NAMES, bring_up, make_app


@pytest.mark.parametrize("body, message", [
    ({"members": ["a"]}, "two or more distinct"),
    ({"members": ["a", "a"]}, "two or more distinct"),
    ({"members": ["a", "b"], "mode": "round-robin"}, "mode must be one of"),
    ({"members": ["a", "b"], "lacp": "on"}, "lacp must be one of"),
    ({"members": ["a", "b"], "mode": "balance-tcp"}, "balance-tcp needs LACP"),
    ({"members": ["a", "b"], "primary": "c"}, "primary 'c' is not one of"),
    ({"members": ["a", "b"], "speed": 1}, "unknown key(s) speed"),
])
def test_bad_bonds_are_refused_with_a_reason(body, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        bond.bond_from_dict("s1", "bond0", body)


def test_settings_and_plan():
    want = bond.bond_from_dict("s1", "bond0", dict(BODY, mode="balance-slb", lacp="active"))
    assert bond.ovsdb_settings(want) == {
        "mode": "balance-slb", "lacp": "active",
        "other_config": {"bond-rebalance-interval": "1000", "lacp-time": "fast",
                         "bond-primary": "s1-eth3"}}
    (entry,) = bond.switch_plan([want])
    assert entry.table == "ingress" and entry.actions[0].port == "normal"
    assert bond.switch_plan([]) == []       # no bond: nothing forwards (parallel links loop)
    with pytest.raises(ValueError, match=r"bonds\[0\] needs switch and name"):
        bond.BondSettings(bonds=[{"members": ["a", "b"]}])


def forwards(switch):
    return [s for s in switch.flows.values()
            if s.cookie == pipeline.cookie(bond.FORWARD)]


def test_rest_bonds_through_ovsdb_then_forwards_and_persists(monkeypatch, tmp_path):
    app = make_app(monkeypatch, tmp_path)
    switch = bring_up(app)
    assert forwards(switch) == []                       # no bond yet: no NORMAL
    status, body, _ = call(app, "PUT", "/v1/bonds/1/s1-bond", json.dumps(BODY).encode())
    assert status == 200 and body["ovsdb"]["members"] == ["s1-eth3", "s1-eth4"]
    assert ("set", "s1", "s1-bond", ("s1-eth3", "s1-eth4"), "active-backup", "off") in \
        app.ovsdb.calls
    (normal,) = forwards(switch)
    assert normal.instructions[0].actions[0].port == ofp.OFPP_NORMAL
    assert SqliteStateStore("bond", tmp_path).load()[0] == {"0000000000000001": {"s1-bond": BODY}}
    status, body, _ = call(app, "GET", "/v1/bonds")
    assert [b["name"] for b in body] == ["s1-bond"]
    status, _, _ = call(app, "DELETE", "/v1/bonds/1/s1-bond")
    assert status == 200 and app.ovsdb.bonds == {} and forwards(switch) == []


@pytest.mark.parametrize("body, status, message", [
    ({"members": ["s1-eth3", "s1-eth9"]}, 400, "has no port(s) s1-eth9"),
    ({"members": ["s1-eth3"]}, 400, "two or more"),
    ({"members": ["s1-eth3", "s1-eth4"], "mode": "x"}, 400, "mode must be"),
])
def test_bad_rest_input_changes_nothing(monkeypatch, tmp_path, body, status, message):
    app = make_app(monkeypatch, tmp_path)
    bring_up(app)
    code, reply, _ = call(app, "PUT", "/v1/bonds/1/s1-bond", json.dumps(body).encode())
    assert code == status and message in reply["error"]
    assert app.ovsdb.calls == [] and SqliteStateStore("bond", tmp_path).load()[0] == {}


def owner(app, dpid):
    """Which app owns switch `dpid` in the runtime `app` shares with the others."""
    return app.runtime.claims.owner(dpid)


def test_ovsdb_refusing_is_a_502_and_nothing_is_saved(monkeypatch, tmp_path):
    app = make_app(monkeypatch, tmp_path)
    switch = bring_up(app)
    app.ovsdb.refuse = True
    code, reply, _ = call(app, "PUT", "/v1/bonds/1/s1-bond", json.dumps(BODY).encode())
    assert code == 502 and "OVSDB refused" in reply["error"]
    assert SqliteStateStore("bond", tmp_path).load()[0] == {} and forwards(switch) == []


def test_config_bonds_are_made_when_the_switch_connects(monkeypatch, tmp_path):
    app = make_app(monkeypatch, tmp_path, {"bonds": [dict(BODY, switch="s1", name="s1-bond")]})
    switch = bring_up(app)
    assert app.ovsdb.bonds["s1-bond"]["other_config"]["bond-primary"] == "s1-eth3"
    assert len(forwards(switch)) == 1


def test_a_bridge_bonded_over_rest_is_taken_from_the_other_apps_and_given_back(
        monkeypatch, tmp_path):
    app = make_app(monkeypatch, tmp_path)
    learning = l2_tests.make_app(monkeypatch, app.runtime)   # another app, same process
    handler.register_instance(learning)
    monkeypatch.setattr(app_manager, "SERVICE_BRICKS", {"Bond": app, "L2Switch": learning})
    first = bring_up(app)                               # no bond yet: everybody's
    assert owner(app, 1) is None and first.state != DEAD_DISPATCHER
    assert call(app, "PUT", "/v1/bonds/1/s1-bond", json.dumps(BODY).encode())[0] == 200
    assert first.state == DEAD_DISPATCHER and owner(app, 1) == app.name   # taken
    gone = ofp_event.EventOFPStateChange(first)
    gone.state = DEAD_DISPATCHER
    app._switch_gone(gone)

    second = FakeSwitch(1, app)
    app.push(second, [pipeline.canary("l2_switch")])   # what the learning app left
    app._switch_connected(ofp_event.EventOFPSwitchFeatures(Features(second)))
    app._port_desc(port_desc(second, NAMES, "s1"))
    assert second.state != DEAD_DISPATCHER and len(forwards(second)) == 1
    assert [s.cookie >> 56 for s in second.flows.values()
            if s.cookie >> 56 != pipeline.APP_IDS["bond"]] == []   # nothing of the others
    assert learning.get_handlers(ofp_event.EventOFPSwitchFeatures(Features(second))) == []
    assert learning.get_handlers(ofp_event.EventOFPSwitchFeatures(Features(FakeSwitch(2))))

    assert call(app, "DELETE", "/v1/bonds/1/s1-bond")[0] == 200   # its last bond
    assert owner(app, 1) is None and second.state == DEAD_DISPATCHER   # theirs again


def test_a_bridge_the_config_bonds_by_name_is_claimed_when_it_connects(monkeypatch, tmp_path):
    app = make_app(monkeypatch, tmp_path, {"bonds": [dict(BODY, switch="s1", name="s1-bond")]})
    monkeypatch.setattr(app_manager, "SERVICE_BRICKS",
                        {"Bond": app, "L2Switch": l2_tests.make_app(monkeypatch, app.runtime)})
    assert owner(app, 1) == app.name and owner(app, 2) is None   # OVSDB: dpid 1 is s1
    switch = bring_up(app)
    assert switch.state != DEAD_DISPATCHER and len(forwards(switch)) == 1   # no reconnect
    assert call(app, "DELETE", "/v1/bonds/1/s1-bond")[0] == 200
    assert owner(app, 1) is None and switch.state == DEAD_DISPATCHER


def test_bonded_bridges_are_claimed_before_they_connect(monkeypatch, tmp_path):
    SqliteStateStore("bond", tmp_path).save({"0000000000000003": {"s3-bond": BODY},
                                             "0000000000000004": {"s4-bond": None}}, 0)
    app = make_app(monkeypatch, tmp_path, {"bonds": [
        dict(BODY, switch=1, name="b1"), dict(BODY, switch="0000000000000002", name="b2"),
        dict(BODY, switch="s5", name="b5")]})
    assert {d: owner(app, d) for d in range(1, 7)} == {   # s5: by name, OVSDB names dpid 5
        1: app.name, 2: app.name, 3: app.name, 4: None, 5: app.name, 6: None}


def in_fabric(monkeypatch):
    """ryu-manager has loaded the topology app's class (before any app is built)."""
    from apps import topology as topology_app
    monkeypatch.setattr(app_manager.AppManager.get_instance(), "applications_cls",
                        {"apps.bond": bond_app.Bond, "apps.topology": topology_app.Topology})


def test_the_fabric_is_known_from_the_loaded_app_classes(monkeypatch):
    monkeypatch.setattr(app_manager.AppManager.get_instance(), "applications_cls",
                        {"apps.bond": bond_app.Bond})
    monkeypatch.setattr(app_manager, "SERVICE_BRICKS", {})
    assert not southbound.fabric_loaded()
    in_fabric(monkeypatch)
    assert southbound.fabric_loaded()


def test_with_the_topology_app_bonded_bridges_stay_in_the_fabric(monkeypatch, tmp_path):
    """No claim (the other apps, the topology app's flood tree among them, program the
    bridge), no NORMAL (it would flood out of every port of a loop), the bond still made
    in OVSDB; a REST bond does not take the bridge from the others either."""
    in_fabric(monkeypatch)
    app = make_app(monkeypatch, tmp_path, {"bonds": [
        dict(BODY, switch="s1", name="s1-bond"), dict(BODY, switch=3, name="s3-bond")]})
    learning = l2_tests.make_app(monkeypatch, app.runtime)
    handler.register_instance(learning)
    monkeypatch.setattr(app_manager, "SERVICE_BRICKS", {"Bond": app, "L2Switch": learning})
    assert [owner(app, dpid) for dpid in (1, 3)] == [None, None]
    first = FakeSwitch(1, app)
    app.push(first, [pipeline.canary("l2_switch")])     # the learning app's
    app._switch_connected(ofp_event.EventOFPSwitchFeatures(Features(first)))
    app._port_desc(port_desc(first, NAMES, "s1"))
    assert app.ovsdb.bonds["s1-bond"]["members"] == ["s1-eth3", "s1-eth4"]
    assert forwards(first) == [] and first.state != DEAD_DISPATCHER
    assert any(s.cookie >> 56 == pipeline.APP_IDS["l2_switch"] for s in first.flows.values())
    assert learning.get_handlers(ofp_event.EventOFPSwitchFeatures(Features(first)))

    second = FakeSwitch(2, app)                                 # bonded over REST
    app._switch_connected(ofp_event.EventOFPSwitchFeatures(Features(second)))
    app._port_desc(port_desc(second, {n: f"s2-eth{n}" for n in NAMES}, "s2"))
    assert call(app, "PUT", "/v1/bonds/2/s2-bond", json.dumps(
        dict(BODY, members=["s2-eth3", "s2-eth4"], primary="s2-eth3")).encode())[0] == 200
    assert second.state != DEAD_DISPATCHER and owner(app, 2) is None
    assert forwards(second) == []
    status, body, _ = call(app, "GET", "/v1/bonds")
    assert {b["name"]: b["forwarding"] for b in body} == {"s1-bond": "fabric",
                                                          "s2-bond": "fabric"}


def test_a_bond_another_writer_saved_over_is_a_409_and_leaves_ovsdb_as_it_was(monkeypatch,
                                                                              tmp_path):
    app = make_app(monkeypatch, tmp_path)
    switch = bring_up(app)
    other = SqliteStateStore("bond", tmp_path)
    other.save({}, other.load()[1])
    status, body, _ = call(app, "PUT", "/v1/bonds/1/s1-bond", json.dumps(BODY).encode())
    assert status == 409 and "changed by another writer" in body["error"]
    assert app.ovsdb.bonds == {} and forwards(switch) == []   # the new bond went again
    status, _, _ = call(app, "PUT", "/v1/bonds/1/s1-bond", json.dumps(BODY).encode())
    assert status == 200 and list(app.ovsdb.bonds) == ["s1-bond"]
