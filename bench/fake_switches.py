"""Fake OpenFlow 1.3 switches that load a controller with packet-ins, cbench-style.

Each fake switch opens a TCP connection to the controller, does the handshake
(HELLO, FEATURES_REPLY, an empty port-description reply, echo and barrier replies,
an empty reply to any other multipart request) and then sends packet-ins whose
frames come from a new source MAC every time (02:cb + a 32-bit counter) towards an
unknown unicast MAC. A packet-in counts as answered when the first message that
names its source MAC comes back: a flow-mod that learns it (our learning app) or a
packet-out that floods the frame (Ryu's simple_switch_13).

throughput mode keeps `window` packet-ins outstanding per switch; latency mode keeps
one, so each round trip is timed alone. Raw sockets and struct: the generator stays
cheap enough not to be what limits the measurement (it reports its own CPU).
"""
import selectors
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Dict, List

OFP_VERSION = 4
HELLO, ECHO_REQUEST, ECHO_REPLY, FEATURES_REQUEST, FEATURES_REPLY = 0, 2, 3, 5, 6
GET_CONFIG_REQUEST, GET_CONFIG_REPLY, PACKET_IN, PACKET_OUT, FLOW_MOD = 7, 8, 10, 13, 14
MULTIPART_REQUEST, MULTIPART_REPLY, BARRIER_REQUEST, BARRIER_REPLY = 18, 19, 20, 21
_HEADER = struct.Struct("!BBHI")
_SRC_PREFIX = b"\x02\xcb"
_DST = bytes.fromhex("02dd00000001")   # never a source: always unknown unicast
_NO_BUFFER = 0xFFFFFFFF


def _message(kind: int, xid: int, body: bytes = b"") -> bytes:
    return _HEADER.pack(OFP_VERSION, kind, 8 + len(body), xid) + body


def packet_in(xid: int, serial: int, in_port: int, table_id: int) -> bytes:
    frame = _DST + _SRC_PREFIX + struct.pack("!I", serial) + b"\x08\x00" + bytes(46)
    oxm_in_port = struct.pack("!HBBI", 0x8000, 0 << 1, 4, in_port)
    match = struct.pack("!HH", 1, 4 + len(oxm_in_port)) + oxm_in_port + bytes(4)  # pad to 8
    body = struct.pack("!IHBBQ", _NO_BUFFER, len(frame), 1, table_id, 0) + match + bytes(2)
    return _message(PACKET_IN, xid, body + frame)


class PacketInTemplate:
    """packet_in() for one in_port and table, with only xid and serial patched in."""

    def __init__(self, in_port: int, table_id: int):
        self.bytes = bytearray(packet_in(0, 0, in_port, table_id))
        self.serial_at = len(self.bytes) - 60 + 8  # frame: dst(6) + prefix(2) + serial

    def make(self, serial: int) -> bytearray:
        message = bytearray(self.bytes)
        struct.pack_into("!I", message, 4, serial & 0xFFFFFFFF)
        struct.pack_into("!I", message, self.serial_at, serial)
        return message


def named_serial(body: bytes, outstanding) -> int:
    """The serial of the first outstanding packet-in whose source MAC `body` names."""
    start = body.find(_SRC_PREFIX)
    while start != -1 and start + 6 <= len(body):
        serial = struct.unpack_from("!I", body, start + 2)[0]
        if serial in outstanding:
            return serial
        start = body.find(_SRC_PREFIX, start + 1)
    return -1


@dataclass
class FakeSwitch:
    dpid: int
    sock: socket.socket
    ready: bool = False
    inbox: bytearray = field(default_factory=bytearray)
    outbox: bytearray = field(default_factory=bytearray)
    outstanding: Dict[int, float] = field(default_factory=dict)
    sent: int = 0


