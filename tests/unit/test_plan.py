"""`sdn plan` (controller/plan.py) against the apps themselves: for a config, the plan
is exactly what each app installs on a switch with those ports (compared in wire form
with what the app sent to a fake switch), and the CLI prints it without a controller."""
import ast
import dataclasses
import io
import json
import sys
import types
from pathlib import Path

import pytest

from controller import config, events, pipeline, plan, readback
from flows import app_plan, vlan
from flows.spec import FlowSpec, Match
from sdn import main as cli
from flows.spec import Owner
from tests.support import bond_app as bond_tests
from tests.support import lb_app as lb_tests
from tests.support import overlay_app as overlay_tests
from tests.support import qos_app as qos_tests
from tests.support import vlan_app as vlan_tests


def keys(datapath, items):
    return sorted(repr(e.key) for e in readback.desired(datapath, items))


def test_the_vlan_plan_is_the_vlan_apps_plan(monkeypatch, tmp_path):
    app = vlan_tests.make_vlan_app(monkeypatch, tmp_path, vlan_tests.SECTION)
    vlan_tests.bring_up(app)
    switch = plan.planned_switch("br0", 1, vlan_tests.PORTS)
    result = plan.plan({"vlan": vlan_tests.SECTION}, switch)
    misses = pipeline.table_misses()   # first: run alone, the app passes frames on itself
    assert result["apps"]["vlan"][:len(misses)] == misses
    assert result["apps"]["vlan"][len(misses):-1] == app.plans[1]   # the last: the canary


BOND_SECTION = {"bonds": [dict(bond_tests.BODY, switch="s1", name="s1-bond")]}


@pytest.mark.parametrize("name, section, make_app, connect, ports", [
    ("qos", qos_tests.QOS_LAB_CONFIG["qos"], qos_tests.make_app, qos_tests.bring_up,
     qos_tests.NAMES),
    ("lb", lb_tests.SECTION, lb_tests.make_app, lb_tests.connect, {}),
    ("bond", BOND_SECTION, bond_tests.make_app, bond_tests.bring_up, bond_tests.NAMES),
])
def test_qos_lb_and_bond_plans_are_what_the_apps_install(monkeypatch, tmp_path, name, section,
                                                         make_app, connect, ports):
    switch = connect(make_app(monkeypatch, tmp_path, section))
    result = plan.plan({name: section}, plan.planned_switch("s1", 1, ports))
    owners = [Owner(name), Owner("pipeline")]
    entries = readback.flow_entries(list(switch.flows.values()))
    entries += readback.group_entries(list(switch.groups.values()), owners)
    entries += readback.meter_entries(list(switch.meters.values()), owners)
    assert keys(switch, result["apps"][name]) == sorted(repr(e.key) for e in entries)


def test_with_the_vlan_app_the_lb_plan_is_what_the_lb_app_installs(monkeypatch, tmp_path):
    """The LB's ARP answers pop the VLAN app's tag where a port leaves it untagged: the
    plan computes those pairs from the vlan section as the VLAN app tells the LB."""
    ports = {1: "c1", 11: "b1", 12: "b2"}
    section = {"ports": [{"switch": "s1", "port": "c1", "tag": 10}]}
    switch = plan.planned_switch("s1", 1, ports)
    configured = vlan.configured_ports(vlan.VlanSettings(**section).ports, switch.is_named,
                                       switch.resolve)
    untagged = vlan.untagged_egress_pairs(vlan.effective_ports(configured, ports))
    assert untagged == {(1, 10), (11, 0), (12, 0)}
    app = lb_tests.make_app(monkeypatch, tmp_path)
    app._port_vlans(events.EventPortVlans(1, untagged))
    datapath = lb_tests.connect(app)
    result = plan.plan({"vlan": section, "lb": lb_tests.SECTION}, switch)
    entries = readback.flow_entries(list(datapath.flows.values()))
    entries += readback.group_entries(list(datapath.groups.values()),
                                      [Owner("lb"), Owner("pipeline")])
    assert keys(datapath, result["apps"]["lb"]) == sorted(repr(e.key) for e in entries)
    alone = plan.plan({"lb": lb_tests.SECTION}, switch)["apps"]["lb"]
    assert len(result["apps"]["lb"]) > len(alone)      # the popping ARP answers


def test_the_overlay_plan_of_each_bridge_is_what_the_overlay_app_installs(monkeypatch,
                                                                           tmp_path):
    app = overlay_tests.make_app(monkeypatch, tmp_path, overlay_tests.SECTION)
    bridges = overlay_tests.bring_up(app, 1)             # hv1's br-int and br-tun
    for switch in bridges:
        result = plan.plan({"overlay": overlay_tests.SECTION},
                           plan.planned_switch("br", switch.id, app.switches[switch.id].ports))
        assert result["problems"] == []
        entries = readback.flow_entries(list(switch.flows.values()))
        assert keys(switch, result["apps"]["overlay"]) == sorted(repr(e.key) for e in entries)
    assert result["ovsdb"] == ["Port vx-hv2 on br: type=vxlan "
                               "options:remote_ip=192.168.50.2,key=flow"]


