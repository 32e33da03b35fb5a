"""`sdn plan CONFIG.yaml`: what the apps would install on one switch for a config
file, without a switch or a controller. Each app's section goes through the same
flows/ functions the app calls when that switch connects (config file only: REST
changes live in the controller's state), so the plan is the app's first push.

Nothing here is per app: the apps are those controller/pipeline.py declares
(APP_LOGIC), each asked through the plan hooks of its flows/ module
(flows/app_plan.py), in the declared order, so that what one app knows of the switch
(the VLAN app's untagged ports) reaches the apps after it. An app that owns a switch
outright (a hypervisor's bridge, a bridge with bonds outside the topology app's
fabric) is planned alone there, as the other apps leave it alone at run time. An app
that says it cannot be planned (topology: its entries depend on the links LLDP finds)
is listed as not planned.
"""
import importlib
import types

from controller import config, desired_state, ofctl_text, pipeline
from controller.datapath import NETDEV
from controller.ports import SwitchPorts
from flows import app_plan
from flows.spec import FlowSpec, GroupSpec, MeterSpec


def planned_switch(name, dpid, ports):
    """A switch as the apps see one once it has connected: name, datapath id, ports."""
    switch = SwitchPorts(types.SimpleNamespace(id=dpid))
    switch.name, switch.ports = name, dict(ports)
    return switch


def declared_apps(among=None):
    """{app: its flows/ module} for every declared app (or those `among` names), in the
    declaration's order. Imported when asked for: `sdn plan` starts faster without the
    modules of apps the config does not name (flows/topology.py brings networkx)."""
    return {app: importlib.import_module(name) for app, name in pipeline.APP_LOGIC.items()
            if among is None or app in among}


def plan(data, switch, datapath=NETDEV):
    """{"apps": {app: [specs]}, "ovsdb": [lines], "problems": [..], "not_planned": {..}}
    for the sections of `data` (a loaded config file; with none of the planned apps'
    sections, the apps planned by default: the learning switch)."""
    modules = declared_apps(data)
    configured = list(modules)
    planned = [app for app in configured if hasattr(modules[app], "plan")]
    if not planned:
        modules = declared_apps()
        planned = [app for app, module in modules.items()
                   if getattr(module, "PLANNED_BY_DEFAULT", False)]
    settings = {app: config.section(modules[app].SETTINGS, app, data) for app in planned}
    out = {"apps": {}, "ovsdb": [], "problems": [],
           "not_planned": {app: modules[app].NOT_PLANNED for app in configured
                           if hasattr(modules[app], "NOT_PLANNED")}}
    facts = {app_plan.TC_CLASSIFIED: datapath == NETDEV}
    for app in configured:
        facts.update(getattr(modules[app], "CONFIGURED_FACTS", {}))
    owner = next((app for app in settings if hasattr(modules[app], "owns")
                  and modules[app].owns(settings[app], switch, facts)), None)
    if owner is not None:   # the other apps leave this switch alone (controller/claims.py)
        # in app-id order (pipeline.APP_IDS), as `sdn plan` has always listed them
        out["not_planned"].update({app: f"leaves this switch to the {owner} app"
                                   for app in sorted(settings, key=pipeline.APP_IDS.get)
                                   if app != owner})
        settings = {owner: settings[owner]}
    for app, section in settings.items():
        result = modules[app].plan(section, switch, facts)
        facts.update(result.facts)
        out["problems"] += [f"{app}: {problem}" for problem in result.problems]
        out["ovsdb"] += result.ovsdb
        if result.items is not None:
            out["apps"][app] = desired_state.framed(app, result.items, result.misses,
                                                    result.canary_last)
    return out


# --- as text: ovs-ofctl's own syntax (controller/ofctl_text.py) ---------------------------

def describe(item) -> str:
    """A flow as an `ovs-ofctl add-flows` line, a group as an `add-groups` line, a meter
    as an `add-meters` line."""
    if isinstance(item, FlowSpec):
        return ofctl_text.flow_line(item)
    if isinstance(item, GroupSpec):
        return ofctl_text.group_line(item)
    if isinstance(item, MeterSpec):
        return ofctl_text.meter_line(item)
    return repr(item)
