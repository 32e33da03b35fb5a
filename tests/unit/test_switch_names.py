"""Switches by bridge name at every edge: flows/dpid.py `resolve`, the names the runtime
learns from each connection's LOCAL port (controller/switch_names.py), the REST paths
and body fields that take a switch, /v1/switches and /v1/runtime/switches showing the
names, and the `sdn` CLI through the REST API (no switch, no root)."""
import json

import pytest
import webob
from hypothesis import given, strategies as st
from ryu.controller import ofp_event
from ryu.controller.handler import DEAD_DISPATCHER
from ryu.ofproto import ofproto_v1_3_parser as parser

from controller import mastership, runtime
from controller.state import SqliteStateStore
from controller.switch_names import SwitchNames
from flows import dpid, switch_entries
from sdn.client import ApiFailure
from tests.support import cli_run, overlay_app, qos_app
from tests.support.l2_app import call, make_app as make_l2_app
from tests.support.fakeswitch import FakeSwitch
from tests.support.vlan_app import SECTION, bring_up, make_vlan_app, port_desc

SPELLINGS_OF_1 = ["s1", "1", "0x1", "0X1", "0000000000000001"]


# --- the pure resolver ----------------------------------------------------------------

@pytest.mark.parametrize("ref", SPELLINGS_OF_1 + [1])
def test_a_name_and_every_datapath_id_spelling_resolve_to_the_same_switch(ref):
    assert dpid.resolve(ref, {"s1": [1], "s2": [2]}) == 1


def test_a_datapath_id_needs_no_connected_switch_but_a_name_does():
    assert dpid.resolve("0x63", {"s1": [1]}) == 99   # the caller says "not connected"
    with pytest.raises(dpid.UnknownSwitchName) as unknown:
        dpid.resolve("s9", {"s1": [1]})
    assert str(unknown.value) == f"no connected switch is named 's9'; give {dpid.REFERENCES}"


def test_a_name_two_switches_have_is_refused_naming_both():
    with pytest.raises(dpid.AmbiguousSwitchName) as refused:
        dpid.resolve("br-int", {"br-int": [0x1001, 0x1002]})
    assert "0000000000001001, 0000000000001002" in str(refused.value)
    # a bridge called like another switch's datapath id answers to both
    with pytest.raises(dpid.AmbiguousSwitchName):
        dpid.resolve("7", {"7": [9]})
    assert dpid.resolve("7", {"7": [7]}) == 7


@pytest.mark.parametrize("ref", ["", "0xzz", "0x", "18446744073709551616", "-1", "+1",
                                 "a/b", "a:b", " s1", "s1 ", "x" * 16, None, -1, True])
def test_neither_a_datapath_id_nor_a_possible_bridge_name_is_a_bad_spelling(ref):
    with pytest.raises(dpid.DpidError) as refused:
        dpid.resolve(ref, {"s1": [1]})
    assert type(refused.value) is dpid.DpidError


@given(st.one_of(st.text(max_size=20), st.integers(min_value=-2, max_value=2 ** 65)))
def test_rest_takes_exactly_the_switch_references_a_config_file_takes(ref):
    try:
        switch_entries.switch_ref(ref, "switch")
        config_takes = True
    except ValueError:
        config_takes = False
    try:
        dpid.resolve(ref, {})
        rest_takes = True
    except dpid.UnknownSwitchName:   # a possible name, of no connected switch
        rest_takes = True
    except dpid.DpidError:
        rest_takes = False
    assert rest_takes == config_takes


# --- the runtime learns names from the LOCAL port -------------------------------------

def features(datapath):
    msg = parser.OFPSwitchFeatures(datapath, datapath_id=datapath.id)
    return ofp_event.EventOFPSwitchFeatures(msg)


def test_each_connection_is_asked_its_ports_once_and_named_by_its_local_port(monkeypatch,
                                                                             tmp_path):
    vlan = make_vlan_app(monkeypatch, tmp_path)
    l2 = make_l2_app(monkeypatch, vlan.runtime)
    switch = FakeSwitch(1)
    for app in (vlan, l2):             # what Ryu does with a new connection's features
        event = features(switch)
        for handler in app.get_handlers(event):
            handler(event)             # the apps' own handlers ask for nothing more
    asked = [m for m in switch.sent if isinstance(m, parser.OFPPortDescStatsRequest)]
    assert len(asked) == 1             # one request for all apps
    assert l2.runtime.names.name_of(1) is None
    l2._learn_bridge_name(port_desc(switch, bridge="s1"))   # the base handler of every app
    assert l2.runtime.names.by_name() == {"s1": [1]}
    l2._switch_connected(features(switch))
    assert call(l2, "GET", "/v1/switches")[1][0]["name"] == "s1"
    assert call(l2, "GET", "/v1/runtime/switches")[1][0]["name"] == "s1"
    status, body, _ = call(l2, "GET", "/v1/runtime/switches/s1")
    assert status == 200 and body["dpid"] == "0000000000000001" and body["name"] == "s1"
    gone = ofp_event.EventOFPStateChange(switch)
    gone.state = DEAD_DISPATCHER
    l2.get_handlers(gone, DEAD_DISPATCHER)
    assert call(l2, "GET", "/v1/runtime/switches/s1")[0] == 404


