"""Specs in ovs-ofctl's own syntax: a flow as `ovs-ofctl add-flows` reads it, a group as
`add-groups` reads it, a meter as `add-meters` reads it.

`sdn plan` prints these, so a plan file goes straight into the field's tools:
`ovs-ofctl -O OpenFlow13 diff-flows s1 plan.txt` compares a plan with a switch, and
`ovs-ofctl add-flows` installs one by hand. The text says what controller/ofcompile.py
sends on the wire, field for field (the VLAN present bit, register widths, the Nicira
forms of move and learn), so a difference diff-flows reports is a real one.

Ryu-free: the `sdn` CLI loads this (import-linter contract sdn-standalone).
"""
from typing import Callable, Dict, Iterable, List

from controller import pipeline
from flows.spec import (ALL, CONTROLLER, CT_LABEL_BITS, CT_MARK_BITS, FLOOD, IN_PORT, NORMAL,
                        TAGGED, UNTAGGED, Ct, CtClear, FlowSpec, Group, GroupSpec, Learn,
                        Match, MeterSpec, Move, Nat, Output, PopVlan, PushVlan, Resubmit,
                        SetField, SetQueue, DecTtl, Conjunction)

VID_PRESENT = 0x1000

# Where ovs-ofctl's keyword differs from the OXM name the specs use.
_FIELD_NAMES = {"ipv4_src": "nw_src", "ipv4_dst": "nw_dst", "icmpv4_type": "icmp_type",
                "icmpv4_code": "icmp_code", "ipv6_nd_target": "nd_target"}
# ovs-ofctl's names of the reserved ports.
_PORTS = {FLOOD: "FLOOD", ALL: "ALL", IN_PORT: "IN_PORT", CONTROLLER: "CONTROLLER",
          NORMAL: "NORMAL"}
# learn() and move in their Nicira forms, with the bits controller/ofactions.py copies.
_NXM = {"eth_src": "NXM_OF_ETH_SRC[]", "eth_dst": "NXM_OF_ETH_DST[]",
        "vlan_vid": "NXM_OF_VLAN_TCI[0..11]", "in_port": "NXM_OF_IN_PORT[]",
        "tunnel_id": "NXM_NX_TUN_ID[]", "arp_sha": "NXM_NX_ARP_SHA[]",
        "arp_tha": "NXM_NX_ARP_THA[]", "arp_spa": "NXM_OF_ARP_SPA[]",
        "arp_tpa": "NXM_OF_ARP_TPA[]", "ipv4_src": "NXM_OF_IP_SRC[]",
        "ipv4_dst": "NXM_OF_IP_DST[]", "ct_mark": "NXM_NX_CT_MARK[]",
        "ipv6_src": "NXM_NX_IPV6_SRC[]", "ipv6_dst": "NXM_NX_IPV6_DST[]"}
_LEARN_CONSTANT_BITS = {"vlan_pcp": "NXM_OF_VLAN_TCI[13..15]"}


def _table(table) -> int:
    """A table by its pipeline name, or a number read back from a table no pipeline
    names (an entry another tool added)."""
    return table if isinstance(table, int) else pipeline.table_id(table)


def _nxm(field: str) -> str:
    if field in _NXM:
        return _NXM[field]
    if field.startswith("reg") and field[3:].isdigit():
        return f"NXM_NX_REG{field[3:]}[]"
    raise ValueError(f"no Nicira form known for field {field!r}")


_HEX_FIELDS = frozenset({"eth_type", "tunnel_id"})   # as ovs-ofctl prints them


def _number(value, field="") -> str:
    return f"{value:#x}" if isinstance(value, int) and field in _HEX_FIELDS else str(value)


def _vlan_vid(value, mask=None) -> str:
    if value == UNTAGGED:
        return "0"
    if value == TAGGED:
        return f"{VID_PRESENT:#x}/{VID_PRESENT:#x}"
    if mask is not None:
        return f"{value | VID_PRESENT:#x}/{mask | VID_PRESENT:#x}"
    return f"{value | VID_PRESENT:#x}"


def match_text(match: Match) -> List[str]:
    """The match as ovs-ofctl keywords, in the spec's (sorted) field order."""
    parts = []
    for name, value, mask in match.fields:
        if name == "vlan_vid":
            text = _vlan_vid(value, mask)
        elif name == "ct_state":
            text = str(value)
        elif name == "in_port" and value in _PORTS:
            text = _PORTS[value]
        else:
            text = _number(value, name) if mask is None else f"{value:#x}/{mask:#x}" \
                if isinstance(value, int) else f"{value}/{mask}"
        parts.append(f"{_FIELD_NAMES.get(name, name)}={text}")
    return parts


def _output(action: Output) -> str:
    if action.port == CONTROLLER:   # bare CONTROLLER would mean max_len 65535 to OVS
        return f"controller(max_len={action.max_len})"
    return _PORTS.get(action.port) or f"output:{action.port}"


def _set_field(action: SetField) -> str:
    value = action.value
    if action.field == "vlan_vid":
        value = _vlan_vid(value)
    return f"set_field:{_number(value)}->{_FIELD_NAMES.get(action.field, action.field)}"


def _nat(nat: Nat) -> str:
    if nat.kind is None:
        return "nat"
    wrap = (lambda ip: f"[{ip}]") if nat.ipv6 else str
    text = wrap(nat.ip_min) + (f"-{wrap(nat.ip_max)}" if nat.ip_max != nat.ip_min else "")
    if nat.port_min is not None:
        text += f":{nat.port_min}" + (f"-{nat.port_max}" if nat.port_max != nat.port_min else "")
    return f"nat({nat.kind}={text})"


