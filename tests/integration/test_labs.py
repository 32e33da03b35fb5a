"""The lab runners (`make lab-vlan`, `lab-qos`, `lab-lb`, `lab-overlay`, `lab-tcpip`,
`lab-bond`, `lab-ha`, `lab-security`) run end to end: every check passes,
the report and its picture are written, and nothing is left behind."""
import subprocess

import pytest

from mininet_topos import (bond_lab, ha_lab, lb_lab, overlay_lab, qos_lab, security_lab,
                           tcpip_lab, vlan_lab)

pytestmark = pytest.mark.integration


def bridges():
    return subprocess.run(["ovs-vsctl", "list-br"], capture_output=True, text=True,
                          check=True).stdout.split()


@pytest.mark.parametrize("module, slug, options", [
    (vlan_lab, "vlan-lab", []), (lb_lab, "lb-lab", []), (overlay_lab, "overlay-lab", []),
    (tcpip_lab, "tcpip-lab", []), (bond_lab, "bond-lab", []),
    # 45 s: make reliability (the budget of make test); its elector, roles and store
    # have integration tests of their own in make test
    pytest.param(ha_lab, "ha-lab", [], marks=pytest.mark.long),
    (qos_lab, "qos-lab", ["--seconds", "5"]),   # 5 s steps instead of 8: CI time
    (security_lab, "security-lab", []),
])
def test_a_lab_passes_and_writes_its_report(tmp_path, module, slug, options, capsys):
    before = bridges()
    assert module.main(["--reports", str(tmp_path), *options]) == 0, capsys.readouterr().out
    report = (tmp_path / f"{slug}.md").read_text()
    assert "FAIL" not in report and "![" in report
    assert (tmp_path / f"{slug}.png").stat().st_size > 5000
    assert bridges() == before
