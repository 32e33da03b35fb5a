"""The VLAN app with the learning app on real Open vSwitch: the VLAN lab, checked by
capturing frames on the trunk and access far ends, REST, restart, and a trunk between
two switches."""
import pytest

from controller import pipeline
from mininet_topos import harness
from mininet_topos.topos import (VLAN_LAB_CONFIG, VLAN_TRUNK_PAIR_CONFIG, Single, VlanLab,
                                 VlanTrunkPair)

pytestmark = pytest.mark.integration
MODES = pytest.mark.parametrize("mode", ["reactive", "datapath"])
APPS = ("apps/l2_switch.py", "apps/vlan.py")
FAR_ENDS = ("first_if", "second_if", "third_if")


def start_lab(lab, mode, topo=None, config=VLAN_LAB_CONFIG):
    controller, network = lab(topo or VlanLab(), dict(config, l2_switch={"mode": mode}),
                              apps=APPS)
    harness.wait_vlans_programmed(controller, network)
    return controller, network


def far_ends(network):
    return [(network[name.split("_")[0]], name) for name in FAR_ENDS]


def check_lab(network):
    vm100, vm101, vm102 = network["vm100"], network["vm101"], network["vm102"]
    first, third = network["first"], network["third"]
    # ping .102 -> .103: works; first_if untagged, second_if tagged 103, third_if nothing
    with harness.Capture(far_ends(network)) as cap:
        assert harness.ping(vm102, first, count=2)
    assert cap.vlans("first_if", "192.168.100.102") and \
        set(cap.vlans("first_if", "192.168.100.102")) == {None}
    assert set(cap.vlans("second_if", "192.168.100.102")) == {103}
    assert cap.vlans("third_if", "192.168.100.102") == []
    # ping .100 -> .105 fails, yet second_if and third_if both get the frames tagged 101
    with harness.Capture(far_ends(network)) as cap:
        assert not harness.ping(vm100, third)
    assert set(cap.vlans("second_if", "192.168.100.100")) == {101}
    assert set(cap.vlans("third_if", "192.168.100.100")) == {101}
    assert cap.vlans("first_if", "192.168.100.100") == []
    # ping .101 -> .104 fails; second_if and third_if tagged 102; first_if nothing
    with harness.Capture(far_ends(network)) as cap:
        assert not harness.ping(vm101, network["second"])
    assert set(cap.vlans("second_if", "192.168.100.101")) == {102}
    assert set(cap.vlans("third_if", "192.168.100.101")) == {102}
    assert cap.vlans("first_if", "192.168.100.101") == []


@MODES
def test_the_vlan_lab(lab, mode):
    controller, network = start_lab(lab, mode)
    check_lab(network)


def test_rest_changes_apply_at_once_survive_a_restart_and_bad_input_changes_nothing(lab):
    controller, network = start_lab(lab, "reactive")
    path = "/v1/switches/0000000000000001/ports/third_br/vlan"
    status, before = controller.rest("GET", path)
    assert status == 200 and before["trunks"] == [101, 102] and before["configured"]
    for body, status in [({"tag": 0}, 400), ({"tag": 5000}, 400), ({"trunks": [101, 4095]}, 400),
                         ({"tag": 10, "trunks": [20]}, 400), (b"{not json", 400),
                         ({"colour": "blue"}, 400)]:
        reply = controller.rest("PUT", path, body)
        assert reply[0] == status and "error" in reply[1], (body, reply)
    assert controller.rest("PUT", "/v1/switches/1/ports/nope/vlan", {"tag": 5})[0] == 400
    assert controller.rest("PUT", "/v1/switches/99/ports/1/vlan", {"tag": 5})[0] == 404
    assert controller.rest("GET", path)[1] == before  # nothing changed

    status, after = controller.rest("PUT", path, {"trunks": [103]})
    assert status == 200 and after["trunks"] == [103]
    with harness.Capture(far_ends(network)) as cap:  # takes effect without a restart
        assert harness.ping(network["vm102"], network["first"])
    assert set(cap.vlans("third_if", "192.168.100.102")) == {103}

    controller.stop()
    controller.start()
    harness.wait_vlans_programmed(controller, network)
    assert controller.rest("GET", path)[1]["trunks"] == [103]
    # the restarted controller adopted the hosts it had learned, so the ping would go
    # straight to its target: forget them to see the flooding the trunk gets
    assert harness.wait_until(
        lambda: controller.rest("DELETE", "/v1/switches/1/macs")[0] == 200, 5)
    with harness.Capture(far_ends(network)) as cap:
        assert harness.ping(network["vm102"], network["first"])
    assert set(cap.vlans("third_if", "192.168.100.102")) == {103}

    status, reset = controller.rest("DELETE", path)
    assert status == 200 and reset["mode"] == "trunk" and reset["trunks"] == []
    assert not reset["configured"]
    members = controller.rest("GET", "/v1/vlans")[1]
    assert {m["name"] for m in members["101"]} == {"vm100_br", "second_br", "third_br"}


@MODES
def test_vlans_span_two_switches_over_a_trunk_and_stay_isolated(lab, mode):
    controller, network = start_lab(lab, mode, VlanTrunkPair(), VLAN_TRUNK_PAIR_CONFIG)
    h1, h2, h3, h4 = (network[f"h{i}"] for i in range(1, 5))
    others = [(h2, "h2-eth0"), (h4, "h4-eth0")]
    with harness.Capture(others) as cap:
        assert harness.ping(h1, h3, count=2)    # VLAN 10 across the trunk
    assert cap.vlans("h2-eth0", h1.IP()) == [] and cap.vlans("h4-eth0", h1.IP()) == []
    assert harness.ping(h2, h4, count=2)        # VLAN 20 across the trunk
    with harness.Capture([(h3, "h3-eth0")]) as cap:
        assert not harness.ping(h2, h3)         # across VLANs: never
        assert not harness.ping(h4, h1)
    assert cap.vlans("h3-eth0", h2.IP()) == []


@MODES
def test_flood_only_vlan_delivers_but_never_learns(lab, mode):
    config = {"vlan": {"ports": [{"switch": 1, "port": p, "tag": 10 if p < 3 else 20}
                                 for p in (1, 2, 3, 4)], "flood_vlans": [10]},
              "l2_switch": {"mode": mode}}
    controller, network = lab(Single(4), config, apps=APPS)
    harness.wait_vlans_programmed(controller, network)
    h1, h2, h3, h4 = (network[f"h{i}"] for i in range(1, 5))
    assert harness.ping(h1, h2, count=3) and harness.ping(h3, h4, count=3)
    assert not harness.ping(h1, h3)
    learned = [f for f in network.flows("s1", table=pipeline.table_id("l2_dst"))
               if f.priority == 100]

    def in_vlan_10(flow):   # reactive entries say dl_vlan=10; learn()'s, the VID bits
        return flow.match.get("dl_vlan") == 10 or "vlan_tci=0x000a/0x0fff" in flow.match_text
    assert not [f for f in learned if in_vlan_10(f)], learned
    assert any(f"dl_dst={h3.MAC()}" in f.match_text for f in learned), learned  # VLAN 20 learns
