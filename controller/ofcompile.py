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

from controller import ofwire, pipeline
from flows.spec import (ALL, CONTROLLER, FLOOD, IN_PORT, NORMAL, TAGGED, UNTAGGED, Bucket, FlowDelete,
                        Ct, FlowSpec, Group, GroupDelete, GroupSpec, Learn, Match, MeterDelete,
                        MeterSpec, Move, Output, Owner, PacketInLimit, PopVlan, PushVlan,
                        Resubmit, SetField, SetQueue, ct_state_bits)

_RESERVED = {FLOOD: ofp.OFPP_FLOOD, ALL: ofp.OFPP_ALL, IN_PORT: ofp.OFPP_IN_PORT,
             CONTROLLER: ofp.OFPP_CONTROLLER, NORMAL: ofp.OFPP_NORMAL}
_RESERVED_BACK = {v: k for k, v in _RESERVED.items()}

# learn() copies fields by their NXM names; (nxm field, bits copied).
_LEARN_FIELDS = {
    "eth_src": ("eth_src_nxm", 48),
    "eth_dst": ("eth_dst_nxm", 48),
    "vlan_vid": ("vlan_tci", 12),     # the VID bits of the TCI, as the overlay lab does
    "in_port": ("in_port_nxm", 16),
    "tunnel_id": ("tunnel_id_nxm", 64),
}


# learn() constant matches: (nxm field, bit offset, bits)
_LEARN_CONSTANTS = {"vlan_pcp": ("vlan_tci", 13, 3)}

_MOVE_BITS = {"eth_src": 48, "eth_dst": 48, "arp_sha": 48, "arp_tha": 48, "arp_spa": 32,
              "arp_tpa": 32, "ipv4_src": 32, "ipv4_dst": 32}


def _vlan_vid(value):
    if value == UNTAGGED:
        return ofp.OFPVID_NONE
    if value == TAGGED:
        return (ofp.OFPVID_PRESENT, ofp.OFPVID_PRESENT)
    return value | ofp.OFPVID_PRESENT


_NO_RECIRC = 0xFF
_NX_IN_PORT = 0xFFF8   # Nicira actions use 16-bit ports: "the packet's own in_port"


def compile_match(match: Match):
    kwargs = {}
    for name, value, mask in match.fields:
        if name == "vlan_vid":
            kwargs[name] = _vlan_vid(value)
        elif name == "ct_state":
            kwargs[name] = ct_state_bits(value)
        else:
            kwargs[name] = value if mask is None else (value, mask)
    return parser.OFPMatch(**kwargs)


def _port(port):
    return _RESERVED[port] if isinstance(port, str) else port


def _learn(action: Learn):
    specs = []
    for dst, src in action.matches:
        (dst_nxm, bits), (src_nxm, _) = _LEARN_FIELDS[dst], _LEARN_FIELDS[src]
        specs.append(parser.NXFlowSpecMatch(src=(src_nxm, 0), dst=(dst_nxm, 0), n_bits=bits))
    for dst, value in action.constants:
        dst_nxm, ofs, bits = _LEARN_CONSTANTS[dst]
        specs.append(parser.NXFlowSpecMatch(src=value, dst=(dst_nxm, ofs), n_bits=bits))
    if action.strip_vlan:  # loading 0 into the TCI removes the tag in OVS
        specs.append(parser.NXFlowSpecLoad(src=0, dst=("vlan_tci", 0), n_bits=16))
    for dst, src in action.loads:
        (dst_nxm, bits), (src_nxm, _) = _LEARN_FIELDS[dst], _LEARN_FIELDS[src]
        specs.append(parser.NXFlowSpecLoad(src=(src_nxm, 0), dst=(dst_nxm, 0), n_bits=bits))
    out_nxm, out_bits = _LEARN_FIELDS[action.output_from]
    specs.append(parser.NXFlowSpecOutput(src=(out_nxm, 0), dst="", n_bits=out_bits))
    return parser.NXActionLearn(table_id=pipeline.table_id(action.table), specs=specs,
                                idle_timeout=action.idle_timeout,
                                hard_timeout=action.hard_timeout,
                                priority=action.priority,
                                cookie=pipeline.cookie(action.owner))


