"""The topology app on a cluster of two ryu-managers, real etcd and Open vSwitch, on a
looped fabric (a triangle) with the masters split between the nodes by the test-only
file elector (tests/support/file_elector.py): node 1 masters s1, node 2 s2 and s3.

An LLDP frame is heard only by the master of the switch it arrives at, so node 1 never
hears the link s2-s3 itself: it must come from node 2's links in etcd
(controller/shared_learned.py). Seen: both nodes show every link and the same flood
tree, hosts on every switch ping each other, the links carry no storm; after node 2 is
killed and node 1 made master of all, its links stay right and node 2's document is
gone with its lease. The learning app shares its hosts the same way: a ping between
hosts on two nodes' switches gets no duplicates."""
import json
import re
import time

import pytest

from mininet_topos import harness
from mininet_topos.combination_checks import link_tx_packets
from mininet_topos.topos import Ring
from tests.support import etcd_server, file_elector

pytestmark = pytest.mark.integration
APPS = ("apps/topology.py", "apps/l2_switch.py")
SWITCHES = ["%016x" % d for d in (1, 2, 3)]


class Node(harness.Controller):
    def __init__(self, name, log_dir, masters_file, config):
        super().__init__(APPS, config=config, log_dir=log_dir)
        # the test elector reads who masters what from one file all nodes share; its
        # node name is also this node's id in etcd (controller/shared_learned.py)
        self.name, self.masters_file = name, masters_file

    def environment(self):
        return file_elector.environment(super().environment(), self.name, self.masters_file)

    def topology(self):
        status, view = self.rest("GET", "/v1/topology", timeout=2)
        assert status == 200, view
        return view

    def masters_of(self):
        status, switches = self.rest("GET", "/v1/runtime/switches", timeout=2)
        return {s["dpid"] for s in switches if s.get("role") == "master"} if status == 200 \
            else set()


def assert_no_storm(network, seconds):
    """Idle links carry discovery's pace (1 LLDP/s) and ARP cache checks; a storm on
    the userspace datapath runs at tens of thousands of frames per second."""
    before = link_tx_packets(network)
    time.sleep(seconds)
    rates = {n: (c - before[n]) / seconds for n, c in link_tx_packets(network).items()}
    assert len(rates) == 6 and max(rates.values()) < 100, rates


def pings(network, a, b, count=5):
    """(replies, duplicates) of `count` pings from host a to host b."""
    out = network[a].cmd(f"ping -c {count} -i 0.2 -W 1 {network[b].IP()}")
    found = re.search(r"(\d+) received(?:, \+(\d+) duplicates)?", out)
    assert found, out
    return int(found.group(1)), int(found.group(2) or 0)


def decide(path, masters):
    path.write_text(json.dumps({dpid: list(who) for dpid, who in masters.items()}))


def whole(view, links=3):
    return (len(view["switches"]) == 3 and len(view["links"]) == links
            and view["pending_ports"] == 0)


def tree(view):
    return sorted(json.dumps(link, sort_keys=True) for link in view["flood_tree"])


@pytest.fixture
def cluster(tmp_path):
    masters = tmp_path / "masters.json"
    decide(masters, {SWITCHES[0]: ("n1", 1), SWITCHES[1]: ("n2", 1), SWITCHES[2]: ("n2", 1)})
    with etcd_server.running(tmp_path / "etcd") as etcd:
        config = {"l2_switch": {"mode": "reactive"},
                  "state": {"backend": "etcd", "etcd": {"endpoints": [etcd.url],
                                                        "prefix": "/ha", "cluster": "ha",
                                                        "timeout_s": 2}}}
        nodes = {}
        for name in ("n1", "n2"):
            (tmp_path / name).mkdir()
            nodes[name] = Node(name, tmp_path / name, masters, config)
        network = None
        try:
            for node in nodes.values():
                node.start()
            network = harness.Network(Ring(3), nodes["n1"])
            network.start()
            targets = [f"tcp:127.0.0.1:{n.of_port}" for n in nodes.values()]
            for switch in network.switches:
                switch.vsctl("set-controller", switch.name, *targets)
            yield nodes, network, masters, etcd
        finally:
            if network is not None:
                network.stop()
            for node in nodes.values():
                node.stop()
    problems = [f"{name}: {line}" for name, node in nodes.items() for line in node.problems()]
    assert not problems, "controllers logged problems:\n" + "\n".join(problems)


def test_both_nodes_see_every_link_hosts_ping_and_a_dead_nodes_links_are_reseen(cluster):
    nodes, network, masters, etcd = cluster
    n1, n2 = nodes["n1"], nodes["n2"]
    wait = harness.wait_until
    assert wait(lambda: n1.masters_of() == {SWITCHES[0]} and
                n2.masters_of() == set(SWITCHES[1:]), 20), (n1.log_tail(), n2.log_tail())
    assert wait(lambda: whole(n1.topology()) and whole(n2.topology()), 30), \
        (n1.topology(), n2.topology())
    one, two = n1.topology(), n2.topology()
    # node 1 heard only the links at s1 (LLDP lands at a switch's master): s2-s3 came
    # from node 2's document; both build the same tree from the same links
    assert one["learned"]["heard_here"] == 2 and one["learned"]["nodes"] == ["n2"], one
    assert two["learned"]["heard_here"] == 3 and two["learned"]["nodes"] == ["n1"], two
    assert tree(one) == tree(two) and len(one["flood_tree"]) == 2
    assert sum(not link["in_tree"] for link in one["links"]) == 1
    assert etcd.stored("/ha/learned/topology/n2")["links"] and \
        len(etcd.stored("/ha/learned/topology/n1")["links"]) == 2

    assert network.pingall() == 0
    # across the two nodes too, each switch routes to every host (the learning app
    # shares its hosts): no frame is flooded towards a known host, so none arrives twice
    for a, b in (("h1", "h2"), ("h3", "h1"), ("h2", "h3")):
        assert pings(network, a, b) == (5, 0), (a, b)
    assert_no_storm(network, 4)

    # node 2 dies; node 1 becomes master of every switch (a newer generation)
    n2.kill()
    decide(masters, {dpid: ("n1", 2) for dpid in SWITCHES})
    assert wait(lambda: n1.masters_of() == set(SWITCHES), 15), n1.log_tail()
    # node 2's document goes with its lease; node 1 hears every link itself now
    assert wait(lambda: etcd.stored("/ha/learned/topology/n2") is None, 10)
    assert wait(lambda: n1.topology()["learned"]["heard_here"] == 3 and
                n1.topology()["learned"]["nodes"] == [], 15), n1.topology()
    view = n1.topology()
    assert whole(view) and tree(view) == tree(one), view
    assert view["changes"] == one["changes"], "the fabric changed during the failover"
    assert network.pingall() == 0
    assert pings(network, "h2", "h1") == (5, 0)
    assert_no_storm(network, 4)
