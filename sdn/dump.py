"""`sdn dump-flows SWITCH`: `ovs-ofctl dump-flows` on this host, each entry labelled with
the app and purpose its cookie names and its table's name from the pipeline
declaration. Lines are read with the `ovs.flow` parser OVS's own Python package ships,
not with regular expressions."""
import re
import subprocess

from ovs.flow.ofp import OFPFlow

from controller import pipeline
from sdn.args import UsageError
from sdn.trace import bridge_of

def _table_name(number: int, kind: str) -> str:
    try:
        return pipeline.table_name(number, kind)
    except pipeline.PipelineError:
        return "?"


def _readable(line: str) -> str:
    """A dump line as the ovs.flow parser (ovs 4.0.0) takes it: without `importance=N`,
    which it does not know, and with the default priority where OVS prints no match
    section ("n_bytes=0, actions=NORMAL")."""
    return re.sub(r"\bimportance=\d+, ", "", line).replace(", actions=",
                                                          ", priority=32768 actions=", 1)


def labelled(dump: str):
    """The entries of an `ovs-ofctl dump-flows` output as dicts, in its order."""
    flows = [OFPFlow(_readable(line)) for line in dump.splitlines()
             if line.strip() and not line.lstrip().startswith(("OFPST_", "NXST_"))]
    kind = pipeline.kind_of_tables(f.info.get("table", 0) for f in flows)
    entries = []
    for flow in flows:
        table, cookie = flow.info.get("table", 0), flow.info.get("cookie", 0)
        sections = {s.name: s.string for s in flow.sections}
        entries.append({
            "table": table, "table_name": _table_name(table, kind),
            "owner": pipeline.owner_label(cookie),
            "cookie": f"{cookie:#x}", "priority": flow.match.get("priority", 32768),
            "match": ",".join(p for p in sections.get("match", "").split(",")
                              if not p.startswith("priority=")),
            "actions": sections.get("actions", ""),
            "n_packets": flow.info.get("n_packets", 0), "n_bytes": flow.info.get("n_bytes", 0)})
    return entries


def cmd_dump_flows(api, args):
    bridge = bridge_of(args.switch, "dump-flows")
    result = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", bridge],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise UsageError(f"dump-flows: {(result.stderr or result.stdout).strip()}")
    entries = labelled(result.stdout)
    if args.app:
        entries = [e for e in entries if e["owner"].split("/")[0] == args.app]
    width = max((len(e["owner"]) for e in entries), default=0)
    lines = [f"{e['owner']:<{width}}  table={e['table']}({e['table_name']}) "
             f"priority={e['priority']}{',' + e['match'] if e['match'] else ''} "
             f"actions={e['actions']}  n_packets={e['n_packets']}" for e in entries]
    return {"bridge": bridge, "flows": entries}, "\n".join(lines)
