"""LLDP frames that name a switch port, for link discovery (IEEE 802.1AB).

The controller sends one out of every switch port; the switch at the other end of a
link hands it back (a packet-in), which says "dpid A port p is wired to dpid B port q".
The chassis id is "dpid:" and 16 hex digits (locally assigned) and the port id the port number
(port component, 4 bytes), the way Ryu's topology service writes them, so frames from
another LLDP speaker (a Linux host running lldpd) simply do not parse as ours.
"""
import struct
from typing import Optional, Tuple

from flows.dpid import format as format_dpid

LLDP_MAC = "01:80:c2:00:00:0e"   # nearest bridge: never forwarded by a bridge
ETH_TYPE_LLDP = 0x88CC
SOURCE_MAC = "02:00:00:11:d9:00"  # locally administered; these frames are never learned
TTL_S = 120

_CHASSIS, _PORT, _TTL, _END = 1, 2, 3, 0
_LOCALLY_ASSIGNED, _PORT_COMPONENT = 7, 2
_CHASSIS_PREFIX = b"dpid:"
_HEX = frozenset(b"0123456789abcdef")


def _tlv(kind: int, value: bytes) -> bytes:
    return struct.pack("!H", kind << 9 | len(value)) + value


def frame(dpid: int, port: int) -> bytes:
    """The LLDP frame to send out of `port` of switch `dpid`."""
    header = bytes.fromhex(LLDP_MAC.replace(":", "")) + bytes.fromhex(
        SOURCE_MAC.replace(":", "")) + struct.pack("!H", ETH_TYPE_LLDP)
    return header + _tlv(_CHASSIS, bytes([_LOCALLY_ASSIGNED]) + _CHASSIS_PREFIX
                         + format_dpid(dpid).encode("ascii")) \
        + _tlv(_PORT, bytes([_PORT_COMPONENT]) + struct.pack("!I", port)) \
        + _tlv(_TTL, struct.pack("!H", TTL_S)) + _tlv(_END, b"")


def parse(data: bytes) -> Optional[Tuple[int, int]]:
    """(dpid, port) named by one of our LLDP frames; None for anything else (another
    speaker's LLDP, a truncated or malformed frame)."""
    if len(data) < 14 or struct.unpack_from("!H", data, 12)[0] != ETH_TYPE_LLDP:
        return None
    offset, tlvs = 14, {}
    while offset + 2 <= len(data):
        head = struct.unpack_from("!H", data, offset)[0]
        kind, length = head >> 9, head & 0x1FF
        value = data[offset + 2:offset + 2 + length]
        if len(value) != length:
            return None
        if kind == _END:
            break
        tlvs.setdefault(kind, value)
        offset += 2 + length
    chassis, port = tlvs.get(_CHASSIS, b""), tlvs.get(_PORT, b"")
    if chassis[:1] != bytes([_LOCALLY_ASSIGNED]) or not chassis[1:].startswith(_CHASSIS_PREFIX):
        return None
    if len(port) != 5 or port[0] != _PORT_COMPONENT:
        return None
    digits = chassis[1 + len(_CHASSIS_PREFIX):]
    if len(digits) != 16 or not all(c in _HEX for c in digits):
        return None
    return int(digits, 16), struct.unpack("!I", port[1:])[0]
