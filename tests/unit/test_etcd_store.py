"""The state store on etcd (controller/etcd_store.py, controller/etcd_client.py) against
an etcd in memory (tests/support/fake_etcd.py), and the `state` config section."""
import json
import time

import pytest
from etcd3gw import exceptions as gateway_errors

from controller import config, etcd_client, etcd_store, runtime, state
from controller.etcd_store import EtcdStateStore
from controller.state import NO_REVISION, StateConflict, StateError
from tests.support import l2_app as l2_tests
from tests.support import vlan_app as vlan_tests
from tests.support.fake_etcd import REFUSED as FAKE_REFUSED
from tests.support.fake_etcd import FakeEtcd

A, B, C = "http://127.0.0.1:23791", "http://127.0.0.1:23792", "http://127.0.0.1:23793"


def settings(**etcd):
    return config.state_settings({"state": {"backend": "etcd", "etcd": etcd}})


# --- the config section -------------------------------------------------------------

BAD = {
    "an unknown backend": ({"backend": "redis"}, "backend must be 'sqlite' or 'etcd', not "
                                                 "'redis'"),
    "an unknown key": ({"backend": "etcd", "store": 1}, "unknown key(s) store"),
    "an unknown etcd key": ({"etcd": {"endpoint": A}}, "etcd: unknown key(s) endpoint; "
                                                       "known: ca_file, cert_file, cluster, "
                                                       "endpoints"),
    "etcd not a mapping": ({"etcd": [A]}, "etcd must be a mapping"),
    "endpoints a string": ({"etcd": {"endpoints": A}}, "etcd.endpoints must be a non-empty "
                                                       "list of URLs"),
    "no endpoints": ({"etcd": {"endpoints": []}}, "etcd.endpoints must be a non-empty list"),
    "no scheme": ({"etcd": {"endpoints": [A, "127.0.0.1:2379"]}},
                  "etcd.endpoints[1] must be http(s)://host:port, not '127.0.0.1:2379'"),
    "no port": ({"etcd": {"endpoints": ["http://127.0.0.1"]}}, "etcd.endpoints[0] must be"),
    "a port out of range": ({"etcd": {"endpoints": ["http://h:70000"]}},
                            "etcd.endpoints[0] must be http(s)://host:port"),
    "a path": ({"etcd": {"endpoints": ["http://h:2379/v3"]}}, "etcd.endpoints[0] must be"),
    "a number": ({"etcd": {"endpoints": [2379]}}, "etcd.endpoints[0] must be"),
    "twice": ({"etcd": {"endpoints": [A, A + "/"]}}, "names an endpoint twice"),
    "a relative prefix": ({"etcd": {"prefix": "sdn"}}, "etcd.prefix must be a key path"),
    "a prefix ending in /": ({"etcd": {"prefix": "/sdn/"}}, "etcd.prefix must be a key path"),
    "a cluster name with /": ({"etcd": {"cluster": "a/b"}}, "etcd.cluster must be a name"),
    "timeout as text": ({"etcd": {"timeout_s": "5"}}, "etcd.timeout_s must be a number of "
                                                      "seconds in (0, 600], not '5'"),
    "timeout a boolean": ({"etcd": {"timeout_s": True}}, "etcd.timeout_s must be a number"),
    "timeout zero": ({"etcd": {"timeout_s": 0}}, "etcd.timeout_s must be a number"),
    "a CA for http": ({"etcd": {"ca_file": "/ca.pem"}}, "are for https:// endpoints; every "
                                                        "endpoint is http://"),
    "a cert without its key": ({"etcd": {"endpoints": ["https://h:2379"], "cert_file": "/c"}},
                               "etcd.cert_file and etcd.key_file go together"),
    "a CA that is no path": ({"etcd": {"endpoints": ["https://h:2379"], "ca_file": 7}},
                             "etcd.ca_file must be a file path, not 7"),
}


@pytest.mark.parametrize("section, message", BAD.values(), ids=BAD.keys())
def test_a_bad_state_section_is_refused_naming_the_key(section, message):
    with pytest.raises(config.ConfigError) as err:
        config.state_settings({"state": section})
    assert str(err.value).startswith("config section 'state': ") and message in str(err.value)


