"""What the web console reads of a switch beyond the apps' own state.

- Its whole pipeline (`GET /v1/runtime/switches/{dpid}/flows`): every entry the switch
  holds (ours and anyone's), read back with one flow-stats request, each with its
  table's name, the app and purpose its cookie names, its match and actions in
  ovs-ofctl's syntax, and its counters.
- Its port counters (`GET /v1/runtime/switches/{dpid}/ports`), one port-stats request:
  the console draws link load from their change between two looks.

A request goes out through an app that serves the switch (the runtime has no
connection of its own): the first app whose events for it are not left alone
(controller/claims.py), because only such an app sees the reply.
"""
from ryu.ofproto import ofproto_v1_3 as ofp

from controller import ofcompile, ofctl_text, pipeline
from controller.pipeline_types import PipelineError

# What rendering an entry no app of ours wrote may raise: a field or bit range with no
# printer here (a move of vlan_tci, a learn() of bits 13..15). Such an entry is shown
# as Ryu describes it rather than failing the whole listing.
_UNPRINTABLE = (ValueError, KeyError, TypeError, AttributeError, PipelineError)


def describe_ports(stats):
    """Port-stats bodies as counters per port (the LOCAL port left out)."""
    return {"ports": [
        {"port": s.port_no, "rx_packets": s.rx_packets, "tx_packets": s.tx_packets,
         "rx_bytes": s.rx_bytes, "tx_bytes": s.tx_bytes, "rx_dropped": s.rx_dropped,
         "tx_dropped": s.tx_dropped, "rx_errors": s.rx_errors, "tx_errors": s.tx_errors,
         "duration_s": round(s.duration_sec + s.duration_nsec / 1e9, 3)}
        for s in sorted(stats, key=lambda s: s.port_no) if s.port_no <= ofp.OFPP_MAX]}


def _names(kind):
    """Table number -> its name in pipeline `kind`, or the number where it has none."""
    known = {t.table_id: t.name for t in pipeline.PIPELINES[kind]}
    return lambda number: known.get(number, number)


def _match_text(ofmatch) -> str:
    """The match in ovs-ofctl's words; a VLAN match on some of the VID bits (what
    learn() writes: VID, or 0 for untagged, under mask 0x0fff) as its wire value and
    mask, which the decoded spec value cannot tell apart."""
    raw = dict(ofmatch.items()).get("vlan_vid")
    parts = ofctl_text.match_text(ofcompile.decode_match(ofmatch))
    if isinstance(raw, tuple) and raw[1] != ofp.OFPVID_PRESENT:
        parts = [p for p in parts if not p.startswith("vlan_vid=")] + \
            [f"vlan_vid={raw[0]:#06x}/{raw[1]:#06x}"]
    return ",".join(parts)


def _entry_text(stat, tables):
    """(match, actions) of a flow-stats entry as text."""
    try:
        actions, goto, meter = ofcompile.decode_instructions(stat.instructions, tables)
        return _match_text(stat.match), ofctl_text.instructions_text(actions, goto, meter)
    except _UNPRINTABLE:
        return str(stat.match), ",".join(map(str, stat.instructions))


def describe(stats):
    """The entries of flow-stats replies' bodies, in table and priority order."""
    kind = pipeline.kind_of_tables(s.table_id for s in stats)
    tables = _names(kind)
    entries = []
    for stat in sorted(stats, key=lambda s: (s.table_id, -s.priority)):
        match, actions = _entry_text(stat, tables)
        entries.append({
            "table": stat.table_id, "table_name": str(tables(stat.table_id)),
            "owner": pipeline.owner_label(stat.cookie), "cookie": f"{stat.cookie:#x}",
            "priority": stat.priority, "match": match, "actions": actions,
            "idle_timeout": stat.idle_timeout, "hard_timeout": stat.hard_timeout,
            "n_packets": stat.packet_count, "n_bytes": stat.byte_count,
            "duration_s": round(stat.duration_sec + stat.duration_nsec / 1e9, 3)})
    return {"pipeline": kind, "flows": entries}
