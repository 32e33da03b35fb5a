"""The etcd-backed elector (controller/etcd_elector.py) against an etcd in memory
(tests/support/fake_etcd.py, with leases), on a clock and scheduler the test drives,
and the `cluster` config section."""
import base64
import heapq
import itertools
import json

import pytest

from controller import config, etcd_client, etcd_elector, mastership, runtime
from controller.etcd_elector import EtcdElector, preferred
from controller.state import StateError
from tests.support.fake_etcd import FakeEtcd

A = "http://127.0.0.1:23791"
MASTERS, NODES = "/sdn/cluster/masters/", "/sdn/cluster/nodes/"


class Scheduler:
    """Green threads and time, run when the test says."""

    def __init__(self):
        self.now, self._tasks, self._seq = 100.0, [], itertools.count()

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds

    def spawn_after(self, delay, function, *args):
        heapq.heappush(self._tasks, (self.now + delay, next(self._seq), function, args))

    def run(self, until=float("inf")):
        while self._tasks and self._tasks[0][0] <= until:
            when, _, function, args = heapq.heappop(self._tasks)
            self.now = max(self.now, when)
            function(*args)


def make(etcd, sched, name, apps=("L2Switch",), digest="d1", lease_s=2, start=True):
    cluster = config.ClusterSettings(node_id=name, lease_s=lease_s)
    settings = config.EtcdSettings(endpoints=(A,), timeout_s=0.2)
    client = etcd_client.EtcdClient((A,), 0.2, etcd.client)
    record = {"apps": list(apps), "config_digest": digest, "openflow": None, "pid": 1,
              "started": 0}
    elector = EtcdElector(cluster, settings, record, client=client, keepalive_client=client,
                          spawn_after=sched.spawn_after, sleep=sched.sleep, clock=sched.clock,
                          background=False)
    elector.events = []
    if start:
        elector.start(lambda dpid, generation: elector.events.append(("won", dpid, generation)),
                      lambda dpid: elector.events.append(("lost", dpid)))
    return elector


def holder(etcd, dpid):
    kv = etcd.kv.get(f"{MASTERS}{dpid:016x}")
    return None if kv is None else etcd_client.decode(kv["value"])


@pytest.fixture
def etcd():
    return FakeEtcd()


@pytest.fixture
def sched():
    return Scheduler()


# --- winning, losing, generations ----------------------------------------------------

def test_one_node_wins_a_switch_in_etcd_and_the_other_hears_who_at_which_generation(
        etcd, sched):
    a, b = make(etcd, sched, "a"), make(etcd, sched, "b")
    dpid = next(d for d in range(1, 50) if preferred({"a", "b"}, d) == "a")
    a.contend(dpid)
    b.contend(dpid)
    sched.run()
    key = etcd.kv[f"{MASTERS}{dpid:016x}"]
    generation = int(key["create_revision"])
    assert a.events == [("won", dpid, generation)] and b.events == []
    assert holder(etcd, dpid) == "a" and key["lease"] == a.lease != b.lease
    assert b.generation(dpid) == generation and a.generation(dpid) == generation
    a.contend(dpid)   # a reconnect while master: the same win again, no new key
    assert a.events[-1] == ("won", dpid, generation)
    assert etcd.kv[f"{MASTERS}{dpid:016x}"] == key
    a.watch_once()   # hears of b's record
    assert a.describe() == {"elector": "EtcdElector", "node_id": "a", "lease": a.lease,
                            "healthy": True, "lease_s": 2, "masters": [f"{dpid:016x}"],
                            "nodes": ["a", "b"], "last_error": None, "apps": ["L2Switch"],
                            "config_digest": "d1"}


def test_a_dead_masters_lease_frees_the_switch_the_other_node_takes_it_at_a_newer_generation(
        etcd, sched):
    a, b = make(etcd, sched, "a"), make(etcd, sched, "b")
    for node in (a, b):
        node.contend(5)
    sched.run()
    first, second = (a, b) if a.events else (b, a)
    (_, _, generation), = first.events
    second.watch_once()
    etcd.expire(first.lease)           # kill -9: no keepalive, the lease runs out
    assert holder(etcd, 5) is None and f"{NODES}{first.node_id}" not in etcd.kv
    second.watch_once()                # hears the DELETEs: contends again
    sched.run()
    (_, dpid, newer), = second.events
    assert dpid == 5 and newer > generation and holder(etcd, 5) == second.node_id
    assert sorted(second.nodes) == [second.node_id]   # the dead node's record went too
    first.watch_once()                 # a paused first hears it: it lost the switch
    assert first.events[-1] == ("lost", 5) and first.generation(5) == newer


