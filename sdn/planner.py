"""`sdn plan`: a config file through the apps' own flows/ functions (controller/plan.py),
with no controller or switch, printed in ovs-ofctl's syntax: the whole text is a file
`ovs-ofctl add-flows` and `diff-flows` read (groups, meters, OVSDB rows and problems are
comments), and `--only groups` (or meters) prints the file `add-groups` reads. controller.plan and what it imports stay free of Ryu
(import-linter contract sdn-standalone in setup.cfg)."""
import json

from controller import config, plan
from flows import dpid
from flows.spec import FlowSpec, GroupSpec, MeterSpec
from sdn.args import UsageError


def cmd_plan(api, args):
    """No controller needed: the config file through the apps' flows/ functions. With
    --delete-rule/--add-rule, the controller's preview of what the change would cut."""
    if args.delete_rule or args.add_rule:
        return _security_cuts(api, args)
    if args.config is None:
        raise UsageError("plan: a config file, or --delete-rule/--add-rule")
    try:
        data = config.load_file(args.config)
        ports = {}
        for item in filter(None, (args.ports or "").split(",")):
            number, _, name = item.partition("=")
            ports[int(number)] = name or f"{args.switch}-eth{number}"
        switch = plan.planned_switch(args.switch, dpid.parse(args.dpid), ports)
        result = plan.plan(data, switch, args.datapath)
    except (config.ConfigError, ValueError) as err:
        raise UsageError(f"plan: {err}") from None
    kinds = {"flows": FlowSpec, "groups": GroupSpec, "meters": MeterSpec}
    data = {"apps": {app: [plan.describe(i) for i in items]
                     for app, items in result["apps"].items()},
            "ovsdb": result["ovsdb"], "problems": result["problems"],
            "not_planned": result["not_planned"]}
    if args.only:   # one ovs-ofctl file: add-flows/diff-flows, add-groups or add-meters
        lines = [plan.describe(i) for items in result["apps"].values() for i in items
                 if isinstance(i, kinds[args.only])]
        return data, "\n".join(lines)
    # The whole text is an add-flows file: everything but the flows is a comment.
    lines = []
    for app, items in result["apps"].items():
        lines.append(f"# {app}: {len(items)} entries")
        for item in items:
            text = plan.describe(item)
            lines.append(text if isinstance(item, FlowSpec) else f"#  {_KIND[type(item)]} {text}")
        lines.append("")
    if data["ovsdb"]:
        lines += ["# OVSDB"] + [f"#  {line}" for line in data["ovsdb"]] + [""]
    lines += [f"# problem: {p}" for p in data["problems"]]
    lines += [f"# not planned: {app} ({why})" for app, why in data["not_planned"].items()]
    return data, "\n".join(lines).rstrip()


_KIND = {GroupSpec: "group", MeterSpec: "meter"}


def _endpoint(conn) -> str:
    def side(ip, port):
        return f"[{ip}]:{port}" if ":" in ip and port is not None else \
            ip if port is None else f"{ip}:{port}"
    return f"{conn['protocol']} {side(conn['src'], conn['sport'])} -> " \
        f"{side(conn['dst'], conn['dport'])}"


def _security_cuts(api, args):
    """POST /v1/security/plan: the live connections (conntrack) the change would cut."""
    if args.config is not None:
        raise UsageError("plan: a config file or a security change, not both")
    adds = []
    for text in args.add_rule:
        try:
            adds.append(json.loads(text))
        except ValueError as err:
            raise UsageError(f"plan: --add-rule is not JSON ({err}): {text!r}") from None
    reply = api.call("POST", "/v1/security/plan", {"delete_rules": args.delete_rule,
                                                   "add_rules": adds})
    lines = [f"would cut: {_endpoint(c)} (zone {c['zone']}"
             + (f", {c['state']}" if c.get("state") else "") + ")" for c in reply["cut"]]
    lines.append(f"{len(reply['cut'])} of {reply['read']} connections in the security "
                 f"groups' zones would be cut; {reply['kept']} stay, "
                 f"{reply['already_cut']} were cut already")
    return reply, "\n".join(lines)
