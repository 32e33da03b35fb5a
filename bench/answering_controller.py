"""A trivial OpenFlow 1.3 "controller" that answers every packet-in with a packet-out
of its frame (as simple_switch_13 floods a frame to an unknown destination): the
cheapest peer bench/fake_switches.py can have, so that a run against it measures the
generator alone (its CPU per packet-in and the rate it can drive).

It does just enough for the fake switches: HELLO, FEATURES_REQUEST and a port
description request on connect, echo replies, and one send per read with the
answers to everything that read brought.

    python -m bench.answering_controller      # prints the port it listens on
"""
import contextlib
import selectors
import socket
import struct
import subprocess
import sys
from pathlib import Path

from bench.fake_switches import (ECHO_REPLY, ECHO_REQUEST, FEATURES_REQUEST, HELLO,
                                 MULTIPART_REQUEST, PACKET_IN, PACKET_OUT, PORT_DESC, READ_SIZE,
                                 message, whole_message)

OFPP_CONTROLLER, OFPP_FLOOD = 0xFFFFFFFD, 0xFFFFFFFB
_FLOOD = struct.pack("!HHIH6x", 0, 16, OFPP_FLOOD, 0)   # output:FLOOD
_GREETING = (message(HELLO, 1) + message(FEATURES_REQUEST, 2)
             + message(MULTIPART_REQUEST, 3, struct.pack("!HH4x", PORT_DESC, 0)))
_PACKET_OUT_HEAD = struct.Struct("!BBHIIIH6x")
REPO = Path(__file__).resolve().parents[1]


def packet_out_head(frame_length: int) -> bytes:
    """The packet-out that floods a frame of `frame_length` bytes, up to the frame."""
    return _PACKET_OUT_HEAD.pack(4, PACKET_OUT, 24 + len(_FLOOD) + frame_length, 0,
                                 0xFFFFFFFF, OFPP_CONTROLLER, len(_FLOOD)) + _FLOOD


def answers(chunk: bytes, heads: dict):
    """(the answers to the complete messages at the start of `chunk`, where the first
    incomplete one starts). `heads` caches packet_out_head by frame length."""
    parts, end = [], 0
    length = whole_message(chunk, end)
    while length:
        kind = chunk[end + 1]
        if kind == PACKET_IN:
            match_length = chunk[end + 26] << 8 | chunk[end + 27]
            frame_at = end + 24 + (match_length + 7) // 8 * 8 + 2
            head = heads.get(end + length - frame_at)
            if head is None:
                head = heads[end + length - frame_at] = packet_out_head(end + length - frame_at)
            parts += (head, chunk[frame_at:end + length])
        elif kind == ECHO_REQUEST:
            parts.append(message(ECHO_REPLY, 0, chunk[end + 8:end + length]))
        end += length
        length = whole_message(chunk, end)
    return b"".join(parts), end


def serve(listener: socket.socket, once: bool = False):
    """Answer every switch that connects to `listener`, until the process ends (once:
    until every switch that connected has gone)."""
    with selectors.DefaultSelector() as selector:
        selector.register(listener, selectors.EVENT_READ)
        _answer_switches(selector, listener, once)


def _answer_switches(selector, listener, once):
    inboxes, heads, served = {}, {}, False
    read = bytearray(READ_SIZE)   # recv(256 KiB) would map and unmap that much every call
    while not (once and served and not inboxes):
        for key, _ in selector.select():
            if key.fileobj is listener:
                sock, _ = listener.accept()
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.sendall(_GREETING)
                inboxes[sock] = b""
                served = True
                selector.register(sock, selectors.EVENT_READ)
                continue
            sock = key.fileobj
            try:
                size = sock.recv_into(read)
            except ConnectionResetError:
                size = 0
            if not size:   # the switch has gone
                selector.unregister(sock)
                del inboxes[sock]
                sock.close()
                continue
            chunk = inboxes[sock] + read[:size]
            reply, end = answers(chunk, heads)
            inboxes[sock] = chunk[end:]
            if reply:
                sock.sendall(reply)   # blocking: the fake switch always reads


@contextlib.contextmanager
def running():
    """This module in a subprocess (a core of its own): yields (its port, its pid)."""
    process = subprocess.Popen([sys.executable, "-m", "bench.answering_controller"],
                               cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        port = int(process.stdout.readline())
        yield port, process.pid
    finally:
        process.kill()
        process.wait()
        process.stdout.close()


def main():
    listener = socket.create_server(("127.0.0.1", 0))
    print(listener.getsockname()[1], flush=True)
    serve(listener)


if __name__ == "__main__":
    main()