def test_a_dead_preferred_nodes_switch_is_taken_at_once_its_record_went_with_its_lease(
        etcd, sched):
    a, b = make(etcd, sched, "a"), make(etcd, sched, "b")
    dpid = next(d for d in range(1, 50) if preferred({"a", "b"}, d) == "a")
    a.contend(dpid)
    sched.run()
    b.contend(dpid)
    b.watch_once()
    etcd.expire(a.lease)   # its record and its master key go in one revision
    start = sched.now
    b.watch_once()
    sched.run()
    assert b.events[-1][:2] == ("won", dpid) and sched.now == start   # no spread delay
    assert sorted(b.nodes) == ["b"]


def test_a_put_by_another_node_on_a_key_we_held_is_a_loss(etcd, sched):
    a, b = make(etcd, sched, "a"), make(etcd, sched, "b")
    a.contend(9)
    sched.run()
    assert a.events[-1][0] == "won"
    a.watch_once()
    etcd.delete(f"{MASTERS}{9:016x}")           # (an operator's etcdctl del, say)
    etcd.put(f"{MASTERS}{9:016x}", "b", b.lease)  # and b won before a heard the delete
    a.watch_once()
    assert a.events[-1] == ("lost", 9) and a.describe()["masters"] == []
    sched.run()
    assert holder(etcd, 9) == "b" and a.events[-1] == ("lost", 9)   # a does not fight


# --- the lease ----------------------------------------------------------------------

def lose_etcd(etcd, sched, node):
    """etcd unreachable from `node` until it gives up: when that was (clock)."""
    etcd.down.add(A)
    while node.healthy:
        pause = node.keepalive_once()
        lost_at = sched.now
        sched.sleep(pause)
    return lost_at


def test_keepalive_failure_gives_every_switch_up_before_the_lease_can_expire(etcd, sched):
    a = make(etcd, sched, "a")
    for dpid in (1, 2, 3):
        a.contend(dpid)
    sched.run()
    old, started = a.lease, sched.now
    assert a.keepalive_once() == pytest.approx(2 / 3)   # healthy: every lease_s / 3
    lost_at = lose_etcd(etcd, sched, a)
    assert sorted(e[1] for e in a.events if e[0] == "lost") == [1, 2, 3]   # all at once
    assert lost_at - started <= 0.6 * 2 + 0.05 < 2   # before etcd could expire the lease
    assert not a.healthy and "no keepalive answer" in a.describe()["last_error"]
    assert a.keepalive_once() > 0 and not a.healthy   # keeps trying while etcd is away
    etcd.expire(old)                         # meanwhile etcd let the lease run out
    etcd.down.clear()                        # etcd answers again: a new lease, re-contend
    a.keepalive_once()
    sched.run()
    assert a.healthy and a.lease != old and a.last_error is None
    assert etcd.kv[f"{NODES}a"]["lease"] == a.lease
    won = [e for e in a.events if e[0] == "won"]
    assert sorted(e[1] for e in won[3:]) == [1, 2, 3]
    assert all(new[2] > old_win[2] for new, old_win in zip(sorted(won[3:]), sorted(won[:3])))
    assert {etcd.kv[f"{MASTERS}{d:016x}"]["lease"] for d in (1, 2, 3)} == {a.lease}


def test_etcd_back_before_the_lease_expired_gives_the_same_switches_back_unchanged(
        etcd, sched):
    a, b = make(etcd, sched, "a"), make(etcd, sched, "b")
    for dpid in (1, 2):
        a.contend(dpid)
    sched.run()
    won, keys = list(a.events), dict(etcd.kv)
    lose_etcd(etcd, sched, a)   # (an etcd leader election, say)
    assert [e for e in a.events if e[0] == "lost"] == [("lost", 1), ("lost", 2)]
    etcd.down.clear()
    a.keepalive_once()
    sched.run()
    assert a.healthy and a.events[-2:] == won   # the same generations: nobody took them
    assert etcd.kv == keys                      # no key rewritten, none freed
    b.watch_once()
    assert b.events == [] and sorted(b.nodes) == ["a", "b"]


