"""Valid OpenFlow 1.3 messages a switch could send, one of each type the controller
parses, built with struct and each length field recorded, so tests and the fuzzer
(tests/integration/test_ofguard_ovs.py) can set any nested length to 0, too short,
past its container or a random value. tests/unit/test_ofcheck.py checks that every
message here, unmutated, passes controller.ofcheck and parses with Ryu.
"""
import random
import struct
from dataclasses import dataclass
from typing import List, Tuple

OFP13 = 4


@dataclass(frozen=True)
class Blob:
    data: bytes = b""
    # (offset of the 2-byte length field, offset of its element, name, minimum length)
    lengths: Tuple[Tuple[int, int, str, int], ...] = ()

    def __add__(self, other):
        shift = len(self.data)
        return Blob(self.data + other.data, self.lengths + tuple(
            (o + shift, s + shift, n, m) for o, s, n, m in other.lengths))


def raw(data: bytes) -> Blob:
    return Blob(data)


def cat(*parts) -> Blob:
    out = Blob()
    for part in parts:
        out = out + (part if isinstance(part, Blob) else Blob(part))
    return out


def element(head: bytes, len_at: int, body: Blob, name: str, minimum: int,
            align: int = 8, padding_counted: bool = True) -> Blob:
    """`head` + `body`, padded to `align`, with its length written at `len_at`."""
    unpadded = len(head) + len(body.data)
    total = (unpadded + align - 1) // align * align
    data = bytearray(head) + body.data + bytes(total - unpadded)
    struct.pack_into("!H", data, len_at, total if padding_counted else unpadded)
    return Blob(bytes(data), ((len_at, 0, name, minimum),) + tuple(
        (o + len(head), s + len(head), n, m) for o, s, n, m in body.lengths))


def tl(type_: int, body, name, minimum=8, extra=b"", **kw) -> Blob:
    body = body if isinstance(body, Blob) else Blob(body)
    return element(struct.pack("!HH", type_, 0) + extra, 2, body, name, minimum, **kw)


def msg(msg_type: int, body, xid=1, version=OFP13) -> Blob:
    body = body if isinstance(body, Blob) else Blob(body)
    return element(struct.pack("!BBHI", version, msg_type, 0, xid), 2, body, "header", 8,
                   align=1)


# --- pieces ------------------------------------------------------------------------
def oxm(field_no: int, value: bytes) -> bytes:
    return struct.pack("!HBB", 0x8000, field_no << 1, len(value)) + value


def match(*fields) -> Blob:
    return tl(1, b"".join(fields) or b"", "match", minimum=4, padding_counted=False)


LEARNING_TABLE = 7   # pipeline.table_id("l2_src"): tests/unit/test_fast_path.py checks it
MATCH = match(oxm(0, struct.pack("!I", 1)), oxm(3, bytes.fromhex("020000000001")))


def output(port=2) -> Blob:
    return tl(0, struct.pack("!IH6x", port, 0xFFE5), "action output", minimum=8)


def set_field() -> Blob:
    return tl(25, oxm(6, struct.pack("!H", 0x1000 | 10)), "action set_field", minimum=8)


def apply_actions(*actions) -> Blob:
    return tl(4, cat(*actions), "instruction apply_actions", extra=b"\0" * 4)


def goto(table=1) -> Blob:
    return tl(1, struct.pack("!B3x", table), "instruction goto_table")


INSTRUCTIONS = cat(apply_actions(set_field(), output()), goto())


def bucket(*actions) -> Blob:
    return element(struct.pack("!HHII4x", 0, 1, 0xFFFFFFFF, 0xFFFFFFFF), 0, cat(*actions),
                   "bucket", 16)


def flow_stats_entry() -> Blob:
    head = struct.pack("!HBxIIHHHH4xQQQ", 0, 0, 10, 500, 100, 0, 0, 0, 0xAB, 3, 300)
    return element(head, 0, cat(MATCH, INSTRUCTIONS), "flow stats", 56)


def table_features_entry() -> Blob:
    head = struct.pack("!HB5x32sQQII", 0, 0, b"classifier", 0, 0, 0, 1000)
    props = cat(
        tl(0, cat(tl(1, b"", "instruction id", minimum=4, align=4),
                  tl(4, b"", "instruction id", minimum=4, align=4)),
           "table feature instructions", minimum=4, padding_counted=False),
        tl(2, bytes([1, 2, 3]), "table feature next tables", minimum=4, padding_counted=False),
        tl(4, cat(tl(0, b"", "action id", minimum=4, align=4)),
           "table feature write actions", minimum=4, padding_counted=False),
        tl(8, struct.pack("!II", 0x80000004, 0x80000606), "table feature match",
           minimum=4, padding_counted=False))
    return element(head, 0, props, "table features", 64)


def meter_band(rate=1000) -> Blob:
    return tl(1, struct.pack("!II4x", rate, 100), "meter band", minimum=16)


def queue(queue_id=1) -> Blob:
    props = cat(tl(1, struct.pack("!H6x", 500), "queue property", minimum=16, extra=b"\0" * 4),
                tl(2, struct.pack("!H6x", 900), "queue property", minimum=16, extra=b"\0" * 4))
    return element(struct.pack("!IIH6x", queue_id, 1, 0), 8, props, "queue", 16)


def port(no=1) -> bytes:
    return struct.pack("!I4s6s2s16sIIIIIIII", no, b"", bytes.fromhex("020000000001"), b"",
                       b"s1-eth1", 0, 0, 0x840, 0, 0, 0, 10000, 10000)


def multipart(kind: int, body) -> Blob:
    return cat(struct.pack("!HH4x", kind, 0), body)


