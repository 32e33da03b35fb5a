"""The cluster view (controller/cluster_view.py, GET /v1/cluster, `sdn cluster`): etcd in
memory (tests/support/fake_etcd.py, with the member list, status and prefix ranges a
three-member etcd answers, added here), the keys written per the agreed layout."""
import io
import json
import time
import types

import pytest
from etcd3gw import exceptions as gateway_errors
from ryu.controller import handler, ofp_event

from controller import cluster_view, config, etcd_client, runtime
from sdn import main as cli
from tests.support import l2_app as l2_tests
from tests.support.fake_etcd import FakeEtcd, b64, unb64

URLS = ["http://127.0.0.1:2379", "http://127.0.0.1:2380", "http://127.0.0.1:2381"]
MEMBER_IDS = {url: str(1000 + n) for n, url in enumerate(URLS)}
NAMES = {url: f"m{n + 1}" for n, url in enumerate(URLS)}
DIGEST = "d1g35t"
APPS = ["L2Switch", "Vlan"]


class ClusterEtcd(FakeEtcd):
    """FakeEtcd answering as three members: each endpoint its own member id, a leader,
    the member list, and ranges over a prefix (range_end)."""

    def __init__(self):
        super().__init__()
        self.leader = URLS[1]
        self.no_leader = set()   # urls whose member knows no leader
        self.no_quorum = False   # members answer status, but no read can be served

    def header(self, url):
        return dict(super().header(url), member_id=MEMBER_IDS[url])

    def answer(self, url, path, body):
        if path == "maintenance/status":
            leader = "0" if url in self.no_leader else MEMBER_IDS[self.leader]
            return {"header": self.header(url), "version": "3.4.23", "leader": leader,
                    "raftTerm": "3"}
        if path == "cluster/member/list":
            return {"header": self.header(url), "members": [
                {"ID": MEMBER_IDS[u], "name": NAMES[u], "clientURLs": [u],
                 "peerURLs": [u.replace("23", "33")]} for u in reversed(URLS)]}
        if path == "kv/range" and self.no_quorum:   # a linearizable read waits, fails
            raise gateway_errors.ConnectionFailedError("etcdserver: request timed out")
        if path == "kv/range" and "range_end" in body:
            start, end = unb64(body["key"]), unb64(body["range_end"])
            kvs = [dict(kv) for key, kv in sorted(self.kv.items()) if start <= key < end]
            return {"header": self.header(url), "kvs": kvs, "count": str(len(kvs))}
        return super().answer(url, path, body)

    def node(self, node_id, pid=100, digest=DIGEST, apps=APPS, key=None, **extra):
        record = {"node_id": node_id, "apps": apps, "config_digest": digest,
                  "rest_url": f"http://127.0.0.1:80{node_id[-1]}0", "openflow": 6653,
                  "pid": pid, "started": 1700000000, "format": 1, **extra}
        self.put(f"/sdn/cluster/nodes/{key or node_id}", json.dumps(record))

    def master(self, dpid, node_id):
        self.put(f"/sdn/cluster/masters/{dpid:016x}", node_id)
        return int(self.kv[f"/sdn/cluster/masters/{dpid:016x}"]["create_revision"])


def settings(**etcd):
    return config.state_settings({"state": {"backend": "etcd",
                                            "etcd": {"endpoints": URLS, **etcd}}}).etcd


def local(node_id="n1", mode="cluster", switches=None, pid=100, elector=None):
    return {"node_id": node_id, "mode": mode, "pid": pid, "apps": APPS,
            "elector": elector or {"elector": "EtcdElector"}, "switches": switches or {}}


def role(name, generation=None):
    return {"role": name, "may_write": name == "master", "generation": generation}


def view(fake, here=None):
    return cluster_view.build(here or local(), cluster_view.read_etcd(settings(), fake.client))


@pytest.fixture
def fake():
    return ClusterEtcd()


def three_nodes(fake):
    for node_id, pid in (("n1", 100), ("n2", 200), ("n3", 300)):
        fake.node(node_id, pid)
    return {1: fake.master(1, "n1"), 2: fake.master(2, "n2"), 3: fake.master(3, "n3"),
            4: fake.master(4, "n2")}


# --- single mode ----------------------------------------------------------------------

