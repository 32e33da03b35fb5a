"""Port VLAN semantics (OVS's access / trunk / native modes) on the table simulator.

Only ingress classification and per-VLAN flooding so far: the app, REST and the lab
come with the rest of the VLAN issue.
"""
import pytest

from controller import pipeline
from flows import vlan
from flows.spec import Match
from flows.vlan import PortVlan
from tests.support.ofsim import Switch, frame

A, B = "00:00:00:00:00:0a", "00:00:00:00:00:0b"
BCAST = "ff:ff:ff:ff:ff:ff"


def switch_with(ports, flood_vlans=()):
    items = pipeline.table_misses()
    for cfg in ports:
        items += vlan.classify_port(cfg)
    items += [vlan.flood_vlan(vid, ports) for vid in flood_vlans]
    return Switch([p.port for p in ports]).apply(items)


def seen(switch, pkt):
    """{port: [vlan as it leaves, ...]}"""
    return {port: [p["vlan_vid"] for p in pkts]
            for port, pkts in switch.process(pkt).outputs.items()}


# The VLAN lab's br0: three access "VMs", first_br access 103, second_br trunk of all,
# third_br trunks 101,102.
LAB = [PortVlan(1, tag=101), PortVlan(2, tag=102), PortVlan(3, tag=103),
       PortVlan(4, tag=103), PortVlan(5), PortVlan(6, trunks=(101, 102))]
LAB_VLANS = (101, 102, 103)


def test_vlan_lab_broadcast_from_103_reaches_first_untagged_second_tagged_third_nothing():
    sw = switch_with(LAB, LAB_VLANS)
    assert seen(sw, frame(3, A, BCAST)) == {4: [None], 5: [103]}


def test_vlan_lab_broadcast_from_101_reaches_both_trunks_tagged():
    sw = switch_with(LAB, LAB_VLANS)
    assert seen(sw, frame(1, A, BCAST)) == {5: [101], 6: [101]}


def test_vlan_lab_broadcast_from_102_reaches_both_trunks_tagged_and_not_first():
    sw = switch_with(LAB, LAB_VLANS)
    assert seen(sw, frame(2, A, BCAST)) == {5: [102], 6: [102]}


def test_tagged_frame_on_an_access_port_is_dropped():
    sw = switch_with(LAB, LAB_VLANS)
    assert seen(sw, frame(1, A, BCAST, vlan=101)) == {}


def test_trunk_admits_only_its_vlans_and_untagged_is_vlan_0():
    sw = switch_with(LAB, LAB_VLANS)
    assert seen(sw, frame(6, A, BCAST, vlan=101)) == {1: [None], 5: [101]}
    assert seen(sw, frame(6, A, BCAST, vlan=103)) == {}      # not trunked
    assert seen(sw, frame(6, A, BCAST)) == {}                # VLAN 0 not in [101, 102]
    assert sw.process(frame(5, A, BCAST)).tables_visited[:2] == ["ingress", "police"]


def test_vlan_0_leaves_a_trunk_untagged():
    ports = [PortVlan(1), PortVlan(2)]
    sw = switch_with(ports, flood_vlans=(0,))
    assert seen(sw, frame(1, A, BCAST)) == {2: [None]}


@pytest.mark.parametrize("mode, egress", [("native-untagged", None), ("native-tagged", 10)])
def test_native_vlan_takes_untagged_frames_and_egresses_by_mode(mode, egress):
    ports = [PortVlan(1, tag=10, trunks=(20,), native_mode=mode), PortVlan(2, tag=10),
             PortVlan(3, trunks=(10, 20))]
    sw = switch_with(ports, flood_vlans=(10, 20))
    assert seen(sw, frame(1, A, BCAST)) == {2: [None], 3: [10]}        # untagged in -> VLAN 10
    assert seen(sw, frame(2, A, BCAST)) == {1: [egress], 3: [10]}      # VLAN 10 out of port 1
    assert seen(sw, frame(3, A, BCAST, vlan=20)) == {1: [20]}


