"""Per-connection limits of the OpenFlow channel (controller/ofguard.py) over real
(green, in-process) socket pairs: half-sent messages, handshakes that never finish, a
peer that does not read, too many connections from one address; and the settings."""
import logging
import struct
import time

import pytest
from eventlet.green import socket as green_socket
from ryu import cfg
from ryu.controller.handler import HANDSHAKE_DISPATCHER
from ryu.lib import hub

from controller import config, ofguard
from tests.support import ofmessages as m
from tests.support.ofguard_fakes import FakeDatapath

ryu_controller = ofguard.ryu_controller  # importing it first trips Ryu's own import cycle

BARRIER = m.msg(21, b"").data
ECHO = m.msg(2, b"x" * 100).data


@pytest.fixture
def limits(monkeypatch):
    def use(**kw):
        monkeypatch.setattr(ofguard, "_settings", ofguard.OpenFlowSettings(**kw))
    use()
    return use


@pytest.fixture
def pair():
    ours, theirs = green_socket.socketpair()
    ours.settimeout(5)
    yield ours, theirs
    ours.close()
    theirs.close()


def finish(thread, seconds):
    with hub.Timeout(seconds):
        thread.wait()


def test_install_put_the_guard_in_ryus_datapath():
    ofguard.install()  # the .pth hook or controller.southbound does it in ryu-manager
    ofguard.install()  # idempotent
    assert ryu_controller.Datapath.send is ofguard.send
    assert ryu_controller.Datapath._send_loop is ofguard.send_loop
    assert ryu_controller.datapath_connection_factory is ofguard.connection_factory
    assert cfg.CONF.ofp_listen_host == "127.0.0.1"


def test_messages_split_across_reads_are_whole_when_dispatched(pair, limits):
    ours, theirs = pair
    dp = FakeDatapath(sock=ours)
    thread = hub.spawn(ofguard.recv_loop, dp)
    stream = BARRIER + ECHO + BARRIER
    for cut in (3, 20, 90, len(stream)):   # pieces of headers and bodies
        theirs.sendall(stream[:cut])
        stream = stream[cut:]
        hub.sleep(0.01)
    theirs.close()
    finish(thread, 2)
    assert [type(ev.msg).__name__ for ev in dp.events] == \
        ["OFPBarrierReply", "OFPEchoRequest", "OFPBarrierReply"]
    assert not dp.closed  # the peer ended it, nothing was wrong


def test_a_header_length_below_8_closes(pair, limits, caplog):
    ours, theirs = pair
    dp = FakeDatapath(sock=ours)
    thread = hub.spawn(ofguard.recv_loop, dp)
    theirs.sendall(BARRIER + struct.pack("!BBHI", 4, 21, 3, 9) + BARRIER)
    finish(thread, 2)
    assert dp.closed and len(dp.events) == 1
    assert "header length 3 (minimum 8)" in caplog.text


def test_a_half_sent_message_is_closed_after_message_timeout(pair, limits, caplog):
    limits(message_timeout_s=0.3)
    ours, theirs = pair
    dp = FakeDatapath(sock=ours)
    thread = hub.spawn(ofguard.recv_loop, dp)
    started = time.monotonic()
    theirs.sendall(ECHO[:50])
    finish(thread, 3)
    took = time.monotonic() - started
    assert dp.closed and not dp.events and 0.25 < took < 1.5
    assert ofguard.TIMEOUT_MARK in caplog.text and "50 bytes of it held" in caplog.text


def test_a_slow_trickle_is_closed_too(pair, limits):
    """Bytes keep coming, but the message never completes: the clock is per message."""
    limits(message_timeout_s=0.4)
    ours, theirs = pair
    dp = FakeDatapath(sock=ours)
    thread = hub.spawn(ofguard.recv_loop, dp)
    started = time.monotonic()
    for byte in ECHO[:30]:
        if thread.dead:
            break
        try:
            theirs.sendall(bytes([byte]))
        except OSError:
            break
        hub.sleep(0.05)
    finish(thread, 3)
    assert dp.closed and time.monotonic() - started < 1.2


def test_a_connection_without_a_handshake_is_closed(pair, limits, caplog):
    limits(handshake_timeout_s=0.3)
    ours, theirs = pair
    dp = FakeDatapath(dpid=None, sock=ours)
    assert dp.state == HANDSHAKE_DISPATCHER
    thread = hub.spawn(ofguard.recv_loop, dp)
    finish(thread, 3)
    assert dp.closed and "no handshake within 0.3 s" in caplog.text


