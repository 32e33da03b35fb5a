"""What a switch holds, in a form that compares with what an app wants.

Flows, groups and meters, desired (specs) and read back (stats entries), all become
`Entry` values keyed by spec values: the match and actions as controller/ofcompile.py
and the action registry (controller/ofactions.py) decode them. A desired spec is
compiled and decoded the same way, so both sides are in one form whatever the switch
spells differently (OVS reports reg_move fields in NXM form, for one). Tables are
named by number here: which pipeline a bridge runs is not known at this level.
"""
from dataclasses import dataclass
from typing import Iterable, List, Sequence

from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser

from controller import ofcompile, pipeline
from flows.spec import FlowSpec, GroupSpec, MeterSpec, Owner

_FLAGS = ofp.OFPFF_SEND_FLOW_REM  # the only flow-mod flag we set; OVS reports others


@dataclass(frozen=True)
class Entry:
    slot: tuple     # where it lives: a flow's table+priority+match, a group's or meter's id
    key: tuple      # the slot and everything else that must be equal
    item: object    # the spec (desired) or the stats entry (read back)

    @property
    def kind(self) -> str:
        return self.slot[0]


def owns(owner: Owner, other) -> bool:
    """True when `other` (an Owner, or None for entries that are not ours) is `owner`'s."""
    return other is not None and other.app == owner.app and \
        owner.purpose in (None, other.purpose) and owner.instance in (None, other.instance)


def _wire(objs, part) -> list:
    """Instructions, buckets or bands as Ryu reads them back from their own bytes (what
    a switch reports is parsed; what we build is not, and may spell values otherwise)."""
    buf = bytearray()
    for obj in objs:
        obj.serialize(buf, len(buf))
    parsed, offset = [], 0
    while offset < len(buf):
        obj = part.parser(bytes(buf), offset)
        parsed.append(obj)
        offset += obj.len
    return parsed


def _match(ofmatch):
    buf = bytearray()
    ofmatch.serialize(buf, 0)
    return ofcompile.decode_match(parser.OFPMatch.parser(bytes(buf), 0))


def _table(number):
    return number   # tables by number: see the module docstring


def _flow(table_id, priority, match, cookie, instructions, idle, hard, flags, item):
    slot = ("flow", table_id, priority, _match(match))
    actions, goto, meter = ofcompile.decode_instructions(
        _wire(instructions, parser.OFPInstruction), _table)
    return Entry(slot, slot + (cookie, actions, goto, meter, idle, hard, flags & _FLAGS), item)


def _group(group_id, type_, buckets, item):
    slot = ("group", group_id)
    return Entry(slot, slot + (type_, tuple(
        (b.weight, ofcompile.decode_actions(b.actions, _table))
        for b in _wire(buckets, parser.OFPBucket))), item)


def _meter(meter_id, flags, bands, item):
    slot = ("meter", meter_id)
    return Entry(slot, slot + (flags, tuple(
        (b.type, b.rate, b.burst_size) for b in _wire(bands, parser.OFPMeterBandHeader))), item)


def desired(datapath, items: Iterable) -> List[Entry]:
    entries = []
    for item in items:
        if isinstance(item, FlowSpec):
            fm = ofcompile.ryu_flow_mod(datapath, item)
            entries.append(_flow(fm.table_id, fm.priority, fm.match, fm.cookie, fm.instructions,
                                 fm.idle_timeout, fm.hard_timeout, fm.flags, item))
        elif isinstance(item, GroupSpec):
            gm = ofcompile.group_mod(datapath, item)
            entries.append(_group(gm.group_id, gm.type, gm.buckets, item))
        elif isinstance(item, MeterSpec):
            mm = ofcompile.meter_mod(datapath, item)
            entries.append(_meter(mm.meter_id, mm.flags, mm.bands, item))
        else:
            raise TypeError(f"cannot reconcile {item!r}")
    return entries


def flow_entries(stats: Sequence) -> List[Entry]:
    return [_flow(s.table_id, s.priority, s.match, s.cookie, s.instructions, s.idle_timeout,
                  s.hard_timeout, s.flags, s) for s in stats]


def _ours(ref, owners) -> bool:
    return ref is not None and any(owns(o, ref.owner) for o in owners)


def group_entries(descs: Sequence, owners: Sequence[Owner]) -> List[Entry]:
    return [_group(d.group_id, d.type, d.buckets, d) for d in descs
            if _ours(pipeline.group_owner(d.group_id), owners)]


def meter_entries(configs: Sequence, owners: Sequence[Owner]) -> List[Entry]:
    return [_meter(c.meter_id, c.flags, c.bands, c) for c in configs
            if _ours(pipeline.meter_owner(c.meter_id), owners)]


def removal(datapath, entry: Entry):
    """The message that removes one read-back entry, exactly that one."""
    stat = entry.item
    if entry.kind == "flow":
        return parser.OFPFlowMod(
            datapath, cookie=stat.cookie, cookie_mask=0xFFFFFFFFFFFFFFFF,
            table_id=stat.table_id, command=ofp.OFPFC_DELETE_STRICT, priority=stat.priority,
            out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY, match=stat.match)
    if entry.kind == "group":
        return parser.OFPGroupMod(datapath, ofp.OFPGC_DELETE, ofp.OFPGT_ALL, stat.group_id, [])
    return parser.OFPMeterMod(datapath, command=ofp.OFPMC_DELETE, flags=0,
                              meter_id=stat.meter_id, bands=[])


def group_desc_request(datapath):
    return parser.OFPGroupDescStatsRequest(datapath, 0)


def meter_config_request(datapath):
    return parser.OFPMeterConfigStatsRequest(datapath, 0, ofp.OFPM_ALL)
