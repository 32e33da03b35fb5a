"""The wheel `pip install` gets, installed into a venv of its own and run as
`sdn-controller` from a directory outside the repository: it starts (the Ryu fix comes
from the command itself, not from the development venv's .pth), serves the REST API's
document from the installed copy, and logs time, level and logger on every line, by
default and with the installed etc/logging.ini.

The new venv reaches the development venv's site-packages (Ryu, built specially, and
the pinned dependencies) through a path file of its own; a path file's directory is
only put on sys.path, its .pth files do not run, so neither the fix nor the editable
install of the source tree reaches the new venv. Only the project's wheel is
installed into it."""
import os
import re
import subprocess
import sys
import sysconfig

import pytest
import yaml

from mininet_topos.labkit.controller import RyuManager
from tests.support.wheel import REPO, build_wheel

pytestmark = pytest.mark.integration
TIMED_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|"
                        r"CRITICAL) [\w.]+: ")


def clean_environment(state_dir):
    """A user's shell: nothing pointing at the source tree."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTEST_CURRENT_TEST", "SDN_CONFIG")}
    return dict(env, SDN_STATE_DIR=str(state_dir))


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The venv the wheel is installed into, and a directory outside the repository."""
    base = tmp_path_factory.mktemp("installed")
    wheel = build_wheel(base / "build")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = venv / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    (site / "dev_venv_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env, home = clean_environment(base / "state"), base / "home"
    home.mkdir()
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                    "--disable-pip-version-check", "--no-deps", "--no-index",
                    "--ignore-installed", str(wheel)], check=True, env=env, cwd=home)
    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import controller, ryu; print(controller.__file__)"],
                           check=True, env=env, cwd=home, capture_output=True, text=True)
    assert where.stdout.startswith(str(site)), where.stdout   # not the source tree
    return venv, home, env


class InstalledController(RyuManager):
    """The installed `sdn-controller`, run like ryu-manager, in a user's environment."""

    def __init__(self, installed, *flags):
        venv, home, self.env = installed
        super().__init__(["apps.l2_switch"], cwd=home)
        self.command = [str(venv / "bin" / "sdn-controller"), *flags]

    def environment(self):
        return self.env


@pytest.mark.parametrize("log_config", [False, True], ids=["default", "etc/logging.ini"])
def test_the_installed_controller_serves_its_api_document_and_logs_timed_lines(installed,
                                                                               log_config):
    venv = installed[0]
    flags = ["--log-config-file", str(venv / "share/sdn-ovs-labs/etc/logging.ini")] \
        if log_config else []
    controller = InstalledController(installed, *flags)
    controller.start()
    try:
        status, document = controller.rest("GET", "/v1/openapi.json")
        log = controller.log_text()
    finally:
        controller.stop()
    assert status == 200, document
    assert document == yaml.safe_load((REPO / "controller/openapi.yaml").read_text())
    lines = log.splitlines()
    assert any("instantiating app apps.l2_switch" in line for line in lines), log
    assert lines and all(TIMED_LINE.match(line) for line in lines), log
    assert "Traceback" not in log and "Eventlet is deprecated" not in log, log
    assert "RLock(s) were not greened" not in log and "Warning" not in log, log
