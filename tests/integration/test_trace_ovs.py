"""The trace across the fabric (POST /v1/trace, `sdn path`) on real Open vSwitch: each
hop is a real ofproto/trace, followed over the links the topology app found."""
import subprocess
import sys

import pytest

from mininet_topos import harness
from mininet_topos.topos import VLAN_TRUNK_PAIR_CONFIG, Ring, VlanTrunkPair

pytestmark = pytest.mark.integration
BROADCAST = "ff:ff:ff:ff:ff:ff"


def converged(controller, links):
    def done():
        view = controller.rest("GET", "/v1/topology")[1]
        return len(view["links"]) == links and view["pending_ports"] == 0
    assert harness.wait_until(done, 30), controller.rest("GET", "/v1/topology")[1]


def trace(controller, body):
    status, answer = controller.rest("POST", "/v1/trace", body)
    assert status == 200, answer
    return answer


def test_a_frame_crosses_the_trunk_tagged_and_a_broadcast_stays_in_its_vlan(lab):
    controller, network = lab(VlanTrunkPair(), VLAN_TRUNK_PAIR_CONFIG,
                              apps=("apps/topology.py", "apps/l2_switch.py", "apps/vlan.py"))
    harness.wait_vlans_programmed(controller, network)
    converged(controller, 1)
    h1, h3 = network["h1"], network["h3"]
    assert harness.wait_until(lambda: harness.ping(h1, h3), 15)
    s1, s2 = network["s1"].dpid, network["s2"].dpid

    answer = trace(controller, {"switch": "s1", "in_port": "s1-eth1", "dl_src": h1.MAC(),
                                "dl_dst": h3.MAC(), "proto": "icmp", "nw_src": h1.IP(),
                                "nw_dst": h3.IP()})
    first, second = answer["hops"]
    assert (first["dpid"], first["in_port"], second["dpid"], second["in_port"]) == (s1, 1, s2, 3)
    assert [(o["port"], o["vlan"], o["to"]) for o in first["outputs"]] == [
        (3, 10, {"dpid": s2, "port": 3})]                    # tagged on the trunk
    assert "dl_vlan=10" in second["flow"]
    assert [(d["dpid"], d["port"], d["vlan"]) for d in answer["delivered"]] == [(s2, 1, None)]
    owners = {rule["owner"] for hop in answer["hops"] for rule in hop["rules"]}
    assert any(o.startswith("vlan/") for o in owners) and "not ours" not in owners, owners
    print(f"observed: h1 -> h3 crosses {len(answer['hops'])} switches through "
          f"{sum(len(h['rules']) for h in answer['hops'])} entries, owners {sorted(owners)}")

    flood = trace(controller, {"switch": s1, "in_port": 1, "dl_src": h1.MAC(),
                               "dl_dst": BROADCAST})
    reached = sorted((d["dpid"], d["port"]) for d in flood["delivered"])
    assert reached == [(s2, 1)], flood        # h3 only: not h2 nor h4 (VLAN 20)
    assert not any(h["revisit"] for h in flood["hops"])

    # what a client gets wrong is a 4xx that says so, and the CLI says the same
    for body, status in (({"switch": "s1", "in_port": 9, "dl_src": h1.MAC(),
                           "dl_dst": BROADCAST}, 404),
                         ({"switch": "99", "in_port": 1, "dl_src": h1.MAC(),
                           "dl_dst": BROADCAST}, 404),
                         ({"switch": "s1", "in_port": 1, "dl_src": "nope",
                           "dl_dst": BROADCAST}, 400)):
        got, answer = controller.rest("POST", "/v1/trace", body)
        assert got == status and "error" in answer, (body, got, answer)
    done = subprocess.run([sys.executable, "-m", "sdn", "--url",
                           f"http://127.0.0.1:{controller.rest_port}", "path", "s1", "1",
                           h1.MAC(), h3.MAC()], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "(s1-eth3) vlan 10" in done.stdout and "delivered at: s2 port 1" in done.stdout, \
        done.stdout


def test_a_broadcast_on_a_ring_follows_the_flood_tree_and_reaches_every_host_once(lab):
    controller, network = lab(Ring(4), {"l2_switch": {"mode": "reactive"}},
                              apps=("apps/topology.py", "apps/l2_switch.py"))
    converged(controller, 4)
    view = controller.rest("GET", "/v1/topology")[1]
    blocked = [link for link in view["links"] if not link["in_tree"]]
    assert len(blocked) == 1
    h1 = network["h1"]
    answer = trace(controller, {"switch": "s1", "in_port": 3, "dl_src": h1.MAC(),
                                "dl_dst": BROADCAST, "proto": "arp", "nw_src": h1.IP(),
                                "nw_dst": network["h3"].IP()})
    assert sorted(h["dpid"] for h in answer["hops"]) == sorted(s.dpid for s in network.switches)
    assert not any(h["revisit"] for h in answer["hops"]) and not answer["truncated"]
    reached = sorted((d["dpid"], d["port"]) for d in answer["delivered"])
    assert reached == sorted((s.dpid, 3) for s in network.switches if s.name != "s1"), reached
    crossed = {frozenset([(o["dpid"], o["port"]), (o["to"]["dpid"], o["to"]["port"])])
               for h in answer["hops"] for o in h["outputs"] if o.get("to")}
    ends = frozenset([(blocked[0]["a"]["dpid"], blocked[0]["a"]["port"]),
                      (blocked[0]["b"]["dpid"], blocked[0]["b"]["port"])])
    assert len(crossed) == 3 and ends not in crossed, (crossed, ends)
    print(f"observed: the broadcast crossed {len(crossed)} tree links, not the blocked "
          f"{sorted(ends)}, and reached {len(reached)} hosts")
