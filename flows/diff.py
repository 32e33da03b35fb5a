"""Turn one installed plan into another without touching what stays."""
from typing import Callable, List, Sequence

from flows.spec import FlowDelete, FlowSpec, GroupSpec


def plan_changes(old: Sequence, new: Sequence) -> List:
    """What to send to turn plan `old` (as last installed) into `new`: strict deletes
    for entries whose slot (table, match, priority) is gone, then the entries that are
    new or differ (an add into an occupied slot replaces it in place), and a group only
    when its buckets changed. Entries that stay are never deleted and re-added, so
    traffic they carry sees no gap."""
    slots = {(i.table, i.match, i.priority) for i in new if isinstance(i, FlowSpec)}
    stale = [FlowDelete(i.owner, i.table, i.match, i.priority) for i in old
             if isinstance(i, FlowSpec) and (i.table, i.match, i.priority) not in slots]
    old_buckets = [i.buckets for i in old if isinstance(i, GroupSpec)]
    changed = [i for i in new if (i.buckets not in old_buckets if isinstance(i, GroupSpec)
                                  else i not in old)]
    return stale + changed


def reconcile(installed: Sequence[FlowSpec], desired: Sequence[FlowSpec]):
    """(adds, deletes) that make a switch's entries (as read back) equal `desired`.

    Entries already there exactly as wanted are left alone; everything else desired is
    added (an add into an occupied slot replaces that entry in place); entries in slots
    that nothing desired occupies are the stale ones, deleted strictly. The caller sends
    the adds, waits for a barrier, then the deletes: a partial push never removes what
    live traffic is using, and nothing is ever deleted wholesale."""
    adds, stale = reconcile_by(installed, desired, key=lambda spec: spec,
                               slot=lambda spec: (spec.table, spec.match, spec.priority))
    return adds, [FlowDelete(spec.owner, spec.table, spec.match, spec.priority)
                  for spec in stale]


def reconcile_by(installed: Sequence, desired: Sequence, key: Callable, slot: Callable):
    """`reconcile` for any entries: `key(x)` is all that must be equal, `slot(x)` where
    x lives (one entry per slot). Returns (desired entries to send, installed entries to
    remove); a desired entry whose slot is taken replaces what is there."""
    present = {key(entry) for entry in installed}
    wanted = {slot(entry) for entry in desired}
    return ([entry for entry in desired if key(entry) not in present],
            [entry for entry in installed if slot(entry) not in wanted])