def test_a_keepalive_answered_with_no_ttl_is_an_expired_lease_lost_at_once(etcd, sched):
    a = make(etcd, sched, "a")
    a.contend(4)
    sched.run()
    etcd.expire(a.lease)
    a.keepalive_once()
    assert a.events[-1] == ("lost", 4) and "expired" in a.last_error


def test_a_contend_that_etcd_did_not_answer_is_tried_again(etcd, sched):
    a = make(etcd, sched, "a")
    etcd.down.add(A)
    a.contend(6)
    sched.run(until=sched.now)          # the first attempt: no answer
    assert holder(etcd, 6) is None and "contending for switch" in a.last_error
    etcd.down.clear()
    sched.run()
    assert a.events == [("won", 6, int(etcd.kv[f"{MASTERS}{6:016x}"]["create_revision"]))]


# --- spreading masters ------------------------------------------------------------------

def test_two_nodes_spread_ten_switches_by_rendezvous_hashing(etcd, sched):
    a, b = make(etcd, sched, "a"), make(etcd, sched, "b")
    a.watch_once()   # a hears of b's record
    for dpid in range(1, 11):   # a meets the switches first, b 0.1 s later
        a.contend(dpid)
    sched.run(until=sched.now + 0.1)
    sched.now += 0.1
    for dpid in range(1, 11):
        b.contend(dpid)
    sched.run()
    held = {name: {e[1] for e in node.events if e[0] == "won"}
            for name, node in (("a", a), ("b", b))}
    assert held["a"] and held["b"] and held["a"] | held["b"] == set(range(1, 11))
    assert not held["a"] & held["b"]
    assert all(preferred({"a", "b"}, dpid) == name for name in held for dpid in held[name])


def test_a_switch_whose_preferred_node_does_not_contend_is_taken_after_the_delay(etcd, sched):
    a, b = make(etcd, sched, "a"), make(etcd, sched, "b")
    dpid = next(d for d in range(1, 50) if preferred({"a", "b"}, d) == "a")
    start = sched.now
    b.contend(dpid)   # a does not see this switch
    sched.run()
    assert b.events[-1][:2] == ("won", dpid)
    assert sched.now - start == pytest.approx(etcd_elector.SPREAD_DELAY_S)


# --- joining ------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, said", [
    ({"apps": ("L2Switch", "Vlan")}, "live node a has apps L2Switch, this node L2Switch, "
                                     "Vlan"),
    ({"digest": "d2"}, "live node a has config_digest 'd1', this node 'd2'"),
])
def test_a_node_whose_apps_or_config_differ_is_refused(etcd, sched, kwargs, said):
    make(etcd, sched, "a")
    b = make(etcd, sched, "b", start=False, **kwargs)
    with pytest.raises(SystemExit, match=said):
        b.start(None, None)
    assert f"{NODES}b" not in etcd.kv and len(etcd.leases) == 1   # nothing written


def test_a_live_node_record_of_another_format_is_refused(etcd, sched):
    etcd.put(f"{NODES}old", json.dumps({"node_id": "old", "apps": ["L2Switch"],
                                        "config_digest": "d1", "format": 2}))
    with pytest.raises(SystemExit, match="live node old has format 2, this node 1: a node "
                                         "of another version"):
        make(etcd, sched, "b")


def test_a_second_live_node_of_the_same_name_is_refused_a_dead_ones_record_waited_out(
        etcd, sched):
    a = make(etcd, sched, "a")
    again = make(etcd, sched, "a", start=False)
    with pytest.raises(SystemExit, match="node_id 'a' is taken by a live node"):
        again.start(None, None)
    assert etcd.kv[f"{NODES}a"]["lease"] == a.lease
    # a restart after kill -9: the old record lives until its lease runs out
    sched.sleep = lambda seconds: etcd.expire(a.lease)
    restarted = make(etcd, sched, "a")
    assert restarted.healthy and etcd.kv[f"{NODES}a"]["lease"] == restarted.lease