def test_sqlite_is_the_default_and_etcd_settings_are_normalised():
    assert config.state_settings({}).backend == "sqlite"
    assert runtime.configured_store({}) is state.SqliteStateStore
    parsed = settings(endpoints=[A + "/", "https://[::1]:2379"], prefix="/lab/sdn",
                      timeout_s=1)
    assert parsed.etcd == config.EtcdSettings(endpoints=(A, "https://[::1]:2379"),
                                              prefix="/lab/sdn", cluster="sdn", timeout_s=1)
    assert config.state_settings({"state": {"backend": "etcd"}}).etcd.endpoints == (
        "http://127.0.0.1:2379",)


def test_tls_files_reach_the_etcd3gw_session_and_an_unreadable_one_is_refused(tmp_path):
    for name in ("ca.pem", "node.pem", "node.key"):
        (tmp_path / name).write_text("-")
    parsed = settings(endpoints=["https://127.0.0.1:2379"], ca_file=str(tmp_path / "ca.pem"),
                      cert_file=str(tmp_path / "node.pem"), key_file=str(tmp_path / "node.key"))
    client = etcd_store.factory(parsed.etcd)("vlan").client._client("https://127.0.0.1:2379")
    assert client.base_url == "https://127.0.0.1:2379"
    assert client.session.verify == str(tmp_path / "ca.pem")
    assert client.session.cert == (str(tmp_path / "node.pem"), str(tmp_path / "node.key"))
    missing = settings(endpoints=["https://127.0.0.1:2379"], ca_file=str(tmp_path / "no.pem"))
    with pytest.raises(StateError, match=f"cannot read state.etcd.ca_file {tmp_path}/no.pem"):
        etcd_store.factory(missing.etcd)


def test_the_runtime_builds_the_configured_backend(monkeypatch, tmp_path):
    path = tmp_path / "sdn.yaml"
    path.write_text(f"state:\n  backend: etcd\n  etcd: {{endpoints: ['{A}'], prefix: /t}}\n")
    monkeypatch.setenv(config.ENV_VAR, str(path))
    store = runtime.Runtime().state("vlan")
    assert isinstance(store, EtcdStateStore) and store.key == "/t/state/vlan"
    assert store.client.endpoints == [A]
    assert runtime.Runtime(state.SqliteStateStore).state("vlan").__class__ is \
        state.SqliteStateStore   # a store class given (the tests) wins
    path.write_text("state: {backend: etcd3}\n")
    with pytest.raises(StateError, match="config section 'state': backend must be"):
        runtime.Runtime().state("vlan")


# --- load, save, conflicts, the stored format -------------------------------------------

def store(etcd, app="vlan", endpoints=(A,), timeout_s=1.0, **kwargs):
    client = etcd_client.EtcdClient(endpoints, timeout_s, make_client=etcd.client)
    return EtcdStateStore(app, client, spawn=lambda run: None, **kwargs)


def test_round_trip_revisions_are_etcd_mod_revisions_and_apps_have_keys_of_their_own():
    etcd = FakeEtcd()
    ours = store(etcd)
    assert ours.load() == ({}, NO_REVISION)
    first = ours.save({"1": {"tag": 10}}, NO_REVISION)
    assert first == int(etcd.kv["/sdn/state/vlan"]["mod_revision"]) == etcd.revision
    assert etcd.stored("/sdn/meta") == {"cluster": "sdn", "format": etcd_store.FORMAT}
    etcd.put("/sdn/state/qos", "{}")       # another app's writes move etcd's revision
    second = ours.save({"1": {"tag": 11}}, first)
    assert second == first + 2
    assert store(etcd).load() == ({"1": {"tag": 11}}, second)
    assert store(etcd, "lb").load() == ({}, NO_REVISION)


def test_a_save_over_a_revision_that_moved_is_a_conflict_and_changes_nothing():
    etcd = FakeEtcd()
    ours, theirs = store(etcd, "lb"), store(etcd, "lb")
    _, revision = ours.load()
    theirs_now = theirs.save({"vips": {"1": None}}, theirs.load()[1])
    with pytest.raises(StateConflict, match=rf"changed by another writer \(revision "
                                            rf"{theirs_now}, this controller had 0\).*nothing "
                                            rf"was saved"):
        ours.save({"vips": {"2": None}}, revision)
    assert store(etcd, "lb").load() == ({"vips": {"1": None}}, theirs_now)
    assert ours.save({"vips": {"2": None}}, theirs_now) > theirs_now
    with pytest.raises(StateConflict):
        ours.save({}, NO_REVISION)   # "absent" is a revision like any other


