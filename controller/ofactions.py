"""The one registry of action kinds: for each action of flows/spec.py (spec.ACTION_KINDS)
how it compiles to Ryu's OpenFlow 1.3 object, decodes back from one to the spec value,
and (where controller/ofwire.py can) packs straight to bytes. Two halves live apart
because of who imports them: how a kind prints (`sdn plan`, in ovs-ofctl's syntax) is
in controller/ofctl_text.py, which the Ryu-free CLI loads, and how the table simulator runs it is in
tests/support/ofsim.py; tests/unit/test_action_registry.py fails when a kind is missing
from any of them.

Decoders take `tables`, a function from a table number to what the decoded value names
the table by: its name in the bridge's pipeline (ofcompile.decode_flow), or the number
itself where the pipeline is not known (controller/readback.py compares values of
both sides decoded alike).
"""
from dataclasses import dataclass
from typing import Callable, Dict, Optional

from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser

from controller import ofwire, pipeline
from flows.spec import (ALL, CONTROLLER, FLOOD, IN_PORT, NORMAL, TAGGED, UNTAGGED,
                        CT_LABEL_BITS, CT_MARK_BITS, Ct, CtClear, Group, GroupRef, Learn,
                        MeterRef, Move, Nat, Output, Owner, PopVlan, PushVlan, Resubmit,
                        SetField, SetQueue, DecTtl, Conjunction)

RESERVED = {FLOOD: ofp.OFPP_FLOOD, ALL: ofp.OFPP_ALL, IN_PORT: ofp.OFPP_IN_PORT,
            CONTROLLER: ofp.OFPP_CONTROLLER, NORMAL: ofp.OFPP_NORMAL}
RESERVED_BACK = {v: k for k, v in RESERVED.items()}

# learn() copies fields by their NXM names; (nxm field, bits copied).
_LEARN_FIELDS = {
    "eth_src": ("eth_src_nxm", 48),
    "eth_dst": ("eth_dst_nxm", 48),
    "vlan_vid": ("vlan_tci", 12),     # the VID bits of the TCI, as the overlay lab does
    "in_port": ("in_port_nxm", 16),
    "tunnel_id": ("tunnel_id_nxm", 64),
}
_LEARN_BACK = {nxm: name for name, (nxm, _) in _LEARN_FIELDS.items()}
# learn() constant matches: (nxm field, bit offset, bits)
_LEARN_CONSTANTS = {"vlan_pcp": ("vlan_tci", 13, 3)}
_LEARN_CONSTANTS_BACK = {(nxm, ofs): name for name, (nxm, ofs, _) in _LEARN_CONSTANTS.items()}

_MOVE_BITS = {"eth_src": 48, "eth_dst": 48, "arp_sha": 48, "arp_tha": 48, "arp_spa": 32,
              "arp_tpa": 32, "ipv4_src": 32, "ipv4_dst": 32, "ipv6_src": 128, "ipv6_dst": 128}

NO_RECIRC = 0xFF
NX_IN_PORT = 0xFFF8   # Nicira actions use 16-bit ports: "the packet's own in_port"


def vlan_vid(value):
    """A domain VLAN value (VID, UNTAGGED, TAGGED) as the wire's vlan_vid."""
    if value == UNTAGGED:
        return ofp.OFPVID_NONE
    if value == TAGGED:
        return (ofp.OFPVID_PRESENT, ofp.OFPVID_PRESENT)
    return value | ofp.OFPVID_PRESENT


def port(value):
    return RESERVED[value] if isinstance(value, str) else value


def _field(name: str) -> str:
    """OVS reports fields of Nicira actions in NXM form where we send OXM; Ryu names the
    NXM form "eth_src_nxm" for "eth_src"."""
    return name[:-len("_nxm")] if name.endswith("_nxm") else name


def meter_ref(value: int) -> Optional[MeterRef]:
    """The MeterRef of a meter id read back (None: not ours). pipeline.meter_owner leaves
    the number's bits in the owner's instance too; a ref's owner has no instance."""
    ref = pipeline.meter_owner(value)
    return None if ref is None else MeterRef(Owner(ref.owner.app, ref.owner.purpose),
                                             ref.number)


def group_ref(value: int) -> Optional[GroupRef]:
    ref = meter_ref(value)
    return None if ref is None else GroupRef(ref.owner, ref.number)


@dataclass(frozen=True)
class Unknown:
    """An action read back that no kind decodes (not one of ours): equal to no spec."""
    text: str


# --- compile ---------------------------------------------------------------------


def _compile_output(action: Output):
    max_len = action.max_len if action.port == CONTROLLER else 0
    return parser.OFPActionOutput(port(action.port), max_len)


def _compile_set_field(action: SetField):
    value = vlan_vid(action.value) if action.field == "vlan_vid" else action.value
    return parser.OFPActionSetField(**{action.field: value})


NAT_SRC, NAT_DST = 1, 2            # NX_NAT_F_SRC / NX_NAT_F_DST
_NAT_FLAGS = {"src": NAT_SRC, "dst": NAT_DST}
_NAT_KINDS = {v: k for k, v in _NAT_FLAGS.items()}