def test_the_node_record_says_who_this_node_is(etcd, sched):
    make(etcd, sched, "a")
    assert etcd.stored(f"{NODES}a") == {"node_id": "a", "apps": ["L2Switch"],
                                        "config_digest": "d1", "rest_url": None,
                                        "openflow": None, "pid": 1, "started": 0,
                                        "format": 1}


def test_the_config_digest_covers_the_apps_sections_only():
    data = {"l2": {"flood": True}, "api": {"port": 1}, "state": {"backend": "etcd"}}
    digest = etcd_elector.config_digest(data, ["l2", "vlan"])
    assert digest == etcd_elector.config_digest(
        {"l2": {"flood": True}, "vlan": {}, "cluster": {"node_id": "x"}}, ["vlan", "l2"])
    assert digest != etcd_elector.config_digest({"l2": {"flood": False}}, ["l2", "vlan"])


# --- releasing ------------------------------------------------------------------------

def test_release_deletes_our_key_and_only_ours(etcd, sched):
    a, b = make(etcd, sched, "a"), make(etcd, sched, "b")
    a.contend(7)
    a.contend(8)
    sched.run()
    a.release(7)
    sched.run()
    assert holder(etcd, 7) is None and ("lost", 7) not in a.events
    # a's lease ran out and b won 8 before a heard: a's late release leaves b's key
    etcd.expire(a.lease)
    b.contend(8)
    sched.run()
    assert holder(etcd, 8) == "b"
    a.release(8)
    sched.run()
    assert holder(etcd, 8) == "b"


def test_after_a_compaction_the_watch_reads_everything_again(etcd, sched):
    a, b = make(etcd, sched, "a"), make(etcd, sched, "b")
    a.contend(3)
    sched.run()
    a.watch_once()
    etcd.expire(b.lease)
    etcd.put(f"{MASTERS}{3:016x}", "a", a.lease)   # (a rewrite the watch would miss)
    etcd.compact()
    a.watch_once()
    assert sorted(a.nodes) == ["a"] and a.generation(3) > 0


# --- the config section, and the choice of elector ---------------------------------------

ETCD_STATE = {"backend": "etcd", "etcd": {"endpoints": ["http://127.0.0.1:1"],
                                          "timeout_s": 0.2}}


@pytest.mark.parametrize("section, said", [
    ({}, "node_id is required"),
    (None, "node_id is required"),
    ({"node_id": "a/b"}, "node_id must be a name"),
    ({"node_id": "n1", "lease_s": 1}, "lease_s must be a whole number of seconds in [2, 60]"),
    ({"node_id": "n1", "lease_s": 2.5}, "lease_s must be a whole number"),
    ({"node_id": "n1", "rest_url": "nowhere"}, "rest_url must be an http(s):// URL"),
    ({"node_id": "n1", "lease": 2}, "unknown key(s) lease"),
])
def test_a_bad_cluster_section_is_refused_naming_the_key(section, said):
    with pytest.raises(config.ConfigError, match=r"config section 'cluster': .*"):
        config.cluster_settings({"cluster": section, "state": ETCD_STATE})
    with pytest.raises(SystemExit) as err:
        runtime.configured_elector({"cluster": section, "state": ETCD_STATE})
    assert said in str(err.value)


def test_a_cluster_needs_the_etcd_backend_and_no_section_is_a_single_node(monkeypatch):
    monkeypatch.delenv(mastership.TEST_ELECTOR_ENV, raising=False)
    with pytest.raises(SystemExit, match="needs `state.backend: etcd`"):
        runtime.configured_elector({"cluster": {"node_id": "n1"}})
    assert isinstance(runtime.configured_elector({}), mastership.SingleNode)
    assert config.cluster_settings({"cluster": {"node_id": "n1"}, "state": ETCD_STATE})[0] \
        == config.ClusterSettings(node_id="n1", lease_s=2)


def test_the_runtime_of_a_cluster_node_that_cannot_reach_etcd_stops_with_the_reason(
        monkeypatch, tmp_path):
    monkeypatch.delenv(mastership.TEST_ELECTOR_ENV, raising=False)
    path = tmp_path / "sdn.yaml"
    path.write_text(json.dumps({"cluster": {"node_id": "n1"}, "state": ETCD_STATE}))
    monkeypatch.setenv(config.ENV_VAR, str(path))
    with pytest.raises(SystemExit, match="cluster: node n1: etcd unreachable"):
        runtime.Runtime()


