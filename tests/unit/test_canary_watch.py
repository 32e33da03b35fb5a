"""The canary watch (controller/southbound.py): a switch's FLOW_REMOVED of an app's
canary starts a check and a repair at once; the backstop poll asks one switch at a
time, at most CANARY_CHECKS_PER_S a second, so 100 idle switches cost a trickle of
requests instead of 50 a second per app (issue 19)."""
import pytest
from ryu.controller import ofp_event
from ryu.ofproto import ofproto_v1_3 as ofp, ofproto_v1_3_parser as parser

from controller import ofcompile, pipeline, southbound
from flows import l2
from tests.support.fakeswitch import run_inline
from tests.support.l2_app import (FakeDatapath, Features, flow_mods, make_app,
                                  switch_holding)


def programmed(app, holding):
    """A switch that holds `holding`, connected and reconciled by the learning app."""
    datapath = FakeDatapath(1, answer=switch_holding(app, holding))
    app._switch_connected(ofp_event.EventOFPSwitchFeatures(Features(datapath)))
    app._reconcile(app.switches[1])
    return datapath


def removed(datapath, owner, reason=ofp.OFPRR_DELETE):
    msg = parser.OFPFlowRemoved(datapath, cookie=pipeline.cookie(owner),
                                priority=pipeline.canary_priority(l2.APP), reason=reason,
                                table_id=0, match=parser.OFPMatch(eth_type=0x88B6))
    return ofp_event.EventOFPFlowRemoved(msg)


@pytest.fixture
def wiped(monkeypatch):
    """The learning app with a switch that held everything, then lost it all (what an
    ovs-ofctl del-flows leaves), and what the app sent since."""
    app = make_app(monkeypatch, mode="reactive")
    holding = pipeline.table_misses() + [pipeline.canary(l2.APP)] + \
        l2.switch_defaults(l2.L2Settings())
    datapath = programmed(app, holding)
    run_inline(monkeypatch, southbound.hub)
    datapath.answer = switch_holding(app, [])
    datapath.sent.clear()
    return app, datapath, holding


def test_the_canary_asks_the_switch_to_say_when_it_is_removed():
    spec = pipeline.canary(l2.APP)
    assert spec.notify_removed
    mod = ofcompile.ryu_flow_mod(FakeDatapath(1), spec)
    assert mod.flags & ofp.OFPFF_SEND_FLOW_REM


def test_a_removed_canary_is_checked_and_everything_put_back_at_once(wiped):
    app, datapath, holding = wiped
    app._canary_removed(removed(datapath, pipeline.canary_owner(l2.APP)))
    requests = [m for m in datapath.sent if isinstance(m, parser.OFPFlowStatsRequest)]
    assert requests[0].cookie == pipeline.cookie(pipeline.canary_owner(l2.APP))
    assert len(flow_mods(datapath)) == len(holding)      # all of it back


def test_a_canary_put_back_meanwhile_is_not_repaired_again(wiped):
    app, datapath, holding = wiped
    datapath.answer = switch_holding(app, holding)       # the app's repair was quicker
    app._canary_removed(removed(datapath, pipeline.canary_owner(l2.APP)))
    assert len([m for m in datapath.sent if isinstance(m, parser.OFPFlowStatsRequest)]) == 1
    assert flow_mods(datapath) == []


@pytest.mark.parametrize("owner", [pipeline.canary_owner("vlan"), l2.HOSTS],
                         ids=["another app's canary", "a learned host"])
def test_other_removed_entries_start_no_check(wiped, owner):
    app, datapath, _ = wiped
    app._canary_removed(removed(datapath, owner))
    assert datapath.sent == []


def test_a_removed_canary_of_a_switch_the_app_did_not_program_starts_no_check(wiped):
    app, datapath, _ = wiped
    stranger = FakeDatapath(7, answer=switch_holding(app, []))   # not (or no longer) ours
    app._canary_removed(removed(stranger, pipeline.canary_owner(l2.APP)))
    assert stranger.sent == [] and datapath.sent == []


def poll_pauses(monkeypatch, count, rounds=1):
    """The pauses of the canary poll over `rounds` rounds of `count` switches, and the
    switches it asked, in order."""
    app = make_app(monkeypatch)
    switches = [FakeDatapath(dpid) for dpid in range(1, count + 1)]
    loops, pauses, asked = [], [], []

    def sleep(seconds):
        if len(pauses) == rounds * count:
            raise StopIteration
        pauses.append(seconds)
    monkeypatch.setattr(southbound.hub, "spawn", lambda run, *args: loops.append(run))
    monkeypatch.setattr(southbound.hub, "sleep", sleep)
    app.watch_canaries(l2.APP, lambda: switches, lambda dp: None)
    monkeypatch.setattr(app, "canary_gone", lambda name, dp: asked.append(dp.id) or False)
    with pytest.raises(StopIteration):
        loops[0]()
    return pauses, asked


def test_a_small_network_keeps_its_2_s_backstop(monkeypatch):
    pauses, asked = poll_pauses(monkeypatch, 2, rounds=2)
    assert pauses == [1.0] * 4 and asked == [1, 2, 1, 2]   # each switch every 2 s


def test_many_switches_are_asked_one_at_a_time_at_a_bounded_rate(monkeypatch):
    pauses, asked = poll_pauses(monkeypatch, 100)
    rate = southbound.SdnApp.CANARY_CHECKS_PER_S
    assert pauses == [1.0 / rate] * 100 and asked == list(range(1, 101))
    assert sum(pauses) == 100 / rate > southbound.SdnApp.CANARY_INTERVAL_S
