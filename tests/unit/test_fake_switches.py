"""bench/fake_switches.py speaks enough OpenFlow to a controller and counts answers per
MAC: the test plays the controller over loopback TCP."""
import socket
import struct
import threading

import pytest

from bench import answering_controller
from bench.fake_switches import (BARRIER_REPLY, BARRIER_REQUEST, ECHO_REPLY, ECHO_REQUEST,
                                 FEATURES_REPLY, FEATURES_REQUEST, FLOW_MOD, HELLO,
                                 MULTIPART_REPLY, MULTIPART_REQUEST, PACKET_IN, PACKET_OUT,
                                 PORT_DESC, FakeSwitches, PacketIns, message, packet_in)

HEADER = struct.Struct("!BBHI")


class Controller:
    """The controller's end of one fake switch's connection."""

    def __init__(self, sock):
        self.sock = sock
        self.inbox = b""

    def send(self, data: bytes):
        self.sock.sendall(data)

    def messages(self, count):
        """The next `count` messages the fake switch sent: [(kind, xid, body)]."""
        out = []
        while len(out) < count:
            while len(self.inbox) < 8 or len(self.inbox) < HEADER.unpack_from(self.inbox)[2]:
                data = self.sock.recv(1 << 16)
                assert data, "the fake switch closed the connection"
                self.inbox += data
            _, kind, length, xid = HEADER.unpack_from(self.inbox)
            out.append((kind, xid, self.inbox[8:length]))
            self.inbox = self.inbox[length:]
        return out


@pytest.fixture
def pair():
    """(FakeSwitches with one switch of dpid 7, the controller's end of it)."""
    listener = socket.create_server(("127.0.0.1", 0))
    fakes = FakeSwitches(listener.getsockname()[1], 1, first_dpid=7)
    sock, _ = listener.accept()
    sock.settimeout(5)
    listener.close()
    yield fakes, Controller(sock)
    fakes.close()
    sock.close()


def pump_until(fakes, condition, rounds=50):
    for _ in range(rounds):
        if condition():
            return True
        fakes.pump(0.05)
    return condition()


def serial_of(packet_in_body: bytes) -> bytes:
    """The 4 bytes after 02:cb in the frame's source MAC."""
    return packet_in_body[-60 + 8:-60 + 12]


def flow_mod_naming(*serials: bytes) -> bytes:
    """A flow-mod-sized message whose match names these sources (eth_src OXMs)."""
    oxms = b"".join(struct.pack("!HBB", 0x8000, 4 << 1, 6) + b"\x02\xcb" + s for s in serials)
    return message(FLOW_MOD, 99, bytes(40) + oxms)


def test_handshake_echo_barrier_and_multipart(pair):
    fakes, controller = pair
    assert controller.messages(1)[0][0] == HELLO
    controller.send(message(FEATURES_REQUEST, 5))
    fakes.pump(0.5)
    kind, xid, body = controller.messages(1)[0]
    assert (kind, xid, struct.unpack_from("!Q", body)[0]) == (FEATURES_REPLY, 5, 7)
    controller.send(message(MULTIPART_REQUEST, 6, struct.pack("!HH4x", 1, 0)))  # flow stats
    assert not pump_until(fakes, lambda: fakes.switches[0].ready, rounds=3)
    assert controller.messages(1) == [(MULTIPART_REPLY, 6, struct.pack("!HH4x", 1, 0))]
    controller.send(message(MULTIPART_REQUEST, 8, struct.pack("!HH4x", PORT_DESC, 0))
                    + message(ECHO_REQUEST, 9, b"ping") + message(BARRIER_REQUEST, 10))
    assert pump_until(fakes, lambda: fakes.switches[0].ready)
    assert controller.messages(3) == [
        (MULTIPART_REPLY, 8, struct.pack("!HH4x", PORT_DESC, 0)),
        (ECHO_REPLY, 9, b"ping"), (BARRIER_REPLY, 10, b"")]


def test_a_message_cut_across_reads_is_answered_once_whole(pair):
    fakes, controller = pair
    controller.messages(1)   # HELLO
    echo = message(ECHO_REQUEST, 11, b"0123456789")
    controller.send(echo[:5])
    fakes.pump(0.2)
    controller.send(echo[5:13])
    fakes.pump(0.2)
    assert fakes.switches[0].outbox == b"" and fakes.switches[0].inbox == echo[:13]
    controller.send(echo[13:] + message(BARRIER_REQUEST, 12))
    assert pump_until(fakes, lambda: not fakes.switches[0].inbox)
    assert controller.messages(2) == [(ECHO_REPLY, 11, b"0123456789"),
                                      (BARRIER_REPLY, 12, b"")]


def test_answers_count_once_per_mac_and_make_room_for_new_packet_ins(pair):
    fakes, controller = pair
    controller.messages(1)   # HELLO
    fakes.start(window=3)
    sent = controller.messages(3)
    assert [kind for kind, _, _ in sent] == [PACKET_IN] * 3
    serials = [serial_of(body) for _, _, body in sent]
    assert len(set(serials)) == 3
    # the first serial named twice in one read (a flow-mod and a packet-out), the
    # second in a flow-mod cut in the middle of its MAC
    frame = sent[0][2][-60:]
    second = flow_mod_naming(serials[1])
    controller.send(flow_mod_naming(serials[0]) + message(PACKET_OUT, 3, bytes(16) + frame)
                    + second[:-3])
    assert pump_until(fakes, lambda: fakes.answered == 1)
    controller.send(second[-3:] + flow_mod_naming(serials[0], serials[1]))
    assert pump_until(fakes, lambda: fakes.answered == 2)
    fakes.pump(0.1)
    result = fakes.finish()
    assert (result.answered, result.unanswered) == (2, 3)   # the window stays full
    refills = controller.messages(2)   # one new packet-in per answer, each a new MAC
    assert [kind for kind, _, _ in refills] == [PACKET_IN] * 2
    assert not {serial_of(body) for _, _, body in refills} & set(serials)


