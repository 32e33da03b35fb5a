"""A bond inside a looped fabric, on real OVS: every app (topology, learning, bond and
the rest) in one ryu-manager on a ring whose s1-s2 hop is a bond of two links (BondRing). The
bonded bridges take part in the fabric's loop-free flooding (their members are two
parallel links of the fabric, one of them on the flood tree), so nothing storms,
every host reaches every other, and losing the bond's tree member moves the traffic
to the other member."""
import re
import subprocess
import time

import pytest

from mininet_topos import harness
from mininet_topos.topos import BondRing

pytestmark = pytest.mark.integration
ALL_APPS = ("apps/bond.py", "apps/l2_switch.py", "apps/vlan.py", "apps/qos.py", "apps/lb.py",
            "apps/overlay.py", "apps/topology.py")   # the bond app first: order is no matter
BONDS = {"bond": {"bonds": [
    {"switch": "s1", "name": "s1-bond", "members": ["s1-eth1", "s1-eth4"],
     "mode": "active-backup", "primary": "s1-eth1"},
    {"switch": "s2", "name": "s2-bond", "members": ["s2-eth2", "s2-eth4"],
     "mode": "active-backup", "primary": "s2-eth2"}]},
    "l2_switch": {"mode": "reactive"}}
# every switch-to-switch interface (kernel counters, as the bonding lab reads them)
RING_INTFS = ("s1-eth1", "s1-eth4", "s1-eth2", "s2-eth2", "s2-eth4", "s2-eth1",
              "s3-eth2", "s3-eth1", "s4-eth2", "s4-eth1")


def frames(intf):
    read = lambda what: int(open(f"/sys/class/net/{intf}/statistics/{what}").read())  # noqa
    return read("rx_packets") + read("tx_packets")


def frame_rates(seconds):
    """{interface: frames/s in and out} over `seconds` of an idle network."""
    before = {intf: frames(intf) for intf in RING_INTFS}
    time.sleep(seconds)
    return {intf: (frames(intf) - before[intf]) / seconds for intf in RING_INTFS}


def fabric(controller):
    return controller.rest("GET", "/v1/topology")[1]


def converged(controller, links):
    view = fabric(controller)
    return len(view["switches"]) == 4 and len(view["links"]) == links and \
        view["pending_ports"] == 0


def tx(intf):
    return int(open(f"/sys/class/net/{intf}/statistics/tx_packets").read())


def member_carrying(network, members=("s1-eth1", "s1-eth4")):
    """The member of s1's bond that h1's pings to h2 leave by (unicast picks one by MAC)."""
    before = {m: tx(m) for m in members}
    network["h1"].cmd(f"ping -c 20 -i 0.02 {network['h2'].IP()}")
    sent = {m: tx(m) - before[m] for m in members}
    busiest = max(sent, key=sent.get)
    assert sent[busiest] >= 20, sent
    return busiest, next(m for m in members if m != busiest)


def ofport(intf):
    return int(subprocess.run(["ovs-vsctl", "get", "Interface", intf, "ofport"],
                              capture_output=True, text=True, check=True).stdout)


def tree_member(controller):
    """The member of s1's bond whose link is on the flood tree (None: neither)."""
    ofports = {ofport(m): m for m in ("s1-eth1", "s1-eth4")}
    ends = [(int(end["dpid"], 16), end["port"]) for link in fabric(controller)["flood_tree"]
            for end in (link["a"], link["b"])]
    return next((m for port, m in ofports.items() if (1, port) in ends), None)


# with every app loaded (bond, topology and learning alone on a ring are the combination
# matrix's ring-*-topology+bond+l2_switch; this run with all of them is the harder case)
def test_a_bond_in_a_ring_floods_loop_free_and_fails_over(lab):
    controller, network = lab(BondRing(), BONDS, apps=ALL_APPS)
    harness.wait_until(lambda: converged(controller, 5), 30)
    for dpid in (1, 2):   # the bonds are made (OVS runs LACP/bond state on them)
        assert subprocess.run(["ovs-appctl", "bond/show", f"s{dpid}-bond"],
                              capture_output=True).returncode == 0
    numbered = {m: ofport(m) for m in ("s1-eth1", "s1-eth4", "s2-eth2", "s2-eth4")}
    assert numbered == {"s1-eth1": 1, "s1-eth4": 4, "s2-eth2": 2, "s2-eth4": 4}  # as before
    loss = network.pingall()
    rates = frame_rates(5)
    print(f"observed: pingall loss {loss}%, busiest ring port "
          f"{max(rates.values()):.1f} frames/s: {rates}")
    assert max(rates.values()) < 100, rates     # a storm runs at thousands per second
    assert loss == 0
    view = fabric(controller)
    assert converged(controller, 5), view
    between = [link for link in view["links"]
               if {link["a"]["dpid"][-1], link["b"]["dpid"][-1]} == {"1", "2"}]
    assert len(between) == 2 and sum(link["in_tree"] for link in between) == 1, view
    assert len(view["flood_tree"]) == 3    # 4 switches: the bond is one hop of the tree

    # each member dies in turn (first the one carrying h1 -> h2) while h1 pings h2
    # (s1 -> s2) at 20/s; ARP caches are flushed so the pingall needs the new flood tree
    carrying, other = member_carrying(network)
    for dying, staying in ((carrying, other), (other, carrying)):
        on_tree = dying == tree_member(controller)
        ping = network["h1"].popen(["ping", "-i", "0.05", "-c", "100", network["h2"].IP()],
                                   stdout=subprocess.PIPE, text=True)
        time.sleep(1.5)
        subprocess.run(["ip", "link", "set", dying, "down"], check=True)
        try:
            out, _ = ping.communicate(timeout=30)
            lost = 100 - int(re.search(r"(\d+) received", out).group(1))
            assert harness.wait_until(lambda: converged(controller, 4), 10), fabric(controller)
            assert tree_member(controller) == staying
            for host in network.hosts:
                host.cmd("ip neigh flush all")
            assert network.pingall() == 0
            assert member_carrying(network)[0] == staying    # the pings moved over
            down_rates = frame_rates(3)
            print(f"observed: {lost} of 100 pings lost when {dying} died (it carried them: "
                  f"{dying == carrying}, on the flood tree: {on_tree}); busiest ring port "
                  f"then {max(down_rates.values()):.1f} frames/s")
            assert lost <= 10, out
            assert max(down_rates.values()) < 100, down_rates
        finally:
            subprocess.run(["ip", "link", "set", dying, "up"], check=True)
        assert harness.wait_until(lambda: converged(controller, 5), 15), fabric(controller)
    assert network.pingall() == 0
    assert max(frame_rates(3).values()) < 100

    # a bond removed over REST: its members are plain ports again, with their numbers
    assert controller.rest("DELETE", "/v1/bonds/1/s1-bond")[0] == 200
    assert subprocess.run(["ovs-appctl", "bond/show", "s1-bond"],
                          capture_output=True).returncode != 0
    assert (ofport("s1-eth1"), ofport("s1-eth4")) == (1, 4)
    assert harness.wait_until(lambda: converged(controller, 5), 15), fabric(controller)
    assert network.pingall() == 0
    assert max(frame_rates(3).values()) < 100
