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
from ryu.ofproto import ofproto_v1_3_parser as parser

from controller import ofcompile, ofctl_text, pipeline

NOT_OURS = "not ours"


def all_flows_request(datapath):
    """Flow stats of every entry in every table, whatever its cookie."""
    return parser.OFPFlowStatsRequest(datapath, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY,
                                      ofp.OFPG_ANY, 0, 0, parser.OFPMatch())


def all_ports_request(datapath):
    return parser.OFPPortStatsRequest(datapath, 0, ofp.OFPP_ANY)


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


def owner_label(cookie: int) -> str:
    owner = pipeline.owner_of(cookie)
    if owner is None:
        return NOT_OURS
    return "/".join(str(p) for p in (owner.app, owner.purpose) if p)


def describe(stats):
    """The entries of flow-stats replies' bodies, in table and priority order."""
    kind = pipeline.kind_of_tables(s.table_id for s in stats)
    tables = _names(kind)
    entries = []
    for stat in sorted(stats, key=lambda s: (s.table_id, -s.priority)):
        match = ofcompile.decode_match(stat.match)
        actions, goto, meter = ofcompile.decode_instructions(stat.instructions, tables)
        entries.append({
            "table": stat.table_id, "table_name": str(tables(stat.table_id)),
            "owner": owner_label(stat.cookie), "cookie": f"{stat.cookie:#x}",
            "priority": stat.priority, "match": ",".join(ofctl_text.match_text(match)),
            "actions": ofctl_text.instructions_text(actions, goto, meter),
            "idle_timeout": stat.idle_timeout, "hard_timeout": stat.hard_timeout,
            "n_packets": stat.packet_count, "n_bytes": stat.byte_count,
            "duration_s": round(stat.duration_sec + stat.duration_nsec / 1e9, 3)})
    return {"pipeline": kind, "flows": entries}
