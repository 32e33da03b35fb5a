"""Bounds checks for OpenFlow 1.3 messages from a switch, run before Ryu parses them.

Ryu 4.34's parsers walk nested lists with `offset += element.length` and trust the
length they read: a length of 0 never advances, so one message hangs the process
while the list grows (faucetsdn/ryu #188-#196: FlowMod instructions, instruction
actions, queue properties, multipart bodies, flow-stats instructions, group buckets,
bucket actions, HELLO elements, table-feature properties). `check(buf)` walks the
same structure with every length checked against its minimum and against the end of
the element that holds it, so the walk ends in at most one step per 4 bytes, and
raises `Malformed` naming the first bad field. It does not build objects; a message
that passes is handed to Ryu's parser unchanged.

Pure: bytes in, None or an exception out (tests/unit/test_ofcheck.py).
"""
import struct

OFP13 = 0x04
HEADER = struct.Struct("!BBHI")
_TL = struct.Struct("!HH")  # type and length, the head of most nested elements


class Malformed(ValueError):
    """A length field in a message from a switch is zero, too short or overruns."""


def _round8(n):
    return (n + 7) // 8 * 8


def _need(ok, what, *args):
    if not ok:
        raise Malformed(what % args if args else what)


def _tl(buf, offset, end, what):
    _need(end - offset >= 4, "%s at byte %d: %d bytes left, a header needs 4",
          what, offset, end - offset)
    return _TL.unpack_from(buf, offset)


def _span(buf, offset, end, minimum, what, align=8):
    """Type and length of the element at `offset`, checked: at least `minimum`, a
    multiple of `align`, inside `end`."""
    type_, length = _tl(buf, offset, end, what)
    _need(length >= minimum, "%s at byte %d: length %d (minimum %d)",
          what, offset, length, minimum)
    _need(length % align == 0, "%s at byte %d: length %d is not a multiple of %d",
          what, offset, length, align)
    _need(offset + length <= end, "%s at byte %d: length %d overruns its container "
          "(ends at %d)", what, offset, length, end)
    return type_, length


def _fixed_entries(start, end, size, what):
    _need((end - start) % size == 0, "%s: %d bytes is not a whole number of %d-byte "
          "entries", what, end - start, size)


# --- match, actions, instructions -------------------------------------------------
def _oxm_fields(buf, offset, end, what):
    while offset < end:
        _need(end - offset >= 4, "%s: OXM header at byte %d cut short", what, offset)
        size = buf[offset + 3]
        _need(offset + 4 + size <= end, "%s: OXM field at byte %d (payload %d) "
              "overruns the match", what, offset, size)
        offset += 4 + size


def _match(buf, offset, end, what):
    """Check the match at `offset`; return where what follows it starts (padded)."""
    type_, length = _tl(buf, offset, end, what + " match")
    _need(type_ == 1, "%s match at byte %d: type %d, OpenFlow 1.3 needs OXM (1)",
          what, offset, type_)
    _need(length >= 4, "%s match at byte %d: length %d (minimum 4)", what, offset, length)
    _need(offset + _round8(length) <= end, "%s match at byte %d: length %d overruns "
          "(ends at %d)", what, offset, length, end)
    _oxm_fields(buf, offset + 4, offset + length, what)
    return offset + _round8(length)


_ACTION_SIZES = {0: 16, 11: 8, 12: 8, 15: 8, 16: 8, 17: 8, 18: 8, 19: 8, 20: 8, 21: 8,
                 22: 8, 23: 8, 24: 8, 26: 8, 27: 8}
_ACTION_SET_FIELD, _ACTION_EXPERIMENTER = 25, 0xFFFF
_NX, _NX_CT = 0x00002320, 35


def actions(buf, offset, end, what="action"):
    while offset < end:
        type_, length = _span(buf, offset, end, 8, what)
        size = _ACTION_SIZES.get(type_)
        if size is not None:
            _need(length == size, "%s type %d at byte %d: length %d (must be %d)",
                  what, type_, offset, length, size)
        elif type_ == _ACTION_SET_FIELD:
            _oxm_fields(buf, offset + 4, offset + 8 + buf[offset + 7], what + " set_field")
        elif type_ == _ACTION_EXPERIMENTER:
            _experimenter_action(buf, offset, length, what)
        else:
            raise Malformed("%s at byte %d: unknown type %d" % (what, offset, type_))
        offset += length


def _experimenter_action(buf, offset, length, what):
    _need(length >= 16, "%s experimenter at byte %d: length %d (minimum 16)",
          what, offset, length)
    vendor, subtype = struct.unpack_from("!IH", buf, offset + 4)
    if vendor == _NX and subtype == _NX_CT:  # ct(): nested actions after 24 bytes
        _need(length >= 24, "%s ct() at byte %d: length %d (minimum 24)", what, offset, length)
        actions(buf, offset + 24, offset + length, what + " in ct()")


