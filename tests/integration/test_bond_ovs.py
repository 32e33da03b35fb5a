"""The bond app next to the learning and VLAN apps in one ryu-manager, on real OVS: the
bridges the config bonds (named by datapath id or by bridge name) are the bond app's
from the start (the other apps never program them, so the two parallel links never
loop), and the hosts reach each other over the bond."""
import subprocess
import time

import pytest

from controller import pipeline, southbound
from mininet_topos import harness
from mininet_topos.topos import BondLab

pytestmark = pytest.mark.integration


def bond(dpid, by_name):
    return {"switch": f"s{dpid}" if by_name else dpid, "name": f"s{dpid}-bond",
            "members": [f"s{dpid}-eth3", f"s{dpid}-eth4"], "mode": "active-backup",
            "primary": f"s{dpid}-eth3"}


@pytest.mark.parametrize("by_name", [False, True], ids=["by-dpid", "by-name"])
def test_bonded_bridges_are_the_bond_apps_alone(lab, by_name):
    config = {"bond": {"bonds": [bond(1, by_name), bond(2, by_name)]},
              "l2_switch": {"mode": "reactive"}}
    controller, network = lab(BondLab(), config,
                              apps=("apps/l2_switch.py", "apps/vlan.py", "apps/bond.py"))
    h1, h2, h3, h4 = (network[f"h{i}"] for i in range(1, 5))
    assert harness.wait_until(lambda: harness.ping(h1, h3, timeout=0.5), 15)
    assert harness.ping(h2, h4)
    others = {pipeline.APP_IDS[app]: app for app in ("l2_switch", "vlan")}
    time.sleep(southbound.SdnApp.CANARY_INTERVAL_S + 1)   # an app fighting would be back
    for switch in ("s1", "s2"):
        flows = network.flows(switch)
        assert any("NORMAL" in flow.outputs() for flow in flows), flows
        owners = {flow.app_id for flow in flows}
        assert [others[o] for o in owners if o in others] == [], (switch, flows)
        assert subprocess.run(["ovs-appctl", "bond/show", f"{switch}-bond"],
                              capture_output=True, text=True).returncode == 0
    assert controller.rest("GET", "/v1/switches")[1] == []   # the learning app saw none
    assert "leaving alone switch 0000000000000001" in controller.log_text()
    assert "reconnecting it" not in controller.log_text()    # claimed before they connected
    print("observed: learning + VLAN + bond in one controller; s1 and s2 bonded, NORMAL "
          "only, none of the other apps' entries; pings across the bond")
