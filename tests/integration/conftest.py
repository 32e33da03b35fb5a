"""Integration tests: real Open vSwitch, Mininet and ryu-manager. They need root.

Without root they are skipped locally, but never in CI (CI=true): there a
missing privilege is a failure, not a skip.
"""
import os

import pytest

from mininet_topos import harness
from mininet_topos.topos import VLAN_TRUNK_PAIR_CONFIG, VlanTrunkPair


def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0 or os.environ.get("CI"):
        return  # in CI they run, and fail loudly if anything is missing
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(pytest.mark.skipif(True, reason="integration tests need root"))


@pytest.fixture(scope="session", autouse=True)
def open_vswitch():
    if os.geteuid() == 0:
        harness.ensure_ovs()


@pytest.fixture
def lab(request):
    """`lab(topo, config)` -> (controller, network); torn down after the test, which
    also fails if the controller logged a traceback or a switch sent an OpenFlow error."""
    stack = []

    def start(topo, config=None, apps=("apps/l2_switch.py",), tls=None):
        context = harness.running(topo, apps=apps, config=config, tls=tls)
        controller, network = context.__enter__()
        stack.append((context, controller))
        return controller, network

    yield start
    problems = []
    for context, controller in reversed(stack):
        context.__exit__(None, None, None)
        problems += controller.problems()
    assert not problems, "controller logged problems:\n" + "\n".join(problems)


@pytest.fixture
def vlan_pair(lab):
    """`vlan_pair(mode)` -> (controller, network): the learning and VLAN apps on two
    switches joined by a trunk (VLANs 10 and 20 on each), programmed."""
    def start(mode="reactive"):
        config = dict(VLAN_TRUNK_PAIR_CONFIG, l2_switch={"mode": mode})
        controller, network = lab(VlanTrunkPair(), config,
                                  apps=("apps/l2_switch.py", "apps/vlan.py"))
        harness.wait_vlans_programmed(controller, network)
        return controller, network
    return start