@dataclass
class Result:
    answered: int
    seconds: float
    latencies_ms: List[float]
    generator_cpu_s: float
    unanswered: int

    @property
    def per_second(self) -> float:
        return self.answered / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class FakeSwitches:
    def __init__(self, port: int, count: int, table_id: int = 4, first_dpid: int = 1):
        self.port = port
        self.selector = selectors.DefaultSelector()
        self.switches = []
        self.serial = 0
        for dpid in range(first_dpid, first_dpid + count):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            switch = FakeSwitch(dpid, sock)
            switch.outbox += _message(HELLO, 1)
            self.switches.append(switch)
            self.selector.register(sock, selectors.EVENT_READ, switch)
            self._flush(switch)
        self.template = PacketInTemplate(1, table_id)

    def close(self):
        for switch in self.switches:
            self.selector.unregister(switch.sock)
            switch.sock.close()
        self.selector.close()

    # --- the protocol -------------------------------------------------------------------

    def _handle(self, switch, kind, xid, body, on_answer):
        if kind == ECHO_REQUEST:
            switch.outbox += _message(ECHO_REPLY, xid, body)
        elif kind == FEATURES_REQUEST:
            switch.outbox += _message(FEATURES_REPLY, xid,
                                      struct.pack("!QIBB2xII", switch.dpid, 0, 254, 0, 0x4F, 0))
        elif kind == MULTIPART_REQUEST:
            mp_type = struct.unpack_from("!H", body)[0]
            switch.outbox += _message(MULTIPART_REPLY, xid, struct.pack("!HH4x", mp_type, 0))
            if mp_type == 13:  # port description: the controller now calls us ready
                switch.ready = True
        elif kind == BARRIER_REQUEST:
            switch.outbox += _message(BARRIER_REPLY, xid)
        elif kind == GET_CONFIG_REQUEST:
            switch.outbox += _message(GET_CONFIG_REPLY, xid, struct.pack("!HH", 0, 128))
        elif kind in (FLOW_MOD, PACKET_OUT) and switch.outstanding:
            serial = named_serial(body, switch.outstanding)
            if serial != -1:
                on_answer(switch, serial)

    @staticmethod
    def _flush(switch):
        while switch.outbox:
            try:
                sent = switch.sock.send(switch.outbox)
            except BlockingIOError:
                return  # the controller is behind; the rest goes after its next read
            del switch.outbox[:sent]

    def _pump(self, timeout, on_answer):
        for key, _ in self.selector.select(timeout):
            switch = key.data
            data = switch.sock.recv(1 << 18)
            if not data:
                raise ConnectionError(f"controller closed switch {switch.dpid}'s connection")
            switch.inbox += data
            inbox, offset, end = switch.inbox, 0, len(switch.inbox)
            while end - offset >= 8:
                _, kind, length, xid = _HEADER.unpack_from(inbox, offset)
                if end - offset < length:
                    break
                self._handle(switch, kind, xid, bytes(inbox[offset + 8:offset + length]),
                             on_answer)
                offset += length
            del inbox[:offset]
        for switch in self.switches:
            if switch.outbox:
                self._flush(switch)

    def connect(self, timeout=30.0):
        """Handshake every switch; True when the controller has them all."""
        deadline = time.monotonic() + timeout
        while not all(s.ready for s in self.switches):
            if time.monotonic() > deadline:
                return False
            self._pump(0.05, lambda *_: None)
        settle = time.monotonic() + 1.0  # let the apps' connect-time pushes go by
        while time.monotonic() < settle:
            self._pump(0.05, lambda *_: None)
        return True

    # --- load ---------------------------------------------------------------------------

    def _send_packet_in(self, switch, now):
        self.serial += 1
        switch.outstanding[self.serial] = now
        switch.outbox += self.template.make(self.serial)
        switch.sent += 1

    def run(self, seconds: float, window: int, per_switch_limit: int = 0) -> Result:
        """Keep `window` packet-ins outstanding per switch for `seconds` (or until every
        switch has sent `per_switch_limit` and had them answered)."""
        latencies, answered = [], 0

        def on_answer(switch, serial):
            nonlocal answered
            latencies.append((time.monotonic() - switch.outstanding.pop(serial)) * 1000)
            answered += 1
            if not per_switch_limit or switch.sent < per_switch_limit:
                self._send_packet_in(switch, time.monotonic())

        cpu_start, start = time.process_time(), time.monotonic()
        for switch in self.switches:
            for _ in range(window if not per_switch_limit else min(window, per_switch_limit)):
                self._send_packet_in(switch, start)
        deadline = start + seconds
        while time.monotonic() < deadline:
            if per_switch_limit and not any(s.outstanding for s in self.switches):
                break
            self._pump(0.01, on_answer)
        elapsed = time.monotonic() - start
        unanswered = sum(len(s.outstanding) for s in self.switches)
        for switch in self.switches:
            switch.outstanding.clear()
        return Result(answered, elapsed, latencies, time.process_time() - cpu_start, unanswered)

    def idle(self, seconds: float):
        """Answer echoes and the like, send nothing."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._pump(0.05, lambda *_: None)
