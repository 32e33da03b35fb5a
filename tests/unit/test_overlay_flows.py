"""flows/overlay.py on the table simulator: every table of the overlay lab's tunnel
bridge (VNI <-> VLAN translation, learn(), flood pruning, drops), L2 population, the
integration bridge, and two hypervisors chained through a tunnel."""
import pytest
from ryu.ofproto import nicira_ext, ofproto_v1_3_parser as parser

from controller import ofcompile, pipeline
from flows import overlay
from tests.support.ofsim import Switch, frame
from tests.support.l2_app import FakeDatapath

A, B, C = "00:00:00:00:0a:01", "00:00:00:00:0b:01", "00:00:00:00:0c:01"
BCAST = "ff:ff:ff:ff:ff:ff"
PATCH = 1
HV1_TUNNELS = {("hv2", "vxlan"): 2, ("hv3", "vxlan"): 3, ("hv3", "gre"): 4}


def hv1_bridge(**changes):
    settings = dict(patch_port=PATCH, tunnels=HV1_TUNNELS,
                    local_vlans={100: 1, 200: 2, 300: 3},
                    vni_types={100: "vxlan", 200: "vxlan", 300: "gre"},
                    remote_members={100: ("hv2", "hv3"), 200: ("hv2",), 300: ("hv3",)})
    settings.update(changes)
    return overlay.TunnelBridge(**settings)


def tunnel_switch(bridge):
    ports = [bridge.patch_port, *bridge.tunnels.values()]
    return Switch(ports, kind="tunnel").apply(overlay.tunnel_plan(bridge))


def outputs(result):
    return {port: [(p.get("vlan_vid"), p.get("tunnel_id")) for p in pkts]
            for port, pkts in result.outputs.items()}


def test_table_numbers_are_the_labs():
    assert [t.table_id for t in pipeline.TUNNEL_PIPELINE] == [0, 1, 2, 3, 10, 20, 21]


def test_broadcast_from_the_patch_port_goes_to_the_hypervisors_hosting_the_vni():
    switch = tunnel_switch(hv1_bridge())
    result = switch.process(frame(PATCH, A, BCAST, vlan=1))
    assert outputs(result) == {2: [(None, 100)], 3: [(None, 100)]}
    assert result.tables_visited == ["tun_in", "tun_from_int", "tun_flood"]
    assert outputs(switch.process(frame(PATCH, A, BCAST, vlan=2))) == {2: [(None, 200)]}
    assert outputs(switch.process(frame(PATCH, A, BCAST, vlan=3))) == {4: [(None, 300)]}  # gre
    assert outputs(switch.process(frame(PATCH, A, BCAST, vlan=9))) == {}   # unknown VLAN


def test_unknown_unicast_floods_and_a_vni_no_one_else_hosts_stays_home():
    switch = tunnel_switch(hv1_bridge())
    result = switch.process(frame(PATCH, A, C, vlan=1))
    assert result.tables_visited == ["tun_in", "tun_from_int", "tun_ucast", "tun_flood"]
    assert set(outputs(result)) == {2, 3}
    alone = tunnel_switch(hv1_bridge(remote_members={100: ()}))
    assert outputs(alone.process(frame(PATCH, A, BCAST, vlan=1))) == {}


def test_from_a_tunnel_the_vni_becomes_the_local_vlan_and_the_sender_is_learned():
    switch = tunnel_switch(hv1_bridge())
    result = switch.process(frame(2, B, A, tunnel_id=200))
    assert outputs(result) == {PATCH: [(2, 200)]}
    assert result.tables_visited == ["tun_in", "tun_vni", "tun_learn"]
    (learned,) = switch.flows("tun_ucast", overlay.LEARNED)
    assert learned.match.get("vlan_vid") == 2 and learned.match.get("eth_dst") == B
    assert learned.hard_timeout == 300
    assert [type(a).__name__ for a in learned.actions] == ["PopVlan", "SetField", "Output"]
    # the reply now goes straight into hv2's tunnel, not through the flood table
    reply = switch.process(frame(PATCH, A, B, vlan=2))
    assert outputs(reply) == {2: [(None, 200)]}
    assert "tun_flood" not in reply.tables_visited
    # the same MAC in another VNI is another entry (VLAN is part of the match)
    assert set(outputs(switch.process(frame(PATCH, A, B, vlan=1)))) == {2, 3}
    switch.advance(301)
    assert switch.flows("tun_ucast", overlay.LEARNED) == []


