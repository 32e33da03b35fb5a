"""The lab kit (mininet_topos/labkit/) and our controller on top of it (harness.py):
what ryu-manager is started with and what counts as a problem in its log, without
starting anything (tests/integration run them for real)."""
import json
import os

from mininet_topos import harness
from mininet_topos.labkit.controller import RyuManager


def test_our_controller_runs_our_apps_with_our_config_and_state(tmp_path, monkeypatch):
    for name in ("SDN_CONFIG", "SDN_STATE_DIR"):
        monkeypatch.delenv(name, raising=False)
    controller = harness.Controller(apps=("apps/l2_switch.py", "ryu.app.ofctl_rest"),
                                    config={"vlan": {"ports": []}}, log_dir=tmp_path)
    assert controller.apps == [str(harness.REPO / "apps" / "l2_switch.py"), "ryu.app.ofctl_rest"]
    assert controller.cwd == harness.REPO and controller.PROBE_PATH == "/v1/switches"
    assert controller.of_port != controller.rest_port
    env = controller.environment()
    assert json.loads(open(env["SDN_CONFIG"]).read()) == {"vlan": {"ports": []}}
    assert env["SDN_STATE_DIR"] == str(tmp_path / "state")
    # the kit alone knows none of that
    plain = RyuManager(["ryu.app.simple_switch_13"], log_dir=tmp_path)
    assert not {"SDN_CONFIG", "SDN_STATE_DIR"} & set(plain.environment())


def test_ryu_manager_runs_with_warnings_on_and_without_pytest_in_its_environment(tmp_path,
                                                                               monkeypatch):
    """What its log shows is what a user's would: no blanket warning filter (only
    eventlet's banner is dropped, by controller/ryu_compat.py), and no pytest marker
    (eventlet hides its unpatched-lock report from a process that has it)."""
    monkeypatch.delenv("PYTHONWARNINGS", raising=False)
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "a test")
    env = RyuManager(["ryu.app.simple_switch_13"], log_dir=tmp_path).environment()
    assert not {"PYTHONWARNINGS", "PYTEST_CURRENT_TEST"} & set(env)
    assert env["PATH"] == os.environ["PATH"]


def test_problems_are_tracebacks_and_for_us_openflow_errors(tmp_path):
    (tmp_path / "ryu-manager.log").write_text(
        "loading app apps/l2_switch.py\n"
        "Traceback (most recent call last):\n"
        f"{harness.OFP_ERROR_MARK} 0000000000000001: type=0x1 code=0x2 xid=7 data=\n"
        "reconciled switch 0000000000000001\n")
    ours = harness.Controller(log_dir=tmp_path)
    assert ours.problems() == ["Traceback (most recent call last):",
                               f"{harness.OFP_ERROR_MARK} 0000000000000001: type=0x1 "
                               "code=0x2 xid=7 data="]
    assert RyuManager([], log_dir=tmp_path).problems() == ["Traceback (most recent call last):"]
    assert ours.log_tail(1) == "reconciled switch 0000000000000001"
