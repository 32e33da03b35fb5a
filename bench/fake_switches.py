"""Fake OpenFlow 1.3 switches that load a controller with packet-ins, cbench-style.

Each fake switch opens a TCP connection to the controller, does the handshake
(HELLO, FEATURES_REPLY, an empty port-description reply, echo and barrier replies,
an empty reply to any other multipart request) and then sends packet-ins whose
frames come from a new source MAC every time (02:cb + a 32-bit serial) towards an
unknown unicast MAC. A packet-in counts as answered when the first message that
names its source MAC comes back: a flow-mod that learns it (our learning app) or a
packet-out that floods the frame (Ryu's simple_switch_13). Each MAC counts once.

throughput mode keeps `window` packet-ins outstanding per switch; latency mode keeps
one, so each round trip is timed alone.

The generator must not be what limits the measurement: it reports its own CPU per
packet-in answered (bench/answering_controller.py measures it alone) and keeps it
low, Python work per packet-in being mostly C loops:
  - packet-ins are built a batch at a time: the template repeated, the serials
    written into it by strided slice assignment (C loops, no Python per packet-in),
    and sent with one send per switch per read;
  - replies are not parsed into objects: a walk over the headers (runs of the
    flow-mods and packet-outs skipped by one regular-expression match) finds what
    the switch must answer (echo, barrier, multipart, ...), and `named` finds the
    outstanding MACs the complete messages name (docs/bench-generator.md).
"""
import re
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
PORT_DESC = 13
_HEADER = struct.Struct("!BBHI")
_SRC_PREFIX = b"\x02\xcb"
_DST = bytes.fromhex("02dd00000001")   # never a source: always unknown unicast
_NO_BUFFER = 0xFFFFFFFF
# the 4 bytes after every 02:cb, overlapping (a lookahead), so no MAC hides another
_NAMED = re.compile(re.escape(_SRC_PREFIX) + b"(?=(....))", re.DOTALL)
_FOUR = re.compile(b"....", re.DOTALL)
BATCH = 1024   # packet-ins built at once per switch (about 100 KiB)
READ_SIZE = 1 << 18


def message(kind: int, xid: int, body: bytes = b"") -> bytes:
    return _HEADER.pack(OFP_VERSION, kind, 8 + len(body), xid) + body


def packet_in(xid: int, serial: int, in_port: int, table_id: int) -> bytes:
    frame = _DST + _SRC_PREFIX + struct.pack("!I", serial) + b"\x08\x00" + bytes(46)
    oxm_in_port = struct.pack("!HBBI", 0x8000, 0 << 1, 4, in_port)
    match = struct.pack("!HH", 1, 4 + len(oxm_in_port)) + oxm_in_port + bytes(4)  # pad to 8
    body = struct.pack("!IHBBQ", _NO_BUFFER, len(frame), 1, table_id, 0) + match + bytes(2)
    return message(PACKET_IN, xid, body + frame)


def whole_message(chunk: bytes, at: int) -> int:
    """The length of the message at chunk[at:], 0 when the chunk does not hold all of it."""
    if len(chunk) - at < 8:
        return 0
    length = chunk[at + 2] << 8 | chunk[at + 3]
    if length < 8:
        raise ConnectionError(f"a message of length {length}: not OpenFlow")
    return length if len(chunk) - at >= length else 0


def named(outstanding, chunk: bytes, end: int):
    """The serials of `outstanding` (in the order sent) whose MAC chunk[:end] names.
    Answers come back in the order the packet-ins went, so one find per serial, each
    from where the last was found, usually settles it; only when one is missing does
    a scan of every MAC named say which others are there (some may come back out of
    order)."""
    found, at, find = [], 0, chunk.find
    for serial in outstanding:
        at = find(_SRC_PREFIX + serial, at, end)
        if at < 0:
            return outstanding.keys() & set(_NAMED.findall(chunk, 0, end))
        found.append(serial)
    return found


class PacketIns:
    """packet_in() for one in_port and table, many at a time: only xid and serial differ."""

    def __init__(self, in_port: int, table_id: int):
        self.template = packet_in(0, 0, in_port, table_id)
        self.size = len(self.template)
        self.serial_at = self.size - 60 + 8  # frame: dst(6) + prefix(2) + serial

    def batch(self, first: int, count: int):
        """(the packet-ins of serials first..first+count-1 back to back, their serials as
        the 4 bytes that follow 02:cb in the source MAC)."""
        serials = struct.pack(f"!{count}I", *range(first, first + count))
        batch = bytearray(self.template) * count
        for byte in range(4):   # every packet-in's xid and serial, one C loop per byte
            batch[4 + byte::self.size] = serials[byte::4]
            batch[self.serial_at + byte::self.size] = serials[byte::4]
        return batch, _FOUR.findall(serials)


