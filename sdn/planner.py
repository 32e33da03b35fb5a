"""`sdn plan`: a config file through the apps' own flows/ functions (controller/plan.py),
with no controller or switch. controller.plan and what it imports stay free of Ryu
(import-linter contract sdn-standalone in setup.cfg)."""
from controller import config, plan
from flows import dpid
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
    data = {"apps": {app: [plan.describe(i) for i in items]
                     for app, items in result["apps"].items()},
            "ovsdb": result["ovsdb"], "problems": result["problems"],
            "not_planned": result["not_planned"]}
    lines = []
    for app, items in data["apps"].items():
        lines += [f"# {app}: {len(items)} entries"] + items + [""]
    if data["ovsdb"]:
        lines += ["# OVSDB"] + data["ovsdb"] + [""]
    lines += [f"problem: {p}" for p in data["problems"]]
    lines += [f"not planned: {app} ({why})" for app, why in data["not_planned"].items()]
    return data, "\n".join(lines).rstrip()