@pytest.mark.parametrize("meta, message", [
    ({"cluster": "other", "format": 1}, "belongs to cluster 'other' with stored format 1; this "
                                        "node is cluster 'sdn' with stored format 1: refused"),
    ({"cluster": "sdn", "format": 2}, "belongs to cluster 'sdn' with stored format 2"),
    ("not json", "belongs to something else"),
])
def test_data_of_another_cluster_or_format_is_refused_at_load(meta, message):
    etcd = FakeEtcd()
    etcd.put("/sdn/meta", meta if isinstance(meta, str) else json.dumps(meta))
    etcd.put("/sdn/state/vlan", '{"1": {}}')
    before = dict(etcd.kv)
    with pytest.raises(StateError, match=message.replace("(", r"\(")):
        store(etcd).load()
    with pytest.raises(StateError, match="refused"):
        store(etcd).save({}, NO_REVISION)
    assert etcd.kv == before   # nothing written over it


def test_the_cluster_named_in_the_marker_reads_its_data():
    etcd = FakeEtcd()
    etcd.put("/sdn/meta", json.dumps({"cluster": "lab", "format": etcd_store.FORMAT}))
    etcd.put("/sdn/state/vlan", '{"1": {}}')
    assert store(etcd, cluster="lab").load() == ({"1": {}}, etcd.revision)


def test_a_marker_changed_after_the_check_refuses_the_save_not_as_a_conflict():
    etcd = FakeEtcd()
    ours = store(etcd)
    _, revision = ours.load()
    etcd.put("/sdn/meta", json.dumps({"cluster": "intruder", "format": 1}))
    with pytest.raises(StateError, match="cluster marker /sdn/meta in etcd changed") as err:
        ours.save({"1": {}}, revision)
    assert not isinstance(err.value, StateConflict) and "/sdn/state/vlan" not in etcd.kv


def test_a_write_that_landed_before_its_answer_was_lost_is_not_a_conflict():
    etcd = FakeEtcd()
    ours = store(etcd, endpoints=(A, B))
    _, revision = ours.load()
    etcd.calls.clear()
    etcd.after_commit = gateway_errors.ConnectionTimeoutError("Read timed out.")
    saved = ours.save({"1": {"tag": 5}}, revision)   # A applied it, the retry on B sees it
    assert saved == int(etcd.kv["/sdn/state/vlan"]["mod_revision"])
    assert [url for url, path, _ in etcd.calls if path == "kv/txn"] == [A, B]
    assert ours.save({"1": {"tag": 6}}, saved) > saved


# --- endpoints: rotation, unreachable, timeouts, one cluster ---------------------------

def test_a_failed_endpoint_passes_the_request_to_the_next_which_then_stays_first():
    etcd = FakeEtcd()
    ours = store(etcd, endpoints=(A, B, C))
    ours.load()
    etcd.down = {A}
    revision = ours.save({"1": {}}, NO_REVISION)
    assert [url for url, _, _ in etcd.calls[-2:]] == [A, B]
    etcd.calls.clear()
    assert ours.load() == ({"1": {}}, revision)
    assert [url for url, _, _ in etcd.calls] == [B]   # not A again first
    etcd.down = {B, C}
    assert ours.load()[1] == revision and etcd.calls[-1][0] == A   # around the ring


def test_etcd_unreachable_is_a_clear_error_naming_every_endpoint_within_the_timeout():
    etcd = FakeEtcd()
    etcd.down = {A, B}
    started = time.monotonic()
    with pytest.raises(StateError) as err:
        store(etcd, endpoints=(A, B), timeout_s=0.5).load()
    elapsed = time.monotonic() - started
    assert str(err.value) == (f"etcd unreachable: no answer from {A}, {B} within 0.5 s "
                              f"({A}: [Errno 111] Connection refused; {B}: [Errno 111] "
                              f"Connection refused)")
    assert 0.4 <= elapsed < 0.8   # it kept trying until the timeout, and no longer
    assert {url for url, _, _ in etcd.calls} == {A, B}