def compile_action(action):
    if isinstance(action, Output):
        max_len = action.max_len if action.port == CONTROLLER else 0
        return parser.OFPActionOutput(_port(action.port), max_len)
    if isinstance(action, SetField):
        value = _vlan_vid(action.value) if action.field == "vlan_vid" else action.value
        return parser.OFPActionSetField(**{action.field: value})
    if isinstance(action, PushVlan):
        return parser.OFPActionPushVlan(action.ethertype)
    if isinstance(action, PopVlan):
        return parser.OFPActionPopVlan()
    if isinstance(action, Group):
        return parser.OFPActionGroup(pipeline.group_id(action.ref))
    if isinstance(action, SetQueue):
        return parser.OFPActionSetQueue(action.queue_id)
    if isinstance(action, Learn):
        return _learn(action)
    if isinstance(action, Ct):
        inner = [] if action.mark_from is None else [parser.NXActionRegMove(
            src_field=action.mark_from, dst_field="ct_mark", n_bits=32)]
        return parser.NXActionCT(
            flags=1 if action.commit else 0, zone_src="", zone_ofs_nbits=action.zone,
            recirc_table=_NO_RECIRC if action.table is None else pipeline.table_id(action.table),
            alg=0, actions=inner)
    if isinstance(action, Resubmit):
        return parser.NXActionResubmitTable(in_port=_NX_IN_PORT,
                                            table_id=pipeline.table_id(action.table))
    if isinstance(action, Move):
        return parser.NXActionRegMove(src_field=action.src, dst_field=action.dst,
                                      n_bits=_MOVE_BITS[action.src])
    raise TypeError(f"cannot compile action {action!r}")


def flow_mod(datapath, spec: FlowSpec):
    """An OFPFC_ADD for `spec` (an add of an identical match+priority replaces it)."""
    pipeline.validate(spec)
    cookie, table = pipeline.cookie(spec.owner), pipeline.table_id(spec.table)
    goto = None if spec.goto is None else pipeline.table_id(spec.goto)
    encoded = ofwire.flow_mod_bytes(spec, cookie, table, goto)
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


# --- decoding what a switch reports ----------------------------------------------

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
        fields[name] = value
    return Match.of(**fields)


def _decode_action(action):
    if isinstance(action, parser.OFPActionOutput):
        return Output(_RESERVED_BACK.get(action.port, action.port),
                      action.max_len if action.port == ofp.OFPP_CONTROLLER else 0)
    if isinstance(action, parser.OFPActionPopVlan):
        return PopVlan()
    if isinstance(action, parser.OFPActionPushVlan):
        return PushVlan(action.ethertype)
    if isinstance(action, parser.OFPActionGroup):
        return Group(pipeline.group_owner(action.group_id))
    if isinstance(action, parser.OFPActionSetQueue):
        return SetQueue(action.queue_id)
    if isinstance(action, parser.OFPActionSetField):
        value = action.value
        if action.key == "vlan_vid":
            value &= ~ofp.OFPVID_PRESENT
        return SetField(action.key, value)
    return action  # kept as Ryu's object (e.g. learn), still comparable by repr


def decode_flow(stat, kind="main") -> FlowSpec:
    """A flow-stats entry as a FlowSpec (owner None when the cookie is not ours);
    `kind` is the bridge's pipeline ("main" or "tunnel")."""
    actions, goto, meter = [], None, None
    for inst in stat.instructions:
        if isinstance(inst, parser.OFPInstructionActions):
            actions.extend(_decode_action(a) for a in inst.actions)
        elif isinstance(inst, parser.OFPInstructionGotoTable):
            goto = pipeline.table_name(inst.table_id, kind)
        elif isinstance(inst, parser.OFPInstructionMeter):
            meter = pipeline.meter_owner(inst.meter_id)
    return FlowSpec(pipeline.table_name(stat.table_id, kind), stat.priority,
                    decode_match(stat.match),
                    pipeline.owner_of(stat.cookie), tuple(actions), goto,
                    stat.idle_timeout, stat.hard_timeout,
                    bool(stat.flags & ofp.OFPFF_SEND_FLOW_REM), meter)


_GROUP_TYPE_NAMES = {v: k for k, v in _GROUP_TYPES.items()}


def decode_group(desc) -> Optional[GroupSpec]:
    """A group-desc entry as a GroupSpec; None when the group is not ours."""
    ref = pipeline.group_owner(desc.group_id)
    if ref is None:
        return None
    return GroupSpec(ref, _GROUP_TYPE_NAMES.get(desc.type, str(desc.type)), tuple(
        Bucket(tuple(_decode_action(a) for a in b.actions), b.weight) for b in desc.buckets))