def test_an_older_connections_reply_does_not_name_the_new_one():
    names, old, new = SwitchNames(), FakeSwitch(1), FakeSwitch(1)
    assert names.connected(old) and not names.connected(old)
    assert names.connected(new)
    names.named(old, "stale")
    names.named(new, "s1")
    names.gone(old)            # the old connection's end does not end the new one
    assert names.by_name() == {"s1": [1]}


def test_until_the_local_port_names_a_switch_a_name_ovsdb_gave_stands_in():
    ovsdb_said = {1: "br0"}
    names, switch = SwitchNames(fallback=ovsdb_said.get), FakeSwitch(1)
    names.named(switch, "never")   # not connected (an ended connection's late reply)
    assert names.by_name() == {}
    names.connected(switch)
    assert names.resolve("br0") == 1
    names.named(switch, "s1")      # the switch's own word wins
    assert names.by_name() == {"s1": [1]}


def test_the_runtime_takes_the_name_the_bond_apps_ovsdb_lookup_found():
    rt = runtime.Runtime(elector=mastership.SingleNode())
    rt.claims.claim_names("bond", ["br0"], resolver=lambda number: "br0")   # OVSDB's answer
    switch = FakeSwitch(1)
    rt.names.connected(switch)
    assert rt.names.by_name() == {}           # nobody asked OVSDB yet: no I/O here
    assert rt.claims.owner(1) == "bond"       # asked on the connection's first event
    assert rt.names.resolve("br0") == 1


def name(app, datapath, bridge, ports=None):
    """What every app's base does: the runtime hears of the connection (and asks its
    ports), the reply's LOCAL port names it."""
    app.runtime.connected(datapath)
    app._learn_bridge_name(port_desc(datapath, ports or {}, bridge))


# --- REST paths -------------------------------------------------------------------------

def named_vlan_app(monkeypatch, tmp_path, *bridges):
    """The VLAN app with switches 1, 2, ... connected, called `bridges`."""
    app = make_vlan_app(monkeypatch, tmp_path, SECTION)
    for number, bridge in enumerate(bridges, 1):
        name(app, bring_up(app, number), bridge)
    return app


@pytest.mark.parametrize("ref", SPELLINGS_OF_1)
def test_a_vlan_change_by_any_spelling_reaches_the_switch_and_stores_its_dpid(
        monkeypatch, tmp_path, ref):
    app = named_vlan_app(monkeypatch, tmp_path, "s1", "s2")
    status, reply, _ = call(app, "PUT", f"/v1/switches/{ref}/ports/uplink/vlan",
                            b'{"trunks": [30]}')
    assert status == 200 and reply["dpid"] == "0000000000000001" and reply["trunks"] == [30]
    assert SqliteStateStore("vlan", tmp_path).load()[0] == {
        "0000000000000001": {"3": {"trunks": [30]}}}
    assert app.overrides == {1: {"3": {"trunks": [30]}}}   # inside: the int
    assert call(app, "GET", "/v1/switches/s2/ports/uplink/vlan")[1]["trunks"] == [10, 20]


def test_rest_refuses_unknown_ambiguous_and_bad_switches_and_changes_nothing(monkeypatch,
                                                                              tmp_path):
    app = named_vlan_app(monkeypatch, tmp_path, "s1", "s1")   # two OVS hosts' "s1"
    for ref, status, words in (
            ("s9", 404, "no connected switch is named 's9'"),
            ("s1", 409, "'s1' is ambiguous: it names 0000000000000001, 0000000000000002"),
            ("0xzz", 400, "bad switch '0xzz'"), ("a:b", 400, "bad switch 'a:b'")):
        got, reply, _ = call(app, "PUT", f"/v1/switches/{ref}/ports/uplink/vlan",
                             b'{"trunks": [30]}')
        assert (got, words in reply["error"]) == (status, True), reply
    assert call(app, "PUT", "/v1/switches/0x2/ports/uplink/vlan", b'{"trunks": [30]}')[0] == 200
    assert SqliteStateStore("vlan", tmp_path).load()[0] == {
        "0000000000000002": {"3": {"trunks": [30]}}}