def test_an_endpoint_that_hangs_gets_its_share_of_the_timeout_and_the_next_answers():
    etcd = FakeEtcd()
    etcd.slow = {A}
    ours = store(etcd, endpoints=(A, B), timeout_s=0.4)
    started = time.monotonic()
    assert ours.load() == ({}, NO_REVISION)
    assert time.monotonic() - started < 0.35
    assert etcd.calls[0][0] == A and etcd.calls[0][2] <= 0.2 and etcd.calls[1][0] == B
    etcd.slow = {A, B}
    started = time.monotonic()
    with pytest.raises(StateError, match=r"within 0.4 s \(.*: timed out"):
        store(etcd, endpoints=(A, B), timeout_s=0.4).load()
    assert time.monotonic() - started < 0.6


@pytest.mark.parametrize("error, said", [
    (gateway_errors.ConnectionFailedError(FAKE_REFUSED), "[Errno 111] Connection refused"),
    (gateway_errors.ConnectionTimeoutError("HTTPConnectionPool(host='h', port=1): Read timed "
                                           "out. (read timeout=0.5)"), "timed out"),
    (gateway_errors.ConnectionFailedError(
        "HTTPSConnectionPool(host='h', port=1): Max retries exceeded with url: /version "
        "(Caused by SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] "
        "certificate verify failed: unable to get local issuer certificate (_ssl.c:992)')))"),
     "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local "
     "issuer certificate"),
    (gateway_errors.ConnectionFailedError('{"error":"etcdserver: no leader","code":14,'
                                          '"message":"etcdserver: no leader"}',
                                          "Service Unavailable"), "etcdserver: no leader"),
])
def test_what_went_wrong_is_said_short(error, said):
    assert etcd_client.cause(error) == said


def test_endpoints_of_two_etcd_clusters_are_refused():
    etcd = FakeEtcd()
    ours = store(etcd, endpoints=(A, B))
    ours.load()
    etcd.down, etcd.other_cluster = {A}, {B}
    with pytest.raises(StateError, match=rf"etcd endpoint {B} is a member of another etcd "
                                         rf"cluster \(id 999\) than {A} \(id 111\)"):
        ours.load()


def test_etcd_refusing_a_request_is_a_plain_error_not_a_retry():
    etcd = FakeEtcd()
    ours = store(etcd, endpoints=(A, B))

    def too_large(path, json=None):
        raise gateway_errors.Etcd3Exception('{"error": "etcdserver: request is too large", '
                                            '"code": 8}', "Too Many Requests")
    client = ours.client._client(A)
    client.post = too_large
    with pytest.raises(StateError, match=f"etcd at {A} refused kv/range: etcdserver: request "
                                         f"is too large"):
        ours.load()
    assert etcd.calls == []


# --- the watch ------------------------------------------------------------------------

def heard_by(ours):
    heard = []
    ours.watch(lambda document, revision: heard.append((document, revision)))
    return heard


def test_the_watch_tells_of_other_writers_not_of_this_stores_own_saves():
    etcd = FakeEtcd()
    ours, theirs = store(etcd, "qos"), store(etcd, "qos")
    heard = heard_by(ours)
    _, revision = ours.load()
    revision = ours.save({"a": 1}, revision)
    ours.watch_once()
    assert heard == []
    changed = theirs.save({"b": 2}, theirs.load()[1])
    ours.watch_once()
    assert heard == [({"b": 2}, changed)]
    ours.watch_once()
    assert len(heard) == 1                      # told once
    assert etcd.watches[-1] == (A, changed + 1)  # resumed after the last revision it knew
    assert ours.save({"c": 3}, changed) > changed
    etcd.delete("/sdn/state/qos")
    ours.watch_once()
    assert heard[-1] == ({}, NO_REVISION)
    assert ours.save({"d": 4}, NO_REVISION) > 0


