"""`sdn plan CONFIG.yaml`: what the apps would install on one switch for a config
file, without a switch or a controller. Each app's section goes through the same
flows/ functions the app calls when that switch connects (config file only: REST
changes live in the controller's state), so the plan is the app's first push.

The overlay is planned per bridge: the datapath id says which hypervisor's br-int or
br-tun it is, the ports given stand for the ofports OVS assigned (patch port, VM
ports, one tunnel port per other hypervisor). A switch one app owns outright (a
hypervisor's bridge, a bridge with bonds) is planned for that app alone, as the other
apps leave it alone at run time; with a `topology` section a bridge with bonds stays
in the fabric (apps/bond.py) and is planned for every app. The topology app is not planned: what it installs
depends on the links LLDP finds between switches.
"""
import types

from controller import config, desired_state, ofprint, pipeline
from controller.datapath import NETDEV
from controller.ports import SwitchPorts
from flows import bond, l2, lb, lb_health, overlay, qos, qos_sync, vlan
from flows.dpid import format as format_dpid
from flows.spec import FlowSpec, GroupSpec, MeterSpec

SECTIONS = {"l2_switch": l2.L2Settings, "vlan": vlan.VlanSettings, "qos": qos.QosSettings,
            "lb": lb.LbSettings, "bond": bond.BondSettings, "overlay": overlay.OverlaySettings}
NOT_PLANNED = {"topology": "depends on the links LLDP finds"}


def planned_switch(name, dpid, ports):
    """A switch as the apps see one once it has connected: name, datapath id, ports."""
    switch = SwitchPorts(types.SimpleNamespace(id=dpid))
    switch.name, switch.ports = name, dict(ports)
    return switch


def plan(data, switch, datapath=NETDEV):
    """{"apps": {app: [specs]}, "ovsdb": [lines], "problems": [..], "not_planned": {..}}
    for the sections of `data` (a loaded config file; the learning app when it has
    none of the planned ones)."""
    apps = [name for name in SECTIONS if name in data] or ["l2_switch"]
    settings = {name: config.section(SECTIONS[name], name, data) for name in apps}
    out = {"apps": {}, "ovsdb": [], "problems": [],
           "not_planned": {k: v for k, v in NOT_PLANNED.items() if k in data}}
    owner = _owner(settings, switch, in_fabric="topology" in data)
    if owner is not None:   # the other apps leave this switch alone (controller/claims.py)
        out["not_planned"].update({name: f"leaves this switch to the {owner} app"
                                   for name in settings if name != owner})
        settings = {owner: settings[owner]}
    untagged = ()
    if "vlan" in settings:
        configured = vlan.configured_ports(
            settings["vlan"].ports, switch.is_named, switch.resolve,
            missing=lambda ref: out["problems"].append(f"vlan: no port {ref!r} on this switch"))
        ports = vlan.effective_ports(configured, switch.ports)
        untagged = vlan.untagged_egress_pairs(ports)
        out["apps"]["vlan"] = pipeline.table_misses() + vlan.switch_plan(
            ports, configured, settings["vlan"].flood_vlans) + [pipeline.canary(vlan.APP)]
    if "l2_switch" in settings:
        out["apps"]["l2_switch"] = desired_state.l2_switch(settings["l2_switch"], untagged)
    if "qos" in settings:
        ports, rules, problems = qos.desired_state(settings["qos"], {}, switch.is_named,
                                                   switch.resolve, switch.ports,
                                                   datapath == NETDEV)
        out["problems"] += [f"qos: {p}" for p in problems]
        out["apps"]["qos"] = desired_state.qos_switch(ports, rules.values(), datapath == NETDEV)
        out["ovsdb"] += [qos_sync.describe(change)
                         for change in qos_sync.fresh_ovsdb(ports, switch.ports)]
    if "lb" in settings:
        problems = []
        vips = lb.vips_from(settings["lb"], {}, problems)
        out["problems"] += [f"lb: {p}" for p in problems]
        # no backends located yet; with the VLAN app, its ARP answers pop the tag
        out["apps"]["lb"] = desired_state.lb_switch(lb_health.desired(
            settings["lb"], vips, {}, switch.datapath.id, untagged))
    if "bond" in settings:
        bonds = bond.bonds_for(settings["bond"], {}, switch.is_named, switch.datapath.id)
        out["apps"]["bond"] = bond.switch_plan(list(bonds.values()), "topology" in data) + \
            [pipeline.canary(bond.APP)]
        for name, want in sorted(bonds.items()):
            ovsdb = bond.ovsdb_settings(want)
            out["ovsdb"].append(f"Port {name} on {switch.name}: interfaces "
                                f"{','.join(want.members)}, bond_mode={ovsdb['mode']}, "
                                f"lacp={ovsdb['lacp']}, other_config={ovsdb['other_config']}")
    if "overlay" in settings:
        _plan_overlay(settings["overlay"].model(), switch, out)
    return out


