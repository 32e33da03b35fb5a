"""An OpenFlow fuzzer that plays a switch over real TCP (tests/integration/test_ofguard_ovs.py).

Each case is one connection: a HELLO case sends a mutated HELLO before any handshake;
every other case does a valid handshake (HELLO, FEATURES_REPLY for a datapath id from
a small pool) and then sends one message of a type the controller parses
(tests/support/ofmessages.py) with one of its length fields, the header's or a nested one, set
to 0, too short, past its container or a random value (or left valid). It then waits
for the controller to close the connection. Counts say what was sent and what came of
it; a nested length that is 0, short or overrunning must always be closed.
"""
import collections
import random
import select
import socket
import struct
import time
from dataclasses import dataclass, field

from tests.support import ofmessages as m

HEADER = struct.Struct("!BBHI")
FEATURES_REQUEST, ECHO_REQUEST = 5, 2


@dataclass
class Counts:
    cases: int = 0
    messages: int = 0             # every message the fuzzer sent (handshakes included)
    bytes: int = 0
    kinds: collections.Counter = field(default_factory=collections.Counter)
    mutations: collections.Counter = field(default_factory=collections.Counter)
    outcomes: collections.Counter = field(default_factory=collections.Counter)
    must_close_kept_open: list = field(default_factory=list)  # (kind, field, how, value)
    lengths: collections.Counter = field(default_factory=collections.Counter)

    def summary(self) -> str:
        return (f"{self.cases} cases, {self.messages} messages ({self.bytes} bytes), "
                f"{len(self.kinds)} kinds, mutations {dict(sorted(self.mutations.items()))}, "
                f"outcomes {dict(sorted(self.outcomes.items()))}")


class Fuzzer:
    def __init__(self, port, seed=1, dpids=range(0xF0F00001, 0xF0F00011), wait_s=2.0):
        self.port, self.rng = port, random.Random(seed)
        self.dpids = list(dpids)
        self.wait_s = wait_s
        self.catalogue = m.catalogue()
        self.counts = Counts()

    # --- one connection ----------------------------------------------------------
    def _send(self, sock, data):
        sock.sendall(data)
        self.counts.messages += 1
        self.counts.bytes += len(data)

    def _read_until_closed(self, sock, seconds, on_message=None):
        """Drain what the controller sends; True once it closes, False after `seconds`."""
        buf, deadline = b"", time.monotonic() + seconds
        while time.monotonic() < deadline:
            ready, _, _ = select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                continue
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not chunk:
                return True
            buf += chunk
            while len(buf) >= 8:
                version, kind, length, xid = HEADER.unpack_from(buf)
                if len(buf) < length:
                    break
                if on_message is not None and on_message(kind, xid):
                    return False
                buf = buf[max(length, 8):]
        return False

    def _handshake(self, sock, dpid):
        self._send(sock, m.hello().data)
        answered = []

        def on_message(kind, xid):
            if kind == FEATURES_REQUEST:
                reply = m.msg(6, struct.pack("!QIBB2xII", dpid, 0, 254, 0, 0x47, 0),
                              xid=xid).data
                self._send(sock, reply)
                answered.append(True)
                return True
            return False
        self._read_until_closed(sock, 5, on_message)
        return bool(answered)

    def case(self):
        kind, blob = self.rng.choice(self.catalogue)
        how = self.rng.choice(m.MUTATIONS + ("valid",))
        index = self.rng.randrange(len(blob.lengths))
        name = blob.lengths[index][2]
        if how == "valid":
            data, value = blob.data, None
        else:
            data, value = m.mutate(blob, index, how, self.rng)
        declared = HEADER.unpack_from(data)[2]
        if declared > len(data):  # the header says more: send it, or the case only waits
            data += bytes(self.rng.getrandbits(8) for _ in range(declared - len(data)))
        must_close = how in ("zero", "short", "overrun") and (name != "header" or declared < 8)
        self.counts.cases += 1
        self.counts.kinds[kind] += 1
        self.counts.mutations[how] += 1
        self.counts.lengths[(name, how)] += 1
        dpid = self.dpids[self.counts.cases % len(self.dpids)]
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                if kind != "HELLO" and not self._handshake(sock, dpid):
                    self.counts.outcomes["handshake refused"] += 1
                    return
                self._send(sock, data)
                closed = self._read_until_closed(sock, self.wait_s if must_close else 0.3)
        except OSError:  # reset before the message went out: this case proves nothing
            self.counts.outcomes["reset early"] += 1
            return
        self.counts.outcomes["closed" if closed else "kept open"] += 1
        if must_close and not closed:
            self.counts.must_close_kept_open.append((kind, name, how, value))

    def run(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.case()
        return self.counts


def _connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def _closed_within(sock, seconds):
    """Seconds until the controller closed `sock` (reading and dropping what it sends),
    or None."""
    started = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - started < seconds:
        try:
            if not sock.recv(65536):
                return time.monotonic() - started
        except socket.timeout:
            continue
        except OSError:
            return time.monotonic() - started
    return None


def flood_without_reading(port, dpid, seconds=30):
    """Handshake, then echo requests (1 KiB each) as fast as the socket takes them,
    never reading the replies. Returns (bytes sent, seconds until the controller closed
    the connection or None)."""
    fuzzer = Fuzzer(port)
    with _connect(port) as sock:
        if not fuzzer._handshake(sock, dpid):
            return 0, None
        batch = m.msg(2, b"\xAA" * 1016).data * 64
        sent, started = 0, time.monotonic()
        sock.settimeout(1)
        while time.monotonic() - started < seconds:
            try:
                sock.sendall(batch)
                sent += len(batch)
            except socket.timeout:
                continue  # the controller stopped reading: it is full, or it closed us
            except OSError:
                return sent, time.monotonic() - started
            ready, _, _ = select.select([sock], [], [], 0)
            if ready and not sock.recv(1, socket.MSG_PEEK):
                return sent, time.monotonic() - started
        return sent, None


def half_sent_message(port, dpid, seconds=10):
    """Handshake, then the first half of a message and nothing more: seconds until the
    controller closed it (None: it did not)."""
    fuzzer = Fuzzer(port)
    with _connect(port) as sock:
        if not fuzzer._handshake(sock, dpid):
            return None
        data = m.msg(2, b"\x55" * 200).data
        sock.sendall(data[:100])
        return _closed_within(sock, seconds)


def idle_connections(port, count, seconds=10):
    """`count` connections that never say HELLO, held for up to `seconds`: (refused: closed
    without a HELLO from the controller, closed after its HELLO, still open)."""
    socks = [_connect(port) for _ in range(count)]
    heard, ended = set(), set()
    deadline = time.monotonic() + seconds
    while len(ended) < count and time.monotonic() < deadline:
        live = [s for s in socks if s not in ended]
        ready, _, _ = select.select(live, [], [], 0.2)
        for sock in ready:
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if data:
                heard.add(sock)
            else:
                ended.add(sock)
    for sock in socks:
        sock.close()
    refused = len(ended - heard)
    return refused, len(ended & heard), count - len(ended)