def test_a_peer_that_does_not_read_is_closed_and_the_sender_freed(limits, caplog):
    limits(send_timeout_s=0.2)
    dp = FakeDatapath()
    dp.send_q, dp._send_q_sem = hub.Queue(1), hub.BoundedSemaphore(1)
    assert ofguard.send(dp, b"first")         # the queue has room for one
    started = time.monotonic()
    assert ofguard.send(dp, b"second") is False
    assert 0.15 < time.monotonic() - started < 1.0
    assert dp.closed and ofguard.NOT_READING_MARK in caplog.text


def test_connections_per_address_are_capped(limits, monkeypatch, caplog):
    limits(max_connections_per_address=2)
    release, served = hub.Event(), []

    def factory(sock, address):
        served.append(address)
        release.wait()
    monkeypatch.setitem(ofguard._original, "factory", factory)

    class Sock:
        closed = False

        def close(self):
            self.closed = True
    socks = [Sock() for _ in range(4)]
    threads = [hub.spawn(ofguard.connection_factory, s, ("192.0.2.9", 1000 + i))
               for i, s in enumerate(socks[:3])]
    other = hub.spawn(ofguard.connection_factory, socks[3], ("192.0.2.10", 2000))
    hub.sleep(0.05)
    assert [a[1] for a in served] == [1000, 1001, 2000] and socks[2].closed
    assert ofguard.TOO_MANY_MARK in caplog.text and "192.0.2.9: 2 open, limit 2" in caplog.text
    release.set()
    for thread in threads + [other]:
        thread.wait()
    assert not ofguard._open  # counts go back down, so the address may connect again


@pytest.mark.parametrize("raw,message", [
    ({"listen_host": "everywhere"}, "listen_host must be an IP address"),
    ({"message_timeout_s": 0}, "message_timeout_s must be a number of seconds"),
    ({"send_timeout_s": True}, "send_timeout_s must be a number of seconds"),
    ({"max_connections_per_address": 0}, "max_connections_per_address must be an integer"),
    ({"max_conns": 3}, "unknown key(s) max_conns"),
])
def test_bad_openflow_settings_are_clear_errors(raw, message):
    with pytest.raises(config.ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        config.section(ofguard.OpenFlowSettings, "openflow", {"openflow": raw})


def test_the_listen_host_comes_from_the_config_unless_the_command_line_says(monkeypatch):
    try:
        ofguard.configure(config.section(ofguard.OpenFlowSettings, "openflow",
                                         {"openflow": {"listen_host": "0.0.0.0"}}))
        assert cfg.CONF.ofp_listen_host == "0.0.0.0"
    finally:
        ofguard.configure(ofguard.OpenFlowSettings())
    assert cfg.CONF.ofp_listen_host == "127.0.0.1"


def test_the_log_names_a_bad_switch(caplog):
    caplog.set_level(logging.WARNING)
    dp = FakeDatapath(dpid=0xABC, address=("10.1.2.3", 5555))
    ofguard.reject(dp, BARRIER, "because")
    assert "switch at 10.1.2.3:5555 (datapath 0000000000000abc): because" in caplog.text
    assert "type 21 (OFPT_BARRIER_REPLY)" in caplog.text and dp.closed


def test_an_experimenter_multipart_reply_is_one_body_not_overlapping_copies():
    """Ryu stepped 16 bytes through a body that holds the rest of the message: a 64 KiB
    reply became ~4000 overlapping copies (~130 MB). Parsed once, it is one body."""
    import tracemalloc
    from ryu.ofproto import ofproto_v1_3, ofproto_v1_3_parser
    ofguard.install()
    data = bytes(range(256)) * 255
    raw = m.msg(19, struct.pack("!HH4xII", 0xFFFF, 0, 0x2320, 7) + data).data

    class Datapath:
        ofproto, ofproto_parser = ofproto_v1_3, ofproto_v1_3_parser
    tracemalloc.start()
    msg = ofproto_v1_3_parser.msg_parser(Datapath(), 4, 19, len(raw), 1, raw)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    body = msg.body  # Ryu keeps this reply's one body as the body itself
    assert (body.experimenter, body.exp_type, bytes(body.data)) == (0x2320, 7, data)
    assert peak < 2_000_000, peak