def test_the_test_elector_still_wins_over_the_config(monkeypatch):
    monkeypatch.setenv(mastership.TEST_ELECTOR_ENV, "tests.support.fake_elector:FakeElector")
    elector = runtime.configured_elector({"cluster": {"node_id": "n1"}, "state": ETCD_STATE})
    assert type(elector).__name__ == "FakeElector"


# --- with the runtime: the role protocol on a fake switch --------------------------------

def test_a_node_that_loses_etcd_stops_writing_at_once_and_takes_its_switch_back_after(
        etcd, sched, monkeypatch):
    from apps import topology as topology_app
    from ryu.controller import handler, ofp_event
    from ryu.ofproto import ofproto_v1_3 as ofp
    from ryu.ofproto import ofproto_v1_3_parser as parser
    from tests.support import l2_app as l2_tests
    from tests.support.fakeswitch import FakeSwitch, run_inline

    run_inline(monkeypatch, topology_app.hub)
    elector = make(etcd, sched, "a", start=False)
    app = l2_tests.make_app(monkeypatch, runtime.Runtime(elector=elector))
    handler.register_instance(app)
    switch = FakeSwitch(1, app)
    features = ofp_event.EventOFPSwitchFeatures(l2_tests.Features(switch))
    assert app.get_handlers(features)    # as Ryu dispatches: the runtime hears of it
    app._switch_connected(features)

    def last_role_request():
        request = [m for m in switch.sent if isinstance(m, parser.OFPRoleRequest)][-1]
        return request.role, request.generation_id
    assert not app.runtime.may_write(1)          # a slave until etcd says otherwise
    sched.run()
    generation = int(etcd.kv[f"{MASTERS}{1:016x}"]["create_revision"])
    assert app.runtime.may_write(1) and switch.role == ofp.OFPCR_ROLE_MASTER
    assert last_role_request() == (ofp.OFPCR_ROLE_MASTER, generation)
    lose_etcd(etcd, sched, elector)
    assert not app.runtime.may_write(1) and switch.role == ofp.OFPCR_ROLE_SLAVE
    sent = len(switch.sent)
    app._packet_in(l2_tests.packet_in(switch, 1, l2_tests.eth(l2_tests.H2, l2_tests.H1)))
    assert not [m for m in switch.sent[sent:] if isinstance(m, (parser.OFPFlowMod,
                                                                parser.OFPPacketOut))]
    etcd.down.clear()
    elector.keepalive_once()
    sched.run()
    assert app.runtime.may_write(1) and switch.role == ofp.OFPCR_ROLE_MASTER
    assert last_role_request() == (ofp.OFPCR_ROLE_MASTER, generation)


# --- a key of ours on our live lease that we do not hold: taken up or let go ----------
# (nobody else can free such a key while our lease lives: left alone, the switch would
# have no master until this node stopped)

def _won(elector, dpid):
    return [e for e in elector.events if e[0] == "won" and e[1] == dpid]


def test_a_switch_given_up_while_etcd_was_away_is_let_go_when_the_lease_comes_back(
        etcd, sched):
    a, b = make(etcd, sched, "a"), make(etcd, sched, "b")
    a.contend(1)
    sched.run()
    b.contend(1)
    sched.run()
    b.watch_once()
    lose_etcd(etcd, sched, a)      # a cut off from etcd for less than its lease
    a.release(1)                   # and its switch connection gone meanwhile
    etcd.down.clear()
    a.keepalive_once()             # the old lease still alive: kept
    sched.run()
    assert holder(etcd, 1) is None                 # let go, not kept on a's lease
    b.watch_once()
    sched.run()
    assert holder(etcd, 1) == "b" and _won(b, 1)


