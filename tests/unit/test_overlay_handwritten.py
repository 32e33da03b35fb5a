"""The overlay bench's hand-written peer (mininet_topos/overlay_handwritten.py): the
course's br-tun tables, and a full VXLAN mesh on every hypervisor."""
import re

from mininet_topos import overlay_handwritten as hw


def table(flows, number):
    return [f for f in flows if f.startswith(f"table={number},")]


def test_mesh_is_one_vxlan_port_to_every_other_hypervisor():
    ports = hw.tunnel_ports(2, 3)
    assert ports == {"vxlan-hv1": (2, "192.168.50.1"), "vxlan-hv3": (3, "192.168.50.3")}
    for number in (1, 2, 3):
        assert len(hw.tunnel_ports(number, 3)) == 2
        assert all(len(name) <= 15 for name in hw.tunnel_ports(number, 3))


def test_course_tables():
    flows = hw.tunnel_bridge_flows([2, 3], {100: 1, 200: 2}, patch=1)
    assert {int(re.match(r"table=(\d+),", f).group(1)) for f in flows} == {0, 1, 2, 3, 10, 20, 21}
    assert "table=0,priority=1,in_port=1,actions=resubmit(,1)" in flows
    assert {f for f in table(flows, 0) if "resubmit(,3)" in f} == {
        "table=0,priority=1,in_port=2,actions=resubmit(,3)",
        "table=0,priority=1,in_port=3,actions=resubmit(,3)"}
    assert any("dl_dst=00:00:00:00:00:00/01:00:00:00:00:00,actions=resubmit(,20)" in f
               for f in table(flows, 1))
    assert any("dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=resubmit(,21)" in f
               for f in table(flows, 1))
    assert "table=3,priority=1,tun_id=200,actions=mod_vlan_vid:2,resubmit(,10)" in flows
    [learn] = table(flows, 10)
    assert "learn(table=20," in learn and "load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[]" in learn
    assert "output:NXM_OF_IN_PORT[]" in learn and learn.endswith("),output:1")
    assert table(flows, 20) == ["table=20,priority=0,actions=resubmit(,21)"]
    assert ("table=21,priority=1,dl_vlan=1,actions=strip_vlan,set_tunnel:100,output:2,output:3"
            in flows)


def test_every_tunnel_and_every_tenant_gets_its_entries():
    flows = hw.tunnel_bridge_flows([2, 3, 4, 5], {100: 1, 200: 2, 300: 3}, patch=1)
    assert len([f for f in table(flows, 0) if "resubmit(,3)" in f]) == 4
    floods = [f for f in table(flows, 21) if "dl_vlan=" in f]
    assert len(floods) == 3 and all(f.endswith("output:2,output:3,output:4,output:5")
                                    for f in floods)
    assert len([f for f in table(flows, 3) if "tun_id=" in f]) == 3