class _PaddedNAT(parser.NXActionNAT):
    """Ryu 4.34's NXActionNAT says its length rounded up to 8 but writes no padding
    when a range leaves it short (ports with IPv4 addresses do), so the actions after
    it inside a ct would be read from the wrong offset."""

    def serialize_body(self):
        data = super().serialize_body()
        return data + bytes(-(_NX_PAYLOAD_OFFSET + len(data)) % 8)


_NX_PAYLOAD_OFFSET = 10     # experimenter header (8) and the Nicira subtype (2)


def _compile_nat(nat: Nat):
    if nat.kind is None:
        return _PaddedNAT(flags=0)
    v4, v6 = ("", "") if nat.ipv6 else (nat.ip_min, nat.ip_max), \
        (nat.ip_min, nat.ip_max) if nat.ipv6 else ("", "")
    return _PaddedNAT(flags=_NAT_FLAGS[nat.kind], range_ipv4_min=v4[0],
                      range_ipv4_max=v4[1], range_ipv6_min=v6[0], range_ipv6_max=v6[1],
                      range_proto_min=nat.port_min, range_proto_max=nat.port_max)


def _compile_ct_field(name, value_mask, bits):
    value, mask = value_mask
    if mask == (1 << bits) - 1:
        return parser.OFPActionSetField(**{name: value})
    # OpenFlow 1.3's set_field has no mask (OVS refuses one): Nicira's reg_load2 has
    return parser.NXActionRegLoad2(dst=name, value=value, mask=mask)


def _compile_ct(action: Ct):
    inner = [] if action.nat is None else [_compile_nat(action.nat)]
    if action.mark_from is not None:
        inner.append(parser.NXActionRegMove(src_field=action.mark_from, dst_field="ct_mark",
                                            n_bits=32))
    if action.mark is not None:
        inner.append(_compile_ct_field("ct_mark", action.mark, CT_MARK_BITS))
    if action.label is not None:
        inner.append(_compile_ct_field("ct_label", action.label, CT_LABEL_BITS))
    return parser.NXActionCT(
        flags=1 if action.commit else 0, zone_src="", zone_ofs_nbits=action.zone,
        recirc_table=NO_RECIRC if action.table is None else pipeline.table_id(action.table),
        alg=0, actions=inner)


def _compile_learn(action: Learn):
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


# --- decode ----------------------------------------------------------------------


def _decode_output(action, tables):
    return Output(RESERVED_BACK.get(action.port, action.port),
                  action.max_len if action.port == ofp.OFPP_CONTROLLER else 0)


def _decode_set_field(action, tables):
    value = action.value
    if action.key == "vlan_vid":
        value &= ~ofp.OFPVID_PRESENT
    return SetField(action.key, value)


def _decode_nat(action) -> Nat:
    kind = _NAT_KINDS.get(action.flags & (NAT_SRC | NAT_DST))
    low = action.range_ipv4_min or action.range_ipv6_min or None
    high = action.range_ipv4_max or action.range_ipv6_max or None
    return Nat(kind, low, high, action.range_proto_min, action.range_proto_max)


def _loaded(action):
    """(field, (value, mask)) that a set_field / reg_load / reg_load2 writes."""
    if isinstance(action, parser.OFPActionSetField):
        return _field(action.key), action.value
    if isinstance(action, parser.NXActionRegLoad2):
        return _field(action.dst), (action.value, action.mask)
    ofs, bits = action.ofs_nbits >> 6, (action.ofs_nbits & 0x3F) + 1   # NXActionRegLoad
    return _field(action.dst), (action.value << ofs, ((1 << bits) - 1) << ofs)


_LOADS = (parser.OFPActionSetField, parser.NXActionRegLoad, parser.NXActionRegLoad2)


def _decode_ct(action, tables):
    """The Ct of an NXActionCT; Unknown for what a Ct cannot say (a zone from a field,
    nested actions other than nat and writes of ct_mark / ct_label, an ALG)."""
    fields = {"nat": None, "mark_from": None, "mark": None, "label": None}
    for inner in action.actions:
        if isinstance(inner, parser.NXActionNAT) and fields["nat"] is None:
            fields["nat"] = _decode_nat(inner)
        elif isinstance(inner, parser.NXActionRegMove) and _field(inner.dst_field) == "ct_mark":
            fields["mark_from"] = _field(inner.src_field)
        elif isinstance(inner, _LOADS) and _loaded(inner)[0] in ("ct_mark", "ct_label"):
            name, value = _loaded(inner)
            fields[name[3:]] = value
        else:
            return Unknown(repr(action))
    if action.zone_src or action.alg:
        return Unknown(repr(action))
    try:
        return Ct(action.zone_ofs_nbits,
                  None if action.recirc_table == NO_RECIRC else tables(action.recirc_table),
                  bool(action.flags & 1), **fields)
    except ValueError:   # nothing we would send
        return Unknown(repr(action))