def test_a_contend_that_lands_after_the_switch_went_away_is_deleted(etcd, sched):
    a, b = make(etcd, sched, "a"), make(etcd, sched, "b")
    call = a.client.call

    def released_in_flight(path, body):
        answer = call(path, body)
        if path == "kv/txn" and 1 in a._wanted:
            a.release(1)            # the switch went while the txn was on its way
        return answer
    a.client.call = released_in_flight
    a.contend(1)
    sched.run()
    a.client.call = call
    sched.run()
    assert holder(etcd, 1) is None and 1 not in a._held
    b.contend(1)
    sched.run()
    assert holder(etcd, 1) == "b" and _won(b, 1)


def test_a_contend_committed_whose_answer_was_lost_is_won_all_the_same(etcd, sched):
    a, b = make(etcd, sched, "a"), make(etcd, sched, "b")
    call, lost = a.client.call, []

    def answer_lost_once(path, body):
        answer = call(path, body)
        if path == "kv/txn" and not lost:
            lost.append(path)
            raise StateError("etcd unreachable: timed out")   # committed all the same
        return answer
    a.client.call = answer_lost_once
    a.contend(1)
    sched.run(until=sched.now)
    a.watch_once()                  # hears its own put: a key of ours, wanted
    sched.run()
    b.contend(1)
    b.watch_once()
    sched.run()
    assert holder(etcd, 1) == "a" and len(_won(a, 1)) == 1 and not _won(b, 1)
    assert a._held == {1: int(etcd.kv[f"{MASTERS}{1:016x}"]["create_revision"])}


def test_a_switch_that_comes_back_to_a_node_holding_its_key_unknowingly_is_won(etcd, sched):
    a = make(etcd, sched, "a")
    a.contend(1)
    sched.run()
    generation = a._held.pop(1)     # as if the win's answer had never been read
    a._holders[1] = "a"
    a.contend(1)
    sched.run()
    assert a._held == {1: generation} and _won(a, 1)[-1] == ("won", 1, generation)


def _bad_key(etcd):
    """A key under the cluster prefix that is not UTF-8 (not ours)."""
    etcd.revision += 1
    etcd.kv["/sdn/cluster/masters/bad"] = {
        "key": base64.b64encode(b"/sdn/cluster/masters/\xff").decode(),
        "value": base64.b64encode(b"\xfe").decode(), "mod_revision": str(etcd.revision),
        "create_revision": str(etcd.revision), "version": "1"}


def test_a_key_that_is_not_text_is_skipped_at_join_and_when_etcd_comes_back(etcd, sched):
    _bad_key(etcd)
    a = make(etcd, sched, "a")      # joins: no traceback, no refusal
    a.contend(1)
    sched.run()
    assert _won(a, 1)
    lose_etcd(etcd, sched, a)
    etcd.down.clear()
    a.keepalive_once()
    sched.run()
    assert a.healthy and 1 in a._held and len(_won(a, 1)) == 2


def test_a_silent_watch_is_opened_again_within_two_leases(etcd, sched):
    """A stream to a member that vanished without a FIN says nothing: freed switches
    must not wait longer than a couple of leases for the watch to open again."""
    a = make(etcd, sched, "a", lease_s=3)
    idle = []
    watch = a.client.watch
    a.client.watch = lambda *args, **kwargs: idle.append(args[2]) or watch(*args, **kwargs)
    a.watch_once()
    assert idle == [6]


def test_a_dead_nodes_record_of_another_config_is_waited_out_not_refused(etcd, sched):
    """All nodes restarted with a new config: the old records live until their leases
    run out; a node waits for them instead of refusing to join."""
    a = make(etcd, sched, "a", digest="old")
    sched.sleep = lambda seconds: etcd.expire(a.lease)   # kill -9'd: its lease runs out
    b = make(etcd, sched, "b", digest="new")
    assert b.healthy and f"{NODES}a" not in etcd.kv


def test_two_nodes_of_different_configs_that_join_at_once_do_not_both_stay(etcd, sched):
    a = make(etcd, sched, "a", digest="d1")
    b = make(etcd, sched, "b", digest="d2", start=False)
    first, real = [True], b._read_nodes

    def read_nodes():             # b read the records before a's was written
        if first.pop() if first else False:
            return {}
        return real()
    b._read_nodes = read_nodes
    with pytest.raises(SystemExit, match="live node a has config_digest"):
        b.start(None, None)
    assert f"{NODES}b" not in etcd.kv and b.lease not in etcd.leases   # its lease given back
    assert a.healthy
