"""Compile flow specs (flows.spec values) into Ryu OpenFlow 1.3 messages, and
decode flow-stats entries back into specs.

The only module that builds OpenFlow parser objects. Domain values become wire
values here and nowhere else: table names -> numbers, Owner -> cookie, a VLAN
id -> vid | OFPVID_PRESENT, "flood" -> OFPP_FLOOD.
"""
import struct
from typing import Optional

from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser

from controller import ofactions, ofwire, pipeline
from controller.ofactions import compile_action, port as _port, vlan_vid as _vlan_vid
from flows.spec import (TAGGED, UNTAGGED, Bucket, FlowDelete, FlowSpec, GroupDelete, GroupSpec,
                        Match, MeterDelete, MeterSpec, Owner, PacketInLimit, CT_FLAGS,
                        ct_state_bits)



def compile_match(match: Match):
    kwargs = {}
    for name, value, mask in match.fields:
        if name == "vlan_vid":
            kwargs[name] = _vlan_vid(value)
        elif name == "ct_state":
            kwargs[name] = ct_state_bits(value)
        else:
            kwargs[name] = value if mask is None else (value, mask)
    match = parser.OFPMatch(**kwargs)
    # Ryu orders fields by OXM type number, which puts Nicira's (classes 0 and 1) before
    # OpenFlow's basic ones. OVS checks each field's prerequisites as it reads it: nw_ttl
    # (an IP field) ahead of eth_type is OFPBMC_BAD_PREREQ. With one of those, basic
    # fields first (the others keep Ryu's order, which controller/ofwire.py matches
    # byte for byte).
    if _NICIRA_WITH_PREREQUISITES & set(kwargs):
        match = parser.OFPMatch(_ordered_fields=sorted(
            match._fields2, key=lambda field: _nicira(*field)))
    return match


_NICIRA_WITH_PREREQUISITES = {"nw_ttl"}


_OXM_BASIC_TYPES = ofp.OFPXMC_OPENFLOW_BASIC << 7


def _nicira(name, value) -> bool:
    return ofp.oxm_from_user(name, value)[0] < _OXM_BASIC_TYPES


def flow_mod(datapath, spec: FlowSpec):
    """An OFPFC_ADD for `spec` (an add of an identical match+priority replaces it)."""
    pipeline.validate(spec)
    cookie, table = pipeline.cookie(spec.owner), pipeline.table_id(spec.table)
    goto = None if spec.goto is None else pipeline.table_id(spec.goto)
    encoded = ofwire.flow_mod_bytes(spec, cookie, table, goto, ofactions.pack)
    if encoded is not None:
        return _EncodedFlowMod(datapath, spec, encoded, cookie, table)
    return ryu_flow_mod(datapath, spec)


class _EncodedFlowMod(parser.OFPFlowMod):
    """An OFPFlowMod whose bytes controller/ofwire.py packed; its `match` and
    `instructions` are built the Ryu way only when something reads them."""

    def __init__(self, datapath, spec, encoded, cookie, table_id):
        parser.MsgBase.__init__(self, datapath)
        self._spec, self._encoded = spec, encoded
        self.cookie, self.cookie_mask = cookie, 0
        self.table_id, self.command = table_id, ofp.OFPFC_ADD
        self.idle_timeout, self.hard_timeout = spec.idle_timeout, spec.hard_timeout
        self.priority, self.buffer_id = spec.priority, ofp.OFP_NO_BUFFER
        self.out_port = self.out_group = 0
        self.flags = ofp.OFPFF_SEND_FLOW_REM if spec.notify_removed else 0

    def __getattr__(self, name):  # only for attributes not set in __init__
        if name in ("match", "instructions"):
            full = ryu_flow_mod(self.datapath, self._spec)
            self.match, self.instructions = full.match, full.instructions
            return getattr(self, name)
        raise AttributeError(name)

    def serialize(self):
        self.version, self.msg_type = ofp.OFP_VERSION, ofp.OFPT_FLOW_MOD
        self.buf = bytearray(self._encoded)
        self.msg_len = len(self.buf)
        struct.pack_into("!I", self.buf, 4, self.xid or 0)


def ryu_flow_mod(datapath, spec: FlowSpec):
    instructions = []
    if spec.meter is not None:
        instructions.append(parser.OFPInstructionMeter(pipeline.meter_id(spec.meter)))
    if spec.actions:
        instructions.append(parser.OFPInstructionActions(
            ofp.OFPIT_APPLY_ACTIONS, [compile_action(a) for a in spec.actions]))
    if spec.goto is not None:
        instructions.append(parser.OFPInstructionGotoTable(pipeline.table_id(spec.goto)))
    return parser.OFPFlowMod(
        datapath, cookie=pipeline.cookie(spec.owner), table_id=pipeline.table_id(spec.table),
        command=ofp.OFPFC_ADD, idle_timeout=spec.idle_timeout, hard_timeout=spec.hard_timeout,
        priority=spec.priority, buffer_id=ofp.OFP_NO_BUFFER,
        flags=ofp.OFPFF_SEND_FLOW_REM if spec.notify_removed else 0,
        match=compile_match(spec.match), instructions=instructions)