_INSTRUCTION_SIZES = {1: 8, 2: 24, 6: 8}           # goto_table, write_metadata, meter
_INSTRUCTION_ACTIONS = {3, 4, 5}                    # write, apply, clear actions


def instructions(buf, offset, end, what="instruction"):
    while offset < end:
        type_, length = _span(buf, offset, end, 8, what)
        if type_ in _INSTRUCTION_SIZES:
            _need(length == _INSTRUCTION_SIZES[type_], "%s type %d at byte %d: length %d "
                  "(must be %d)", what, type_, offset, length, _INSTRUCTION_SIZES[type_])
        elif type_ in _INSTRUCTION_ACTIONS:
            actions(buf, offset + 8, offset + length, "action in " + what)
        elif type_ != 0xFFFF:
            raise Malformed("%s at byte %d: unknown type %d" % (what, offset, type_))
        offset += length


def buckets(buf, offset, end, what="bucket"):
    while offset < end:
        length = _tl(buf, offset, end, what)[0]  # a bucket starts with its length
        _need(length >= 16 and length % 8 == 0 and offset + length <= end,
              "%s at byte %d: length %d (minimum 16, 8-aligned, inside %d)",
              what, offset, length, end)
        actions(buf, offset + 16, offset + length, "action in " + what)
        offset += length


# --- messages ------------------------------------------------------------------------
def hello(buf, msg_len):
    """HELLO elements (any version: the framing is the same); before any handshake."""
    offset = 8
    while offset < msg_len:
        type_, length = _tl(buf, offset, msg_len, "hello element")
        _need(length >= 4 and offset + length <= msg_len, "hello element at byte %d: "
              "length %d (minimum 4, inside %d)", offset, length, msg_len)
        offset += _round8(length)


def _length_prefixed(buf, start, end, minimum, what, body):
    """Entries whose first 2 bytes are their length (flow stats, group desc, ...)."""
    offset = start
    while offset < end:
        _need(end - offset >= 2, "%s at byte %d: cut short", what, offset)
        length = struct.unpack_from("!H", buf, offset)[0]
        _need(length >= minimum, "%s at byte %d: length %d (minimum %d)",
              what, offset, length, minimum)
        _need(offset + length <= end, "%s at byte %d: length %d overruns the message "
              "(ends at %d)", what, offset, length, end)
        body(offset, offset + length)
        offset += length


def _flow_stats(buf):
    def body(start, end):
        after = _match(buf, start + 48, end, "flow stats")
        instructions(buf, after, end, "instruction in flow stats")
    return body


def _group_stats(start, end):
    _fixed_entries(start + 40, end, 16, "bucket counters")


def _group_desc(buf):
    return lambda start, end: buckets(buf, start + 8, end, "bucket in group desc")


def _meter_stats(buf, start, end):
    offset = start
    while offset < end:
        _need(end - offset >= 40, "meter stats at byte %d: cut short", offset)
        length = struct.unpack_from("!H", buf, offset + 4)[0]
        _need(length >= 40 and (length - 40) % 16 == 0 and offset + length <= end,
              "meter stats at byte %d: length %d (40 + 16 per band, inside %d)",
              offset, length, end)
        offset += length


def _meter_config(buf):
    def body(start, end):
        offset = start + 8
        while offset < end:
            offset += _span(buf, offset, end, 16, "meter band")[1]
    return body


_TF_IDS = {0, 1, 4, 5, 6, 7}       # properties holding instruction/action ids
_TF_OXM = {8, 10, 12, 13, 14, 15}  # properties holding OXM ids
_TF_EXPERIMENTER = {0xFFFE, 0xFFFF}


def _table_features(buf):
    def body(start, end):
        offset = start + 64
        while offset < end:
            type_, length = _tl(buf, offset, end, "table feature property")
            _need(length >= 4 and offset + length <= end, "table feature property at "
                  "byte %d: length %d (minimum 4, inside %d)", offset, length, end)
            inner, inner_end = offset + 4, offset + length
            if type_ in _TF_IDS:
                while inner < inner_end:
                    _, id_len = _tl(buf, inner, inner_end, "id in table feature property")
                    _need(id_len >= 4 and inner + id_len <= inner_end, "id at byte %d in "
                          "table feature property: length %d", inner, id_len)
                    inner += id_len
            elif type_ in _TF_OXM:
                while inner < inner_end:
                    step = 8 if inner_end - inner >= 4 and buf[inner] == 0xFF \
                        and buf[inner + 1] == 0xFF else 4
                    _need(inner + step <= inner_end, "OXM id at byte %d cut short", inner)
                    inner += step
            elif type_ in _TF_EXPERIMENTER:
                _need(length >= 12, "experimenter property at byte %d: length %d "
                      "(minimum 12)", offset, length)
            elif type_ not in (2, 3):  # next tables: plain bytes
                raise Malformed("table feature property at byte %d: unknown type %d"
                                % (offset, type_))
            _need(offset + _round8(length) <= end or offset + length == end,
                  "table feature property at byte %d: padding overruns", offset)
            offset += _round8(length)
    return body


