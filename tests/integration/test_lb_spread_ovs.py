"""The load balancer's spread mode on real Open vSwitch: 192.168.2.0/24 over two ports
by a select group that OVS runs with dp_hash, no NAT (flows/lb_spread.py)."""
import subprocess
import time

import pytest

from mininet_topos import harness, lb_spread_lab
from mininet_topos.topos import LB_LAB_SUBNETS, LbLab

pytestmark = pytest.mark.integration


def test_a_subnet_leaves_through_both_ports_of_a_dp_hash_group(lab):
    controller, network = lab(LbLab(), {"l2_switch": {"mode": "datapath"},
                                        "lb": {"subnets": LB_LAB_SUBNETS}},
                              apps=("apps/l2_switch.py", "apps/lb.py"))
    assert harness.wait_until(lambda: controller.rest(
        "POST", "/v1/lb/spreads", lb_spread_lab.SPREAD)[0] == 201, 10)
    bad = controller.rest("POST", "/v1/lb/spreads", dict(lb_spread_lab.SPREAD, ports=[12, 99]))
    assert bad[0] == 400 and "no port 99" in bad[1]["error"], bad
    groups = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-groups", "s1"],
                            capture_output=True, text=True, check=True).stdout
    (group,) = [line for line in groups.splitlines() if "output:12" in line]
    assert "type=select" in group and "output:13" in group, groups
    c1 = network["c1"]
    lb_spread_lab.route_through_gateway(c1, "c1-eth0")
    sent = lb_spread_lab.send_udp(c1, hosts=32, flows_per_host=2)
    # OVS's datapath picks the bucket by a hash of the packet: dp_hash
    hashes = lb_spread_lab.datapath_hashes()
    assert hashes and all("recirc(" in actions for actions in hashes), hashes
    time.sleep(1.5)                                 # OVS updates group counters ~1/s
    stats = controller.rest("GET", "/v1/lb/spreads/1/stats")[1]
    packets = [b["packets"] for b in stats["buckets"]]
    assert [b["port"] for b in stats["buckets"]] == [12, 13]
    assert sum(packets) >= sent and min(packets) >= sent // 5, stats
    assert controller.rest("DELETE", "/v1/lb/spreads/1")[0] == 200
    assert "output:12" not in subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-groups",
                                              "s1"], capture_output=True, text=True).stdout
