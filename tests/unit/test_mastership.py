"""Mastership per switch (controller/mastership.py, controller/roles.py): a cluster
node sends SLAVE before any write, writes only once its MASTER role is confirmed, has
the apps converge then, and steps down at once when it loses or the switch refuses it.
The fake switch answers roles as OVS does (tests/support/fakeswitch.py)."""
import json

import pytest
from ryu.controller import handler, ofp_event
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser

from apps import topology as topology_app
from controller import mastership, roles, runtime, southbound
from tests.support import l2_app as l2_tests
from tests.support.fake_elector import FakeElector
from tests.support.fakeswitch import FakeSwitch, run_inline
from tests.support.app_scenarios import SCENARIOS, WRITES, _spawn_inline

H1, H2, H3 = l2_tests.H1, l2_tests.H2, "00:00:00:00:00:03"
ROLE_WRITES = (parser.OFPFlowMod, parser.OFPGroupMod, parser.OFPMeterMod, parser.OFPPacketOut)


def features(switch):
    return ofp_event.EventOFPSwitchFeatures(l2_tests.Features(switch))


def cluster_l2(monkeypatch, elector=None):
    """The learning app on a cluster node (a fake elector), its switch connected and
    its connect pass (features, reconcile) run, as Ryu would."""
    elector = elector or FakeElector()
    return connected_l2(monkeypatch, runtime.Runtime(elector=elector)) + (elector,)


def connected_l2(monkeypatch, rt):
    run_inline(monkeypatch, topology_app.hub)
    app = l2_tests.make_app(monkeypatch, rt)
    handler.register_instance(app)
    switch = FakeSwitch(1, app)
    assert app.get_handlers(features(switch))
    app._switch_connected(features(switch))
    app._reconcile(app.switches[1])
    return app, switch


def learn(app, switch, src, dst):
    app._packet_in(l2_tests.packet_in(switch, 1, l2_tests.eth(dst, src)))


def writes(switch, since=0):
    return [m for m in switch.sent[since:] if isinstance(m, ROLE_WRITES)]


def role_requests(switch):
    return [(m.role, m.generation_id) for m in switch.sent if isinstance(m, parser.OFPRoleRequest)]


def no_error_logged(caplog):
    return not [r for r in caplog.records if southbound.OFP_ERROR_MARK in r.getMessage()]


# --- a single node: exactly as before -----------------------------------------------

def test_a_single_node_wins_every_switch_at_once_with_rising_generations():
    won = []
    elector = mastership.SingleNode()
    elector.start(lambda dpid, gen: won.append((dpid, gen)), lambda dpid: None)
    elector.contend(1)
    elector.contend(2)
    elector.contend(1)
    assert won == [(1, 1), (2, 2), (1, 3)] and elector.generation(1) == 3


def test_a_single_node_speaks_no_role_protocol(monkeypatch):
    app, switch = connected_l2(monkeypatch, runtime.Runtime())
    assert role_requests(switch) == [] and switch.role == ofp.OFPCR_ROLE_EQUAL
    assert writes(switch) and app.runtime.may_write(1)
    assert "role" not in l2_tests.call(app, "GET", "/v1/runtime/switches")[1][0]


def test_a_single_node_still_logs_a_slave_refusal_as_an_error(monkeypatch, caplog):
    """Only a cluster expects refusals; on one node another controller took the switch."""
    run_inline(monkeypatch, topology_app.hub)
    app = l2_tests.make_app(monkeypatch)
    switch = FakeSwitch(1, app)
    switch.demote(3)
    app.send(switch, parser.OFPPacketOut(switch, ofp.OFP_NO_BUFFER, 1, [], b"x" * 60))
    assert not no_error_logged(caplog)


def test_a_bad_test_elector_name_stops_the_start(monkeypatch):
    monkeypatch.setenv(mastership.TEST_ELECTOR_ENV, "tests.support.fake_elector:Nope")
    with pytest.raises(SystemExit, match="Nope"):
        runtime.Runtime()
    monkeypatch.setenv(mastership.TEST_ELECTOR_ENV, "tests.support.fake_elector:FakeElector")
    assert runtime.Runtime().roles.clustered


# --- a cluster node ---------------------------------------------------------------------

def test_a_slave_sends_slave_first_and_never_writes(monkeypatch, caplog):
    app, switch, elector = cluster_l2(monkeypatch)
    assert isinstance(switch.sent[0], parser.OFPRoleRequest)    # before anything else
    assert role_requests(switch) == [(ofp.OFPCR_ROLE_SLAVE, 0)]
    assert switch.role == ofp.OFPCR_ROLE_SLAVE and elector.calls == [("contend", 1)]
    learn(app, switch, H1, H2)
    assert writes(switch) == [] and switch.flows == {} and app.runtime.refused[1] > 0
    (entry,) = l2_tests.call(app, "GET", "/v1/runtime/switches")[1]
    assert entry["role"] == "slave" and entry["may_write"] is False and entry["refused"] > 0
    assert entry["switch_role"] == "slave" and entry["apps"] == {"L2Switch": "pending"}
    assert no_error_logged(caplog)


