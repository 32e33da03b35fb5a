"""`sdn trace`: ovs-appctl ofproto/trace on this host (and ovs-vsctl to find a bridge by
its datapath id), each rule named by the app whose cookie it carries. `sdn path`: the
controller's POST /v1/trace, the same question followed across the fabric."""
import re
import subprocess

from controller import pipeline
from flows import dpid
from sdn.args import UsageError

_COOKIE = re.compile(r"cookie (0x[0-9a-f]+)")


def cmd_trace(api, args):
    """ovs-appctl ofproto/trace on this host, each rule it went through named by the app
    (and purpose) whose cookie it carries."""
    bridge = bridge_of(args.switch, "trace")
    result = subprocess.run(["ovs-appctl", "ofproto/trace", bridge, args.flow],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise UsageError(f"trace: {(result.stderr or result.stdout).strip()}")
    lines, decided_by = [], []
    for line in result.stdout.splitlines():
        found = _COOKIE.search(line)
        if found:
            name = pipeline.owner_label(int(found.group(1), 16))
            decided_by.append({"rule": line.strip(), "owner": name})
            line = f"{line}    <- {name}"
        lines.append(line)
    return {"bridge": bridge, "flow": args.flow, "rules": decided_by,
            "output": result.stdout}, "\n".join(lines)


def bridge_of(switch, command):
    """A bridge name as given, or the bridge of this host whose datapath id is `switch`
    (UsageError, naming `command`, when there is none)."""
    number = dpid.of_ref(switch)
    if number is None:
        return switch
    found = subprocess.run(["ovs-vsctl", "--bare", "--columns=name", "find", "Bridge",
                            f"datapath_id={dpid.format(number)}"], capture_output=True,
                           text=True)
    if found.returncode != 0 or not found.stdout.strip():
        raise UsageError(f"{command}: no bridge with datapath id {dpid.format(number)} on this "
                         f"host")
    return found.stdout.split()[0]


def cmd_path(api, args):
    """POST /v1/trace: the packet from SWITCH PORT followed from switch to switch, with
    the entries (and their apps) that decided it at each."""
    body = {"switch": args.switch, "in_port": args.port, "dl_src": args.src, "dl_dst": args.dst}
    for key in ("proto", "nw_src", "nw_dst", "tp_src", "tp_dst", "vlan"):
        value = getattr(args, key)
        if value is not None:
            body["dl_vlan" if key == "vlan" else key] = value
    result = api.call("POST", "/v1/trace", body)
    return result, path_text(result)


def path_text(result) -> str:
    lines = [f"packet: {result['packet']}"]
    for hop in result["hops"]:
        again = " (again)" if hop.get("revisit") else ""
        lines.append(f"{hop['name'] or hop['dpid']} in_port {hop['in_port']}{again}:")
        if hop.get("error"):
            lines.append(f"    {hop['error']}")
            continue
        for rule in hop["rules"]:
            match = "no match" if rule["match"] is None else rule["match"] or "(any)"
            table = f"{rule['table']}({rule['table_name']})" if rule.get("table_name") else \
                rule["table"]
            lines.append(f"    table {table} [{rule['owner']}] {match}: "
                         f"{' '.join(rule['actions'])}")
        for out in hop["outputs"]:
            vlan = "untagged" if out.get("vlan") is None else f"vlan {out['vlan']}"
            where = f"{out['to']['dpid']} port {out['to']['port']}" if out.get("to") else \
                "leaves the fabric"
            lines.append(f"    -> port {out['port']} ({out['name']}) {vlan}: {where}")
        if hop["to_controller"]:
            lines.append("    -> the controller")
        if hop["dropped"]:
            lines.append("    dropped")
    for conn in result.get("conntrack") or ():
        ports = ("" if conn["sport"] is None else f":{conn['sport']}",
                 "" if conn["dport"] is None else f":{conn['dport']}")
        cut = " (cut by a security rule)" if conn["mark"] == 1 and \
            0x4000 <= conn["zone"] <= 0x4FFF else ""
        lines.append(f"conntrack zone {conn['zone']}: {conn['protocol']} {conn['src']}"
                     f"{ports[0]} -> {conn['dst']}{ports[1]} {conn['state'] or ''} "
                     f"mark {conn['mark']}{cut} (the packet is its {conn['direction']} "
                     f"direction)")
    if result.get("conntrack_error"):
        lines.append(f"conntrack not read: {result['conntrack_error']}")
    ends = [f"{d['bridge']} port {d['port']} ({d['name']})" for d in result["delivered"]]
    lines.append("delivered at: " + (", ".join(ends) if ends else "nowhere"))
    if result["truncated"]:
        lines.append("(stopped: too many switches)")
    return "\n".join(lines)