def test_qos_rules_by_bridge_name(monkeypatch, tmp_path):
    app = qos_app.make_app(monkeypatch, tmp_path, qos_app.QOS_LAB_CONFIG["qos"])
    name(app, qos_app.bring_up(app), "s1")
    by_name = call(app, "GET", "/v1/qos/s1/rules")
    assert by_name[0] == 200 and by_name[1] == call(app, "GET", "/v1/qos/1/rules")[1]
    assert call(app, "GET", "/v1/qos/s1/s1-eth1")[1]["dpid"] == "0000000000000001"
    assert call(app, "GET", "/v1/qos/s2/rules")[0] == 404


# --- a REST body field -------------------------------------------------------------------

def test_an_overlay_hypervisor_given_by_bridge_names_is_stored_by_datapath_id(monkeypatch,
                                                                             tmp_path):
    app = overlay_app.make_app(monkeypatch, tmp_path, {})
    for number, bridge in ((0x3001, "br-int"), (0x3002, "br-tun"), (0x4001, "br-int")):
        name(app, FakeSwitch(number), bridge)
    body = {"name": "hv3", "int_dpid": "br-int", "tun_dpid": "br-tun",
            "underlay_ip": "192.168.50.3"}
    status, reply, _ = call(app, "POST", "/v1/overlay/hypervisors", json.dumps(body).encode())
    assert status == 409 and "'br-int' is ambiguous" in reply["error"]   # two hosts have one
    body["int_dpid"] = "0x3001"
    status, reply, _ = call(app, "POST", "/v1/overlay/hypervisors", json.dumps(body).encode())
    assert status == 201 and reply["tun_dpid"] == "0000000000003002", reply
    stored = SqliteStateStore("overlay", tmp_path).load()[0]
    assert stored["hypervisors"]["hv3"]["tun_dpid"] == "0000000000003002"


# --- the CLI, through the REST API -------------------------------------------------------

class WsgiApi:
    """The CLI's client, answered by an app's WSGI application instead of HTTP."""

    def __init__(self, app):
        self.app, self.paths = app, []

    def call(self, method, path, body=None):
        self.paths.append(path)
        req = webob.Request.blank(path, method=method)
        if body is not None:
            req.body = json.dumps(body).encode()
        resp = req.get_response(self.app.wsgi)
        reply = json.loads(resp.body)
        if resp.status_int >= 400:
            raise ApiFailure(resp.status_int, reply["error"])
        return reply


def run_cli(monkeypatch, app, *argv):
    api = WsgiApi(app)
    return (*cli_run.run_cli(monkeypatch, api, *argv), api.paths)


@pytest.mark.parametrize("ref", SPELLINGS_OF_1)
def test_the_cli_takes_every_spelling_of_a_switch(monkeypatch, tmp_path, ref):
    app = named_vlan_app(monkeypatch, tmp_path, "s1", "s2")
    code, out, err, _ = run_cli(monkeypatch, app, "--json", "vlan", "set", ref, "uplink",
                                "--trunks", "30")
    assert code == 0 and json.loads(out)["dpid"] == "0000000000000001", err
    assert SqliteStateStore("vlan", tmp_path).load()[0] == {
        "0000000000000001": {"3": {"trunks": [30]}}}


def test_the_cli_says_what_the_controller_refused(monkeypatch, tmp_path):
    app = named_vlan_app(monkeypatch, tmp_path, "s1", "s1")
    code, _, err, _ = run_cli(monkeypatch, app, "vlan", "show", "s1", "uplink")
    assert code != 0 and "'s1' is ambiguous" in err
    code, _, err, _ = run_cli(monkeypatch, app, "vlan", "show", "s9", "uplink")
    assert code != 0 and "no connected switch is named 's9'" in err


def test_cli_qos_show_filters_by_bridge_name(monkeypatch, tmp_path):
    app = qos_app.make_app(monkeypatch, tmp_path, qos_app.QOS_LAB_CONFIG["qos"])
    for number in (1, 2):
        name(app, qos_app.bring_up(app, number), f"s{number}")
    code, out, err, paths = run_cli(monkeypatch, app, "--json", "qos", "show", "s2")
    assert code == 0, err
    assert [s["dpid"] for s in json.loads(out)] == ["0000000000000002"]
    assert "/v1/runtime/switches/s2" in paths
