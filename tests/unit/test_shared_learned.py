"""Learned state shared by the nodes of a cluster (controller/shared_learned.py) against
an etcd in memory with leases and prefix ranges (a small extension of
tests/support/fake_etcd.py, kept here), and the cluster-mode switch."""
import json

import pytest
from etcd3gw import exceptions as gateway_errors

from controller import config, etcd_client, shared_learned
from controller.shared_learned import SharedLearned
from controller.state import StateError
from tests.support.fake_etcd import FakeEtcd, unb64

URL = "http://127.0.0.1:23791"


class LeaseEtcd(FakeEtcd):
    """FakeEtcd plus what SharedLearned uses: leases (grant, keepalive, revoke, and
    `expire` as time would), puts attached to a lease, ranges and watches over a
    prefix (range_end)."""

    def __init__(self):
        super().__init__()
        self.leases = {}     # lease id -> keys attached to it
        self.next_lease = 7000
        self.puts = []       # (key, value) of every kv/put

    def expire(self, lease):
        for key in sorted(self.leases.pop(lease)):
            if key in self.kv:
                self.delete(key)

    @staticmethod
    def _in(body, key):
        start = unb64(body["key"])
        end = unb64(body["range_end"]) if "range_end" in body else None
        return key == start if end is None else start <= key < end

    def _range(self, url, body):
        kvs = [dict(self.kv[k]) for k in sorted(self.kv) if self._in(body, k)]
        answer = {"header": self.header(url)}
        if kvs:
            answer.update(kvs=kvs, count=str(len(kvs)))
        return answer

    def answer(self, url, path, body):
        if path == "lease/grant":
            self.next_lease += 1
            self.leases[str(self.next_lease)] = set()
            return {"header": self.header(url), "ID": str(self.next_lease),
                    "TTL": str(body["TTL"])}
        if path == "lease/keepalive":
            alive = body["ID"] in self.leases
            return {"result": dict({"header": self.header(url), "ID": body["ID"]},
                                   **({"TTL": "2"} if alive else {}))}
        if path == "kv/lease/revoke":
            self.expire(body["ID"])
            return {"header": self.header(url)}
        if path == "kv/put":
            key, value = unb64(body["key"]), unb64(body["value"])
            if body.get("lease") not in self.leases:
                raise gateway_errors.Etcd3Exception('{"error": "etcdserver: requested lease '
                                                    'not found", "code": 5}')
            self.leases[body["lease"]].add(key)
            self.puts.append((key, value))
            self.put(key, value)
            return {"header": self.header(url)}
        return super().answer(url, path, body)

    def watched(self, create, key):
        return self._in(create, key)


class Clock:
    now = 50.0

    def __call__(self):
        return self.now


@pytest.fixture
def etcd():
    return LeaseEtcd()


def node(etcd, name, heard=None, clock=None):
    client = etcd_client.EtcdClient([URL], 1.0, etcd.client)
    return SharedLearned(client, "/sdn", "topology", name, lease_s=2,
                         on_change=None if heard is None else heard.append,
                         spawn=lambda run: None, clock=clock or Clock())


def test_a_published_document_sits_on_its_lease_and_the_others_read_it(etcd):
    one, heard = node(etcd, "n1"), []
    two = node(etcd, "n2", heard)
    two.resync()
    assert two.documents() == {} and heard == [{}]
    one.publish({"links": [[1, 2, 3, 4]]})
    one.step()
    key = "/sdn/learned/topology/n1"
    assert etcd.stored(key) == {"links": [[1, 2, 3, 4]]}
    assert key in etcd.leases[one._lease]          # attached to the node's own lease
    two.watch_once()
    assert two.documents() == {"n1": {"links": [[1, 2, 3, 4]]}} and heard[-1] == two.documents()
    assert one.documents() == {}                   # its own is not among "the others"
    assert etcd.watches[-1] == (URL, 2)   # from the revision after the resync read (1)


def test_the_same_document_is_put_once_and_a_change_again(etcd):
    one = node(etcd, "n1")
    for _ in range(3):
        one.publish({"links": []})
        one.step()
    one.publish({"links": [[1, 1, 2, 1]]})
    one.step()
    assert [json.loads(v) for _, v in etcd.puts] == [{"links": []}, {"links": [[1, 1, 2, 1]]}]


def test_keepalive_every_third_of_the_lease_and_an_expired_lease_is_granted_again(etcd):
    clock = Clock()
    one = node(etcd, "n1", clock=clock)
    two = node(etcd, "n2", [])
    one.publish({"links": [[1, 1, 2, 1]]})
    one.step()
    first = one._lease
    clock.now += 0.5
    one.step()
    assert [p for _, p, _ in etcd.calls].count("lease/keepalive") == 0   # not due yet
    clock.now += 0.2
    one.step()
    assert [p for _, p, _ in etcd.calls].count("lease/keepalive") == 1
    two.resync()
    assert "n1" in two.documents()
    etcd.expire(first)                 # one was paused past its lease: its document goes
    two.watch_once()
    assert two.documents() == {}
    clock.now += 1
    one.step()                         # keepalive says expired: a new lease, put again
    assert one._lease != first and etcd.stored("/sdn/learned/topology/n1") == \
        {"links": [[1, 1, 2, 1]]}
    two.watch_once()
    assert two.documents() == {"n1": {"links": [[1, 1, 2, 1]]}}