def multipart_reply(buf, msg_len):
    _need(msg_len >= 16, "multipart reply: length %d (minimum 16)", msg_len)
    kind = struct.unpack_from("!H", buf, 8)[0]
    start, end = 16, msg_len
    fixed = {0: 1056, 2: 24, 3: 24, 4: 112, 5: 40, 8: 40, 11: 16, 13: 64}.get(kind)
    if fixed is not None:
        _fixed_entries(start, end, fixed, "multipart reply type %d" % kind)
    elif kind == 1:
        _length_prefixed(buf, start, end, 56, "flow stats", _flow_stats(buf))
    elif kind == 6:
        _length_prefixed(buf, start, end, 40, "group stats", _group_stats)
    elif kind == 7:
        _length_prefixed(buf, start, end, 8, "group desc", _group_desc(buf))
    elif kind == 9:
        _meter_stats(buf, start, end)
    elif kind == 10:
        _length_prefixed(buf, start, end, 8, "meter config", _meter_config(buf))
    elif kind == 12:
        _length_prefixed(buf, start, end, 64, "table features", _table_features(buf))
    elif kind == 0xFFFF:
        _need(end - start >= 8, "experimenter multipart reply: %d bytes", end - start)
    else:
        raise Malformed("multipart reply: unknown type %d" % kind)


def queue_config_reply(buf, msg_len):
    offset = 16
    _need(msg_len >= 16, "queue config reply: length %d (minimum 16)", msg_len)
    while offset < msg_len:
        _need(msg_len - offset >= 16, "queue at byte %d: cut short", offset)
        length = struct.unpack_from("!H", buf, offset + 8)[0]
        _need(length >= 16 and offset + length <= msg_len, "queue at byte %d: length %d "
              "(minimum 16, inside %d)", offset, length, msg_len)
        prop, end = offset + 16, offset + length
        while prop < end:
            prop += _span(buf, prop, end, 16, "queue property")[1]
        offset += length


def _exact(size):
    def check(buf, msg_len):
        _need(msg_len >= size, "length %d (minimum %d)", msg_len, size)
    return check


def _packet_in(buf, msg_len):
    _need(msg_len >= 24 + 8, "packet-in: length %d (minimum 32)", msg_len)
    after = _match(buf, 24, msg_len, "packet-in")
    _need(after + 2 <= msg_len, "packet-in: no room for the 2 pad bytes after the match")


def _flow_removed(buf, msg_len):
    _need(msg_len >= 56, "flow removed: length %d (minimum 56)", msg_len)
    _match(buf, 48, msg_len, "flow removed")


def _flow_mod(buf, msg_len):
    _need(msg_len >= 56, "flow mod: length %d (minimum 56)", msg_len)
    after = _match(buf, 48, msg_len, "flow mod")
    instructions(buf, after, msg_len, "instruction in flow mod")


# Every type Ryu's OpenFlow 1.3 parser registers for bytes from a switch.
_CHECKS = {0: hello, 1: _exact(12), 2: _exact(8), 3: _exact(8), 4: _exact(16),
           6: _exact(32), 8: _exact(12), 10: _packet_in, 11: _flow_removed,
           12: _exact(80), 14: _flow_mod, 19: multipart_reply, 21: _exact(8),
           23: queue_config_reply, 25: _exact(24), 27: _exact(32)}


def check(buf):
    """Raise Malformed unless `buf` (one whole OpenFlow 1.3 message, or a HELLO of any
    version) is framed correctly all the way down."""
    _need(len(buf) >= 8, "%d bytes: shorter than the 8-byte header", len(buf))
    version, msg_type, msg_len, _ = HEADER.unpack_from(buf)
    _need(msg_len >= 8, "header length %d (minimum 8)", msg_len)
    _need(msg_len == len(buf), "header length %d, %d bytes given", msg_len, len(buf))
    if msg_type == 0:
        return hello(buf, msg_len)
    _need(version == OFP13, "version 0x%02x (only OpenFlow 1.3 is parsed)", version)
    body = _CHECKS.get(msg_type)
    _need(body is not None, "message type %d has no parser", msg_type)
    return body(buf, msg_len)