def _learn_field(subfield):
    name, ofs = subfield
    return _LEARN_BACK.get(name, _field(name)) if ofs == 0 else None


def _decode_learn(action, tables):
    matches, constants, loads, strip, output = [], [], [], False, None
    for spec in action.specs:
        if isinstance(spec, parser.NXFlowSpecMatch) and isinstance(spec.src, int):
            constants.append((_LEARN_CONSTANTS_BACK.get(tuple(spec.dst)), spec.src))
        elif isinstance(spec, parser.NXFlowSpecMatch):
            matches.append((_learn_field(spec.dst), _learn_field(spec.src)))
        elif isinstance(spec, parser.NXFlowSpecLoad) and isinstance(spec.src, int):
            strip = True
        elif isinstance(spec, parser.NXFlowSpecLoad):
            loads.append((_learn_field(spec.dst), _learn_field(spec.src)))
        else:
            output = _learn_field(spec.src)
    return Learn(tables(action.table_id), pipeline.owner_of(action.cookie), tuple(matches),
                 output, strip, tuple(loads), action.priority, action.idle_timeout,
                 action.hard_timeout, tuple(constants))


@dataclass(frozen=True)
class ActionKind:
    spec: type                                  # the flows.spec class
    ryu: type                                   # the Ryu class it compiles to
    compile: Callable                           # spec value -> Ryu action
    decode: Callable                            # (Ryu action, tables) -> spec value
    pack: Optional[Callable] = None             # spec value -> bytes or None (ofwire)


KINDS: Dict[type, ActionKind] = {k.spec: k for k in (
    ActionKind(Output, parser.OFPActionOutput, _compile_output, _decode_output,
               ofwire.pack_output),
    ActionKind(SetField, parser.OFPActionSetField, _compile_set_field, _decode_set_field,
               ofwire.pack_set_field),
    ActionKind(PushVlan, parser.OFPActionPushVlan, lambda a: parser.OFPActionPushVlan(a.ethertype),
               lambda a, tables: PushVlan(a.ethertype), ofwire.pack_push_vlan),
    ActionKind(PopVlan, parser.OFPActionPopVlan, lambda a: parser.OFPActionPopVlan(),
               lambda a, tables: PopVlan(), ofwire.pack_pop_vlan),
    ActionKind(DecTtl, parser.OFPActionDecNwTtl, lambda a: parser.OFPActionDecNwTtl(),
               lambda a, tables: DecTtl(), ofwire.pack_dec_ttl),
    ActionKind(Group, parser.OFPActionGroup,
               lambda a: parser.OFPActionGroup(pipeline.group_id(a.ref)),
               lambda a, tables: Group(group_ref(a.group_id))),
    ActionKind(SetQueue, parser.OFPActionSetQueue,
               lambda a: parser.OFPActionSetQueue(a.queue_id),
               lambda a, tables: SetQueue(a.queue_id)),
    ActionKind(Resubmit, parser.NXActionResubmitTable,
               lambda a: parser.NXActionResubmitTable(in_port=NX_IN_PORT,
                                                      table_id=pipeline.table_id(a.table)),
               lambda a, tables: Resubmit(tables(a.table_id)) if a.in_port == NX_IN_PORT
               else Unknown(repr(a))),
    ActionKind(Move, parser.NXActionRegMove,
               lambda a: parser.NXActionRegMove(src_field=a.src, dst_field=a.dst,
                                                n_bits=_MOVE_BITS[a.src]),
               lambda a, tables: Move(_field(a.src_field), _field(a.dst_field))),
    ActionKind(Ct, parser.NXActionCT, _compile_ct, _decode_ct),
    ActionKind(CtClear, parser.NXActionCTClear, lambda a: parser.NXActionCTClear(),
               lambda a, tables: CtClear()),
    ActionKind(Learn, parser.NXActionLearn, _compile_learn, _decode_learn),
    # the wire counts clauses from 0; ovs-ofctl and the spec from 1
    ActionKind(Conjunction, parser.NXActionConjunction,
               lambda a: parser.NXActionConjunction(clause=a.clause - 1,
                                                    n_clauses=a.n_clauses, id_=a.conj_id),
               lambda a, tables: Conjunction(a.id, a.clause + 1, a.n_clauses)),
)}
_BY_RYU = {k.ryu: k for k in KINDS.values()}


def _kind(action) -> ActionKind:
    kind = KINDS.get(type(action))
    if kind is None:
        raise TypeError(f"no action kind for {action!r}")
    return kind


def compile_action(action):
    return _kind(action).compile(action)


def decode_action(action, tables: Callable):
    """The spec value of a Ryu action (an `Unknown` for what no kind decodes)."""
    kind = _BY_RYU.get(type(action))
    return Unknown(repr(action)) if kind is None else kind.decode(action, tables)


def pack(action) -> Optional[bytes]:
    """The action's bytes when controller/ofwire.py packs this kind, else None."""
    packer = _kind(action).pack
    return None if packer is None else packer(action)
