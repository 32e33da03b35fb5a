"""The state store on a real etcd (Debian's etcd 3.4, one member on free ports, its data
in the test's tmp dir, killed at the end whatever happened): two nodes' stores saving
over each other, the watch, compaction, and etcd killed under a node."""
import statistics
import threading
import time

import pytest

from controller import config, etcd_client, etcd_store
from controller.etcd_store import EtcdStateStore
from controller.state import NO_REVISION, StateConflict, StateError
from tests.support import etcd_server

pytestmark = pytest.mark.integration


@pytest.fixture
def etcd(tmp_path):
    with etcd_server.running(tmp_path) as server:
        yield server


def thread(run):
    threading.Thread(target=run, daemon=True).start()


def node_store(etcd, app="vlan", timeout_s=2.0, **kwargs):
    """A store as one controller node has it (a client of its own)."""
    client = etcd_client.EtcdClient([etcd.url], timeout_s)
    return EtcdStateStore(app, client, spawn=thread, idle_s=2.0, **kwargs)


def wait_for(condition, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.001)
    return False


def test_two_nodes_save_load_and_conflict_and_another_cluster_is_refused(etcd):
    ours, theirs = node_store(etcd), node_store(etcd)
    assert ours.load() == ({}, NO_REVISION)
    saves, loads = [], []
    revision = NO_REVISION
    for n in range(50):
        started = time.perf_counter()
        revision = ours.save({"1": {"tag": n}}, revision)
        saves.append(time.perf_counter() - started)
        started = time.perf_counter()
        assert theirs.load() == ({"1": {"tag": n}}, revision)
        loads.append(time.perf_counter() - started)
    with pytest.raises(StateConflict, match=f"revision {revision}, this controller had "
                                            f"{revision - 1}"):
        theirs.save({"1": {"tag": 99}}, revision - 1)
    assert ours.load() == ({"1": {"tag": 49}}, revision)          # nothing saved
    with pytest.raises(StateError, match="belongs to cluster 'sdn'.*this node is cluster "
                                         "'other'"):
        node_store(etcd, cluster="other").load()
    print(f"observed: save (txn) median {statistics.median(saves) * 1e3:.2f} ms, max "
          f"{max(saves) * 1e3:.2f}; load median {statistics.median(loads) * 1e3:.2f} ms, max "
          f"{max(loads) * 1e3:.2f} (50 each)")
    assert statistics.median(saves) < 0.05 and statistics.median(loads) < 0.05


def test_the_watch_delivers_another_nodes_change_not_its_own(etcd):
    ours, theirs = node_store(etcd, "qos"), node_store(etcd, "qos")
    heard = []
    ours.watch(lambda document, revision: heard.append((time.perf_counter(), document,
                                                        revision)))
    try:
        _, revision = ours.load()
        revision = ours.save({"own": 1}, revision)
        times = []
        for n in range(20):
            started = time.perf_counter()
            revision = theirs.save({"n": n}, revision)
            assert wait_for(lambda: len(heard) == n + 1, 5), heard
            assert heard[-1][1:] == ({"n": n}, revision)
            times.append(heard[-1][0] - started)
        revision = ours.save({"own": 2}, revision)
        time.sleep(0.3)
        assert len(heard) == 20       # its own save was not told
        print(f"observed: watch delivered another node's save (from its save call) in "
              f"median {statistics.median(times) * 1e3:.2f} ms, max {max(times) * 1e3:.2f} "
              f"(20 saves)")
    finally:
        ours.close()


def test_a_watch_from_a_compacted_revision_reloads_the_document_whole(etcd):
    ours, theirs = node_store(etcd), node_store(etcd)
    heard = []
    ours._changed_elsewhere = lambda document, revision: heard.append((document, revision))
    ours.load()
    for n in range(3):
        revision = theirs.save({"n": n}, theirs.load()[1])
    etcd.compact(revision)
    ours.watch_once()   # from the revision after its load: compacted, so etcd says so
    assert heard == [({"n": 2}, revision)]