def test_flood_action_order_puts_tagged_outputs_before_the_pop():
    spec = vlan.flood_vlan(101, LAB)
    kinds = [type(a).__name__ for a in spec.actions]
    assert kinds == ["Output", "Output", "PopVlan", "Output"]
    assert spec.match == Match.of(vlan_vid=101)


@pytest.mark.parametrize("kwargs, message", [
    (dict(tag=0), "tag must be an integer VLAN id 1..4094"),
    (dict(tag=4095), "tag must be an integer VLAN id 1..4094"),
    (dict(trunks=(5000,)), "every trunk must be"),
    (dict(trunks=(10, 10)), "lists a VLAN twice"),
    (dict(tag=10, trunks=(20,)), "either tag .* or trunks, not both"),
    (dict(trunks=(20,), native_mode="native-untagged"), "needs a tag"),
    (dict(tag=10, native_mode="native"), "native_mode must be one of"),
])
def test_bad_port_configs_get_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PortVlan(1, **kwargs)


def test_every_vlan_spec_fits_the_pipeline():
    for cfg in LAB:
        for spec in vlan.classify_port(cfg):
            pipeline.validate(spec)
    pipeline.validate(vlan.flood_vlan(101, LAB))


# --- together with the learning switch ----------------------------------------------

from flows import l2  # noqa: E402
from tests.support.l2_reactive import DatapathOnly, ReactiveController


def vlan_learning_switch(mode, ports=LAB, vlans=LAB_VLANS):
    settings = l2.L2Settings(mode=mode)
    untagged = vlan.untagged_egress_pairs(ports)
    sw = switch_with(ports, vlans).apply(l2.switch_defaults(settings, untagged))
    return ReactiveController(sw, settings, untagged) if mode == "reactive" else DatapathOnly(sw)


def test_untagged_egress_pairs_of_the_lab():
    assert vlan.untagged_egress_pairs(LAB) == {(1, 101), (2, 102), (3, 103), (4, 103), (5, 0)}


@pytest.mark.parametrize("mode", l2.MODES)
def test_vlan_lab_unicast_103_after_learning_goes_only_to_first_br_untagged(mode):
    net = vlan_learning_switch(mode)
    net.send(frame(4, B, BCAST))                       # first_if speaks (untagged, VLAN 103)
    out = net.send(frame(3, A, B)).outputs              # the VM on tag 103 answers it
    assert {port: [p["vlan_vid"] for p in pkts] for port, pkts in out.items()} == {4: [None]}
    back = net.send(frame(4, B, A)).outputs             # and back to the VM, untagged too
    assert {port: [p["vlan_vid"] for p in pkts] for port, pkts in back.items()} == {3: [None]}


@pytest.mark.parametrize("mode", l2.MODES)
def test_unicast_towards_a_trunk_keeps_its_tag(mode):
    net = vlan_learning_switch(mode)
    net.send(frame(5, B, BCAST, vlan=101))              # a host behind the all-VLAN trunk
    out = net.send(frame(1, A, B)).outputs              # from the VM on access 101
    assert {port: [p["vlan_vid"] for p in pkts] for port, pkts in out.items()} == {5: [101]}


@pytest.mark.parametrize("mode", l2.MODES)
def test_learned_mac_in_one_vlan_is_never_reached_from_another(mode):
    net = vlan_learning_switch(mode)
    net.send(frame(4, B, BCAST))                        # B learned in VLAN 103
    out = net.send(frame(1, A, B)).outputs              # A in VLAN 101 sends to B
    assert 4 not in out and 3 not in out and set(out) == {5, 6}  # flooded within 101 only


def plan_switch(ports, configured, flood_only=(), mode="datapath"):
    settings = l2.L2Settings(mode=mode)
    sw = Switch([p.port for p in ports]).apply(
        pipeline.table_misses() + vlan.switch_plan(ports, configured, flood_only)
        + l2.switch_defaults(settings, vlan.untagged_egress_pairs(ports)))
    return sw


