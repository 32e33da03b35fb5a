"""apps/security.py driven by synthetic OpenFlow events and its REST API at the WSGI level
(no switch, no root): the config's bindings programmed, rules added and removed over
REST and kept across a restart, bad bodies refused with nothing changed."""
import json

import pytest
from ryu.ofproto import ofproto_v1_3 as ofp

from apps import security as security_app
from controller import config, pipeline, rest
from controller.state import SqliteStateStore
from flows import security
from tests.support.fakeswitch import run_inline
from tests.support.l2_app import call, flow_mods
from tests.support.vlan_app import bring_up

SECTION = {"groups": {"web": [{"direction": "ingress", "protocol": "tcp", "ports": 80}]},
           "ports": [{"switch": "br0", "port": "vm1", "addresses": ["10.0.0.1"],
                      "groups": ["web"]}]}


def make_app(monkeypatch, tmp_path, section=SECTION):
    monkeypatch.setenv("SDN_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(config, "load_file", lambda path=None: {"security": section})
    wsgi = rest.WSGIApplication()
    app = security_app.Security(wsgi=wsgi)
    app.wsgi = wsgi
    run_inline(monkeypatch, security_app.hub)
    return app


def rule_cookies(datapath, command=ofp.OFPFC_ADD):
    return {m.cookie for m in flow_mods(datapath) if m.command == command
            and pipeline.owner_of(m.cookie).purpose == "rule"}


def post(app, body, group="web"):
    return call(app, "POST", f"/v1/security/groups/{group}/rules", json.dumps(body).encode())


def test_the_configs_bound_port_is_programmed_in_the_security_tables(monkeypatch, tmp_path):
    app = make_app(monkeypatch, tmp_path)
    datapath = bring_up(app)
    tables = {m.table_id for m in flow_mods(datapath) if m.command == ofp.OFPFC_ADD
              and pipeline.owner_of(m.cookie).app == "security"}
    assert {pipeline.table_id(t) for t in ("sg", "sg_out", "sg_in")} <= tables
    assert rule_cookies(datapath) == {pipeline.cookie(security.rule_owner(1))}
    status, body, _ = call(app, "GET", "/v1/security")
    assert status == 200 and body["groups"]["web"][0]["ports"] == "80"
    assert body["ports"] == [{"dpid": "0000000000000001", "port": 1, "name": "vm1",
                              "bound": True, "addresses": ["10.0.0.1"], "groups": ["web"],
                              "network": 0}]


def test_a_rule_added_and_removed_over_rest_is_pushed_and_survives_a_restart(monkeypatch,
                                                                            tmp_path):
    app = make_app(monkeypatch, tmp_path)
    datapath = bring_up(app)
    datapath.sent.clear()
    status, rule, _ = post(app, {"direction": "ingress", "protocol": "udp", "ports": "53-54"})
    assert status == 201 and rule["id"] == 2 and rule["group"] == "web", rule
    assert rule_cookies(datapath) == {pipeline.cookie(security.rule_owner(2))}
    again = make_app(monkeypatch, tmp_path)           # a new controller process
    assert [r["id"] for r in call(again, "GET", "/v1/security")[1]["groups"]["web"]] == [1, 2]
    datapath.sent.clear()
    status, gone, _ = call(app, "DELETE", "/v1/security/rules/1")   # a config file's rule
    assert status == 200 and gone["id"] == 1
    deleted = {m.cookie for m in flow_mods(datapath) if m.command == ofp.OFPFC_DELETE_STRICT}
    assert deleted == {pipeline.cookie(security.rule_owner(1))}
    assert call(app, "GET", "/v1/security/rules/1")[0] == 404
    again = make_app(monkeypatch, tmp_path)
    assert [r["id"] for r in call(again, "GET", "/v1/security")[1]["groups"]["web"]] == [2]


@pytest.mark.parametrize("body", [
    {"direction": "in"}, {"direction": "ingress", "ports": 80}, {"id": 7, "direction": "egress"},
    {"direction": "ingress", "protocol": "tcp", "ports": "90-80"}, {"direction": "ingress",
                                                                   "remote": "not an ip"}])
def test_a_bad_rule_is_a_400_and_changes_nothing(monkeypatch, tmp_path, body):
    app = make_app(monkeypatch, tmp_path)
    datapath = bring_up(app)
    before = call(app, "GET", "/v1/security")[1]
    datapath.sent.clear()
    status, reply, _ = post(app, body)
    assert status == 400 and reply["error"], reply
    assert call(app, "GET", "/v1/security")[1] == before and flow_mods(datapath) == []
    assert SqliteStateStore("security", tmp_path).load()[0] == {}
    assert post(app, {"direction": "ingress"}, group="bad name!")[0] == 400
    for raw in (b"", b"{", b"[1]"):
        assert call(app, "POST", "/v1/security/groups/web/rules", raw)[0] == 400


def test_bindings_over_rest(monkeypatch, tmp_path):
    app = make_app(monkeypatch, tmp_path)
    datapath = bring_up(app)
    path = "/v1/switches/1/ports/vm2/security"
    assert call(app, "GET", path)[1]["bound"] is False
    for body in ({"groups": ["web"]}, {"addresses": ["10.0.0.2"], "groups": ["nope"]},
                 {"addresses": ["10.0.0.2"], "network": 9999}, {"addresses": "10.0.0.2"}):
        assert call(app, "PUT", path, json.dumps(body).encode())[0] == 400, body
    datapath.sent.clear()
    status, bound, _ = call(app, "PUT", path, b'{"addresses": ["10.0.0.2"], "groups": ["web"]}')
    assert status == 200 and bound["bound"] and bound["port"] == 2
    assert any(m.match.get("in_port") == 2 for m in flow_mods(datapath))
    assert call(app, "DELETE", path)[1]["bound"] is False
    assert call(app, "GET", "/v1/switches/1/ports/eth9/security")[0] == 400
    assert call(app, "GET", "/v1/switches/2/ports/1/security")[0] == 404


@pytest.mark.parametrize("section, message", [
    ({"groups": {"web": [{"direction": "up"}]}}, "groups.web\\[0\\]: rule direction"),
    ({"ports": [{"switch": "br0", "port": "vm1", "addresses": ["10.0.0.1"],
                 "groups": ["web"]}]}, "unknown group"),
    ({"colour": 1}, "unknown key"),
])
def test_a_bad_section_stops_the_app_with_a_clear_message(monkeypatch, tmp_path, section,
                                                          message):
    with pytest.raises(SystemExit, match=message):
        make_app(monkeypatch, tmp_path, section)


def test_a_stored_state_that_does_not_parse_is_left_out_not_a_crash(monkeypatch, tmp_path):
    """What another version or node wrote: the good parts apply, the rest is logged."""
    SqliteStateStore("security", tmp_path).save({
        "rules": {"5": {"group": "web", "direction": "ingress", "protocol": "udp"},
                  "6": {"group": "web", "direction": "sideways"}, "x": None, "7": [1]},
        "ports": {"0000000000000001": {"2": {"addresses": ["10.0.0.2"], "groups": ["web"]},
                                       "3": {"addresses": "nope"}}, "junk": 5}}, 0)
    app = make_app(monkeypatch, tmp_path)
    datapath = bring_up(app)
    body = call(app, "GET", "/v1/security")[1]
    assert [r["id"] for r in body["groups"]["web"]] == [1, 5]
    assert [p["port"] for p in body["ports"]] == [1, 2]
    assert any(m.match.get("in_port") == 2 for m in flow_mods(datapath))
    status, _, _ = post(app, {"direction": "egress"})   # a change still works
    assert status == 201


def test_the_last_rule_of_a_group_a_port_uses_can_go(monkeypatch, tmp_path):
    app = make_app(monkeypatch, tmp_path)
    bring_up(app)
    assert call(app, "DELETE", "/v1/security/rules/1")[0] == 200
    body = call(app, "GET", "/v1/security")[1]
    assert body["groups"]["web"] == [] and body["ports"][0]["groups"] == ["web"]


def test_an_acl_over_rest_is_pushed_kept_and_removed(monkeypatch, tmp_path):
    app = make_app(monkeypatch, tmp_path)
    datapath = bring_up(app)
    datapath.sent.clear()
    body = {"switch": "br0", "port": "vm2", "match": {"udp_dst": 53}, "action": "drop"}
    status, acl, _ = call(app, "POST", "/v1/security/acls", json.dumps(body).encode())
    assert status == 201 and acl["id"] == 1 and acl["match"]["udp_dst"] == 53, acl
    (mod,) = [m for m in flow_mods(datapath) if pipeline.owner_of(m.cookie).purpose == "acl"]
    assert mod.table_id == pipeline.table_id("sg") and mod.match.get("in_port") == 2
    assert mod.instructions == []                                   # drop
    assert call(make_app(monkeypatch, tmp_path), "GET", "/v1/security")[1]["acls"] == [acl]
    for bad in ({"action": "reject"}, {"action": "drop", "vlan": 5000}, {"id": 9,
                                                                           "action": "drop"}):
        assert call(app, "POST", "/v1/security/acls", json.dumps(bad).encode())[0] == 400
    assert call(app, "GET", "/v1/security/acls/7")[0] == 404
    assert call(app, "DELETE", "/v1/security/acls/1")[1]["id"] == 1
    assert call(app, "GET", "/v1/security")[1]["acls"] == []


def test_a_counters_read_is_what_metrics_reports_without_asking_the_switch(monkeypatch,
                                                                           tmp_path):
    app = make_app(monkeypatch, tmp_path)   # rule 1's entries, as the switch reports them
    holding = [s for s in security.desired(app.bindings(_br0()), app.groups())
               if s.owner == security.rule_owner(1)]
    datapath = bring_up(app, holding=holding)
    assert app.read_counters(datapath) == {1: (3 * len(holding), 180 * len(holding))}
    families = {f.name: f for f in app.metric_families()}
    (sample,) = families["sdn_security_rule_packets"].samples
    assert sample.labels["rule"] == "1" and sample.labels["group"] == "web"
    assert sample.value == 3 * len(holding)
    sent = len(datapath.sent)
    list(app.metric_families())
    assert len(datapath.sent) == sent          # a scrape sends nothing


def _br0():
    """bring_up's switch, as the app sees it once its ports are known."""
    from controller.ports import SwitchPorts
    from tests.support.l2_app import FakeDatapath
    switch = SwitchPorts(FakeDatapath(1))
    switch.name, switch.ports = "br0", {1: "vm1", 2: "vm2", 3: "uplink"}
    return switch


def test_a_remote_group_rule_over_rest_and_a_port_joining_it(monkeypatch, tmp_path):
    """A rule naming a group that does not exist is a 400; one naming its own group makes
    the members' entries, and a port bound over REST becomes a member at once."""
    app = make_app(monkeypatch, tmp_path)
    datapath = bring_up(app)
    before = call(app, "GET", "/v1/security")[1]
    status, reply, _ = post(app, {"direction": "ingress", "remote_group": "nobody"})
    assert status == 400 and "nobody" in reply["error"], reply
    assert call(app, "GET", "/v1/security")[1] == before
    status, rule, _ = post(app, {"direction": "ingress", "remote_group": "web"})
    assert status == 201 and rule["remote_group"] == "web", rule

    def members():
        return {m.match.get("ipv4_src") for m in flow_mods(datapath)
                if m.command == ofp.OFPFC_ADD
                and pipeline.owner_of(m.cookie) == security.MEMBERS}
    assert members() == {"10.0.0.1"}
    datapath.sent.clear()
    path = "/v1/switches/1/ports/2/security"
    assert call(app, "PUT", path, b'{"addresses": ["10.0.0.2"], "groups": ["web"]}')[0] == 200
    assert members() == {"10.0.0.2"}              # the new member's entry, pushed at once
    assert call(app, "GET", "/v1/security/rules/2")[1]["remote_group"] == "web"


CONNTRACK = """\
tcp,orig=(src=10.0.0.2,dst=10.0.0.1,sport=40000,dport=80),reply=(src=10.0.0.1,dst=10.0.0.2,sport=80,dport=40000),zone=16384,protoinfo=(state=ESTABLISHED)
tcp,orig=(src=10.0.0.3,dst=10.0.0.1,sport=40001,dport=80),reply=(src=10.0.0.1,dst=10.0.0.3,sport=80,dport=40001),zone=16384,mark=1,protoinfo=(state=ESTABLISHED)
udp,orig=(src=10.0.0.2,dst=10.0.0.1,sport=5000,dport=53),reply=(src=10.0.0.1,dst=10.0.0.2,sport=53,dport=5000),zone=16384
icmp,orig=(src=10.0.0.1,dst=10.0.0.9,id=7,type=8,code=0),reply=(src=10.0.0.9,dst=10.0.0.1,id=7,type=0,code=0),zone=16384
tcp,orig=(src=10.0.0.2,dst=10.0.0.1,sport=40002,dport=80),reply=(src=10.0.0.1,dst=10.0.0.2,sport=80,dport=40002),zone=20480
"""


def test_a_plan_lists_the_live_connections_a_change_would_cut(monkeypatch, tmp_path):
    app = make_app(monkeypatch, tmp_path)
    datapath = bring_up(app)
    asked = []

    def appctl(args):
        asked.append(args)
        return 0, CONNTRACK
    monkeypatch.setattr(security_app.trace, "run_appctl", appctl)
    before = call(app, "GET", "/v1/security")[1]
    datapath.sent.clear()
    status, plan, _ = call(app, "POST", "/v1/security/plan", b'{"delete_rules": [1]}')
    assert status == 200, plan
    assert asked == [["dpctl/dump-conntrack"]]
    # the web connection only rule 1 allowed; the marked one was cut already; the udp one
    # (no rule for it) and the server's own ping out are not the rule's; zone 20480 is
    # the router's, not a security group's
    assert [(c["src"], c["dport"], c["zone"]) for c in plan["cut"]] == \
        [("10.0.0.2", 80, 16384)]
    assert (plan["already_cut"], plan["kept"], plan["read"]) == (1, 2, 4)
    assert call(app, "GET", "/v1/security")[1] == before and flow_mods(datapath) == []
    # adding an egress rule closes the server's other ways out: its ping is cut
    body = b'{"add_rules": [{"group": "web", "direction": "egress", "protocol": "tcp"}]}'
    status, plan, _ = call(app, "POST", "/v1/security/plan", body)
    assert status == 200 and [c["protocol"] for c in plan["cut"]] == ["icmp"], plan
    for bad in (b'{"delete_rules": [99]}', b'{"delete_rules": "1"}', b'{"what": 1}',
                b'{"add_rules": [{"direction": "ingress"}]}', b'{"add_rules": [3]}'):
        status, reply, _ = call(app, "POST", "/v1/security/plan", bad)
        assert status in (400, 404) and "error" in reply, (bad, status, reply)
    monkeypatch.setattr(security_app.trace, "run_appctl", lambda args: (1, "no datapath"))
    status, reply, _ = call(app, "POST", "/v1/security/plan", b'{"delete_rules": [1]}')
    assert status == 503 and "conntrack" in reply["error"], reply


def test_a_switch_gone_keeps_its_members_as_rest_left_them(monkeypatch, tmp_path):
    """A binding the config file makes and REST removed stays removed from the remote
    groups' members when its switch goes away (the switch is remembered as last seen)."""
    app = make_app(monkeypatch, tmp_path)
    bring_up(app)
    assert app.members() == {"web": ("10.0.0.1",)}
    assert call(app, "DELETE", "/v1/switches/1/ports/vm1/security")[0] == 200
    assert call(app, "PUT", "/v1/switches/1/ports/2/security",
                b'{"addresses": ["10.0.0.2"], "groups": ["web"]}')[0] == 200
    connected = app.members()
    assert connected == {"web": ("10.0.0.2",)}
    app.switches.clear()                         # the switch disconnects
    assert app.members() == connected