def test_etcd_killed_is_a_clear_error_within_the_timeout_and_a_restart_resumes(etcd):
    ours, theirs = node_store(etcd, timeout_s=1.0), node_store(etcd, timeout_s=1.0)
    heard = []
    ours.watch(lambda document, revision: heard.append((document, revision)))
    try:
        _, revision = ours.load()
        revision = ours.save({"before": True}, revision)
        etcd.kill()
        for attempt in (ours.load, lambda: ours.save({"during": True}, revision)):
            started = time.monotonic()
            with pytest.raises(StateError) as err:
                attempt()
            elapsed = time.monotonic() - started
            assert str(err.value).startswith(f"etcd unreachable: no answer from {etcd.url} "
                                             f"within 1 s ({etcd.url}: [Errno 111] "
                                             f"Connection refused")
            assert 0.9 <= elapsed <= 1.3, elapsed
        print(f"observed: etcd killed -> '{err.value}' after {elapsed:.2f} s")
        etcd.start()
        assert ours.load() == ({"before": True}, revision)    # on disk, kept
        revision = theirs.save({"after": True}, theirs.load()[1])
        assert wait_for(lambda: heard, 10), "the watch did not resume after etcd came back"
        assert heard == [({"after": True}, revision)]
        assert etcd.stored("/sdn/meta") == {"cluster": "sdn", "format": 1}
        assert etcd.stored("/sdn/state/vlan") == {"after": True}
    finally:
        ours.close()


def test_mutual_tls_to_etcd_and_a_node_without_a_client_certificate_is_refused(tmp_path):
    tls = etcd_server.make_tls(tmp_path / "tls")
    with etcd_server.running(tmp_path / "etcd", tls=tls) as etcd:
        def node(**files):
            section = {"state": {"backend": "etcd", "etcd": dict(
                endpoints=[etcd.url], timeout_s=1.0, **files)}}
            return etcd_store.factory(config.state_settings(section).etcd, spawn=thread)
        make = node(ca_file=tls["ca"], cert_file=tls["node"], key_file=tls["node_key"])
        ours, theirs = make("vlan"), make("vlan")
        heard = []
        ours.watch(lambda document, revision: heard.append((document, revision)))
        try:
            _, revision = ours.load()
            revision = theirs.save({"over": "tls"}, theirs.load()[1])
            assert wait_for(lambda: heard, 5) and heard == [({"over": "tls"}, revision)]
            assert etcd.stored("/sdn/state/vlan") == {"over": "tls"}
        finally:
            ours.close()
        with pytest.raises(StateError, match=r"\[SSL: \w+\] .*bad certificate"):
            node(ca_file=tls["ca"])("vlan").load()       # no client certificate
        with pytest.raises(StateError, match=r"\[SSL: CERTIFICATE_VERIFY_FAILED\] certificate "
                                             r"verify failed"):
            node()("vlan").load()                        # etcd's CA not trusted


def test_three_members_a_follower_then_the_leader_killed_and_then_quorum_lost(tmp_path):
    with etcd_server.running_cluster(tmp_path) as members:
        leader = next(m for m in members if m.is_leader())
        follower = next(m for m in members if m is not leader)
        urls = [follower.url] + [m.url for m in members if m is not follower]
        # a leader election took 2.0-3.4 s here: 10 s leaves room for a loaded machine
        ours = EtcdStateStore("vlan", etcd_client.EtcdClient(urls, 10.0), spawn=thread,
                              idle_s=2.0)
        theirs = EtcdStateStore("vlan", etcd_client.EtcdClient(urls[::-1], 10.0),
                                spawn=thread)
        heard = []
        ours.watch(lambda document, revision: heard.append((document, revision)))
        try:
            _, revision = ours.load()
            revision = ours.save({"n": 0}, revision)
            taken = {}
            for name, member in (("follower in use", follower), ("leader", leader)):
                member.kill()
                started = time.monotonic()
                revision = ours.save({"n": name}, revision)
                taken[name] = time.monotonic() - started
                assert ours.client.current != member.url
                changed = theirs.save({"from": name}, theirs.load()[1])
                assert wait_for(lambda: heard and heard[-1] == ({"from": name}, changed),
                                10), heard
                revision = changed
                member.start()                     # rejoins with its data dir
            assert taken["follower in use"] < 1.0, taken
            quick = EtcdStateStore("vlan", etcd_client.EtcdClient(urls, 2.0),
                                   spawn=lambda run: None)
            quick.load()
            for member in members[1:]:
                member.kill()                      # one member of three: no quorum
            started = time.monotonic()
            with pytest.raises(StateError, match="etcd unreachable: no answer from") as err:
                quick.save({"n": "no quorum"}, revision)
            no_quorum = time.monotonic() - started
            assert 1.9 <= no_quorum <= 2.5, no_quorum
            print(f"observed: 3 members; save with the member in use killed "
                  f"{taken['follower in use'] * 1e3:.0f} ms, with the leader killed "
                  f"{taken['leader']:.2f} s; the watch followed both; without quorum "
                  f"'{err.value}' after {no_quorum:.2f} s")
        finally:
            ours.close()