def test_a_win_is_confirmed_by_role_reply_and_barrier_before_the_apps_converge(monkeypatch):
    app, switch, elector = cluster_l2(monkeypatch)
    assert switch.flows == {}
    elector.win(1, 7)
    sent = [type(m).__name__ for m in switch.sent]
    master = next(i for i, m in enumerate(switch.sent) if isinstance(m, parser.OFPRoleRequest)
                  and m.role == ofp.OFPCR_ROLE_MASTER)
    assert switch.sent[master].generation_id == 7
    assert sent[master + 1] == "OFPBarrierRequest"
    assert all(not isinstance(m, ROLE_WRITES) for m in switch.sent[:master + 2])
    assert switch.role == ofp.OFPCR_ROLE_MASTER and app.runtime.may_write(1)
    assert switch.flows and switch.refused == []     # the app converged it
    (entry,) = l2_tests.call(app, "GET", "/v1/runtime/switches")[1]
    assert entry["role"] == "master" and entry["generation"] == 7
    assert entry["apps"] == {"L2Switch": "reconciled"}


def test_taking_over_keeps_what_works(monkeypatch):
    """Mastership moves to this node: it converges by diff, nothing right is deleted."""
    app, switch, elector = cluster_l2(monkeypatch)
    elector.win(1, 1)
    learn(app, switch, H1, H2)
    before = switch.table()
    elector.lose(1, 2)
    switch.demote(2)
    mark = len(switch.sent)
    elector.win(1, 3)
    deletes = [m for m in writes(switch, mark) if isinstance(m, parser.OFPFlowMod)
               and m.command in (ofp.OFPFC_DELETE, ofp.OFPFC_DELETE_STRICT)]
    assert deletes == [] and switch.table() == before


def test_a_loss_stops_writing_at_once(monkeypatch, caplog):
    app, switch, elector = cluster_l2(monkeypatch)
    elector.win(1, 4)
    learn(app, switch, H1, H2)
    assert writes(switch)
    elector.lose(1, 5)
    assert not app.runtime.may_write(1)
    assert role_requests(switch)[-1] == (ofp.OFPCR_ROLE_SLAVE, 5)
    mark = len(switch.sent)
    learn(app, switch, H3, H1)
    assert writes(switch, mark) == [] and switch.refused == []
    assert no_error_logged(caplog)


def test_a_paused_master_refused_by_the_switch_steps_down_and_does_not_fight(
        monkeypatch, caplog):
    """Another node took over while this one was paused (its elector has not said so
    yet): its next write is refused OFPBRC_IS_SLAVE, it stops, and a win at its old
    generation is not tried; a newer one is."""
    app, switch, elector = cluster_l2(monkeypatch)
    elector.win(1, 4)
    switch.demote(6)                 # the other node's MASTER at generation 6
    learn(app, switch, H1, H2)       # a packet-out and flows: refused
    assert switch.refused and not app.runtime.may_write(1)
    assert elector.calls[-2:] == [("release", 1), ("contend", 1)]   # stands in line
    mark = len(switch.sent)
    learn(app, switch, H3, H1)
    assert writes(switch, mark) == []
    elector.win(1, 4)                # its old win again: not even asked
    assert len(role_requests(switch)) == 1 + 1
    assert no_error_logged(caplog)
    assert any(roles.ROLE_MARK in r.getMessage() and "IS_SLAVE" in r.getMessage()
               for r in caplog.records)


def test_a_master_the_switch_says_it_demoted_steps_down_before_writing(monkeypatch, caplog):
    app, switch, elector = cluster_l2(monkeypatch)
    elector.win(1, 4)
    switch.demote(6, tell=True)
    assert not app.runtime.may_write(1)
    assert elector.calls[-2:] == [("release", 1), ("contend", 1)]
    learn(app, switch, H1, H2)
    assert switch.refused == [] and no_error_logged(caplog)
    (entry,) = l2_tests.call(app, "GET", "/v1/runtime/switches")[1]
    assert (entry["role"], entry["switch_role"]) == ("slave", "slave")


def test_a_stale_generation_is_refused_and_the_node_steps_down(monkeypatch, caplog):
    app, switch, elector = cluster_l2(monkeypatch)
    switch.demote(9)                 # another node is master at 9
    elector.win(1, 8)                # a late win of ours, older
    assert role_requests(switch)[-1] == (ofp.OFPCR_ROLE_MASTER, 8)
    assert switch.role == ofp.OFPCR_ROLE_SLAVE and not app.runtime.may_write(1)
    assert switch.flows == {} and writes(switch) == []
    assert l2_tests.call(app, "GET", "/v1/runtime/switches")[1][0]["role"] == "slave"
    assert no_error_logged(caplog)
    elector.win(1, 10)               # a newer, real win
    assert switch.role == ofp.OFPCR_ROLE_MASTER and app.runtime.may_write(1) and switch.flows


