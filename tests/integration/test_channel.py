"""One connection per datapath id, against a real controller and hand-made OpenFlow
clients: while the switch's connection answers echoes, a second claim of its id is
refused and the switch keeps its place; when the old connection has gone silent (the
half-open connection a rebooted switch leaves behind), the claim makes the controller
test it with an echo, close it, and accept the switch's next attempt within seconds."""
import socket
import struct
import threading
import time

import pytest

from controller.channel import REFUSED_MARK, SILENT_MARK
from mininet_topos import harness

pytestmark = pytest.mark.integration
OFP13 = 4
HELLO, ECHO_REQUEST, ECHO_REPLY, FEATURES_REQUEST, FEATURES_REPLY = 0, 2, 3, 5, 6


class FakeSwitch:
    """An OpenFlow 1.3 client for `dpid`: says hello, answers the features request and,
    when `answers_echo`, echo requests; everything else it reads and ignores."""

    def __init__(self, port, dpid, answers_echo=True):
        self.dpid, self.answers_echo = dpid, answers_echo
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(struct.pack("!BBHI", OFP13, HELLO, 8, 1))
        self.closed = threading.Event()
        self.silent = threading.Event()   # stop reading: a peer that went away
        threading.Thread(target=self._serve, daemon=True).start()

    def _recv(self, size):
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def _serve(self):
        try:
            while True:
                _, kind, length, xid = struct.unpack("!BBHI", self._recv(8))
                self._recv(length - 8)
                if self.silent.is_set():
                    continue
                if kind == FEATURES_REQUEST:
                    self.sock.sendall(struct.pack("!BBHIQIBBxxII", OFP13, FEATURES_REPLY, 32,
                                                  xid, self.dpid, 0, 254, 0, 0, 0))
                elif kind == ECHO_REQUEST and self.answers_echo:
                    self.sock.sendall(struct.pack("!BBHI", OFP13, ECHO_REPLY, 8, xid))
        except (EOFError, OSError):
            self.closed.set()

    def close(self):
        self.sock.close()


def switches(controller):
    return [s["dpid"] for s in controller.rest("GET", "/v1/switches")[1]]


@pytest.fixture
def controller(tmp_path):
    ctl = harness.Controller(("apps/l2_switch.py",), {"l2_switch": {"mode": "reactive"}},
                             log_dir=tmp_path)
    ctl.start()
    yield ctl
    ctl.stop()


def test_a_live_holder_keeps_its_id_and_a_silent_one_gives_it_up(controller):
    dpid = 0x5D
    name = "%016x" % dpid
    live = FakeSwitch(controller.of_port, dpid)
    assert harness.wait_until(lambda: switches(controller) == [name], 5)
    intruder = FakeSwitch(controller.of_port, dpid)
    assert intruder.closed.wait(5), "a second connection for a live datapath id was kept"
    time.sleep(3)                                   # longer than the echo probe
    assert not live.closed.is_set() and switches(controller) == [name]
    assert REFUSED_MARK in controller.log_text() and SILENT_MARK not in controller.log_text()

    live.silent.set()                               # the switch is gone, its TCP is not
    started = time.monotonic()
    back = None
    while time.monotonic() - started < 10:          # the switch retrying, as OVS does
        attempt = FakeSwitch(controller.of_port, dpid)
        if not attempt.closed.wait(1.5):
            back = attempt
            break
    took = time.monotonic() - started
    assert back is not None, controller.log_tail()
    assert SILENT_MARK in controller.log_text()
    assert live.closed.wait(10)                     # the old connection was closed
    assert harness.wait_until(lambda: switches(controller) == [name], 5)
    for conn in (live, intruder, back):
        conn.close()
    print(f"observed: a second claim refused while the holder answered echoes; with the "
          f"holder silent, the switch was accepted again {took:.1f} s after it retried")