def test_answers_out_of_order_or_with_gaps_all_count(pair):
    fakes, controller = pair
    controller.messages(1)
    fakes.start(window=4)
    serials = [serial_of(body) for _, _, body in controller.messages(4)]
    controller.send(flow_mod_naming(serials[2]) + flow_mod_naming(serials[0]))
    assert pump_until(fakes, lambda: fakes.answered == 2)
    controller.send(flow_mod_naming(serials[3]) + flow_mod_naming(serials[1]))
    assert pump_until(fakes, lambda: fakes.answered == 4)
    assert not set(serials) & fakes.switches[0].outstanding.keys()


def test_a_mac_that_was_never_sent_answers_nothing(pair):
    fakes, controller = pair
    controller.messages(1)
    fakes.start(window=1)
    (_, _, body), = controller.messages(1)
    never = (int.from_bytes(serial_of(body), "big") + 1000).to_bytes(4, "big")
    controller.send(flow_mod_naming(never))
    fakes.pump(0.2)
    assert fakes.finish().answered == 0


def test_latency_mode_times_each_round_trip(pair):
    fakes, controller = pair
    controller.messages(1)
    fakes.start(window=1)
    for _ in range(3):
        (_, _, body), = controller.messages(1)
        controller.send(flow_mod_naming(serial_of(body)))
        before = fakes.answered
        assert pump_until(fakes, lambda: fakes.answered > before)
    result = fakes.finish()
    assert result.answered == 3 and len(result.latencies_ms) == 3
    assert all(0 <= ms < 5000 for ms in result.latencies_ms)


def test_per_switch_limit_stops_sending(pair):
    fakes, controller = pair
    controller.messages(1)
    fakes.start(window=2, per_switch_limit=3)
    for _, _, body in controller.messages(2):
        controller.send(flow_mod_naming(serial_of(body)))
    assert pump_until(fakes, lambda: fakes.answered == 2)
    (_, _, body), = controller.messages(1)   # room for one more only
    controller.send(flow_mod_naming(serial_of(body)))
    assert pump_until(fakes, lambda: fakes.answered == 3)
    assert fakes.switches[0].sent == 3
    fakes.pump(0.1)
    controller.sock.settimeout(0.3)
    with pytest.raises(TimeoutError):   # nothing more was sent
        controller.sock.recv(1 << 16)
    assert fakes.finish().unanswered == 0


def test_a_batch_is_the_packet_ins_one_at_a_time():
    packet_ins = PacketIns(in_port=3, table_id=4)
    batch, serials = packet_ins.batch(0x01020304, 5)
    size = packet_ins.size
    assert len(batch) == 5 * size
    for i in range(5):
        serial = 0x01020304 + i
        assert batch[i * size:(i + 1) * size] == packet_in(serial, serial, 3, 4)
        assert serials[i] == serial.to_bytes(4, "big")


def test_runs_of_known_answers_are_skipped_and_what_follows_is_still_answered(pair):
    fakes, controller = pair
    controller.messages(1)
    fakes.start(window=2)
    serials = [serial_of(body) for _, _, body in controller.messages(2)]
    controller.send(flow_mod_naming(serials[0]))   # its shape is learned
    assert pump_until(fakes, lambda: fakes.answered == 1)
    assert fakes.answers.shapes == {(FLOW_MOD, len(flow_mod_naming(serials[0])))}
    controller.send(flow_mod_naming(serials[0]) * 3 + flow_mod_naming(serials[1])
                    + message(ECHO_REQUEST, 21, b"after") + flow_mod_naming(serials[1])[:-1])
    assert pump_until(fakes, lambda: fakes.answered == 2)
    assert [m for m in controller.messages(3) if m[0] != PACKET_IN] == [
        (ECHO_REPLY, 21, b"after")]
    assert len(fakes.switches[0].inbox) == len(flow_mod_naming(serials[1])) - 1


def test_a_zero_length_message_is_an_error_not_a_hang(pair):
    fakes, controller = pair
    controller.send(HEADER.pack(4, ECHO_REQUEST, 0, 1))
    with pytest.raises(ConnectionError, match="length 0"):
        pump_until(fakes, lambda: False, rounds=5)


def test_the_answering_controller_answers_every_packet_in():
    listener = socket.create_server(("127.0.0.1", 0))
    server = threading.Thread(target=answering_controller.serve, args=(listener, True))
    server.start()
    fakes = FakeSwitches(listener.getsockname()[1], 2)
    try:
        assert fakes.connect(timeout=5)
        result = fakes.run(0.3, window=5)
    finally:
        fakes.close()
        server.join(5)
        listener.close()
    assert not server.is_alive()   # it stops when its last switch has gone
    assert result.answered > 10 and result.unanswered <= 2 * 5


def test_answering_controller_keeps_a_cut_packet_in_for_later():
    whole = packet_in(1, 0x0A0B0C0D, 1, 4)
    reply, end = answering_controller.answers(whole + whole[:30], {})
    assert end == len(whole)
    assert reply[1] == PACKET_OUT and reply.endswith(whole[-60:])
    assert len(reply) == HEADER.unpack_from(reply)[2]
