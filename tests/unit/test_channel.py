"""The one-connection-per-datapath-id guard (controller/channel.py) on fake connections:
a second claim is refused while the holder lives; the holder is asked for an echo and
closed when it does not answer (a half-open connection), so the switch's next attempt
is accepted; a holder that answers keeps the switch."""
import pytest
from ryu.controller.handler import DEAD_DISPATCHER, MAIN_DISPATCHER
from ryu.ofproto import ofproto_v1_3, ofproto_v1_3_parser

from controller import channel


class Connection:
    ofproto, ofproto_parser = ofproto_v1_3, ofproto_v1_3_parser

    def __init__(self, address, answers=True):
        self.address, self.answers = address, answers
        self.is_active, self.state, self.xid = True, MAIN_DISPATCHER, 0
        self.unreplied_echo_requests, self.sent = [], []

    def set_xid(self, msg):
        self.xid += 1
        msg.set_xid(self.xid)
        return self.xid

    def send_msg(self, msg):
        self.sent.append(msg)
        if self.answers:   # what Ryu's echo reply handler does when the reply comes
            self.unreplied_echo_requests.remove(msg.xid)

    def close(self):
        self.state = DEAD_DISPATCHER


@pytest.fixture(autouse=True)
def fresh_guard(monkeypatch):
    monkeypatch.setattr(channel, "_holders", {})
    monkeypatch.setattr(channel, "_probed", set())


def test_a_second_claim_is_refused_and_the_holder_probed_once():
    spawned = []
    holder, intruder = Connection("switch", answers=True), Connection("intruder")
    assert channel._claim(holder, 1, spawn=lambda *a: spawned.append(a))
    assert not channel._claim(intruder, 1, spawn=lambda *a: spawned.append(a))
    assert not channel._claim(intruder, 1, spawn=lambda *a: spawned.append(a))
    assert spawned == [(channel._probe, holder, 1)]    # one echo out at a time
    assert channel._claim(holder, 1)                   # the holder itself, again: fine
    assert channel._claim(intruder, 2)                 # another id: its own


def test_a_holder_that_answers_the_echo_keeps_the_switch():
    holder, intruder = Connection("switch", answers=True), Connection("intruder")
    channel._claim(holder, 1)
    assert not channel._claim(intruder, 1, spawn=lambda *a: None)
    channel._probe(holder, 1, seconds=0)
    assert [type(m).__name__ for m in holder.sent] == ["OFPEchoRequest"]
    assert holder.state == MAIN_DISPATCHER and not channel._probed
    assert not channel._claim(intruder, 1, spawn=lambda *a: None)


def test_a_silent_holder_is_closed_and_the_next_attempt_accepted(caplog):
    half_open, reconnect = Connection("old", answers=False), Connection("new")
    channel._claim(half_open, 1)
    assert not channel._claim(reconnect, 1, spawn=lambda *a: None)  # still looks alive
    channel._probe(half_open, 1, seconds=0)
    assert half_open.state == DEAD_DISPATCHER and half_open.unreplied_echo_requests == []
    assert channel.SILENT_MARK in caplog.text
    assert channel._claim(reconnect, 1)


def test_a_holder_that_went_away_meanwhile_is_left_alone():
    holder = Connection("old", answers=False)
    channel._claim(holder, 1)
    newer = Connection("new")
    holder.is_active = False              # its connection ended during the probe
    channel._probe(holder, 1, seconds=0)
    assert holder.state == MAIN_DISPATCHER  # not closed twice
    assert channel._claim(newer, 1)


def test_a_connection_that_ends_is_forgotten_so_it_can_be_collected():
    """Dead Datapaths must not stay referenced by the guard (the fuzzer cycles
    through datapath ids, each one's last dead connection was kept)."""
    from ryu.controller import ofp_event
    seen = []
    dispatch = channel._guarded(lambda self, ev, state=None: seen.append(ev))
    holder, other = Connection("old"), Connection("other")
    holder.id, other.id = 1, 1
    channel._claim(holder, 1)
    gone = ofp_event.EventOFPStateChange(other)  # not the holder: changes nothing
    gone.state = DEAD_DISPATCHER
    dispatch(None, gone)
    assert channel._holders == {1: holder}
    gone = ofp_event.EventOFPStateChange(holder)
    gone.state = DEAD_DISPATCHER
    dispatch(None, gone)
    assert channel._holders == {} and seen[-1] is gone  # the apps still see it end
