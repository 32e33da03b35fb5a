"""The switch side of the app base: specs pushed in order, entries read back, and the
reconcile that makes a switch hold what an app wants without a gap.

Apps hand over specs; `push` compiles them and hands them, in order, to the runtime's
one sender (controller/runtime.py `Runtime.send`), with a barrier between deletes and
the adds that follow (OpenFlow lets a switch reorder messages that no barrier
separates) and one at the end. `app` below is the SdnApp (controller/southbound.py)
doing it: its `request`, `confirm`, `push` and `runtime`.
"""
import collections
import dataclasses

from controller import metrics, ofcompile, pipeline, readback, runtime
from controller.switch_errors import SwitchSlow, SwitchTimeout  # noqa: F401 (raised here)
from flows import diff
from flows.dpid import format as format_dpid


BARRIER = object()   # in in_order's output: a barrier goes here


def in_order(items, barrier=True) -> list:
    """`items` with BARRIER where the switch must finish what came before: between
    deletes and the adds after them (OpenFlow lets a switch reorder messages no
    barrier separates), and at the end when `barrier`. controller/oftemplate.py's
    `pack` writes the same sequence as bytes for the packet-in fast path."""
    out, previous_was_delete = [], False
    for item in items:
        is_delete = isinstance(item, ofcompile.DELETES)
        if previous_was_delete and not is_delete:
            out.append(BARRIER)
        out.append(item)
        previous_was_delete = is_delete
    if barrier:
        out.append(BARRIER)
    return out


def push(sender, datapath, items, barrier=True) -> bool:
    """Send specs/deletes in order through `sender` (the Runtime); deletes are finished
    before later adds start. True when sent (False: the runtime may not write there)."""
    sequence = in_order(items, barrier)
    compiled = iter(ofcompile.compile_all(datapath, [i for i in sequence if i is not BARRIER]))
    messages = [ofcompile.barrier(datapath) if item is BARRIER else next(compiled)
                for item in sequence]
    if not sender.send(datapath, messages):
        return False
    count_flow_mods(getattr(item, "owner", None) for item in items)
    return True


def count_flow_mods(owners):
    """Count flow-mods per app for /metrics; `owners` of the items sent (FlowSpec and
    FlowDelete have one, groups and meters None)."""
    counts = collections.Counter(owner.app for owner in owners if owner is not None)
    for app, count in counts.items():
        metrics.FLOW_MODS.labels(app).inc(count)


def request_flows(app, datapath, owner, table=None):
    """Flow-stats entries owned by `owner`, as (FlowSpec, stats entry) pairs."""
    stats = app.request(datapath, ofcompile.flow_stats_request(datapath, owner, table))
    return [(ofcompile.decode_flow(stat), stat) for stat in stats]


def read_entries(app, datapath, owners, skip=(), groups=False, meters=False):
    """What the switch holds of `owners` (flows, and groups/meters when asked), as
    readback.Entry values; flows of `skip` owners (what learn() wrote) are left out."""
    stats = [stat for owner in owners for stat in app.request(
        datapath, ofcompile.flow_stats_request(datapath, owner))]
    stats = [s for s in stats
             if not any(readback.owns(o, pipeline.owner_of(s.cookie)) for o in skip)]
    entries = readback.flow_entries(stats)
    if groups:
        entries += readback.group_entries(
            app.request(datapath, readback.group_desc_request(datapath)), owners)
    if meters:
        entries += readback.meter_entries(
            app.request(datapath, readback.meter_config_request(datapath)), owners)
    return entries


def reconcile(app, datapath, installed, desired):
    """Make the switch's `installed` entries (readback.Entry values) equal the specs
    `desired` without a gap: what is missing or differs first (groups and meters before
    the flows that use them; an existing group or meter is modified in place), confirmed
    by a barrier, then strict removal of the stale entries (flows before the groups and
    meters they use). Entries already right are not touched. Returns (adds, removed)."""
    wanted = readback.desired(datapath, desired)
    adds, stale = diff.reconcile_by(installed, wanted, key=lambda e: e.key,
                                    slot=lambda e: e.slot)
    taken = {entry.slot for entry in installed}
    specs = [dataclasses.replace(e.item, modify=e.slot in taken)
             for e in adds if e.kind != "flow"] + [e.item for e in adds if e.kind == "flow"]
    stale.sort(key=lambda e: e.kind != "flow")
    app.logger.info("%s: reconciled switch %s: %d entries kept, %d added or changed, "
                    "%d stale removed", app.name, format_dpid(datapath.id),
                    len(wanted) - len(adds), len(adds), len(stale))
    sent, slow = True, False
    if specs:
        sent = app.push(datapath, specs, barrier=False)
        slow = sent and _unconfirmed(app, datapath)
    if stale and sent:
        # the barrier confirm sent is in the stream even when its reply is late: the
        # switch finishes the adds before it starts on these deletes
        sent = app.runtime.send(datapath, [readback.removal(datapath, e) for e in stale])
        if sent:
            count_flow_mods(pipeline.owner_of(e.item.cookie) for e in stale
                             if e.kind == "flow")
            slow = _unconfirmed(app, datapath) or slow
    if sent:   # what the switch holds of it now (/metrics: sdn_flows)
        app.entries_reconciled(datapath, wanted)
    if slow:
        raise SwitchSlow(f"switch {format_dpid(datapath.id)} took what it was sent but did "
                         f"not confirm it in time")
    if sent:   # readiness (GET /v1/runtime/switches) says so from now on
        app.runtime.readiness.mark(app.name, datapath, runtime.RECONCILED)
    return adds, stale


def _unconfirmed(app, datapath) -> bool:
    """True when the switch did not answer a barrier in time (False: it did, or the
    runtime may not write to it)."""
    try:
        app.confirm(datapath)
        return False
    except SwitchTimeout:
        return True