def test_drops():
    switch = tunnel_switch(hv1_bridge())
    assert outputs(switch.process(frame(3, B, A, tunnel_id=555))) == {}   # unknown VNI
    assert outputs(switch.process(frame(9, A, BCAST))) == {}              # unknown port
    assert switch.process(frame(9, A, BCAST)).tables_visited == ["tun_in"]
    assert switch.flows("tun_drop") and not switch.flows("tun_drop")[0].actions


def test_l2_population_preinstalls_where_learn_would_write():
    bridge = hv1_bridge(remote_macs=((100, C, "hv3"), (200, C, "hv9"), (999, C, "hv2")))
    switch = tunnel_switch(bridge)
    result = switch.process(frame(PATCH, A, C, vlan=1))
    assert outputs(result) == {3: [(None, 100)]} and "tun_flood" not in result.tables_visited
    assert len(switch.flows("tun_ucast", overlay.L2POP)) == 1   # unknown hv / VNI: none


def test_tunnel_plan_compiles_with_the_lab_learn():
    datapath = FakeDatapath(1)
    mods = ofcompile.compile_all(datapath, overlay.tunnel_plan(hv1_bridge()))
    tables = {m.table_id for m in mods}
    assert tables == {0, 1, 2, 3, 10, 20, 21}
    (learn_mod,) = [m for m in mods if m.table_id == 10]
    learn, output = learn_mod.instructions[0].actions
    assert isinstance(learn, parser.NXActionLearn) and learn.table_id == 20
    assert learn.hard_timeout == 300 and output.port == PATCH
    loads = [s for s in learn.specs if isinstance(s, parser.NXFlowSpecLoad)]
    assert [(s.src, s.dst) for s in loads] == [(0, ("vlan_tci", 0)),
                                               (("tunnel_id_nxm", 0), ("tunnel_id_nxm", 0))]
    (vni_mod,) = [m for m in mods if m.table_id == 3 and m.match.get("tunnel_id") == 100]
    assert vni_mod.instructions[-1].table_id == 10
    for mod in mods:
        mod.serialize()
    assert nicira_ext  # learn is a Nicira extension: OVS only, as in the lab


def test_local_vlans_are_stable_and_lowest_free():
    assert overlay.allocate_vlans({}, [300, 100]) == {100: 1, 300: 2}
    assert overlay.allocate_vlans({100: 1, 300: 2}, [300, 200]) == {300: 2, 200: 1}
    assert overlay.allocate_vlans({100: 7}, [100, 5]) == {100: 7, 5: 1}


@pytest.mark.parametrize("body, message", [
    ({"vni": 0}, "vni must be an integer 1..16777215"),
    ({"vni": 16777216}, "vni must be"),
    ({"vni": "x"}, "vni must be"),
    ({"vni": 5, "tunnel_type": "geneve"}, "tunnel_type must be one of vxlan, gre"),
    ({"name": "a"}, "needs a vni"),
    ({"vni": 5, "color": 1}, "unknown key"),
])
def test_network_validation(body, message):
    with pytest.raises(ValueError, match=message):
        overlay.network_from_dict(body)