def test_a_switch_that_does_not_answer_the_role_request_is_not_written(monkeypatch):
    class Mute(FakeSwitch):
        def _on_OFPRoleRequest(self, req):
            pass
    run_inline(monkeypatch, topology_app.hub)
    monkeypatch.setattr(roles.Roles, "REPLY_TIMEOUT_S", 0.05)
    elector = FakeElector()
    app = l2_tests.make_app(monkeypatch, runtime.Runtime(elector=elector))
    switch = Mute(1, app)
    app.get_handlers(features(switch))
    elector.win(1, 1)
    assert not app.runtime.may_write(1) and writes(switch) == []
    assert elector.calls[-2:] == [("release", 1), ("contend", 1)]


def test_a_reconnect_contends_again_and_a_disconnect_releases(monkeypatch):
    app, switch, elector = cluster_l2(monkeypatch)
    elector.win(1, 1)
    again = FakeSwitch(1, app)                   # the switch reconnected
    app.get_handlers(features(again))
    assert not app.runtime.may_write(1)          # a new connection starts as slave
    assert elector.calls[-1] == ("contend", 1)
    gone = ofp_event.EventOFPStateChange(again)
    gone.state = handler.DEAD_DISPATCHER
    app.get_handlers(gone, handler.DEAD_DISPATCHER)
    assert elector.calls[-1] == ("release", 1)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_app_converges_a_switch_it_becomes_master_of(name, monkeypatch, tmp_path):
    """Every app's connect pass refused (a slave), then `take_over`: the switch holds
    what the same app puts there when it may write from the start."""
    allowed = _scenario(name, monkeypatch, tmp_path / "allowed", [True])[1]
    wanted = [s.table() for s in allowed]
    allow = [False]
    app, switches = _scenario(name, monkeypatch, tmp_path / "refused", allow)
    assert all(not s.flows for s in switches)
    allow[0] = True
    marks = [len(s.sent) for s in switches]
    for switch in switches:
        app.take_over(switch)
    # the connect's settings too (miss_send_len: not in the tables); packet-outs are
    # the events' own (a probe, LLDP), sent again when they come again
    assert _kinds(s.sent[m:] for s, m in zip(switches, marks)) == _kinds(
        s.sent for s in allowed)
    if name == "l2_switch":   # a host only the slave saw: learned at its next packet-in
        assert len(switches[0].table()[0]) < len(wanted[0][0])
        learn(app, switches[0], H1, H2)
    assert [s.table() for s in switches] == wanted


def _kinds(sent):
    return {type(m).__name__ for messages in sent for m in messages} & (
        WRITES - {"OFPPacketOut"})


def _scenario(name, monkeypatch, tmp_path, allow):
    """test_runtime_object's scenario of app `name`, writes allowed while allow[0]."""
    monkeypatch.setattr(runtime.Runtime, "may_write", lambda self, dpid: allow[0])
    run_inline(monkeypatch, topology_app.hub)
    app, switches = SCENARIOS[name](monkeypatch, tmp_path)
    app.spawn = _spawn_inline
    return app, switches


def test_the_file_elector_follows_the_file(monkeypatch, tmp_path):
    path = tmp_path / "masters.json"
    monkeypatch.setenv("SDN_TEST_ELECTOR_FILE", str(path))
    monkeypatch.setenv("SDN_NODE", "a")
    from tests.support import file_elector
    monkeypatch.setattr(file_elector.hub, "spawn", lambda run, *args: None)
    events = []
    elector = file_elector.FileElector()
    elector.start(lambda d, g: events.append(("won", d, g)), lambda d: events.append(("lost", d)))
    path.write_text(json.dumps({"0000000000000001": ["b", 1]}))
    elector.contend(1)
    path.write_text(json.dumps({"0000000000000001": ["a", 2]}))
    elector._check()
    elector._check()
    elector.contend(1)               # a reconnect while it is ours
    path.write_text(json.dumps({"0000000000000001": ["b", 3]}))
    elector._check()
    assert events == [("won", 1, 2), ("won", 1, 2), ("lost", 1)]
    assert elector.generation(1) == 3


def test_a_slave_does_not_repair_a_switch_the_canary_watch_finds_empty(monkeypatch):
    app, switch, elector = cluster_l2(monkeypatch)
    loops, checked, rounds = [], [], []

    def sleep(seconds):
        rounds.append(seconds)
        if len(rounds) > 3:
            raise StopIteration
    monkeypatch.setattr(topology_app.hub, "spawn", lambda run, *args: loops.append(run))
    monkeypatch.setattr(topology_app.hub, "sleep", sleep)
    app.watch_canaries("l2_switch", lambda: [switch], lambda dp: checked.append(("repair", dp)))
    monkeypatch.setattr(app, "canary_gone", lambda name, dp: checked.append("asked") or True)
    with pytest.raises(StopIteration):
        loops[0]()
    assert checked == []                     # a slave: not even asked
    run_inline(monkeypatch, topology_app.hub)
    elector.win(1, 2)
    rounds.clear()
    with pytest.raises(StopIteration):
        loops[0]()
    assert checked[:2] == ["asked", ("repair", switch)]