def test_a_single_node_is_master_of_every_switch_it_meets_and_has_no_etcd(monkeypatch):
    rt = runtime.Runtime()
    rt.readiness.join("L2Switch")
    for dpid in (2, 1):
        rt.connected(l2_tests.FakeDatapath(dpid))
    result = cluster_view.build(cluster_view.local_facts(rt, {}))
    assert result["mode"] == "single" and result["etcd"] is None and result["problems"] == []
    (node,) = result["nodes"]
    assert node["node_id"] == result["node"] and node["healthy"] and node["masters"] == 2
    assert node["apps"] == ["L2Switch"]
    assert [(s["dpid"], s["master"], s["generation"], s["this_node_role"])
            for s in result["switches"]] == [("0000000000000001", node["node_id"], None, "master"),
                                             ("0000000000000002", node["node_id"], None, "master")]


def test_a_cluster_section_names_the_node_and_makes_it_cluster_mode():
    facts = cluster_view.local_facts(runtime.Runtime(), {"cluster": {"node_id": "n7"}})
    assert facts["node_id"] == "n7" and facts["mode"] == "cluster"
    assert cluster_view.local_facts(runtime.Runtime(), {})["mode"] == "single"


# --- cluster mode ---------------------------------------------------------------------

def test_three_nodes_their_masters_and_etcds_members_and_leader(fake):
    generations = three_nodes(fake)
    here = local(switches={1: role("master", generations[1]), 2: role("slave")})
    result = view(fake, here)
    assert result["mode"] == "cluster" and result["node"] == "n1"
    assert result["problems"] == []
    assert [(n["node_id"], n["healthy"], n["config_matches"], n["masters"], n["pid"])
            for n in result["nodes"]] == [("n1", True, True, 1, 100), ("n2", True, True, 2, 200),
                                          ("n3", True, True, 1, 300)]
    assert [n["this_node"] for n in result["nodes"]] == [True, False, False]
    assert result["nodes"][1]["rest_url"] == "http://127.0.0.1:8020"
    assert [(s["dpid"], s["master"], s["generation"], s["this_node_role"])
            for s in result["switches"]] == [
        ("0000000000000001", "n1", generations[1], "master"),
        ("0000000000000002", "n2", generations[2], "slave"),
        ("0000000000000003", "n3", generations[3], None),
        ("0000000000000004", "n2", generations[4], None)]
    assert len(set(generations.values())) == 4
    etcd = result["etcd"]
    assert etcd["leader"] == "m2"
    assert [(m["name"], m["id"], m["leader"], m["reachable"], m["client_urls"])
            for m in etcd["members"]] == [("m1", "1000", False, True, [URLS[0]]),
                                          ("m2", "1001", True, True, [URLS[1]]),
                                          ("m3", "1002", False, True, [URLS[2]])]


def test_a_connected_switch_with_no_master_is_a_problem(fake):
    three_nodes(fake)
    result = view(fake, local(switches={1: role("master", 5), 9: role("slave")}))
    (entry,) = [s for s in result["switches"] if s["dpid"] == "0000000000000009"]
    assert entry["master"] is None and entry["this_node_role"] == "slave"
    (problem,) = result["problems"]
    assert "switch 0000000000000009 has no master" in problem


def test_a_node_with_another_config_or_app_set_is_named(fake):
    three_nodes(fake)
    fake.node("n3", 300, digest="0ther")
    fake.node("n4", 400, apps=["L2Switch"])
    result = view(fake)
    matches = {n["node_id"]: n["config_matches"] for n in result["nodes"]}
    assert matches == {"n1": True, "n2": True, "n3": False, "n4": False}
    assert [p for p in result["problems"] if "config differs" in p] == [
        f"node n3's config differs from this node's (n1): config_digest 0ther vs {DIGEST}; "
        f"it should not be in this cluster until its config is the same",
        f"node n4's config differs from this node's (n1): apps ['L2Switch'] vs {APPS}; "
        f"it should not be in this cluster until its config is the same"]


def test_two_records_claiming_one_node_and_a_record_under_another_name(fake):
    three_nodes(fake)
    fake.node("n2", 999, key="n2-old")
    result = view(fake)
    assert any("2 records claim node n2 (keys cluster/nodes/n2, cluster/nodes/n2-old)" in p
               for p in result["problems"]), result["problems"]
    assert any("key cluster/nodes/n2-old holds the record of node n2" in p
               for p in result["problems"])


def test_this_nodes_record_of_another_process_and_a_missing_record(fake):
    three_nodes(fake)
    result = view(fake, local(pid=4242))
    assert any("names pid 100, not this process (4242)" in p for p in result["problems"])
    result = view(fake, local(node_id="n9", elector={"config_digest": DIGEST, "apps": APPS}))
    assert any("this node (n9) has no node record" in p for p in result["problems"])
    (me,) = [n for n in result["nodes"] if n["this_node"]]
    assert me["node_id"] == "n9" and me["healthy"] is False
    # compared with what its elector says of its config when it has no record
    assert all(n["config_matches"] for n in result["nodes"] if not n["this_node"])


