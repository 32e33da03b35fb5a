"""mininet_topos/labkit/flowdump.py: dumps as OVS prints them, read with OVS's parser."""
from mininet_topos.labkit import flowdump

DUMP = """OFPST_FLOW reply (OF1.3) (xid=0x2):
 cookie=0x5004000000000000, duration=3.215s, table=20, n_packets=2, n_bytes=196, idle_timeout=300, hard_age=1, priority=1,vlan_tci=0x0001/0x0fff,dl_dst=02:00:00:00:01:02 actions=load:0->NXM_OF_VLAN_TCI[],load:0x64->NXM_NX_TUN_ID[],output:3
 cookie=0x1003000000000007, duration=9.5s, table=5, n_packets=40, n_bytes=3920, idle_age=0, priority=100,dl_vlan=10,dl_dst=00:00:00:00:00:01 actions=pop_vlan,output:1
 cookie=0x0, duration=1.0s, table=0, n_packets=0, n_bytes=0, priority=0 actions=NORMAL
"""


def test_a_dump_reads_as_entries_with_fields():
    learned, host, normal = flowdump.parse(DUMP)
    assert (learned.cookie, learned.table, learned.priority, learned.n_packets) == \
        (0x5004000000000000, 20, 1, 2)
    assert learned.duration == 3.215 and learned.app_id == 0x50
    assert learned.loads() == {"NXM_OF_VLAN_TCI": 0, "NXM_NX_TUN_ID": 100}
    assert learned.outputs() == [3] and learned.action("output") == {"port": 3}
    assert host.match["dl_vlan"] == 10 and host.match_text == "dl_vlan=10,dl_dst=00:00:00:00:00:01"
    assert host.has_action("pop_vlan") and not host.has_action("push_vlan")
    assert normal.outputs() == ["NORMAL"] and normal.match == {}
    assert str(host) == host.text == DUMP.splitlines()[2].strip()


def test_lines_the_parser_refuses_as_ovs_prints_them_are_read_too():
    """ovs-ofctl add-flow br actions=NORMAL prints no match section; importance=N is
    a field the ovs.flow parser does not know."""
    bare, important = flowdump.parse([
        " cookie=0x0, duration=1.5s, table=0, n_packets=4, n_bytes=240, actions=NORMAL",
        " cookie=0x7, duration=2s, table=3, n_packets=0, n_bytes=0, importance=5, "
        "priority=3,ip actions=drop"])
    assert (bare.priority, bare.match, bare.outputs(), bare.n_packets) == \
        (flowdump.DEFAULT_PRIORITY, {}, ["NORMAL"], 4)
    assert (important.priority, important.info["importance"], important.cookie) == (3, 5, 7)
    assert important.has_action("drop") or important.actions_text == "drop"


def test_an_entrys_key_leaves_out_what_changes_while_it_sits_there():
    line = DUMP.splitlines()[2]
    later = line.replace("duration=9.5s", "duration=19.5s").replace("n_packets=40", "n_packets=90") \
        .replace("idle_age=0", "idle_age=4")
    assert flowdump.parse([line])[0].key == flowdump.parse([later])[0].key
    other = line.replace("output:1", "output:2")
    assert flowdump.parse([line])[0].key != flowdump.parse([other])[0].key
    assert "n_packets" not in flowdump.parse([line])[0].key
    assert flowdump.parse(DUMP)[2].key == "cookie=0x0 table=0 priority=0 actions=NORMAL"
