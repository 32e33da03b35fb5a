"""Through the wire and back: messages as the controller's bytes, parsed as a switch
would, decoded to spec values (controller/ofcompile.py's decoder). The simulator runs
what comes out (`compiled`), so an encoding bug fails simulator tests too.
"""
import struct

from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser
from ryu.ofproto import ofproto_protocol

from controller import ofcompile

_GROUP_MOD = struct.Struct("!HBxI")      # command, type, pad, group_id
_METER_MOD = struct.Struct("!HHI")       # command, flags, meter_id


class Datapath(ofproto_protocol.ProtocolDesc):
    """Enough of a datapath to build and serialize messages."""

    def __init__(self, dpid=1):
        super().__init__(ofp.OFP_VERSION)
        self.id = dpid


DP = Datapath()


def _parts(buf, offset, part):
    items = []
    while offset < len(buf):
        item = part.parser(buf, offset)
        items.append(item)
        offset += item.len
    return items


def parse(data: bytes):
    """A flow-, group- or meter-mod parsed back from its bytes (None for other types)."""
    _, msg_type, msg_len, xid = struct.unpack_from("!BBHI", data)
    if msg_type == ofp.OFPT_FLOW_MOD:
        return parser.OFPFlowMod.parser(None, ofp.OFP_VERSION, msg_type, msg_len, xid, data)
    if msg_type == ofp.OFPT_GROUP_MOD:
        command, type_, group_id = _GROUP_MOD.unpack_from(data, 8)
        return parser.OFPGroupMod(None, command, type_, group_id,
                                  _parts(data, 8 + _GROUP_MOD.size, parser.OFPBucket))
    if msg_type == ofp.OFPT_METER_MOD:
        command, flags, meter_id = _METER_MOD.unpack_from(data, 8)
        return parser.OFPMeterMod(None, command, flags, meter_id,
                                  _parts(data, 8 + _METER_MOD.size, parser.OFPMeterBandHeader))
    return None


def decoded(msg, kind="main"):
    """What a message the controller sends says, read from its bytes: a spec or delete
    value (None when it is no flow/group/meter mod, or not ours)."""
    if msg.buf is None:
        msg.serialize()
    parsed = parse(bytes(msg.buf))
    return None if parsed is None else ofcompile.decode_message(parsed, kind)


def compiled(items, kind="main"):
    """`items` (specs and deletes) compiled, serialized, parsed and decoded again:
    what a switch is told, as values the simulator runs."""
    out = []
    for msg in ofcompile.compile_all(DP, items):
        msg.serialize()
        out.append(decoded(msg, kind))
    return out
