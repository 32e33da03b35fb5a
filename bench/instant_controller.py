"""An OpenFlow 1.3 controller that costs next to nothing, for bench/ovs_packet_ins.py.

It answers each packet-in as our learning switch does, with two flow-mods that learn
the frame's source MAC (a destination entry in LEARN_TABLE, a source entry in
SOURCE_TABLE; nothing else looks there, so forwarding is unchanged), and floods the
frame with a packet-out (l2_switch lets the pipeline flood it instead), packed with
struct and written in one send per read. What it reaches on a real OVS bridge is the OVS side's
own limit: upcall, packet-in, flow-mod and packet-out, with the controller out of
the way. Run as `python -m bench.instant_controller PORT`; serves one switch
connection at a time until killed.
"""
import socket
import struct
import sys

VERSION = 4
HELLO, ECHO_REQUEST, ECHO_REPLY, PACKET_IN, PACKET_OUT, FLOW_MOD = 0, 2, 3, 10, 13, 14
HEADER = struct.Struct("!BBHI")
CONTROLLER, FLOOD, ANY = 0xFFFFFFFD, 0xFFFFFFFB, 0xFFFFFFFF
NO_BUFFER = 0xFFFFFFFF
OXM_IN_PORT, OXM_ETH_DST, OXM_ETH_SRC = 0, 3, 4
LEARN_TABLE, SOURCE_TABLE = 1, 2
_PACKET_IN_FIXED = 16   # buffer_id, total_len, reason, table_id, cookie


def message(kind, body=b"", xid=0):
    return HEADER.pack(VERSION, kind, 8 + len(body), xid) + body


def match(*oxms):
    """An OXM match from (field, value bytes) pairs, padded to 8 bytes."""
    fields = b"".join(struct.pack("!HBB", 0x8000, field << 1, len(value)) + value
                      for field, value in oxms)
    length = 4 + len(fields)
    return struct.pack("!HH", 1, length) + fields + bytes(-length % 8)


def output(port, max_len=0xFFFF):
    return struct.pack("!HHIH6x", 0, 16, port, max_len)


def flow_mod(table, priority, match_bytes, actions):
    apply = struct.pack("!HH4x", 4, 8 + len(actions)) + actions   # APPLY_ACTIONS
    return message(FLOW_MOD, struct.pack("!QQBBHHHIIIH2x", 0, 0, table, 0, 0, 0, priority,
                                         NO_BUFFER, 0, 0, 0) + match_bytes + apply)


def table_miss():
    """Table 0: everything to the controller, whole frames."""
    return flow_mod(0, 0, match(), output(CONTROLLER))


def answer(body):
    """The flow-mod and packet-out for one packet-in's body (after the header)."""
    match_length = struct.unpack_from("!H", body, _PACKET_IN_FIXED + 2)[0]
    in_port, offset = ANY, _PACKET_IN_FIXED + 4
    while offset < _PACKET_IN_FIXED + match_length:
        oxm_class, field, length = struct.unpack_from("!HBB", body, offset)
        if oxm_class == 0x8000 and field >> 1 == OXM_IN_PORT:
            in_port = struct.unpack_from("!I", body, offset + 4)[0]
        offset += 4 + length
    frame = body[_PACKET_IN_FIXED + match_length + (-match_length % 8) + 2:]
    learn = flow_mod(LEARN_TABLE, 100, match((OXM_ETH_DST, frame[6:12])), output(in_port))
    known = flow_mod(SOURCE_TABLE, 100, match((OXM_IN_PORT, struct.pack("!I", in_port)),
                                              (OXM_ETH_SRC, frame[6:12])), b"")
    flood = output(FLOOD)
    return learn + known + message(PACKET_OUT, struct.pack("!IIH6x", NO_BUFFER, in_port, len(flood))
                           + flood + frame)


def serve(conn):
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.sendall(message(HELLO) + table_miss())
    inbox = bytearray()
    while True:
        data = conn.recv(1 << 20)
        if not data:
            return
        inbox += data
        replies, offset = [], 0
        while len(inbox) - offset >= 8:
            _, kind, length, xid = HEADER.unpack_from(inbox, offset)
            if len(inbox) - offset < length:
                break
            if kind == PACKET_IN:
                replies.append(answer(bytes(inbox[offset + 8:offset + length])))
            elif kind == ECHO_REQUEST:
                replies.append(message(ECHO_REPLY, bytes(inbox[offset + 8:offset + length]), xid))
            offset += length
        del inbox[:offset]
        if replies:
            conn.sendall(b"".join(replies))


def main(port):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(4)
    while True:
        conn, _ = listener.accept()
        with conn:
            try:
                serve(conn)
            except OSError:
                pass   # the switch went away: wait for the next one


if __name__ == "__main__":
    main(int(sys.argv[1]))
