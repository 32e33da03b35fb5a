"""Looped topologies on real Open vSwitch: discovery, the flood tree, shortest paths,
no storms, and recovery when a link fails."""
import re
import subprocess
import time

import pytest

from mininet_topos import harness
from mininet_topos.topos import FatTree, Ring

pytestmark = pytest.mark.integration
APPS = ("apps/topology.py", "apps/l2_switch.py")


def wait_converged(controller, switches, links, timeout=30):
    """Until the controller sees the whole fabric with every port decided."""
    def converged():
        view = controller.rest("GET", "/v1/topology")[1]
        return (len(view["switches"]) == switches and len(view["links"]) == links
                and view["pending_ports"] == 0)
    assert harness.wait_until(converged, timeout), controller.rest("GET", "/v1/topology")[1]
    return controller.rest("GET", "/v1/topology")[1]


def link_tx_packets(network):
    """{interface: tx packets} of every switch-to-switch interface, read live from the
    switch (OVSDB's statistics lag by seconds)."""
    counts, tx = {}, {}
    for switch, intf in harness.inter_switch_interfaces(network):
        if switch.name not in tx:
            out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-ports", switch.name],
                                 capture_output=True, text=True, check=True).stdout
            tx[switch.name] = {int(port): int(pkts) for port, pkts in re.findall(
                r"port\s+(\d+): rx pkts=\d+.*?\n\s+tx pkts=(\d+)", out)}
        counts[intf.name] = tx[switch.name][switch.ports[intf]]
    return counts


def assert_no_storm(network, seconds):
    """Frames per link stay near discovery's pace while idle: 1 LLDP/s, plus the hosts'
    ARP cache checks a few seconds after a pingall (unicast, up to ~40/s on a fat-tree's
    busiest link for a moment). A broadcast storm on the userspace datapath runs at
    tens of thousands of frames per second and never stops."""
    before = link_tx_packets(network)
    time.sleep(seconds)
    after = link_tx_packets(network)
    rates = {name: (after[name] - before[name]) / seconds for name in before}
    assert max(rates.values()) < 100, rates
    return rates


@pytest.mark.long  # make reliability: the ring combinations show no storm in make test
def test_ring_pingall_no_storm_and_link_failure_recovery(lab):
    controller, network = lab(Ring(4), {"l2_switch": {"mode": "reactive"}}, apps=APPS)
    view = wait_converged(controller, 4, 4)
    assert sum(not link["in_tree"] for link in view["links"]) == 1
    assert network.pingall() == 0
    rates = assert_no_storm(network, 10)
    view = controller.rest("GET", "/v1/topology")[1]
    assert len(view["hosts"]) == 4 and len(view["flood_tree"]) == 3
    status, svg = controller.rest("GET", "/v1/topology.svg")
    assert status == 200 and "<svg" in svg

    # take down a tree link: s1-s2 (h1 on s1, h2 on s2 now go the long way round)
    h1, h2 = network["h1"], network["h2"]
    down_at = time.monotonic()
    network.net.configLinkStatus("s1", "s2", "down")
    assert harness.wait_until(lambda: harness.ping(h1, h2, timeout=0.5), timeout=10)
    recovered_s = time.monotonic() - down_at
    assert recovered_s <= 5, recovered_s
    view = wait_converged(controller, 4, 3)
    assert all(link["in_tree"] for link in view["links"])  # 3 links left: all on the tree
    assert network.pingall() == 0

    # bring it back: found again, one link blocked again, and no loop
    network.net.configLinkStatus("s1", "s2", "up")
    view = wait_converged(controller, 4, 4)
    assert sum(not link["in_tree"] for link in view["links"]) == 1
    assert network.pingall() == 0
    assert_no_storm(network, 5)
    print(f"observed: pings again {recovered_s:.2f} s after the link went down; idle links "
          f"at most {max(rates.values()):.1f} frames/s")


def test_known_unicast_takes_the_link_the_tree_blocks(lab):
    controller, network = lab(Ring(4), {"l2_switch": {"mode": "reactive"}}, apps=APPS)
    view = wait_converged(controller, 4, 4)
    blocked = next(link for link in view["links"] if not link["in_tree"])
    a, b = int(blocked["a"]["dpid"], 16), int(blocked["b"]["dpid"], 16)  # s3 and s4
    src, dst = network[f"h{a}"], network[f"h{b}"]
    assert network.pingall() == 0
    blocked_intf = f"s{a}-eth{blocked['a']['port']}"
    before = link_tx_packets(network)[blocked_intf]
    src.cmd(f"ping -c 20 -i 0.05 {dst.IP()}")
    assert link_tx_packets(network)[blocked_intf] - before >= 20  # one hop, not three


# datapath mode in make reliability only (the budget of make test): the ring-reactive
# combinations cover the same learning on a looped fabric
@pytest.mark.parametrize("mode", ["reactive", pytest.param("datapath", marks=pytest.mark.long)])
def test_fat_tree_pingall_without_loss_or_storm(lab, mode):
    started = time.monotonic()
    controller, network = lab(FatTree(4), {"l2_switch": {"mode": mode}}, apps=APPS)
    wait_converged(controller, 20, 32, timeout=60)
    assert network.pingall() == 0
    bring_up_s = time.monotonic() - started
    learning = lambda: sum(s["packet_ins"] for s in controller.rest("GET", "/v1/switches")[1])
    before = learning()
    assert network.pingall() == 0
    second = learning() - before
    if mode == "datapath":
        assert second == 0  # the switches learned everything themselves
    assert_no_storm(network, 10)
    print(f"fat-tree(4) {mode}: bring-up + pingall {bring_up_s:.1f} s, "
          f"packet-ins in the 2nd pingall {second}")


@pytest.mark.long  # make reliability: the ring-reactive VLAN combinations check the same
def test_vlans_on_a_ring_stay_isolated_and_loop_free(lab):
    config = {"l2_switch": {"mode": "reactive"},
              "vlan": {"ports": [{"switch": dpid, "port": port, "tag": tag}
                                 for dpid in range(1, 5) for port, tag in ((3, 10), (4, 20))]}}
    controller, network = lab(Ring(4, hosts_per_switch=2), config,
                              apps=APPS + ("apps/vlan.py",))
    wait_converged(controller, 4, 4)
    hosts = {(i, vid): network[f"h{i}_{1 if vid == 10 else 2}"]
             for i in range(1, 5) for vid in (10, 20)}
    for (i, vid), src in hosts.items():
        for (j, other_vid), dst in hosts.items():
            if (i, vid) != (j, other_vid):
                assert harness.ping(src, dst) == (vid == other_vid), (src, dst)
    assert_no_storm(network, 5)
