"""How each action kind of flows/spec.py prints in `sdn plan` (in the spirit of
ovs-ofctl): the registry's print half (controller/ofactions.py has compile, decode and
pack). Apart from it because the `sdn` CLI must not load Ryu, and ofactions does."""
from typing import Callable, Dict

from controller import pipeline
from flows.spec import Ct, Group, Learn, Move, Output, PopVlan, PushVlan, Resubmit, SetField, \
    SetQueue


def _describe_ct(action: Ct) -> str:
    parts = [f"zone={action.zone}"] + ["commit"] * bool(action.commit) + \
        [f"table={action.table}"] * bool(action.table)
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
    Learn: lambda a: f"learn(table={a.table},{','.join(f'{d}={s}' for d, s in a.matches)})",
}


def describe(action) -> str:
    printer = DESCRIBE.get(type(action))
    if printer is None:
        raise TypeError(f"no action kind for {action!r}")
    return printer(action)
