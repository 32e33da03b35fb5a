"""`sdn trace`: ovs-appctl ofproto/trace on this host (and ovs-vsctl to find a bridge by
its datapath id), each rule named by the app whose cookie it carries."""
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
        owner = pipeline.owner_of(int(found.group(1), 16)) if found else None
        if found:
            name = "not ours" if owner is None else \
                "/".join(str(p) for p in (owner.app, owner.purpose) if p)
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