class AnswerShapes:
    """The (kind, length) pairs of the flow-mods and packet-outs a controller sends,
    and `skip`: a regular expression that steps over a run of them in C, so the Python
    walk over the headers sees only the other messages (and each new shape once)."""

    LIMIT = 64   # past this many shapes, the rest are walked in Python

    def __init__(self):
        self.shapes = set()
        self.skip = re.compile(b"").match

    def learn(self, kind: int, length: int):
        if (kind, length) in self.shapes or len(self.shapes) >= self.LIMIT:
            return
        self.shapes.add((kind, length))
        branches = b"|".join(re.escape(struct.pack("!BBH", OFP_VERSION, k, n)) + b".{%d}" % (n - 4)
                             for k, n in sorted(self.shapes))
        self.skip = re.compile(b"(?:" + branches + b")*+", re.DOTALL).match


@dataclass(eq=False)
class FakeSwitch:
    dpid: int
    sock: socket.socket
    ready: bool = False
    inbox: bytes = b""               # the start of a message not complete yet
    outbox: bytearray = field(default_factory=bytearray)
    outstanding: Dict[bytes, float] = field(default_factory=dict)   # serial -> sent at
    sent: int = 0
    batch: bytearray = field(default_factory=bytearray)   # packet-ins built, not sent yet
    serials: List[bytes] = field(default_factory=list)    # theirs
    next: int = 0                                           # the first not sent


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

    @property
    def generator_us(self) -> float:
        """The generator's CPU per packet-in answered, in µs."""
        return self.generator_cpu_s / self.answered * 1e6 if self.answered else float("nan")

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class FakeSwitches:
    def __init__(self, port: int, count: int, table_id: int = 4, first_dpid: int = 1):
        self.port = port
        self.selector = selectors.DefaultSelector()
        self.switches = []
        self.serial = 0              # the last serial handed out
        self.packet_ins = PacketIns(1, table_id)
        self.answers = AnswerShapes()
        self.answered = 0
        self.latencies: List[float] = []
        self._limit = 0              # while a run is on: packet-ins per switch (0: no end)
        self._timing = False         # latency mode: each answer's round trip is kept
        self._refill = False         # a run is on: each answer makes room for a packet-in
        self._blocked = set()        # switches whose outbox the controller did not take
        self._start = self._cpu_start = 0.0
        # one read buffer for all: recv(256 KiB) would map and unmap that much every call
        self._read = bytearray(READ_SIZE)
        self._view = memoryview(self._read)
        for dpid in range(first_dpid, first_dpid + count):
            self.add(socket.create_connection(("127.0.0.1", port)), dpid)

    def add(self, sock, dpid) -> FakeSwitch:
        """One more fake switch on a connected socket: it says HELLO."""
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        switch = FakeSwitch(dpid, sock)
        switch.outbox += message(HELLO, 1)
        self.switches.append(switch)
        self.selector.register(sock, selectors.EVENT_READ, switch)
        self._flush(switch)
        return switch

    def close(self):
        for switch in self.switches:
            self.selector.unregister(switch.sock)
            switch.sock.close()
        self.selector.close()

    # --- the protocol -------------------------------------------------------------------

    def control(self, switch, kind, xid, body):
        """Answer a message that is not a flow-mod or packet-out (those are only looked
        at for the MACs they name)."""
        if kind == ECHO_REQUEST:
            switch.outbox += message(ECHO_REPLY, xid, body)
        elif kind == FEATURES_REQUEST:
            switch.outbox += message(FEATURES_REPLY, xid,
                                     struct.pack("!QIBB2xII", switch.dpid, 0, 254, 0, 0x4F, 0))
        elif kind == MULTIPART_REQUEST:
            mp_type = struct.unpack_from("!H", body)[0]
            switch.outbox += message(MULTIPART_REPLY, xid, struct.pack("!HH4x", mp_type, 0))
            if mp_type == PORT_DESC:  # the controller now calls us ready
                switch.ready = True
        elif kind == BARRIER_REQUEST:
            switch.outbox += message(BARRIER_REPLY, xid)
        elif kind == GET_CONFIG_REQUEST:
            switch.outbox += message(GET_CONFIG_REPLY, xid, struct.pack("!HH", 0, 128))

    def loaded(self, switch) -> bool:
        """Whether this connection gets packet-ins (every one here; see cluster_load)."""
        return True

    def receive(self, switch, data: bytes, now: float):
        """What the controller sent `switch`: answer what needs answering, count the
        packet-ins it answered. A message cut by the read waits for the next one."""
        chunk = switch.inbox + data if switch.inbox else data
        end, skip = 0, self.answers.skip
        while True:
            end = skip(chunk, end).end()   # a run of answers of known shapes, in C
            length = whole_message(chunk, end)
            if not length:
                break
            kind = chunk[end + 1]
            if kind == FLOW_MOD or kind == PACKET_OUT:
                self.answers.learn(kind, length)
            else:
                self.control(switch, kind, int.from_bytes(chunk[end + 4:end + 8], "big"),
                             chunk[end + 8:end + length])
            end += length
        switch.inbox = chunk[end:]
        if not switch.outstanding or not end:
            return
        answers = named(switch.outstanding, chunk, end)
        if answers:
            self._answered(switch, answers, now)

    def _answered(self, switch, serials, now):
        outstanding = switch.outstanding
        if self._timing:
            self.latencies += [(now - outstanding.pop(serial)) * 1000 for serial in serials]
        else:
            for serial in serials:
                del outstanding[serial]
        self.answered += len(serials)
        if self._refill:
            self._send_packet_ins(switch, len(serials), now)

    def _flush(self, switch):
        while switch.outbox:
            try:
                sent = switch.sock.send(switch.outbox)
            except BlockingIOError:
                self._blocked.add(switch)  # the controller is behind: retried next pump
                return
            del switch.outbox[:sent]
        self._blocked.discard(switch)

    def pump(self, timeout: float):
        """One select: read what the switches have, answer it, send what is due."""
        ready = self.selector.select(timeout)
        now = time.monotonic()
        for key, _ in ready:
            switch = key.data
            size = switch.sock.recv_into(self._read)
            if not size:
                raise ConnectionError(f"controller closed switch {switch.dpid}'s connection")
            self.receive(switch, bytes(self._view[:size]), now)
            if switch.outbox:
                self._flush(switch)
        for switch in list(self._blocked):
            self._flush(switch)

    def connect(self, timeout=30.0):
        """Handshake every switch; True when the controller has them all."""
        deadline = time.monotonic() + timeout
        while not all(s.ready for s in self.switches):
            if time.monotonic() > deadline:
                return False
            self.pump(0.05)
        self.idle(1.0)  # let the apps' connect-time pushes go by
        return True

    # --- load ---------------------------------------------------------------------------

    def _send_packet_ins(self, switch, count, now):
        if self._limit:
            count = min(count, self._limit - switch.sent)
        if count <= 0 or not self.loaded(switch):
            return
        switch.sent += count
        size = self.packet_ins.size
        while count:
            if switch.next == len(switch.serials):
                switch.batch, switch.serials = self.packet_ins.batch(self.serial + 1, BATCH)
                switch.next, self.serial = 0, self.serial + BATCH
            first = switch.next
            last = min(first + count, len(switch.serials))
            switch.outbox += switch.batch[first * size:last * size]
            switch.outstanding.update(dict.fromkeys(switch.serials[first:last], now))
            switch.next, count = last, count - (last - first)

    def start(self, window: int, per_switch_limit: int = 0):
        """Send `window` packet-ins per switch; from now on each answer makes room for
        the next (until a switch has sent `per_switch_limit`). Round trips are timed
        when window is 1 (latency mode)."""
        self.answered, self.latencies = 0, []
        self._limit, self._timing, self._refill = per_switch_limit, window == 1, True
        self._cpu_start, self._start = time.process_time(), time.monotonic()
        for switch in self.switches:
            switch.sent = 0
            switch.batch, switch.serials, switch.next = bytearray(), [], 0
            self._send_packet_ins(switch, window, self._start)
            self._flush(switch)

    def finish(self) -> Result:
        """Stop sending; what the run since start() came to. Answers that arrive later
        count for nothing."""
        elapsed = time.monotonic() - self._start
        cpu = time.process_time() - self._cpu_start
        self._refill = False
        unanswered = sum(len(s.outstanding) for s in self.switches)
        for switch in self.switches:
            switch.outstanding.clear()
        return Result(self.answered, elapsed, self.latencies, cpu, unanswered)

    def run(self, seconds: float, window: int, per_switch_limit: int = 0) -> Result:
        """start(), pump for `seconds` (or until every switch has sent
        `per_switch_limit` and had them answered), finish()."""
        self.start(window, per_switch_limit)
        try:
            deadline = self._start + seconds
            while time.monotonic() < deadline:
                if per_switch_limit and not any(s.outstanding for s in self.switches):
                    break
                self.pump(0.01)
        finally:
            result = self.finish()
        return result

    def idle(self, seconds: float):
        """Answer echoes and the like, send nothing."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.pump(0.05)