def test_a_save_of_this_store_while_its_watch_is_open_is_not_told_as_another_writers():
    etcd = FakeEtcd()
    ours, theirs = store(etcd), store(etcd)
    heard = heard_by(ours)
    _, revision = ours.load()
    opened = ours.client.watch

    saved = []

    def open_then_save(key, start_revision, idle_s):
        stream = opened(key, start_revision, idle_s)   # open from before the save ...
        saved.append(ours.save({"own": 1}, revision))   # ... which lands while it is open
        return stream
    ours.client.watch = open_then_save
    ours.watch_once()
    assert etcd.watches[-1][1] <= saved[0] and heard == []   # the stream had it: not told
    ours.client.watch = opened
    changed = theirs.save({"theirs": 1}, theirs.load()[1])
    ours.watch_once()
    assert heard == [({"theirs": 1}, changed)]


def test_after_a_compaction_the_watch_reloads_the_document_whole():
    etcd = FakeEtcd()
    ours, theirs = store(etcd), store(etcd)
    heard = heard_by(ours)
    _, revision = ours.load()
    ours.watch_once()
    position = etcd.watches[-1][1]
    for tag in (1, 2, 3):                        # changes it missed, then compacted away
        revision = theirs.save({"1": {"tag": tag}}, theirs.load()[1])
    etcd.compact()
    ours.watch_once()
    assert etcd.watches[-1] == (A, position)     # asked from where it was: compacted
    assert heard == [({"1": {"tag": 3}}, revision)]   # the whole document, once
    ours.watch_once()
    assert etcd.watches[-1] == (A, etcd.revision + 1) and len(heard) == 1
    etcd.compact()
    ours.watch_once()
    assert len(heard) == 1                       # nothing changed: nothing told


def test_a_watch_that_cannot_reach_etcd_raises_and_a_cancelled_one_says_why():
    etcd = FakeEtcd()
    ours = store(etcd, endpoints=(A, B), timeout_s=0.2)
    ours.load()
    etcd.down = {A, B}
    with pytest.raises(StateError, match="etcd unreachable"):
        ours.watch_once()
    etcd.down = set()
    etcd.stream = lambda url, body: [json.dumps({"result": {
        "canceled": True, "cancel_reason": "permission denied"}}).encode()]
    with pytest.raises(StateError, match="cancelled the watch on /sdn/state/vlan: permission"):
        ours.watch_once()


def test_a_corrupt_document_from_another_writer_is_logged_and_the_node_keeps_its_own(caplog):
    etcd = FakeEtcd()
    ours = store(etcd)
    heard = heard_by(ours)
    ours.load()
    etcd.put("/sdn/state/vlan", "{not json")
    ours.watch_once()
    assert heard == [] and "is corrupt" in caplog.text
    with pytest.raises(StateError, match="is corrupt"):
        store(etcd).load()


def test_the_vlan_app_applies_another_nodes_change_heard_on_the_watch(monkeypatch, tmp_path):
    etcd = FakeEtcd()
    parsed = settings(endpoints=[A], timeout_s=0.3).etcd
    make = etcd_store.factory(parsed, make_client=etcd.client, spawn=lambda run: None)
    monkeypatch.setattr(runtime, "configured_store", lambda data=None: make)
    app = vlan_tests.make_vlan_app(monkeypatch, tmp_path, vlan_tests.SECTION)
    vlan_tests.bring_up(app)
    assert isinstance(app.store.inner, EtcdStateStore)
    status, _, _ = l2_tests.call(app, "PUT", "/v1/switches/1/ports/1/vlan", b'{"tag": 42}')
    assert status == 200 and etcd.stored("/sdn/state/vlan") == {
        "0000000000000001": {"1": {"tag": 42}}}
    other = make("vlan")                                    # another node
    other.save({"0000000000000001": {"1": {"tag": 43}}}, other.load()[1])
    app.store.inner.watch_once()
    assert l2_tests.call(app, "GET", "/v1/switches/1/ports/1/vlan")[1]["tag"] == 43
    assert app.revision == int(etcd.kv["/sdn/state/vlan"]["mod_revision"])
    status, body, _ = l2_tests.call(app, "PUT", "/v1/switches/1/ports/1/vlan", b'{"tag": 44}')
    assert status == 200, body                              # over the revision it heard
    etcd.down = {A}
    status, body, _ = l2_tests.call(app, "PUT", "/v1/switches/1/ports/1/vlan", b'{"tag": 45}')
    assert status == 500 and body["error"].startswith("etcd unreachable")
    assert l2_tests.call(app, "GET", "/v1/switches/1/ports/1/vlan")[1]["tag"] == 44