def test_an_overlay_plan_says_what_it_is_missing():
    section = overlay_tests.SECTION
    result = plan.plan({"overlay": section}, plan.planned_switch("br", 0x2001, {1: "patch-int"}))
    assert result["problems"] == ["overlay: tunnel port 'vx-hv2' is not among the ports (its "
                                  "entries are left out until OVS numbers it)"]
    result = plan.plan({"overlay": section}, plan.planned_switch("br", 0x1001, {}))
    assert result["problems"] == ["overlay: hv1's int bridge needs its patch port 'patch-tun' "
                                  "among the ports"]
    result = plan.plan({"overlay": section}, plan.planned_switch("br", 7, {}))
    assert "no hypervisor's int_dpid or tun_dpid" in result["problems"][0]


def test_a_switch_one_app_owns_is_planned_for_that_app_alone():
    data = {"l2_switch": {"mode": "datapath"}, "vlan": vlan_tests.SECTION,
            "bond": BOND_SECTION, "overlay": overlay_tests.SECTION}
    bonded = plan.plan(data, plan.planned_switch("s1", 1, bond_tests.NAMES))
    assert list(bonded["apps"]) == ["bond"]
    assert bonded["not_planned"] == {name: "leaves this switch to the bond app"
                                     for name in ("l2_switch", "vlan", "overlay")}
    hypervisor = plan.plan(data, plan.planned_switch("br", 0x2001, {1: "patch-int"}))
    assert list(hypervisor["apps"]) == ["overlay"]
    other = plan.plan(data, plan.planned_switch("s2", 2, {1: "s2-eth1"}))
    assert sorted(other["apps"]) == ["bond", "l2_switch", "vlan"]   # nobody's: all share it


def test_with_the_topology_app_a_bonded_switch_stays_in_the_fabric():
    data = {"l2_switch": {"mode": "reactive"}, "bond": BOND_SECTION, "topology": {}}
    bonded = plan.plan(data, plan.planned_switch("s1", 1, bond_tests.NAMES))
    assert sorted(bonded["apps"]) == ["bond", "l2_switch"]   # no NORMAL: the pipeline's
    assert bonded["apps"]["bond"] == [pipeline.canary("bond")]
    assert "leaves this switch" not in json.dumps(bonded["not_planned"])
    assert bonded["ovsdb"][0].startswith("Port s1-bond on s1: interfaces s1-eth3,s1-eth4")


def test_the_cli_prints_a_plan_without_a_controller(tmp_path):
    config = tmp_path / "lab.yaml"
    config.write_text(json.dumps(dict(qos_tests.QOS_LAB_CONFIG, topology={})))
    out, err = io.StringIO(), io.StringIO()
    ports = ",".join(f"{n}={name}" for n, name in qos_tests.NAMES.items())
    assert cli.main(["--url", "http://127.0.0.1:9", "plan", str(config), "--ports", ports],
                    out, err) == 0, err.getvalue()
    text = out.getvalue()
    assert "# qos:" in text and "set_queue:1" in text and "nw_src=192.168.100.101" in text
    assert "#  Port s1-eth4: QoS linux-htb max-rate=10000000" in text
    assert "# not planned: topology" in text
    # the whole text is a file ovs-ofctl add-flows reads: every other line is a comment
    flows = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert flows and all(line.startswith("table=") for line in flows)
    only = io.StringIO()
    assert cli.main(["plan", str(config), "--ports", ports, "--only", "flows"], only, err) == 0
    assert only.getvalue().split() == flows
    assert cli.main(["plan", str(tmp_path / "missing.yaml")], io.StringIO(), err) == 2
    assert "cannot read config file" in err.getvalue()


# --- discovery: the apps are found through the declaration (controller/pipeline.py) ---

@dataclasses.dataclass(frozen=True)
class AclSettings:
    deny: tuple = ()


def fake_acl_module(seen):
    """A flows/ module of a new app `acl` that drops listed source MACs: the plan
    protocol of flows/app_plan.py and nothing else."""
    module = types.ModuleType("fake_acl_flows")
    module.SETTINGS = AclSettings

    def plan_acl(settings, switch, facts):
        seen.append(dict(facts))
        return app_plan.SwitchPlan(
            [FlowSpec("ingress", 5, Match.of(eth_src=mac), Owner("acl", "ban"))
             for mac in settings.deny],
            ovsdb=[f"nothing in OVSDB on {switch.name}"],
            problems=[] if settings.deny else ["no MACs to deny"])
    module.plan = plan_acl
    module.owns = lambda settings, switch, facts: switch.datapath.id == 9
    return module


