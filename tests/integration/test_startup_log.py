"""A real ryu-manager's log opens with what it does, not with eventlet's deprecation
banner or "1 RLock(s) were not greened" (issue 19; controller/ryu_compat.py). Started
by the lab kit as every test, bench and lab starts one; it needs no switch or OVS."""
import pytest

from mininet_topos import harness
from mininet_topos.labkit.controller import RyuManager

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("ours", [True, False], ids=["our apps", "simple_switch_13"])
def test_a_ryu_manager_log_has_no_start_up_noise(ours):
    controller = harness.Controller(("apps/l2_switch.py", "apps/vlan.py")) if ours else \
        RyuManager(["ryu.app.simple_switch_13"])
    controller.start(probe_rest=ours)
    try:
        log = controller.log_text()
    finally:
        controller.stop()
    assert "instantiating app" in log, log
    assert "Eventlet is deprecated" not in log, log
    assert "RLock(s) were not greened" not in log, log
    assert "Warning" not in log, log   # nor any other warning at start-up
