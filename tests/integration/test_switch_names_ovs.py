"""Switches by bridge name on a live network: the controller learns each bridge's name
from its LOCAL port, lists it, and a REST change (and a CLI one) addressed by name
reaches that switch."""
import json
import subprocess
import sys

import pytest

from mininet_topos import harness

pytestmark = pytest.mark.integration
SDN = [sys.executable, "-m", "sdn"]   # as tests/integration/test_cli_ovs.py runs it


def vlan_entries(network, bridge, port):
    """s1's VLAN app entries for frames arriving on `port` (their actions as text)."""
    return [line for line in network.dump_flows(bridge) if f"in_port={port}" in line
            or f'in_port="{bridge}-eth{port}"' in line]


def test_a_change_by_bridge_name_reaches_that_switch(vlan_pair):
    controller, network = vlan_pair()
    h2, h3 = network["h2"], network["h3"]
    status, switches = controller.rest("GET", "/v1/switches")
    assert status == 200 and {(s["dpid"], s["name"]) for s in switches} == {
        ("0000000000000001", "s1"), ("0000000000000002", "s2")}
    status, entry = controller.rest("GET", "/v1/runtime/switches/s2")
    assert status == 200 and entry["dpid"] == "0000000000000002"
    assert controller.rest("GET", "/v1/runtime/switches/s9")[0] == 404

    before = vlan_entries(network, "s1", 2)
    assert not harness.ping(h2, h3)                      # VLAN 20 and VLAN 10
    status, port = controller.rest("PUT", "/v1/switches/s1/ports/2/vlan", {"tag": 10})
    assert status == 200 and port["dpid"] == "0000000000000001" and port["tag"] == 10
    assert harness.wait_until(lambda: harness.ping(h2, h3), 5)
    after = vlan_entries(network, "s1", 2)
    assert after != before and any("4106" in line or "vlan_vid:10" in line
                                   for line in after), after
    status, members = controller.rest("GET", "/v1/vlans")
    assert {(m["dpid"], m["port"]) for m in members["10"]} >= {("0000000000000001", 2)}

    url = f"http://127.0.0.1:{controller.rest_port}"
    result = subprocess.run([*SDN, "--url", url, "--json", "vlan", "clear", "s1", "2"],
                            capture_output=True, text=True, timeout=30)
    cleared = json.loads(result.stdout)
    assert result.returncode == 0 and (cleared["dpid"], cleared["mode"]) == (
        "0000000000000001", "trunk")
