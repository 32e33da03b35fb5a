"""How each action kind of flows/spec.py prints in `sdn plan` (in the spirit of
ovs-ofctl): the registry's print half (controller/ofactions.py has compile, decode and
pack). Apart from it because the `sdn` CLI must not load Ryu, and ofactions does."""
from typing import Callable, Dict

from controller import pipeline
from flows.spec import Ct, CtClear, Group, Learn, Move, Nat, Output, PopVlan, PushVlan, \
    Resubmit, SetField, SetQueue


def _describe_nat(nat: Nat) -> str:
    if nat.kind is None:
        return "nat"
    wrap = (lambda ip: f"[{ip}]") if nat.ipv6 else str
    ips = wrap(nat.ip_min) + (f"-{wrap(nat.ip_max)}" if nat.ip_max != nat.ip_min else "")
    ports = "" if nat.port_min is None else f":{nat.port_min}" + (
        f"-{nat.port_max}" if nat.port_max != nat.port_min else "")
    return f"nat({nat.kind}={ips}{ports})"


def _describe_load(name, value_mask, bits) -> str:
    value, mask = value_mask
    return f"set_field:{value:#x}" + (f"/{mask:#x}" if mask != (1 << bits) - 1 else "") + \
        f"->{name}"


def _describe_ct(action: Ct) -> str:
    """As ovs-ofctl writes it: ct(commit,zone=5,table=vip,nat(src=...),exec(...))."""
    parts = ["commit"] * bool(action.commit) + [f"zone={action.zone}"] + \
        [f"table={action.table}"] * bool(action.table)
    if action.nat is not None:
        parts.append(_describe_nat(action.nat))
    execs = [f"move:{action.mark_from}->ct_mark"] * bool(action.mark_from)
    if action.mark is not None:
        execs.append(_describe_load("ct_mark", action.mark, 32))
    if action.label is not None:
        execs.append(_describe_load("ct_label", action.label, 128))
    if execs:
        parts.append(f"exec({','.join(execs)})")
    return f"ct({','.join(parts)})"


DESCRIBE: Dict[type, Callable[[object], str]] = {
    Output: lambda a: f"output:{a.port}",
    SetField: lambda a: f"set_field:{a.value}->{a.field}",
    PushVlan: lambda a: "push_vlan",
    PopVlan: lambda a: "pop_vlan",
    Group: lambda a: f"group:{pipeline.group_id(a.ref):#x}",
    SetQueue: lambda a: f"set_queue:{a.queue_id}",
    Resubmit: lambda a: f"resubmit(,{a.table})",
    Move: lambda a: f"move:{a.src}->{a.dst}",
    Ct: _describe_ct,
    CtClear: lambda a: "ct_clear",
    Learn: lambda a: f"learn(table={a.table},{','.join(f'{d}={s}' for d, s in a.matches)})",
}


def describe(action) -> str:
    printer = DESCRIBE.get(type(action))
    if printer is None:
        raise TypeError(f"no action kind for {action!r}")
    return printer(action)