def test_a_master_whose_node_has_no_record_is_unhealthy(fake):
    three_nodes(fake)
    fake.delete("/sdn/cluster/nodes/n3")
    result = view(fake)
    (n3,) = [n for n in result["nodes"] if n["node_id"] == "n3"]
    assert n3["healthy"] is False and n3["masters"] == 1
    assert any("node n3 is master of 1 switch(es) but has no node record" in p
               for p in result["problems"])


def test_one_member_down_and_a_member_without_leader(fake):
    three_nodes(fake)
    fake.down.add(URLS[2])
    result = view(fake)
    m3 = result["etcd"]["members"][2]
    assert m3["reachable"] is False and "Connection refused" in m3["cause"]
    assert result["etcd"]["leader"] == "m2" and len(result["nodes"]) == 3
    assert [(e["member"], e["reachable"]) for e in result["etcd"]["endpoints"]] == [
        ("m1", True), ("m2", True), ("m3", False)]
    assert result["problems"] == [
        f"etcd endpoint {URLS[2]} does not answer this node: [Errno 111] Connection refused"]
    fake.no_leader.update(URLS)
    result = view(fake)
    assert result["etcd"]["leader"] is None
    assert any("etcd has no leader" in p for p in result["problems"])


def test_etcd_without_quorum_says_so_and_shows_only_this_nodes_view(fake, monkeypatch):
    monkeypatch.setattr(cluster_view, "KEYS_TIMEOUT_S", 0.2)
    three_nodes(fake)
    fake.down.update(URLS[1:])
    fake.no_leader.add(URLS[0])
    fake.no_quorum = True
    result = view(fake, local(switches={1: role("slave")}))
    assert result["etcd"]["leader"] is None
    assert [m["reachable"] for m in result["etcd"]["members"]] == [True, False, False]
    assert any(p.startswith("etcd has no leader") and p.endswith("so it stops writing")
               for p in result["problems"]), result["problems"]
    assert any("did not give this node the cluster keys: etcd unreachable" in p
               for p in result["problems"])
    assert [n["healthy"] for n in result["nodes"]] == [None]
    assert [s["master"] for s in result["switches"]] == [None]


def test_etcd_unreachable_is_a_clear_problem_not_an_exception(fake):
    three_nodes(fake)
    fake.down.update(URLS)
    here = local(switches={1: role("slave"), 2: role("slave")})
    started = time.monotonic()
    result = view(fake, here)
    assert time.monotonic() - started < 0.5   # a refused connection answers at once
    assert result["etcd"]["members"] == [] and result["etcd"]["leader"] is None
    assert [e["reachable"] for e in result["etcd"]["endpoints"]] == [False] * 3
    (problem,) = result["problems"]
    assert problem.startswith("etcd is unreachable from this node (n1): "
                              f"{URLS[0]}: [Errno 111] Connection refused; ")
    assert "This node stops writing" in problem and "0 of 2 connected" in problem
    (me,) = result["nodes"]
    assert me["node_id"] == "n1" and me["healthy"] is None
    assert [s["master"] for s in result["switches"]] == [None, None]
    said = view(fake, local(elector={"last_error": "keepalive failed: timed out"}))
    assert "(it may write to 0 of 0 connected switch(es) now; its elector: keepalive " \
           "failed: timed out)" in said["problems"][0]


def test_a_slow_member_costs_at_most_the_status_timeout(fake, monkeypatch):
    monkeypatch.setattr(cluster_view, "STATUS_TIMEOUT_S", 0.05)
    three_nodes(fake)
    fake.slow.add(URLS[0])
    started = time.monotonic()
    result = view(fake)
    assert time.monotonic() - started < 0.5
    assert result["etcd"]["members"][0]["cause"] == "timed out"
    assert result["etcd"]["leader"] == "m2" and len(result["nodes"]) == 3
    (timeout,) = [t for url, _, t in fake.calls if url == URLS[0]]   # asked once
    assert timeout <= 0.05


def test_a_bad_key_under_the_layout_is_named_not_fatal(fake):
    three_nodes(fake)
    fake.put("/sdn/cluster/nodes/n5", "not json")
    fake.put("/sdn/cluster/masters/xyz", "n1")
    result = view(fake)
    assert "key /sdn/cluster/nodes/n5 is not a JSON node record: 'not json'" in \
        result["problems"]
    assert "key /sdn/cluster/masters/xyz does not name a switch (16 hex digits)" in \
        result["problems"]
    assert len(result["nodes"]) == 3


