"""etc/: every example config loads through the controller's own loader, each section
is accepted by its app (or the runtime) and plans on the lab's switch without a
problem; the lab configs are what the labs pass; logging.ini is a config Python's
logging (and so Ryu's --log-config-file) takes, with time, level and logger on a line;
the service unit runs sdn-controller."""
import configparser
import re
import subprocess
import sys

import pytest

from controller import config, ofguard, pipeline, plan, rest
from mininet_topos import lb_lab, qos_lab, tcpip_lab
from mininet_topos.security_topo import SECURITY_LAB_CONFIG
from mininet_topos.topos import VLAN_LAB_CONFIG
from tests.support.wheel import REPO

ETC = REPO / "etc"
RUNTIME_SECTIONS = {"api": lambda data: config.section(rest.ApiSettings, "api", data),
                    "openflow": lambda data: config.section(ofguard.OpenFlowSettings,
                                                            "openflow", data),
                    "state": config.state_settings, "cluster": config.cluster_settings}
# each lab config: what the lab passes, and its switch as the apps see it once connected
LABS = {
    "learning.yaml": (tcpip_lab.CONFIG, ("s1", 1, {1: "s1-eth1", 2: "s1-eth2"})),
    "vlan-lab.yaml": (dict(VLAN_LAB_CONFIG, l2_switch={"mode": "reactive"}),
                      ("br0", 1, {1: "vm100_br", 2: "vm101_br", 3: "vm102_br",
                                  4: "first_br", 5: "second_br", 6: "third_br"})),
    "qos-lab.yaml": (qos_lab.CONFIG, ("s1", 1, {n: f"s1-eth{n}" for n in range(1, 5)})),
    "lb-lab.yaml": (lb_lab.CONFIG, ("s1", 1, {n: f"s1-eth{n}" for n in (1, 2, 11, 12, 13,
                                                                          14, 15)})),
    "security-lab.yaml": (SECURITY_LAB_CONFIG, ("s1", 1, {n: f"s1-eth{n}" for n in range(1, 5)})),
}
YAML_FILES = sorted(p.name for p in ETC.glob("*.yaml"))


def test_every_yaml_file_of_etc_is_a_lab_config_checked_here():
    assert YAML_FILES == sorted(LABS)


@pytest.mark.parametrize("name", YAML_FILES)
def test_a_config_loads_and_every_section_is_accepted(name):
    data = config.load_file(str(ETC / name))
    assert data
    for section in data:
        if section in RUNTIME_SECTIONS:
            RUNTIME_SECTIONS[section](data)
        else:
            assert section in pipeline.APP_LOGIC, f"{name}: no app has a section {section!r}"
            module = plan.declared_apps(data)[section]
            config.section(module.SETTINGS, section, data)


@pytest.mark.parametrize("name", YAML_FILES)
def test_a_lab_config_is_what_the_lab_passes_and_plans_without_problems(name):
    passed, (switch, dpid, ports) = LABS[name]
    data = config.load_file(str(ETC / name))
    assert data == passed
    result = plan.plan(data, plan.planned_switch(switch, dpid, ports))
    assert result["problems"] == []
    assert set(result["apps"]) >= set(data)


def test_the_logging_config_gives_time_level_and_logger_on_every_line():
    code = ("import logging, logging.config, sys\n"
            f"logging.config.fileConfig({str(ETC / 'logging.ini')!r}, "
            "disable_existing_loggers=False)\n"   # as Ryu's --log-config-file calls it
            "logging.getLogger('controller.x').info('hello')\n"
            "logging.getLogger('ryu.y').debug('not shown at INFO')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO controller\.x: hello\n",
                        done.stderr), done.stderr


def test_the_service_unit_runs_sdn_controller_with_the_shipped_logging_config():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(ETC / "sdn-controller.service")
    start = unit["Service"]["ExecStart"].replace("\\\n", " ")
    assert start.split()[0].endswith("/bin/sdn-controller")
    assert "--log-config-file /opt/sdn/share/sdn-ovs-labs/etc/logging.ini" in " ".join(
        start.split())
    assert unit["Install"]["WantedBy"] == "multi-user.target"
