"""OpenFlow packet-in bytes built with struct (OXM fields), for the fast parser and the
packet-in fuzzer."""
import struct

from ryu.ofproto import ofproto_v1_3 as ofp


def oxm(field, value, size, klass=0x8000, mask=None):
    body = value.to_bytes(size, "big") + (b"" if mask is None else mask.to_bytes(size, "big"))
    return struct.pack("!I", klass << 16 | field << 9 | (mask is not None) << 8 | len(body)) + body


def packet_in(oxms, data=b"\x02" * 60, total_len=None, table_id=4, cookie=0x1002 << 48):
    match = struct.pack("!HH", 1, 4 + len(oxms)) + oxms
    match += bytes(-len(match) % 8)
    body = struct.pack("!IHBBQ", ofp.OFP_NO_BUFFER, len(data) if total_len is None else total_len,
                       ofp.OFPR_ACTION, table_id, cookie) + match + bytes(2) + data
    return struct.pack("!BBHI", 4, ofp.OFPT_PACKET_IN, 8 + len(body), 77) + body
