"""A leaner parser for OpenFlow 1.3 packet-ins, the message a learning controller
gets most.

Ryu parses every packet-in's match twice (its old match API and the OXM one) and
that was about half of Ryu's own cost per packet-in. Packet-ins from OVS usually
match only on basic fixed-size fields (in_port, metadata, tunnel_id); those are
unpacked here straight into an OFPMatch (the OXM API: `match["in_port"]`, `.get`,
`.items`, `to_jsondict`); anything else goes to Ryu's parser as before.
tests/unit/test_fastparse.py checks the result against Ryu's own for each case.

`install()` swaps it into Ryu's parser table for this process; our apps' common
import (controller.southbound) does that, so a stock Ryu app run alone keeps
Ryu's parser.
"""
import struct

from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser

from controller import metrics

_BASIC = 0x8000
# OXM basic field number -> (name, value size)
_FIELDS = {0: ("in_port", 4), 1: ("in_phy_port", 4), 2: ("metadata", 8),
           38: ("tunnel_id", 8)}
_FIXED = struct.Struct("!IHBBQ")      # buffer_id, total_len, reason, table_id, cookie
_MATCH_AT = ofp.OFP_HEADER_SIZE + _FIXED.size  # 24
_ryu_parser = parser.OFPPacketIn.parser


def simple_fields(buf, offset, length):
    """[(name, value)] of a match made only of the basic fields above, else None."""
    fields, end = [], offset + length
    while offset < end:
        if end - offset < 4:
            return None
        header = struct.unpack_from("!I", buf, offset)[0]
        size = header & 0xFF
        known = _FIELDS.get(header >> 9 & 0x7F)
        if header >> 16 != _BASIC or header & 0x100 or known is None or known[1] != size \
                or offset + 4 + size > end:
            return None
        fields.append((known[0], int.from_bytes(buf[offset + 4:offset + 4 + size], "big")))
        offset += 4 + size
    return fields


def parse_packet_in(datapath, version, msg_type, msg_len, xid, buf):
    if len(buf) < _MATCH_AT + 4:
        return _ryu_parser(datapath, version, msg_type, msg_len, xid, buf)
    match_type, match_len = struct.unpack_from("!HH", buf, _MATCH_AT)
    fields = None
    if match_type == ofp.OFPMT_OXM and match_len >= 4 and _MATCH_AT + match_len <= len(buf):
        fields = simple_fields(buf, _MATCH_AT + 4, match_len - 4)
    if fields is None:
        return _ryu_parser(datapath, version, msg_type, msg_len, xid, buf)
    msg = parser.OFPPacketIn(datapath)
    msg.set_headers(version, msg_type, msg_len, xid)
    msg.set_buf(buf)
    msg.buffer_id, msg.total_len, msg.reason, msg.table_id, msg.cookie = \
        _FIXED.unpack_from(buf, ofp.OFP_HEADER_SIZE)
    msg.match = parser.OFPMatch(_ordered_fields=fields)
    msg.match.length = match_len
    data = msg.buf[_MATCH_AT + (match_len + 7) // 8 * 8 + 2:]
    msg.data = data[:msg.total_len] if msg.total_len < len(data) else data
    return msg


def counted_packet_in(datapath, version, msg_type, msg_len, xid, buf):
    """parse_packet_in, counted per switch for /metrics, and stamped with when its read
    arrived (the receive loop's `sdn_read_at`, controller/ofguard.py), for the handling
    latency the app base observes."""
    metrics.PACKET_INS.inc(datapath.id or 0)
    msg = parse_packet_in(datapath, version, msg_type, msg_len, xid, buf)
    msg.sdn_read_at = getattr(datapath, "sdn_read_at", None)
    return msg


def install():
    """Use parse_packet_in for OpenFlow 1.3 packet-ins in this process (idempotent)."""
    parser._MSG_PARSERS[ofp.OFPT_PACKET_IN] = counted_packet_in