def test_a_put_refused_on_a_lease_that_just_expired_is_put_again_on_a_new_one(etcd):
    clock = Clock()
    one = node(etcd, "n1", clock=clock)
    one.publish({"links": []})
    one.step()
    first = one._lease
    etcd.leases.pop(first)             # expired after the keepalive, before the put
    one.publish({"links": [[1, 1, 2, 1]]})
    with pytest.raises(StateError, match="refused kv/put: etcdserver: requested lease not"):
        one.step()
    one.step()
    assert one._lease not in (None, first)
    assert etcd.stored("/sdn/learned/topology/n1") == {"links": [[1, 1, 2, 1]]}


def test_after_a_compaction_every_document_is_read_again(etcd):
    one, two, three = node(etcd, "n1"), node(etcd, "n2"), node(etcd, "n3", [])
    three.resync()
    one.publish({"links": [[1, 1, 2, 1]]})
    one.step()
    two.publish({"links": [[2, 2, 3, 1]]})
    two.step()
    etcd.expire(one._lease)
    etcd.compact()                     # the events three missed are gone
    three.watch_once()                 # told "compacted": reads the prefix whole
    assert three.documents() == {"n2": {"links": [[2, 2, 3, 1]]}}
    three.watch_once()
    assert three.documents() == {"n2": {"links": [[2, 2, 3, 1]]}}


def test_a_document_that_is_not_an_object_is_left_out_and_keys_below_a_node_too(etcd):
    reader = node(etcd, "n9", [])
    etcd.put("/sdn/learned/topology/bad", "not json")
    etcd.put("/sdn/learned/topology/list", "[1]")
    etcd.put("/sdn/learned/topology/a/b", "{}")
    etcd.put("/sdn/learned/topologyx/n1", "{}")   # another app's prefix shares the start
    etcd.put("/sdn/learned/topology/ok", "{\"links\": []}")
    reader.resync()
    assert reader.documents() == {"ok": {"links": []}}


def test_close_revokes_the_lease_so_the_document_goes_at_once(etcd):
    one, two = node(etcd, "n1"), node(etcd, "n2", [])
    one.publish({"links": []})
    one.step()
    two.resync()
    one.close()
    two.watch_once()
    assert two.documents() == {} and "/sdn/learned/topology/n1" not in etcd.kv


def test_etcd_unreachable_is_a_clear_error(etcd):
    etcd.down.add(URL)
    one = node(etcd, "n1")
    one.publish({"links": []})
    with pytest.raises(StateError, match="etcd unreachable: no answer from " + URL):
        one.step()


def test_a_node_id_must_be_a_plain_name(etcd):
    with pytest.raises(ValueError, match="without '/'"):
        node(etcd, "a/b")


# --- cluster mode or not -----------------------------------------------------------------

ETCD = {"state": {"backend": "etcd"}}


@pytest.mark.parametrize("data, env, expected", [
    ({}, "n1", None),                                          # sqlite: one node
    (ETCD, None, None),                                        # etcd alone: no node id
    (ETCD, "n2", ("n2", 2.0)),                                 # the test elector's name
    (dict(ETCD, cluster={"node_id": "n3", "lease_s": 3}), "n2", ("n3", 3.0)),
])
def test_cluster_identity(monkeypatch, data, env, expected):
    if env is None:
        monkeypatch.delenv(shared_learned.NODE_ENV, raising=False)
    else:
        monkeypatch.setenv(shared_learned.NODE_ENV, env)
    assert shared_learned.cluster_identity(data) == expected
    if expected is None:
        assert shared_learned.for_app("topology", None, data) is None


@pytest.mark.parametrize("cluster, message", [
    ([1], "config section 'cluster' must be a mapping"),
    ({"node_id": "n1", "lease_s": 0.5}, r"lease_s must be a whole number of seconds in \[2, 60\]"),
    ({"node_id": "n1", "lease_s": "2"}, "lease_s must be a whole number"),
    ({"node_id": "n1"}, "a cluster node needs `state.backend: etcd`"),
])
def test_a_bad_cluster_section_is_refused(cluster, message):
    data = {"cluster": cluster} if "backend" in message else dict(ETCD, cluster=cluster)
    with pytest.raises(config.ConfigError, match=message):
        shared_learned.cluster_identity(data)


def test_for_app_starts_both_loops_on_the_configured_etcd(etcd):
    spawned = []
    data = dict(ETCD, cluster={"node_id": "n1"})
    data["state"] = {"backend": "etcd", "etcd": {"endpoints": [URL], "prefix": "/p"}}
    shared = shared_learned.for_app("topology", None, data, make_client=etcd.client,
                                    spawn=spawned.append)
    assert shared.key == "/p/learned/topology/n1"
    assert sorted(run.__name__ for run in spawned) == ["_lease_loop", "_watch_loop"]
    shared.publish({"links": []})
    shared.step()
    assert etcd.stored("/p/learned/topology/n1") == {"links": []}
    assert etcd.leases
