"""`sdn plan`: a config file through the apps' own flows/ functions (controller/plan.py),
with no controller or switch, printed in ovs-ofctl's syntax: the whole text is a file
`ovs-ofctl add-flows` and `diff-flows` read (groups, meters, OVSDB rows and problems are
comments), and `--only groups` (or meters) prints the file `add-groups` reads. controller.plan and what it imports stay free of Ryu
(import-linter contract sdn-standalone in setup.cfg)."""
from controller import config, plan
from flows import dpid
from flows.spec import FlowSpec, GroupSpec, MeterSpec
from sdn.args import UsageError


def cmd_plan(api, args):
    """No controller needed: the config file through the apps' flows/ functions."""
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