def _ct_load(field: str, value_mask, bits: int) -> str:
    value, mask = value_mask
    whole = mask == (1 << bits) - 1
    return f"set_field:{value:#x}" + ("" if whole else f"/{mask:#x}") + f"->{field}"


def _ct(action: Ct) -> str:
    """As ofactions._compile_ct nests it: nat first, then what exec() writes."""
    parts = ["commit"] * bool(action.commit) + [f"zone={action.zone}"]
    if action.table is not None:
        parts.append(f"table={_table(action.table)}")
    if action.nat is not None:
        parts.append(_nat(action.nat))
    execs = [] if action.mark_from is None else [
        f"move:{_nxm(action.mark_from)}->{_nxm('ct_mark')}"]
    if action.mark is not None:
        execs.append(_ct_load("ct_mark", action.mark, CT_MARK_BITS))
    if action.label is not None:
        execs.append(_ct_load("ct_label", action.label, CT_LABEL_BITS))
    if execs:
        parts.append(f"exec({','.join(execs)})")
    return f"ct({','.join(parts)})"


def _learn(action: Learn) -> str:
    parts = [f"table={_table(action.table)}"]
    parts += [f"{name}={getattr(action, name)}" for name in ("idle_timeout", "hard_timeout")
              if getattr(action, name)]
    cookie = 0 if action.owner is None else pipeline.cookie(action.owner)
    parts += [f"priority={action.priority}", f"cookie={cookie:#x}"]
    for dst, src in action.matches:
        parts.append(_nxm(dst) if dst == src else f"{_nxm(dst)}={_nxm(src)}")
    for dst, value in action.constants:
        parts.append(f"{_LEARN_CONSTANT_BITS[dst]}={value}")
    if action.strip_vlan:
        parts.append("load:0->NXM_OF_VLAN_TCI[]")
    parts += [f"load:{_nxm(src)}->{_nxm(dst)}" for dst, src in action.loads]
    parts.append(f"output:{_nxm(action.output_from)}")
    return f"learn({','.join(parts)})"


ACTIONS: Dict[type, Callable[[object], str]] = {
    Output: _output,
    SetField: _set_field,
    PushVlan: lambda a: f"push_vlan:{a.ethertype:#06x}",
    PopVlan: lambda a: "pop_vlan",
    DecTtl: lambda a: "dec_ttl",
    # a group read back whose id is not ours has no ref (ofactions.group_ref)
    Group: lambda a: "group:(not ours)" if a.ref is None else f"group:{pipeline.group_id(a.ref)}",
    SetQueue: lambda a: f"set_queue:{a.queue_id}",
    Resubmit: lambda a: f"resubmit(,{_table(a.table)})",
    Move: lambda a: f"move:{_nxm(a.src)}->{_nxm(a.dst)}",
    Ct: _ct,
    CtClear: lambda a: "ct_clear",
    Learn: _learn,
    Conjunction: lambda a: f"conjunction({a.conj_id},{a.clause}/{a.n_clauses})",
}


def action_text(action) -> str:
    printer = ACTIONS.get(type(action))
    if printer is None:
        raise TypeError(f"no ovs-ofctl form for {action!r}")
    return printer(action)


def instructions_text(actions, goto=None, meter=None) -> str:
    """What follows `actions=` for a flow: the meter, the actions, goto_table. An action
    read back that no kind decodes (`text` set, controller/ofactions.Unknown) shows as
    Ryu described it."""
    steps = [] if meter is None else [f"meter:{pipeline.meter_id(meter)}"]
    steps += [action.text if type(action) not in ACTIONS and hasattr(action, "text")
              else action_text(action) for action in actions]
    if goto is not None:
        steps.append(f"goto_table:{_table(goto)}")
    return ",".join(steps) or "drop"


def _actions(items: Iterable) -> List[str]:
    return [action_text(a) for a in items]


def flow_line(spec: FlowSpec) -> str:
    """`spec` as one line of an `ovs-ofctl add-flows` file (OpenFlow 1.3 instructions:
    the meter first, then the actions, then goto_table)."""
    head = [f"table={pipeline.table_id(spec.table)}", f"cookie={pipeline.cookie(spec.owner):#x}",
            f"priority={spec.priority}"]
    head += [f"{name}={getattr(spec, name)}" for name in ("idle_timeout", "hard_timeout")
             if getattr(spec, name)]
    head += ["send_flow_rem"] * bool(spec.notify_removed)
    return ",".join(head + match_text(spec.match)) + \
        f",actions={instructions_text(spec.actions, spec.goto, spec.meter)}"


def group_line(group: GroupSpec) -> str:
    """`group` as one line of an `ovs-ofctl add-groups` file."""
    parts = [f"group_id={pipeline.group_id(group.ref)}", f"type={group.type}"]
    for bucket in group.buckets:
        weight = [f"weight:{bucket.weight}"] if group.type == "select" else []
        parts.append("bucket=" + ",".join(weight + [f"actions={','.join(_actions(bucket.actions))}"
                                                    if bucket.actions else "actions=drop"]))
    return ",".join(parts)


def meter_line(meter: MeterSpec) -> str:
    """`meter` as one line of an `ovs-ofctl add-meters` file: kbit/s rounded up, as
    ofcompile.meter_mod sends it."""
    return (f"meter={pipeline.meter_id(meter.ref)},kbps,burst,stats,band=type=drop,"
            f"rate={-(-meter.rate // 1000)},burst_size={-(-meter.burst // 1000)}")