# --- every message type the controller parses ------------------------------------
def hello(version=OFP13) -> bytes:
    bitmap = tl(1, struct.pack("!I", 1 << OFP13), "hello element", minimum=4,
                padding_counted=False)
    return msg(0, bitmap, version=version)


def catalogue() -> List[Tuple[str, Blob]]:
    """(kind, message) for every type controller.ofcheck knows, multipart bodies each."""
    meter_stats = element(struct.pack("!IH6xIQQII", 1, 0, 1, 10, 1000, 5, 0), 4,
                          raw(struct.pack("!QQ", 1, 64)), "meter stats", 40)
    return [
        ("HELLO", hello()),
        ("ERROR", msg(1, struct.pack("!HH", 1, 1) + b"\0" * 8)),
        ("ECHO_REQUEST", msg(2, b"ping")),
        ("ECHO_REPLY", msg(3, b"pong")),
        ("EXPERIMENTER", msg(4, struct.pack("!II", 0x2320, 99) + b"data")),
        ("FEATURES_REPLY", msg(6, struct.pack("!QIBB2xII", 0xF1, 0, 254, 0, 0x47, 0))),
        ("GET_CONFIG_REPLY", msg(8, struct.pack("!HH", 0, 128))),
        ("PACKET_IN", msg(10, cat(struct.pack("!IHBBQ", 0xFFFFFFFF, 14, 0, 0, 0), MATCH,
                                  b"\0\0" + bytes.fromhex("ffffffffffff020000000001") +
                                  b"\x08\x06"))),
        # what OVS sends the learning app: in_port alone, its table (the packet-in fast
        # path, controller/fastpath.py, reads these)
        ("PACKET_IN learning", msg(10, cat(
            struct.pack("!IHBBQ", 0xFFFFFFFF, 14, 0, LEARNING_TABLE, 0),
            match(oxm(0, struct.pack("!I", 2))),
            b"\0\0" + bytes.fromhex("02dd00000001020000000002") + b"\x08\x00"))),
        ("FLOW_REMOVED", msg(11, cat(struct.pack("!QHBBIIHHQQ", 1, 10, 0, 0, 1, 0, 0, 0, 2, 3),
                                     MATCH))),
        ("PORT_STATUS", msg(12, struct.pack("!B7x", 0) + port())),
        ("FLOW_MOD", msg(14, cat(struct.pack("!QQBBHHHIIIH2x", 1, 0, 0, 0, 0, 0, 10,
                                             0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0),
                                 MATCH, INSTRUCTIONS))),
        ("MULTIPART_REPLY desc", msg(19, multipart(0, b"\0" * 1056))),
        ("MULTIPART_REPLY flow", msg(19, multipart(1, cat(flow_stats_entry(),
                                                          flow_stats_entry())))),
        ("MULTIPART_REPLY aggregate", msg(19, multipart(2, struct.pack("!QQI4x", 1, 2, 3)))),
        ("MULTIPART_REPLY table", msg(19, multipart(3, struct.pack("!B3xIQQ", 0, 1, 2, 3)))),
        ("MULTIPART_REPLY port_stats", msg(19, multipart(4, struct.pack("!I4x", 1) +
                                                         b"\0" * 104))),
        ("MULTIPART_REPLY queue", msg(19, multipart(5, b"\0" * 40))),
        ("MULTIPART_REPLY group", msg(19, multipart(6, element(
            struct.pack("!H2xII4xQQII", 0, 1, 1, 5, 500, 1, 0), 0,
            raw(struct.pack("!QQ", 5, 500)), "group stats", 40)))),
        ("MULTIPART_REPLY group_desc", msg(19, multipart(7, element(
            struct.pack("!HBxI", 0, 1, 7), 0,
            cat(bucket(set_field(), output(1)), bucket(output(2))),
            "group desc", 8)))),
        ("MULTIPART_REPLY group_features", msg(19, multipart(8, b"\0" * 40))),
        ("MULTIPART_REPLY meter", msg(19, multipart(9, meter_stats))),
        ("MULTIPART_REPLY meter_config", msg(19, multipart(10, element(
            struct.pack("!HHI", 0, 1, 1), 0, cat(meter_band(), meter_band(2000)),
            "meter config", 8)))),
        ("MULTIPART_REPLY meter_features", msg(19, multipart(11, b"\0" * 16))),
        ("MULTIPART_REPLY table_features", msg(19, multipart(12, table_features_entry()))),
        ("MULTIPART_REPLY port_desc", msg(19, multipart(13, port(1) + port(2)))),
        ("MULTIPART_REPLY experimenter", msg(19, multipart(0xFFFF, struct.pack("!II", 1, 2)))),
        ("BARRIER_REPLY", msg(21, b"")),
        ("QUEUE_GET_CONFIG_REPLY", msg(23, cat(struct.pack("!I4x", 1), queue(1), queue(2)))),
        ("ROLE_REPLY", msg(25, struct.pack("!I4xQ", 2, 1))),
        ("GET_ASYNC_REPLY", msg(27, b"\0" * 24)),
    ]


MUTATIONS = ("zero", "short", "overrun", "random")


def mutate(blob: Blob, index: int, how: str, rng: random.Random) -> Tuple[bytes, int]:
    """The message with length field `index` set as `how` says; (bytes, new value)."""
    at, start, name, minimum = blob.lengths[index]
    if how == "zero":
        value = 0
    elif how == "short":
        value = rng.randint(1, max(1, minimum - 1)) if minimum > 1 else 0
    elif how == "overrun":
        value = min(0xFFFF, len(blob.data) - start + 8 * rng.randint(1, 4))
    else:
        value = rng.randint(0, 0xFFFF)
    data = bytearray(blob.data)
    struct.pack_into("!H", data, at, value)
    return bytes(data), value
