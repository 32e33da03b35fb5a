"""Flow-mods for plain L2 specs, encoded straight to OpenFlow 1.3 bytes.

Building a Ryu OFPMatch costs tens of microseconds (every MAC goes through netaddr)
and serializing it as much again: in reactive learning that was most of the
controller's time per packet-in. Specs that only match in_port / VLAN / MACs /
EtherType and only output, push/pop a VLAN or set the VID (the learning and
forwarding entries) are packed here with struct instead. The bytes are exactly
Ryu's (tests/unit/test_ofwire.py compares them for every kind of spec); anything
else returns None and goes through Ryu's parser as before.
"""
import struct
from typing import Callable, Optional

from flows.spec import (ALL, CONTROLLER, FLOOD, IN_PORT, NORMAL, TAGGED, UNTAGGED, FlowSpec, Output,
                        PopVlan, PushVlan, SetField, DecTtl)

OFP_VERSION, OFPT_FLOW_MOD = 4, 14
OFPFC_ADD, OFPFF_SEND_FLOW_REM = 0, 1
OFP_NO_BUFFER = 0xFFFFFFFF
OFPVID_PRESENT = 0x1000
RESERVED_PORTS = {FLOOD: 0xFFFFFFFB, ALL: 0xFFFFFFFC, CONTROLLER: 0xFFFFFFFD,
                  IN_PORT: 0xFFFFFFF8, NORMAL: 0xFFFFFFFA}

_HEADER = struct.Struct("!BBHI")
_FLOW_MOD = struct.Struct("!QQBBHHHIIIH2x")
_OXM_BASIC = 0x8000
# field: (OXM field number, value bytes)
_FIELDS = {"in_port": (0, 4), "eth_dst": (3, 6), "eth_src": (4, 6), "eth_type": (5, 2),
           "vlan_vid": (6, 2), "vlan_pcp": (7, 1)}
# Nicira registers (class NXM_1; field number = the register's index): OUT_PORT of
# flows/egress.py is matched in the egress tables
_NXM_1 = 0x0001
_REGS = {"reg1": (1, 4)}


def _pad8(data: bytes) -> bytes:
    return data + bytes(-len(data) % 8)


def _value(name: str, value, size: int) -> bytes:
    if name in ("eth_src", "eth_dst"):
        return bytes.fromhex(value.replace(":", ""))
    return value.to_bytes(size, "big")


def _oxm(name: str, value, mask=None) -> bytes:
    oxm_class, (number, size) = (_NXM_1, _REGS[name]) if name in _REGS \
        else (_OXM_BASIC, _FIELDS[name])
    if name == "vlan_vid":
        if value == UNTAGGED:
            value = 0
        elif value == TAGGED:
            value, mask = OFPVID_PRESENT, OFPVID_PRESENT
        else:
            value |= OFPVID_PRESENT
    body = _value(name, value, size)
    if mask is not None:
        body += _value(name, mask, size)
    return struct.pack("!I", oxm_class << 16 | number << 9 | (mask is not None) << 8
                       | len(body)) + body


def _match(match) -> Optional[bytes]:
    if any(name not in _FIELDS and name not in _REGS for name in match.names()):
        return None
    # Ryu's order: the registers (class 0x0001) first, then the basic fields by number
    fields = sorted(match.fields, key=lambda f: (f[0] not in _REGS,
                                                 (_REGS.get(f[0]) or _FIELDS[f[0]])[0]))
    oxms = b"".join(_oxm(name, value, mask) for name, value, mask in fields)
    return _pad8(struct.pack("!HH", 1, 4 + len(oxms)) + oxms)


# Packers of the action kinds this module encodes, used through controller/ofactions.py's
# registry; each returns None for a value it cannot pack.


def pack_output(action: Output) -> Optional[bytes]:
    port = RESERVED_PORTS.get(action.port, action.port)
    if not isinstance(port, int):
        return None
    max_len = action.max_len if action.port == CONTROLLER else 0
    return struct.pack("!HHIH6x", 0, 16, port, max_len)


def pack_pop_vlan(action: PopVlan) -> bytes:
    return struct.pack("!HH4x", 18, 8)


def pack_dec_ttl(action: DecTtl) -> bytes:
    return struct.pack("!HH4x", 24, 8)   # OFPAT_DEC_NW_TTL


def pack_push_vlan(action: PushVlan) -> bytes:
    return struct.pack("!HHH2x", 17, 8, action.ethertype)


def pack_set_field(action: SetField) -> Optional[bytes]:
    if action.field != "vlan_vid" or not isinstance(action.value, int):
        return None
    body = _pad8(struct.pack("!HH", 25, 0) + _oxm("vlan_vid", action.value))
    return body[:2] + struct.pack("!H", len(body)) + body[4:]


def flow_mod_bytes(spec: FlowSpec, cookie: int, table_id: int, goto_id: Optional[int],
                   pack: Callable[[object], Optional[bytes]]) -> Optional[bytes]:
    """The OFPFC_ADD message for `spec` with xid 0, or None if it needs Ryu's encoder;
    `pack` packs one action (None: not here), ofactions.pack."""
    if spec.meter is not None:
        return None
    match = _match(spec.match)
    if match is None:
        return None
    instructions = b""
    if spec.actions:
        actions = [pack(a) for a in spec.actions]
        if any(a is None for a in actions):
            return None
        joined = b"".join(actions)
        instructions += struct.pack("!HH4x", 4, 8 + len(joined)) + joined
    if goto_id is not None:
        instructions += struct.pack("!HHB3x", 1, 8, goto_id)
    body = _FLOW_MOD.pack(cookie, 0, table_id, OFPFC_ADD, spec.idle_timeout, spec.hard_timeout,
                          spec.priority, OFP_NO_BUFFER, 0, 0,  # out_port/group: unused by adds
                          OFPFF_SEND_FLOW_REM if spec.notify_removed else 0) \
        + match + instructions
    return _HEADER.pack(OFP_VERSION, OFPT_FLOW_MOD, 8 + len(body), 0) + body