def flow_delete(datapath, delete: FlowDelete):
    pipeline.validate(delete)
    strict = delete.priority is not None
    return parser.OFPFlowMod(
        datapath, cookie=pipeline.cookie(delete.owner),
        cookie_mask=pipeline.cookie_mask(delete.owner),
        table_id=ofp.OFPTT_ALL if delete.table is None else pipeline.table_id(delete.table),
        command=ofp.OFPFC_DELETE_STRICT if strict else ofp.OFPFC_DELETE,
        priority=delete.priority or 0, out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
        match=compile_match(delete.match))


def meter_mod(datapath, meter: MeterSpec):
    """Add a meter with one drop band; rates in kbit/s on the wire (rounded up, so a
    tiny rate never becomes 0 = unlimited)."""
    kbits = -(-meter.rate // 1000)
    burst = -(-meter.burst // 1000)
    command = ofp.OFPMC_MODIFY if meter.modify else ofp.OFPMC_ADD
    return parser.OFPMeterMod(datapath, command=command,
                              flags=ofp.OFPMF_KBPS | ofp.OFPMF_BURST | ofp.OFPMF_STATS,
                              meter_id=pipeline.meter_id(meter.ref),
                              bands=[parser.OFPMeterBandDrop(rate=kbits, burst_size=burst)])


def packet_in_limit(datapath, limit: PacketInLimit):
    """A fresh controller meter: the old one (if any) is replaced whole, since an add
    of an existing meter is an error and a modify of a missing one too. Deleting a
    missing meter is not."""
    remove = parser.OFPMeterMod(datapath, command=ofp.OFPMC_DELETE, flags=0,
                                meter_id=ofp.OFPM_CONTROLLER, bands=[])
    if not limit.rate:
        return [remove]
    return [remove, parser.OFPMeterMod(
        datapath, command=ofp.OFPMC_ADD,
        flags=ofp.OFPMF_PKTPS | ofp.OFPMF_BURST | ofp.OFPMF_STATS, meter_id=ofp.OFPM_CONTROLLER,
        bands=[parser.OFPMeterBandDrop(rate=limit.rate, burst_size=limit.burst)])]


def meter_delete(datapath, delete: MeterDelete):
    return parser.OFPMeterMod(datapath, command=ofp.OFPMC_DELETE, flags=0,
                              meter_id=pipeline.meter_id(delete.ref), bands=[])


_GROUP_TYPES = {"all": ofp.OFPGT_ALL, "select": ofp.OFPGT_SELECT,
                "indirect": ofp.OFPGT_INDIRECT}


def group_mod(datapath, group: GroupSpec):
    buckets = [parser.OFPBucket(weight=b.weight if group.type == "select" else 0,
                                watch_port=ofp.OFPP_ANY, watch_group=ofp.OFPG_ANY,
                                actions=[compile_action(a) for a in b.actions])
               for b in group.buckets]
    return parser.OFPGroupMod(datapath, ofp.OFPGC_MODIFY if group.modify else ofp.OFPGC_ADD,
                              _GROUP_TYPES[group.type], pipeline.group_id(group.ref), buckets)


def group_delete(datapath, delete: GroupDelete):
    return parser.OFPGroupMod(datapath, ofp.OFPGC_DELETE, ofp.OFPGT_ALL,
                              pipeline.group_id(delete.ref), [])


_COMPILERS = {FlowSpec: flow_mod, FlowDelete: flow_delete, MeterSpec: meter_mod,
              MeterDelete: meter_delete, GroupSpec: group_mod, GroupDelete: group_delete}
DELETES = (FlowDelete, MeterDelete, GroupDelete)


def compile_all(datapath, items):
    """Specs and deletes, in order, as messages."""
    messages = []
    for item in items:
        compiler = _COMPILERS.get(type(item))
        if compiler is None:
            raise TypeError(f"cannot compile {item!r}")
        messages.append(compiler(datapath, item))
    return messages


def flow_stats_request(datapath, owner: Owner, table=None):
    return parser.OFPFlowStatsRequest(
        datapath, 0, ofp.OFPTT_ALL if table is None else pipeline.table_id(table),
        ofp.OFPP_ANY, ofp.OFPG_ANY, pipeline.cookie(owner), pipeline.cookie_mask(owner),
        parser.OFPMatch())


def all_flows_request(datapath):
    """Flow stats of every entry in every table, whatever its cookie (the console)."""
    return parser.OFPFlowStatsRequest(datapath, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY,
                                      ofp.OFPG_ANY, 0, 0, parser.OFPMatch())


def port_stats_request(datapath):
    return parser.OFPPortStatsRequest(datapath, 0, ofp.OFPP_ANY)


def queue_stats_request(datapath, port: int):
    return parser.OFPQueueStatsRequest(datapath, 0, port, ofp.OFPQ_ALL)


def decode_queue_stats(bodies):
    """{queue id: (tx_bytes, tx_packets, tx_errors)} from queue-stats reply bodies."""
    return {s.queue_id: (s.tx_bytes, s.tx_packets, s.tx_errors) for s in bodies}


def set_packet_in_bytes(datapath, nbytes: int):
    """Switch config: truncate table-miss packet-ins to `nbytes`."""
    return parser.OFPSetConfig(datapath, ofp.OFPC_FRAG_NORMAL, nbytes)


def packet_out(datapath, port, data: bytes):
    """Send a frame the controller built out of `port` ("flood" or a number)."""
    return parser.OFPPacketOut(datapath, buffer_id=ofp.OFP_NO_BUFFER,
                               in_port=ofp.OFPP_CONTROLLER,
                               actions=[parser.OFPActionOutput(_port(port))], data=data)


def packet_out_through_pipeline(datapath, data: bytes, in_port=None):
    """Send a frame through the switch's tables from table 0, as if it came in at
    `in_port` (None: from the controller), so every app's entries decide where it goes
    (the router's ARP requests into a VLAN, a frame sent again once its next hop is
    known)."""
    return parser.OFPPacketOut(datapath, buffer_id=ofp.OFP_NO_BUFFER,
                               in_port=ofp.OFPP_CONTROLLER if in_port is None else in_port,
                               actions=[parser.OFPActionOutput(ofp.OFPP_TABLE)], data=data)


def group_stats_request(datapath, ref):
    return parser.OFPGroupStatsRequest(datapath, 0, pipeline.group_id(ref))


def decode_group_stats(bodies):
    """[(packets, bytes)] per bucket, in bucket order, of the one group asked for."""
    for stat in bodies:
        return [(b.packet_count, b.byte_count) for b in stat.bucket_stats]
    return []


def barrier(datapath):
    return parser.OFPBarrierRequest(datapath)


LOCAL_PORT = ofp.OFPP_LOCAL        # its name is the bridge's name in OVS
REPLY_MORE = ofp.OFPMPF_REPLY_MORE


def port_desc_request(datapath):
    return parser.OFPPortDescStatsRequest(datapath, 0)


def decode_port_desc(reply):
    """(number, name) of every port in a port-description reply."""
    return [(p.port_no, _name(p.name)) for p in reply.body]


def decode_port_status(msg):
    """(number, name, deleted) of a port-status message."""
    return msg.desc.port_no, _name(msg.desc.name), msg.reason == ofp.OFPPR_DELETE


def _live(port) -> bool:
    return not port.state & ofp.OFPPS_LINK_DOWN and not port.config & ofp.OFPPC_PORT_DOWN


def decode_port_liveness(reply):
    """(number, carrier up and not administratively down) of every port in a
    port-description reply (the LOCAL port left out)."""
    return [(p.port_no, _live(p)) for p in reply.body if p.port_no != LOCAL_PORT]


def decode_port_status_liveness(msg):
    """(number, live) of a port-status message; a deleted port is not live."""
    return msg.desc.port_no, msg.reason != ofp.OFPPR_DELETE and _live(msg.desc)


def _name(raw):
    return raw.decode(errors="replace") if isinstance(raw, bytes) else raw


# --- decoding what a switch reports (and what the compiler emits) -----------------
# Into spec values: a decoded entry compares with the spec it was compiled from.

_CT_ORDER = ("trk", "new", "est", "rel", "rpl", "inv", "snat", "dnat")  # "+trk-rpl", as builders write


def _ct_state_text(value, mask=None) -> str:
    mask = 0xFFFFFFFF if mask is None else mask
    return "".join(("+" if value & CT_FLAGS[f] else "-") + f for f in _CT_ORDER
                   if mask & CT_FLAGS[f])


def decode_match(ofmatch) -> Match:
    fields = {}
    for name, value in ofmatch.items():
        if name == "vlan_vid":
            if isinstance(value, tuple):  # (value, mask)
                value, mask = value
                # present-bit only: "any tagged"; VID bits (what learn() copies): that VID
                value = TAGGED if mask == ofp.OFPVID_PRESENT else value & mask & 0x0FFF
            elif value == ofp.OFPVID_NONE:
                value = UNTAGGED
            else:
                value &= ~ofp.OFPVID_PRESENT
        elif name == "ct_state":
            value = _ct_state_text(*value) if isinstance(value, tuple) else _ct_state_text(value)
        fields[name] = value
    return Match.of(**fields)


def table_names(kind="main"):
    """The `tables` function of ofactions' decoders for a bridge of pipeline `kind`."""
    return lambda number: pipeline.table_name(number, kind)


def decode_actions(actions, tables) -> tuple:
    return tuple(ofactions.decode_action(a, tables) for a in actions)


def decode_instructions(instructions, tables):
    """(actions, goto, meter) of a flow's instructions."""
    actions, goto, meter = (), None, None
    for inst in instructions:
        if isinstance(inst, parser.OFPInstructionActions):
            actions += decode_actions(inst.actions, tables)
        elif isinstance(inst, parser.OFPInstructionGotoTable):
            goto = tables(inst.table_id)
        elif isinstance(inst, parser.OFPInstructionMeter):
            meter = ofactions.meter_ref(inst.meter_id)
    return actions, goto, meter


def decode_flow(stat, kind="main") -> FlowSpec:
    """A flow-stats entry (or an add flow-mod) as a FlowSpec (owner None when the cookie
    is not ours); `kind` is the bridge's pipeline ("main" or "tunnel")."""
    tables = table_names(kind)
    actions, goto, meter = decode_instructions(stat.instructions, tables)
    return FlowSpec(tables(stat.table_id), stat.priority, decode_match(stat.match),
                    pipeline.owner_of(stat.cookie), actions, goto,
                    stat.idle_timeout, stat.hard_timeout,
                    bool(stat.flags & ofp.OFPFF_SEND_FLOW_REM), meter)


def decode_flow_delete(mod, kind="main") -> Optional[FlowDelete]:
    """A delete flow-mod as a FlowDelete; None when its cookie is not ours."""
    owner = pipeline.owner_of(mod.cookie & mod.cookie_mask)
    if owner is None:
        return None
    keep = bin(mod.cookie_mask).count("1")   # how much of the owner the mask selects
    owner = Owner(owner.app, owner.purpose if keep > 8 else None,
                  owner.instance if keep > 16 else None)
    strict = mod.command == ofp.OFPFC_DELETE_STRICT
    return FlowDelete(owner, None if mod.table_id == ofp.OFPTT_ALL
                      else pipeline.table_name(mod.table_id, kind),
                      decode_match(mod.match), mod.priority if strict else None)


_GROUP_TYPE_NAMES = {v: k for k, v in _GROUP_TYPES.items()}


def decode_group(desc, kind="main") -> Optional[GroupSpec]:
    """A group-desc entry (or a group-mod) as a GroupSpec; None when the group is not
    ours. A group-mod's command says `modify`; a group-desc entry has none."""
    ref = ofactions.group_ref(desc.group_id)
    if ref is None:
        return None
    tables = table_names(kind)
    return GroupSpec(ref, _GROUP_TYPE_NAMES.get(desc.type, str(desc.type)), tuple(
        # weights count in select groups only (the others are sent 0): the spec's default
        Bucket(decode_actions(b.actions, tables), b.weight if desc.type == ofp.OFPGT_SELECT
               else Bucket.weight) for b in desc.buckets),
        getattr(desc, "command", None) == ofp.OFPGC_MODIFY)


def decode_meter(config) -> Optional[MeterSpec]:
    """A meter-config entry (or a meter-mod) with one drop band as a MeterSpec (rates
    back in bit/s); None when the meter is not ours."""
    ref = ofactions.meter_ref(config.meter_id)
    if ref is None or len(config.bands) != 1:
        return None
    band = config.bands[0]
    return MeterSpec(ref, band.rate * 1000, band.burst_size * 1000,
                     getattr(config, "command", None) == ofp.OFPMC_MODIFY)


def decode_message(msg, kind="main"):
    """What a flow-, group- or meter-mod the compiler emitted says, as the spec or
    delete it was compiled from (None: not ours, or no such message)."""
    if isinstance(msg, parser.OFPFlowMod):
        if msg.command in (ofp.OFPFC_DELETE, ofp.OFPFC_DELETE_STRICT):
            return decode_flow_delete(msg, kind)
        return decode_flow(msg, kind)
    if isinstance(msg, parser.OFPGroupMod):
        if msg.command == ofp.OFPGC_DELETE:
            ref = ofactions.group_ref(msg.group_id)
            return None if ref is None else GroupDelete(ref)
        return decode_group(msg, kind)
    if isinstance(msg, parser.OFPMeterMod):
        if msg.command == ofp.OFPMC_DELETE:
            ref = ofactions.meter_ref(msg.meter_id)
            return None if ref is None else MeterDelete(ref)
        return decode_meter(msg)
    return None
