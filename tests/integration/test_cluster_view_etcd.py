"""GET /v1/cluster on a ryu-manager with `state.backend: etcd` and three real etcd members
(Debian's etcd 3.4 on free ports, killed at the end whatever happened): the node records
and masters written per the agreed key layout, etcd's real members and leader, and after
the leader member is killed, the new leader. No switch is needed (no OVS touched)."""
import io
import json
import time

import pytest

from controller import etcd_client
from mininet_topos import harness
from sdn import main as cli
from tests.support import etcd_server

pytestmark = pytest.mark.integration
PREFIX = "/sdn"


def put(client, key, value):
    client.call("kv/put", {"key": etcd_client.encode(key), "value": etcd_client.encode(value)})


def stored(client, node_id):
    kvs = client.call("kv/range", {"key": etcd_client.encode(
        f"{PREFIX}/cluster/nodes/{node_id}")})[0].get("kvs")
    return json.loads(etcd_client.decode(kvs[0]["value"])) if kvs else None


def record(node_id, pid, like=None):
    like = like or {"apps": ["L2Switch"], "config_digest": "abc"}
    return json.dumps({"node_id": node_id, "apps": like["apps"],
                       "config_digest": like["config_digest"],
                       "rest_url": f"http://127.0.0.1:1{pid}", "openflow": 6653, "pid": pid,
                       "started": int(time.time()), "format": 1})


def cluster_view(controller):
    status, view = controller.rest("GET", "/v1/cluster", timeout=10)
    assert status == 200, view
    return view


def test_the_cluster_view_shows_real_members_the_leader_and_a_new_leader(tmp_path):
    with etcd_server.running_cluster(tmp_path / "etcd") as members:
        urls = [m.url for m in members]
        writer = etcd_client.EtcdClient(urls, 5.0)
        (tmp_path / "n1").mkdir()
        controller = harness.Controller(config={
            "cluster": {"node_id": "n1"},
            "state": {"backend": "etcd", "etcd": {"endpoints": urls, "timeout_s": 2}}},
            log_dir=tmp_path / "n1")
        try:
            controller.start()
            # n1's own record is its elector's (once the etcd elector runs here); the other
            # two are written after n1 joined, with n1's config when it has a record
            own = None
            if cluster_view(controller)["elector"].get("elector") == "EtcdElector":
                assert harness.wait_until(lambda: stored(writer, "n1"), 5)
                own = stored(writer, "n1")
            put(writer, f"{PREFIX}/cluster/nodes/n2", record("n2", 2002, own))
            put(writer, f"{PREFIX}/cluster/nodes/n3", record("n3", 3003, own))
            put(writer, f"{PREFIX}/cluster/masters/{1:016x}", "n2")
            put(writer, f"{PREFIX}/cluster/masters/{2:016x}", "n3")
            view = cluster_view(controller)
            assert view["mode"] == "cluster" and view["node"] == "n1"
            assert {m["name"] for m in view["etcd"]["members"]} == {"m1", "m2", "m3"}
            assert all(m["reachable"] for m in view["etcd"]["members"])
            leader = next(m for m in members if m.is_leader())
            assert view["etcd"]["leader"] == leader.name
            assert [m["name"] for m in view["etcd"]["members"] if m["leader"]] == [leader.name]
            nodes = {n["node_id"]: n for n in view["nodes"]}
            assert nodes["n2"]["healthy"] and nodes["n3"]["healthy"]
            assert nodes["n2"]["masters"] == 1 and nodes["n3"]["pid"] == 3003
            assert nodes["n2"]["config_matches"] is (True if own else None)
            assert [(s["dpid"], s["master"]) for s in view["switches"]] == [
                (f"{1:016x}", "n2"), (f"{2:016x}", "n3")]
            assert all(isinstance(s["generation"], int) and s["generation"] > 0
                       for s in view["switches"])

            leader.kill()
            killed = time.monotonic()
            # a new leader took 2.0-3.4 s here; 15 s leaves room for a loaded machine
            new = None
            while time.monotonic() - killed < 15:
                view = cluster_view(controller)
                new = view["etcd"]["leader"]
                if new not in (None, leader.name):
                    break
                time.sleep(0.2)
            seen_s = time.monotonic() - killed
            survivors = [m for m in members if m is not leader]
            assert new in {m.name for m in survivors}, view
            assert next(m for m in survivors if m.name == new).is_leader()
            (gone,) = [m for m in view["etcd"]["members"] if m["name"] == leader.name]
            assert gone["reachable"] is False and gone["leader"] is False and gone["cause"]
            assert [e["member"] for e in view["etcd"]["endpoints"] if not e["reachable"]] \
                == [leader.name]
            assert any(f"etcd endpoint {leader.url} does not answer this node" in p
                       for p in view["problems"]), view["problems"]
            assert [s["master"] for s in view["switches"]] == ["n2", "n3"]
            out = io.StringIO()
            assert cli.main(["--url", f"http://127.0.0.1:{controller.rest_port}", "cluster"],
                            out, io.StringIO()) == 0
            assert f"etcd leader: {new}" in out.getvalue().splitlines()

            names = sorted(m["name"] for m in view["etcd"]["members"])
            for member in survivors:   # etcd gone: still 200, and the node says why
                member.kill()
            started = time.monotonic()
            view = cluster_view(controller)
            down_s = time.monotonic() - started
            (problem,) = [p for p in view["problems"] if "etcd is unreachable" in p]
            assert problem.startswith("etcd is unreachable from this node (n1): ")
            assert "This node stops writing" in problem and down_s < 2.0, down_s
            assert controller.problems() == []
            print(f"observed: members {names}, "
                  f"leader {leader.name} killed, the view named {new} after {seen_s:.2f} s; "
                  f"every member killed: 200 with the problem in {down_s * 1e3:.0f} ms")
        finally:
            controller.stop()
