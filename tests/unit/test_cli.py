"""sdn/ (the `sdn` CLI): argument handling, the requests it makes, tables, exit codes
(a stub in place of HTTP; tests/integration/test_cli_ovs.py drives a live controller),
and that it loads no Ryu."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sdn import main as cli
from tests.support.cli_run import run_cli


class StubApi:
    def __init__(self, replies):
        self.replies, self.calls = replies, []

    def call(self, method, path, body=None):
        self.calls.append((method, path, body))
        reply = self.replies[(method, path)]
        if isinstance(reply, Exception):
            raise reply
        return reply


def run(monkeypatch, replies, *argv):
    api = StubApi(replies)
    return (*run_cli(monkeypatch, api, *argv), api.calls)


PORT = {"dpid": "0000000000000001", "port": 2, "name": "s1-eth2", "mode": "access",
        "tag": 101, "trunks": [], "native_mode": None, "configured": True}


def test_vlan_set_sends_the_body_and_prints_a_table(monkeypatch):
    path = "/v1/switches/1/ports/2/vlan"
    code, out, _, calls = run(monkeypatch, {("PUT", path): PORT}, "vlan", "set", "1", "2",
                              "--tag", "101")
    assert code == 0 and calls == [("PUT", path, {"tag": 101})]
    head, row = out.splitlines()
    assert head.split() == ["DPID", "PORT", "NAME", "MODE", "TAG", "TRUNKS", "CONFIGURED"]
    assert row.split() == ["0000000000000001", "2", "s1-eth2", "access", "101", "-", "yes"]
    code, _, _, calls = run(monkeypatch, {("PUT", path): PORT}, "vlan", "set", "1", "2",
                            "--trunks", "101,102")
    assert calls == [("PUT", path, {"trunks": [101, 102]})]
    code, _, _, calls = run(monkeypatch, {("PUT", path): PORT}, "vlan", "set", "1", "2",
                            "--trunks", "")
    assert calls == [("PUT", path, {"trunks": []})]   # every VLAN


def test_json_prints_what_the_api_said(monkeypatch):
    code, out, _, _ = run(monkeypatch, {("GET", "/v1/switches/1/ports/2/vlan"): PORT},
                          "--json", "vlan", "show", "1", "2")
    assert code == 0 and json.loads(out) == PORT


@pytest.mark.parametrize("argv, message", [
    (("vlan", "set", "1", "2"), "give --tag"),
    (("vlan", "set", "1", "2", "--tag", "5", "--trunks", "1"), "give --tag"),
    (("vlan", "set", "1", "2", "--trunks", "a,b"), "comma-separated VLAN ids"),
    (("qos", "set", "1", "2"), "give --max-rate"),
    (("qos", "rule-add", "1", "--match", "nonsense"), "field=value"),
])
def test_a_command_line_the_cli_refuses_exits_2_and_sends_nothing(monkeypatch, argv, message):
    code, _, err, calls = run(monkeypatch, {}, *argv)
    assert code == 2 and message in err and calls == []


def test_an_api_error_is_shown_plainly_with_exit_1(monkeypatch):
    failure = cli.ApiFailure(404, "no switch 0000000000000063 is connected")
    code, out, err, _ = run(monkeypatch, {("GET", "/v1/switches/99/macs"): failure},
                            "macs", "99")
    assert (code, out) == (1, "")
    assert err == "sdn: no switch 0000000000000063 is connected (HTTP 404)\n"


def test_qos_and_lb_requests(monkeypatch):
    rule = {"id": 4, "match": {"udp_dst": 5001}, "priority": 100, "queue": 2,
            "meter": {"rate": 2000000, "burst": 200000}}
    code, out, _, calls = run(monkeypatch, {("POST", "/v1/qos/1/rules"): rule}, "qos",
                              "rule-add", "1", "--match", "udp_dst=5001", "--to-queue", "2",
                              "--meter", "2M")
    assert code == 0 and calls == [("POST", "/v1/qos/1/rules", {
        "match": {"udp_dst": 5001}, "queue": 2, "meter": {"rate": "2M"}})]
    assert out.splitlines()[1].split()[:3] == ["4", "100", "udp_dst=5001"]
    port = {"dpid": "0000000000000001", "port": 4, "name": "s1-eth4", "max_rate": 10000000,
            "queues": {"0": {"min_rate": 3000000, "max_rate": 10000000}}, "configured": True}
    code, _, _, calls = run(monkeypatch, {("PUT", "/v1/qos/1/s1-eth4"): port}, "qos", "set",
                            "1", "s1-eth4", "--max-rate", "10M", "--queue", "0:3M/10M")
    assert calls == [("PUT", "/v1/qos/1/s1-eth4", {
        "max_rate": "10M", "queues": {"0": {"min_rate": "3M", "max_rate": "10M"}}})]
    vip = {"id": 1, "vip": "10.0.0.100", "port": 80, "protocol": "tcp", "mode": "nat",
           "backends": [{"ip": "10.0.0.11", "port": 8080, "weight": 1, "healthy": True}]}
    code, out, _, calls = run(monkeypatch, {("POST", "/v1/lb/vips"): vip}, "lb", "add",
                              "--vip", "10.0.0.100", "--port", "80",
                              "--backend", "10.0.0.11:8080")
    assert calls[0][2]["backends"] == [{"ip": "10.0.0.11", "port": 8080}]
    assert "10.0.0.11:8080" in out and "yes" in out


def test_the_console_script_is_declared():
    import configparser
    setup = configparser.ConfigParser()
    setup.read("setup.cfg")
    assert "sdn = sdn.main:main" in setup["options.entry_points"]["console_scripts"]


REPO = Path(__file__).resolve().parents[2]
NOT_LOADED = ("ryu", "eventlet", "webob")


def loaded_by(statement):
    """Which of NOT_LOADED a fresh interpreter has in sys.modules after `statement`
    (a subprocess: this one has Ryu loaded by other tests)."""
    probe = ("import json, sys\n" + statement + "\nprint(json.dumps(sorted({m.split('.')[0] "
             f"for m in sys.modules}} & set({NOT_LOADED!r}))))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_the_cli_loads_neither_ryu_nor_eventlet(tmp_path):
    # the probe sees them where they are loaded: the apps' compiler and REST do
    assert loaded_by("import controller.ofcompile, controller.rest") == \
        ["eventlet", "ryu", "webob"]
    assert loaded_by("import sdn.main") == []
    # `sdn plan` runs the apps' flows/ functions (controller/plan.py) in this process
    config = tmp_path / "lab.yaml"
    config.write_text(json.dumps({"vlan": {"ports": [{"switch": 1, "port": 2, "tag": 10}]}}))
    assert loaded_by(f"import io, sdn.main\nout = io.StringIO()\n"
                     f"assert sdn.main.main(['plan', {str(config)!r}, '--ports', '1,2,3'], "
                     f"out) == 0\nassert '# vlan:' in out.getvalue(), out.getvalue()") == []


def test_bond_set_and_show(monkeypatch):
    row = {"dpid": "0000000000000001", "bridge": "s1", "name": "s1-bond",
           "members": ["s1-eth3", "s1-eth4"], "mode": "balance-slb", "lacp": "active"}
    code, out, _, calls = run(monkeypatch, {("PUT", "/v1/bonds/1/s1-bond"): row}, "bond", "set",
                              "1", "s1-bond", "--members", "s1-eth3,s1-eth4", "--mode",
                              "balance-slb", "--lacp", "active")
    assert code == 0 and calls == [("PUT", "/v1/bonds/1/s1-bond", {
        "members": ["s1-eth3", "s1-eth4"], "mode": "balance-slb", "lacp": "active"})]
    assert "s1-eth3,s1-eth4" in out
    code, out, _, _ = run(monkeypatch, {("GET", "/v1/bonds"): [row]}, "bond")
    assert code == 0 and out.splitlines()[1].split()[:3] == ["0000000000000001", "s1", "s1-bond"]
    assert run(monkeypatch, {}, "bond", "set", "1", "s1-bond")[0] == 2   # no --members


# --- the generic commands: any app's routes, from the served OpenAPI document ----------

DOCUMENT = yaml.safe_load((Path(__file__).resolve().parents[2] / "controller" / "openapi.yaml")
                          .read_text())
OPENAPI = {("GET", "/v1/openapi.json"): DOCUMENT}


def test_routes_lists_every_documented_operation_by_app(monkeypatch):
    code, out, _, calls = run(monkeypatch, OPENAPI, "--json", "routes")
    assert code == 0 and calls == [("GET", "/v1/openapi.json", None)]
    rows = json.loads(out)
    operations = {(method.upper(), path) for path, item in DOCUMENT["paths"].items()
                  for method in item if method != "parameters"}
    assert {(r["method"], r["path"]) for r in rows} == operations
    tags = [t["name"] for t in DOCUMENT["tags"]]
    assert [r["app"] for r in rows] == sorted((r["app"] for r in rows), key=tags.index)
    put = next(r for r in rows if (r["method"], r["path"]) == ("PUT", "/v1/bonds/{dpid}/{name}"))
    assert put["app"] == "bond" and put["body"] is True


def test_routes_of_one_app_as_a_table(monkeypatch):
    code, out, _, _ = run(monkeypatch, OPENAPI, "routes", "bond")
    head, *rows = out.splitlines()
    assert code == 0 and head.split()[:4] == ["APP", "METHOD", "PATH", "BODY"]
    documented = {(m.upper(), p) for p, item in DOCUMENT["paths"].items() for m in item
                  if m != "parameters" and "bond" in item[m].get("tags", ())}
    assert {tuple(r.split()[1:3]) for r in rows} == documented and len(rows) == len(documented)
    assert all(r.split()[0] == "bond" for r in rows)
    code, _, err, _ = run(monkeypatch, OPENAPI, "routes", "acl")
    assert code == 2 and "no app 'acl' in the API; it has bond, l2_switch" in err


def test_a_new_apps_routes_are_listed_with_no_code_for_it(monkeypatch):
    document = dict(DOCUMENT, tags=DOCUMENT["tags"] + [{"name": "acl"}],
                    paths={"/v1/acl/{dpid}": {"put": {"tags": ["acl"], "summary": "deny MACs",
                                                      "requestBody": {}}}})
    code, out, _, _ = run(monkeypatch, {("GET", "/v1/openapi.json"): document}, "routes", "acl")
    assert code == 0 and out.splitlines()[1].split() == ["acl", "PUT", "/v1/acl/{dpid}",
                                                         "JSON", "deny", "MACs"]


def test_api_sends_any_request_and_prints_the_reply(monkeypatch):
    path, row = "/v1/bonds/1/s1-bond", {"name": "s1-bond", "members": ["s1-eth3", "s1-eth4"]}
    code, out, _, calls = run(monkeypatch, {("PUT", path): row}, "api", "put", path,
                              '{"members": ["s1-eth3", "s1-eth4"]}')
    assert code == 0 and calls == [("PUT", path, {"members": ["s1-eth3", "s1-eth4"]})]
    assert json.loads(out) == row
    code, out, _, calls = run(monkeypatch, {("GET", "/metrics"): "sdn_up 1\n"}, "api", "GET",
                              "/metrics")
    assert (code, out, calls) == (0, "sdn_up 1\n\n", [("GET", "/metrics", None)])
    failure = cli.ApiFailure(404, "no bond s1-bond")
    code, _, err, _ = run(monkeypatch, {("DELETE", path): failure}, "api", "DELETE", path)
    assert code == 1 and err == "sdn: no bond s1-bond (HTTP 404)\n"


@pytest.mark.parametrize("argv, message", [
    (("api", "GET", "v1/bonds"), "starts with /"),
    (("api", "GET", "/v1/bonds/{dpid}/{name}"), "fill in {dpid}, {name}"),
    (("api", "PUT", "/v1/bonds/1/b", "{members"), "not JSON"),
])
def test_api_refuses_a_request_it_cannot_send(monkeypatch, argv, message):
    code, _, err, calls = run(monkeypatch, {}, *argv)
    assert code == 2 and message in err and calls == []


def test_path_asks_the_controller_for_a_trace_and_prints_each_switch(monkeypatch):
    result = {"packet": "tcp,in_port=1,dl_src=00:00:00:00:00:01", "truncated": False,
              "hops": [{"dpid": "0000000000000001", "name": "s1", "in_port": 1,
                        "revisit": False, "to_controller": False, "dropped": False,
                        "rules": [{"table": 0, "owner": "vlan/default", "match": "in_port=1",
                                   "actions": ["goto_table:1"]}],
                        "outputs": [{"port": 3, "name": "s1-eth3", "vlan": 10,
                                     "to": {"dpid": "0000000000000002", "port": 1}}]},
                       {"dpid": "0000000000000002", "name": "s2", "in_port": 1,
                        "revisit": False, "to_controller": False, "dropped": True,
                        "rules": [{"table": 0, "owner": "table miss", "match": None,
                                   "actions": []}], "outputs": []}],
              "delivered": []}
    code, out, _, calls = run(monkeypatch, {("POST", "/v1/trace"): result}, "path", "s1", "1",
                              "00:00:00:00:00:01", "00:00:00:00:00:02", "--proto", "tcp",
                              "--tp-dst", "80", "--vlan", "10")
    assert code == 0 and calls == [("POST", "/v1/trace", {
        "switch": "s1", "in_port": "1", "dl_src": "00:00:00:00:00:01",
        "dl_dst": "00:00:00:00:00:02", "proto": "tcp", "tp_dst": 80, "dl_vlan": 10})]
    lines = out.splitlines()
    assert "    table 0 [vlan/default] in_port=1: goto_table:1" in lines
    assert "    -> port 3 (s1-eth3) vlan 10: 0000000000000002 port 1" in lines
    assert lines[-2:] == ["    dropped", "delivered at: nowhere"]
