"""controller/ runtime pieces: config, datapath choice, the Ryu fix, layout rules."""
import ast
import socket
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from controller import config, datapath
from flows import l2

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path, text):
    path = tmp_path / "sdn.yaml"
    path.write_text(text)
    return str(path)


def test_config_section_builds_validated_settings(tmp_path):
    data = config.load_file(write(tmp_path, "l2_switch:\n  mode: datapath\n  max_macs: 10\n"))
    settings = config.section(l2.L2Settings, "l2_switch", data)
    assert settings == l2.L2Settings(mode="datapath", max_macs=10)
    assert config.section(l2.L2Settings, "l2_switch", {}) == l2.L2Settings()


@pytest.mark.parametrize("text, message", [
    ("l2_switch:\n  mdoe: datapath\n", "unknown key\\(s\\) mdoe"),
    ("l2_switch:\n  mode: turbo\n", "mode must be one of"),
    ("l2_switch: [1, 2]\n", "must be a mapping"),
    ("- just\n- a list\n", "must hold a mapping"),
    ("l2_switch: {mode: [unclosed\n", "not valid YAML"),
])
def test_bad_config_gets_a_clear_error(tmp_path, text, message):
    with pytest.raises(config.ConfigError, match=message):
        config.section(l2.L2Settings, "l2_switch", config.load_file(write(tmp_path, text)))


def test_missing_config_file_is_an_error():
    with pytest.raises(config.ConfigError, match="cannot read config file"):
        config.load_file("/nonexistent/sdn.yaml")


def test_datapath_follows_the_kernel_unless_overridden():
    assert datapath.choose_datapath({}, kernel_check=lambda: True) == "system"
    assert datapath.choose_datapath({}, kernel_check=lambda: False) == "netdev"
    assert datapath.choose_datapath({"SDN_DATAPATH": "system"}, lambda: False) == "system"
    with pytest.raises(ValueError, match="SDN_DATAPATH must be"):
        datapath.choose_datapath({"SDN_DATAPATH": "dpdk"}, lambda: True)


def test_kernel_module_detection(tmp_path):
    modules = tmp_path / "modules"
    modules.write_text("veth 40960 0 - Live 0x0\nopenvswitch 200704 2 - Live 0x0\n")
    nowhere = tmp_path / "none"
    assert datapath.kernel_has_openvswitch(str(modules), str(nowhere), str(nowhere))
    modules.write_text("veth 40960 0 - Live 0x0\n")
    assert not datapath.kernel_has_openvswitch(str(modules), str(nowhere), str(nowhere))
    ko = tmp_path / "lib" / "kernel" / "net" / "openvswitch"
    ko.mkdir(parents=True)
    (ko / "openvswitch.ko.xz").write_text("")
    assert datapath.kernel_has_openvswitch(str(modules), str(nowhere), str(tmp_path / "lib"))


def _python_without_site(code):
    """Run `code` with the venv's packages on the path but no .pth files executed."""
    paths = [str(REPO), sysconfig.get_paths()["purelib"]]
    return subprocess.run([sys.executable, "-S", "-c",
                           f"import sys; sys.path[:0] = {paths!r}\n{code}"],
                          capture_output=True, text=True, timeout=60)


def test_stock_ryu_wsgi_needs_the_fix():
    result = _python_without_site("import ryu.app.wsgi")
    assert "cannot import name 'ALREADY_HANDLED'" in result.stderr


def test_the_fix_makes_ryu_manager_importable():
    result = _python_without_site(
        "import controller.ryu_compat as c; c.install()\n"
        "import ryu.cmd.manager, ryu.app.wsgi\n"
        "print(list(ryu.app.wsgi._AlreadyHandledResponse._ALREADY_HANDLED))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_venv_applies_the_fix_at_startup():
    result = subprocess.run([sys.executable, "-c", "import ryu.cmd.manager"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_apps_do_not_build_openflow_messages_themselves():
    for path in (REPO / "apps").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            offending = [n for n in names if n.startswith("ryu.ofproto")]
            assert not offending, f"{path.name} imports {offending}: use controller.ofcompile"


def test_unreachable_ovsdb_is_a_clear_error():
    from controller import ovsdb
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # a port nobody listens on
        port = sock.getsockname()[1]
    with pytest.raises(ovsdb.OvsdbError, match="cannot reach OVSDB at tcp:127.0.0.1:.*set-manager"):
        ovsdb.Ovsdb(f"tcp:127.0.0.1:{port}", timeout=1).api()
