"""Turn one installed plan into another without touching what stays."""
from typing import List, Sequence

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