def test_switch_plan_unconfigured_ports_are_trunks_of_everything():
    ports = [PortVlan(1, tag=10), vlan.trunk_all(2), vlan.trunk_all(3)]
    sw = plan_switch(ports, configured={1})
    assert seen(sw, frame(2, A, BCAST, vlan=77)) == {3: [77]}      # a VLAN nobody named
    assert seen(sw, frame(2, A, BCAST)) == {3: [None]}             # VLAN 0
    assert seen(sw, frame(2, A, BCAST, vlan=10)) == {1: [None], 3: [10]}


def test_flood_only_vlan_is_never_learned():
    ports = [PortVlan(1, tag=10), PortVlan(2, tag=10), PortVlan(3, tag=20), PortVlan(4, tag=20)]
    sw = plan_switch(ports, configured={1, 2, 3, 4}, flood_only={10})
    for _ in range(2):
        sw.process(frame(1, A, BCAST))
        sw.process(frame(3, A, BCAST))
    learned = {(s.match.get("vlan_vid"), s.match.get("eth_dst")) for s in sw.flows("l2_dst")
               if s.owner == l2.LEARNED}
    assert learned == {(20, A)}
    assert seen(sw, frame(2, B, A)) == {1: [None]}   # VLAN 10: flooded (to its only other port)


@pytest.mark.parametrize("body, message", [
    ({"tag": 101, "vlan": 3}, "unknown VLAN setting"),
    ({"trunks": "101"}, "trunks must be a list"),
    ({"tag": "101"}, "tag must be an integer"),
    ({"tag": True}, "tag must be an integer"),
    ([101], "must be an object"),
])
def test_port_settings_from_json_are_checked(body, message):
    with pytest.raises(ValueError, match=message):
        vlan.port_vlan_from_dict(1, body)


def test_port_settings_round_trip():
    cfg = vlan.port_vlan_from_dict(7, {"tag": 10, "trunks": [20, 30], "native_mode": "native-tagged"})
    assert vlan.port_vlan_from_dict(7, {k: v for k, v in vlan.port_vlan_to_dict(cfg).items()
                                        if k != "mode" and v not in (None, [])}) == cfg


def test_members_per_vlan_with_egress_tagging():
    assert vlan.members(LAB) == {
        0: [(5, False)],
        101: [(1, False), (5, True), (6, True)],
        102: [(2, False), (5, True), (6, True)],
        103: [(3, False), (4, False), (5, True)],
    }


def test_a_port_ban_drops_new_sources_of_learning_vlans_but_not_a_flood_only_vlan():
    """The one place the VLAN and learning apps' entries meet at one frame: a trunk port
    banned for too many MACs, carrying a learning VLAN and a flood-only one. The ban
    guards learning (controller and MAC table), which a flood-only VLAN does not do:
    its frames are flooded as before; new sources in the learning VLAN are dropped."""
    from flows import l2, learning   # noqa: E402 (the learning app's half of the test)
    ports = [PortVlan(1, tag=10), PortVlan(2, tag=20), PortVlan(3, trunks=(10, 20))]
    items = pipeline.table_misses() + vlan.switch_plan(ports, [1, 2, 3], flood_only=[20])
    items += learning.desired(l2.L2Settings(), vlan.untagged_egress_pairs(ports))
    ban = l2.ban_new_sources(3, 60)
    for order in ([ban] + items, items + [ban]):   # a tie would go by the order (OVS: either)
        sw = Switch([1, 2, 3]).apply(order)
        assert seen(sw, frame(3, A, BCAST, vlan=20)) == {2: [None]}  # flooded, not learned
        banned = sw.process(frame(3, A, BCAST, vlan=10))
        assert banned.outputs == {} and not banned.packet_ins         # dropped by the ban
    unbanned = Switch([1, 2, 3]).apply(items).process(frame(3, A, BCAST, vlan=10))
    assert unbanned.packet_ins                                        # (learning, unbanned)