@pytest.mark.parametrize("body, message", [
    ({"name": "hv1", "int_dpid": 1, "tun_dpid": 2}, "needs underlay_ip"),
    ({"name": "hv1", "int_dpid": 1, "tun_dpid": 1, "underlay_ip": "10.0.0.1"}, "two different"),
    ({"name": "hv1", "int_dpid": "zz", "tun_dpid": 2, "underlay_ip": "10.0.0.1"}, "int_dpid"),
    ({"name": "hv1", "int_dpid": 1, "tun_dpid": 2, "underlay_ip": "10.0.0.300"}, "IPv4"),
    ({"name": "a very long name", "int_dpid": 1, "tun_dpid": 2, "underlay_ip": "10.0.0.1"},
     "1-10 letters"),
    ({"name": "hv1", "int_dpid": 1, "tun_dpid": 2, "underlay_ip": "10.0.0.1", "ovsdb": "x"},
     "OVSDB remote"),
])
def test_hypervisor_validation(body, message):
    with pytest.raises(ValueError, match=message):
        overlay.hypervisor_from_dict(body)


def test_good_declarations():
    hv = overlay.hypervisor_from_dict({"name": "hv1", "int_dpid": "0000000000000101",
                                       "tun_dpid": 258, "underlay_ip": "192.168.50.1",
                                       "ovsdb": "unix:/run/hv1/db.sock"})
    assert (hv.int_dpid, hv.tun_dpid) == (257, 258)
    assert overlay.network_from_dict({"vni": "100"}) == overlay.Network(100, "vni100", None)
    port = overlay.vm_port_from_dict({"hypervisor": "hv1", "port": 3, "vni": 100,
                                      "mac": "00-00-00-00-0A-01"})
    assert (port.port, port.mac) == ("3", A)
    assert overlay.tunnel_port_name("vxlan", "hv10") == "vx-hv10"


def through_patch(pkt, port):
    """A frame crossing a patch port arrives on `port`, its tunnel metadata cleared (OVS)."""
    return {k: v for k, v in dict(pkt, in_port=port).items() if k != "tunnel_id"}


def integration_switch(vm_ports, local_vlans, patch=10):
    ports = overlay.integration_ports(vm_ports, patch, local_vlans)
    switch = Switch([p.port for p in ports])
    return switch.apply(overlay.integration_plan(ports, pipeline.table_misses()))


def test_integration_bridge_keeps_tenants_apart_and_tags_towards_the_tunnel_bridge():
    switch = integration_switch({1: 100, 2: 100, 3: 200}, {100: 1, 200: 2})
    result = switch.process(frame(1, A, BCAST))
    assert outputs(result) == {2: [(None, None)], 10: [(1, None)]}
    from_tunnel = switch.process(frame(10, B, BCAST, vlan=2))
    assert outputs(from_tunnel) == {3: [(None, None)]}


def test_two_hypervisors_with_different_local_vlans_for_one_vni():
    """VM A on hv1 (VNI 100 is VLAN 1 there) sends to VM B on hv2 (VNI 100 is VLAN 5)."""
    int1 = integration_switch({1: 100}, {100: 1})
    int2 = integration_switch({1: 100, 2: 200}, {100: 5, 200: 6})
    tun1 = tunnel_switch(overlay.TunnelBridge(PATCH, {("hv2", "vxlan"): 2}, {100: 1},
                                              {100: "vxlan"}, {100: ("hv2",)}))
    tun2 = tunnel_switch(overlay.TunnelBridge(PATCH, {("hv1", "vxlan"): 2}, {100: 5, 200: 6},
                                              {100: "vxlan", 200: "vxlan"},
                                              {100: ("hv1",), 200: ()}))

    def across(pkt):
        (to_patch,) = int1.process(pkt).outputs[10]
        (on_wire,) = tun1.process(through_patch(to_patch, PATCH)).outputs[2]
        assert on_wire["vlan_vid"] is None and on_wire["tunnel_id"] == 100
        (to_int2,) = tun2.process(dict(on_wire, in_port=2)).outputs[PATCH]
        assert to_int2["vlan_vid"] == 5
        return int2.process(through_patch(to_int2, 10))

    arrived = across(frame(1, A, BCAST))
    assert outputs(arrived) == {1: [(None, None)]}   # untagged to B's port, not to VNI 200's
    # B answers: learned on both sides, straight back through hv1's tunnel
    (back,) = int2.process(frame(1, B, A)).outputs[10]
    (wire,) = tun2.process(through_patch(back, PATCH)).outputs[2]
    assert wire["tunnel_id"] == 100