def _owner(settings, switch, in_fabric=False):
    """The app that owns this switch outright, as it claims it: the overlay its
    hypervisors' bridges, the bond app a bridge with bonds (but in the topology app's
    fabric, where bonded bridges are everybody's)."""
    dpid = switch.datapath.id
    if "overlay" in settings and settings["overlay"].model().role_of(dpid) is not None:
        return "overlay"
    if "bond" in settings and not in_fabric and bond.bonds_for(settings["bond"], {}, switch.is_named,
                                             dpid):
        return "bond"
    return None


def _plan_overlay(model, switch, out):
    dpid = switch.datapath.id
    role = model.role_of(dpid)
    if role is None:
        out["problems"].append(f"overlay: datapath {format_dpid(dpid)} is no hypervisor's "
                               f"int_dpid or tun_dpid")
        return
    hv, kind = role
    vlans = overlay.allocate_vlans({}, model.vnis_on(hv))   # what a fresh controller picks
    items = model.bridge_plan(dpid, vlans, switch.resolve, pipeline.table_misses())
    if items is None:
        patch = overlay.TUN_PATCH_PORT if kind == "tun" else overlay.INT_PATCH_PORT
        out["problems"].append(f"overlay: {hv}'s {kind} bridge needs its patch port "
                               f"{patch!r} among the ports")
        return
    out["apps"]["overlay"] = items + [pipeline.canary(overlay.APP)]
    if kind == "int":
        missing = [p.port for p in model.ports if p.hypervisor == hv
                   and switch.resolve(p.port) is None]
        out["problems"] += [f"overlay: VM port {name!r} of {hv} is not among the ports (left "
                            f"out until it is on the bridge)" for name in missing]
        return
    for name, (tunnel_type, remote) in sorted(model.tunnel_ports(hv).items()):
        out["ovsdb"].append(f"Port {name} on {switch.name}: type={tunnel_type} "
                            f"options:remote_ip={remote},key=flow")
        if switch.resolve(name) is None:
            out["problems"].append(f"overlay: tunnel port {name!r} is not among the ports "
                                   f"(its entries are left out until OVS numbers it)")


# --- as text, in the spirit of ovs-ofctl dump-flows ---------------------------------------

def describe(item) -> str:
    if isinstance(item, FlowSpec):
        owner = "/".join(p for p in (item.owner.app, item.owner.purpose) if p)
        match = ",".join(f"{n}={v}" if m is None else f"{n}={v}/{m}"
                         for n, v, m in item.match.fields)
        actions = ",".join(_action(a) for a in item.actions)
        text = (f"table={item.table}({pipeline.table_id(item.table)}) priority={item.priority}"
                f"{' ' + match if match else ''} actions={actions or 'drop' * (not item.goto)}")
        if item.meter is not None:
            text += f" meter:{pipeline.meter_id(item.meter):#x}"
        if item.goto:
            text += f"{',' if actions else ''}goto:{item.goto}"
        for name in ("idle_timeout", "hard_timeout"):
            if getattr(item, name):
                text += f" {name}={getattr(item, name)}"
        return f"{text}  [{owner}]"
    if isinstance(item, GroupSpec):
        buckets = " ".join(f"bucket(weight={b.weight}:{','.join(map(_action, b.actions))})"
                           for b in item.buckets) or "no buckets (no backend located yet)"
        return f"group={pipeline.group_id(item.ref):#x} type={item.type} {buckets}"
    if isinstance(item, MeterSpec):
        return (f"meter={pipeline.meter_id(item.ref):#x} drop above {item.rate} bit/s "
                f"(burst {item.burst} bits)")
    return repr(item)


def _action(action) -> str:
    return ofprint.describe(action)   # each kind prints as its registry entry says