# --- REST -----------------------------------------------------------------------------

def cluster_config(monkeypatch, fake):
    monkeypatch.setattr(config, "load_file", lambda path=None: {
        "cluster": {"node_id": "n1"},
        "state": {"backend": "etcd", "etcd": {"endpoints": URLS}}})
    monkeypatch.setattr(etcd_client, "gateway_client",
                        lambda url, timeout, **_: fake.client(url, timeout))


def test_rest_single_mode(monkeypatch):
    app = l2_tests.make_app(monkeypatch)
    handler.register_instance(app)
    switch = l2_tests.FakeDatapath(1)
    app.get_handlers(ofp_event.EventOFPSwitchFeatures(l2_tests.Features(switch)))
    status, body, _ = l2_tests.call(app, "GET", "/v1/cluster")
    assert status == 200 and body["mode"] == "single" and body["etcd"] is None
    assert [(s["dpid"], s["master"]) for s in body["switches"]] == [
        ("0000000000000001", body["node"])]


def test_rest_cluster_mode_and_etcd_unreachable_is_200_with_the_problem(monkeypatch, fake):
    app = l2_tests.make_app(monkeypatch)
    three_nodes(fake)
    cluster_config(monkeypatch, fake)
    status, body, _ = l2_tests.call(app, "GET", "/v1/cluster")
    assert status == 200 and body["node"] == "n1" and body["etcd"]["leader"] == "m2"
    assert [n["node_id"] for n in body["nodes"]] == ["n1", "n2", "n3"]
    fake.down.update(URLS)
    status, body, resp = l2_tests.call(app, "GET", "/v1/cluster")
    assert status == 200 and "etcd is unreachable from this node (n1)" in body["problems"][0]
    assert b"Traceback" not in resp.body


def test_rest_a_config_file_gone_bad_is_a_problem_not_a_500(monkeypatch):
    app = l2_tests.make_app(monkeypatch)

    def bad(path=None):
        raise config.ConfigError("config file x.yaml is not valid YAML: oops")
    monkeypatch.setattr(config, "load_file", bad)
    status, body, _ = l2_tests.call(app, "GET", "/v1/cluster")
    assert status == 200 and body["problems"][0].startswith("the config file cannot be read")


# --- the CLI --------------------------------------------------------------------------

def run_cli(monkeypatch, reply, *argv):
    api = types.SimpleNamespace(call=lambda method, path, body=None: reply)
    monkeypatch.setattr(cli, "Client", lambda url, token=None: api)
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out, err)
    return code, out.getvalue()


def test_the_cli_prints_nodes_masters_members_and_problems(monkeypatch, fake):
    three_nodes(fake)
    fake.node("n3", 300, digest="0ther")
    fake.down.add(URLS[2])
    reply = view(fake, local(switches={1: role("master", 4), 7: role("slave")}))
    code, out = run_cli(monkeypatch, reply, "cluster")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "mode: cluster, this node: n1 (*)"
    assert lines[2].split() == ["NODE", "HEALTHY", "CONFIG", "MASTERS", "REST", "URL", "PID",
                                "APPS"]
    assert lines[3].split()[:6] == ["n1", "*", "yes", "this", "node", "1"]
    assert lines[5].split()[:4] == ["n3", "yes", "DIFFERENT", "1"]
    switches = {line.split()[0]: line.split()[1:] for line in lines
                if line[:16].isalnum() and len(line.split()[0]) == 16}
    assert switches["0000000000000001"][0] == "n1"
    assert switches["0000000000000007"] == ["NONE", "-", "slave"]
    assert switches["0000000000000003"][-2:] == ["not", "connected"]
    assert "etcd leader: m2" in lines
    (m3,) = [line for line in lines if line.startswith("m3 ")]
    assert m3.split()[:4] == ["m3", "1002", "no", "NO"] and "Connection refused" in m3
    assert "problems:" in lines and any("switch 0000000000000007 has no master" in line
                                        for line in lines)


def test_the_cli_json_either_place(monkeypatch, fake):
    reply = view(fake)
    for argv in (("--json", "cluster"), ("cluster", "--json")):
        code, out = run_cli(monkeypatch, reply, *argv)
        assert code == 0 and json.loads(out) == reply
    code, out = run_cli(monkeypatch, cluster_view.build(local(mode="single")), "cluster")
    assert "etcd leader" not in out and out.rstrip().endswith("problems: none")