@pytest.fixture
def acl_app(monkeypatch):
    seen = []
    monkeypatch.setitem(sys.modules, "fake_acl_flows", fake_acl_module(seen))
    monkeypatch.setitem(pipeline.APP_IDS, "acl", 0x80)
    monkeypatch.setitem(pipeline.APP_LOGIC, "acl", "fake_acl_flows")
    return seen


def test_a_declared_app_is_planned_with_its_framing_and_the_facts_before_it(acl_app):
    data = {"vlan": vlan_tests.SECTION, "acl": {"deny": ["00:00:00:00:00:0a"]}}
    result = plan.plan(data, plan.planned_switch("br0", 1, vlan_tests.PORTS))
    deny = FlowSpec("ingress", 5, Match.of(eth_src="00:00:00:00:00:0a"), Owner("acl", "ban"))
    assert result["apps"]["acl"] == pipeline.table_misses() + [pipeline.canary("acl"), deny]
    assert list(result["apps"]) == ["vlan", "acl"]
    assert result["ovsdb"] == ["nothing in OVSDB on br0"]
    # the VLAN app's untagged ports reached the app declared after it
    switch = plan.planned_switch("br0", 1, vlan_tests.PORTS)
    configured = vlan.configured_ports(vlan.VlanSettings(**vlan_tests.SECTION).ports,
                                       switch.is_named, switch.resolve)
    untagged = vlan.untagged_egress_pairs(vlan.effective_ports(configured, vlan_tests.PORTS))
    assert untagged and acl_app[0][app_plan.UNTAGGED] == untagged
    alone = plan.plan({"acl": {}}, plan.planned_switch("br0", 1, {}))
    assert alone["problems"] == ["acl: no MACs to deny"]
    assert app_plan.UNTAGGED not in acl_app[-1]          # no VLAN app: no such fact
    with pytest.raises(config.ConfigError, match="'acl': unknown key"):
        plan.plan({"acl": {"allow": []}}, plan.planned_switch("br0", 1, {}))


def test_a_declared_app_that_owns_a_switch_has_it_alone(acl_app):
    data = {"l2_switch": {"mode": "datapath"}, "acl": {"deny": ["00:00:00:00:00:0a"]}}
    owned = plan.plan(data, plan.planned_switch("s9", 9, {}))
    assert list(owned["apps"]) == ["acl"]
    assert owned["not_planned"] == {"l2_switch": "leaves this switch to the acl app"}
    shared = plan.plan(data, plan.planned_switch("s1", 1, {}))
    assert list(shared["apps"]) == ["l2_switch", "acl"]


def test_the_cli_prints_a_declared_apps_plan(acl_app, tmp_path):
    config_file = tmp_path / "acl.yaml"
    config_file.write_text(json.dumps({"acl": {"deny": ["00:00:00:00:00:0a"]}}))
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["plan", str(config_file)], out, err) == 0, err.getvalue()
    lines = out.getvalue().splitlines()
    assert lines[0] == f"# acl: {len(pipeline.table_misses()) + 2} entries"
    cookie = pipeline.cookie(Owner("acl", "ban"))
    assert f"table=0,cookie={cookie:#x},priority=5,eth_src=00:00:00:00:00:0a,actions=drop" in lines


def test_every_declared_app_speaks_the_plan_protocol():
    for app, module in plan.declared_apps().items():
        assert module.__name__ == pipeline.APP_LOGIC[app]
        if hasattr(module, "NOT_PLANNED"):
            assert not hasattr(module, "plan"), app
        else:
            assert dataclasses.is_dataclass(module.SETTINGS) and callable(module.plan), app
    owners = {app for app, module in plan.declared_apps().items() if hasattr(module, "owns")}
    assert owners == pipeline.SOLE_OWNERS


def test_plan_py_has_no_code_of_its_own_per_app():
    """Neither an app's name nor its flows module appear in controller/plan.py's code
    (its docstrings may name them)."""
    tree = ast.parse(Path(plan.__file__).read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef)) and node.body
                  and isinstance(node.body[0], ast.Expr)}
    strings = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
               and isinstance(node.value, str) and id(node) not in docstrings}
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    names |= {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names if node.module == "flows"}
    apps = set(pipeline.APP_LOGIC)
    modules = {name.split(".")[-1] for name in pipeline.APP_LOGIC.values()}
    assert not apps & strings and not (apps | modules) & (names | imported)
