"""Forwarding on looped networks: LLDP, the fabric graph, the flood tree and shortest
paths, run through simulated switches wired into rings and a fat-tree."""
import random
import xml.etree.ElementTree as ET

import pytest

from controller import drawing, pipeline
from flows import l2, lldp, topology, vlan
from flows.mac_table import MacTable
from flows.spec import is_multicast_mac
from flows.topology import Link
from tests.support.ofnet import Network
from tests.support.ofsim import Switch, frame

BCAST = "ff:ff:ff:ff:ff:ff"


# --- LLDP ---------------------------------------------------------------------------

def test_lldp_frames_name_their_switch_port():
    assert lldp.parse(lldp.frame(0x1234, 7)) == (0x1234, 7)
    assert lldp.parse(lldp.frame(2**64 - 1, 0xFFFFFF00)) == (2**64 - 1, 0xFFFFFF00)


def test_lldp_parse_refuses_other_frames():
    good = lldp.frame(1, 2)
    assert lldp.parse(good[:20]) is None                      # truncated
    assert lldp.parse(good[:12] + b"\x08\x00" + good[14:]) is None  # not LLDP
    assert lldp.parse(good.replace(b"dpid:", b"dpix:")) is None     # another speaker
    assert lldp.parse(good.replace(b"dpid:0000", b"dpid:0x00")) is None
    assert lldp.parse(b"") is None


def test_lldp_parse_never_raises_on_garbage():
    rng = random.Random(7)
    good = lldp.frame(5, 3)
    for _ in range(3000):
        data = bytearray(good)
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        lldp.parse(bytes(data[:rng.randint(0, len(data))]))
        lldp.parse(bytes(rng.randrange(256) for _ in range(rng.randint(0, 80))))


# --- the fabric as a graph ------------------------------------------------------------

def ring(n):
    """s1..sn in a ring: port 1 to the next switch, port 2 to the previous, port 3 a host."""
    links = [((i, 1), (i % n + 1, 2)) for i in range(1, n + 1)]
    hosts = {f"h{i}": (i, 3) for i in range(1, n + 1)}
    return links, hosts


def fat_tree(k=4):
    """k-ary fat-tree: (k/2)^2 cores, k pods of k/2 aggregation and k/2 edge switches,
    k/2 hosts per edge switch. dpids: cores 1.., aggregation 100.., edge 200.."""
    half, links, hosts = k // 2, [], {}
    cores = [1 + i for i in range(half * half)]
    for pod in range(k):
        aggs = [100 + pod * half + i for i in range(half)]
        edges = [200 + pod * half + i for i in range(half)]
        for a, agg in enumerate(aggs):
            for e, edge in enumerate(edges):
                links.append(((agg, 1 + e), (edge, 1 + a)))
            for c in range(half):
                links.append(((agg, 1 + half + c), (cores[a * half + c], 1 + pod)))
        for e, edge in enumerate(edges):
            for h in range(half):
                hosts[f"h{pod}{e}{h}"] = (edge, 1 + half + h)
    return links, hosts


def fabric_of(links, hosts):
    switches = {end[0] for link in links for end in link} | {d for d, _ in hosts.values()}
    return topology.build(switches, [Link.between(*link) for link in links], hosts.values())


def test_ring_tree_spans_every_switch_and_blocks_one_link():
    fabric = fabric_of(*ring(4))
    assert len(fabric.tree) == 3 and len(fabric.links) == 4
    blocked = fabric.links - fabric.tree
    assert blocked == {Link((3, 1), (4, 2))}  # BFS from s1: s2 and s4, then s3 via s2
    assert topology.port_role(fabric, 3, 1) == "blocked"
    assert topology.port_role(fabric, 3, 2) == "tree"
    assert topology.port_role(fabric, 3, 3) == "edge"
    assert topology.port_role(fabric, 3, 9) == "pending"


def test_fat_tree_has_the_textbook_shape():
    links, hosts = fat_tree(4)
    fabric = fabric_of(links, hosts)
    assert (len(fabric.switches), len(hosts), len(fabric.links)) == (20, 16, 32)
    assert len(fabric.tree) == 19  # a spanning tree of 20 switches


def test_the_tree_does_not_depend_on_discovery_order():
    links, hosts = fat_tree(4)
    first = fabric_of(links, hosts)
    shuffled = list(links)
    random.Random(3).shuffle(shuffled)
    assert fabric_of(shuffled, hosts).tree == first.tree


def test_parallel_links_use_the_lowest_ports_and_self_loops_are_ignored():
    links = [Link((1, 5), (2, 5)), Link((1, 4), (2, 4)), Link((1, 7), (1, 8))]
    fabric = topology.build({1, 2}, links, [(1, 1), (1, 4)])
    assert fabric.tree == {Link((1, 4), (2, 4))}
    assert fabric.links == {Link((1, 5), (2, 5)), Link((1, 4), (2, 4))}
    assert fabric.edge == {(1, 1)}  # a port with a link is never an edge port


def test_next_hops_take_shortest_paths_and_spread_over_equal_cost_cores():
    links, hosts = fat_tree(4)
    fabric = fabric_of(links, hosts)
    home = 200  # edge switch of pod 0
    cores_used = set()
    for n in range(64):
        mac = "02:00:00:00:%02x:%02x" % (n // 256, n % 256)
        hops = fabric.next_hops(home, mac)
        assert set(hops) == fabric.switches - {home}
        # follow the next hops from an edge switch of pod 3: edge-agg-core-agg-edge
        dpid, path = 206, [206]
        while dpid != home:
            port = hops[dpid]
            dpid = next(l.far_end(dpid) for l in fabric.links
                        if l.port_at(dpid) == port and dpid in (l.a[0], l.b[0]))
            path.append(dpid)
        assert len(path) == 5
        cores_used.add(path[2])
    assert cores_used == {1, 2, 3, 4}


def test_a_switch_the_fabric_does_not_know_floods_nothing():
    guard = topology.flood_guard(topology.build((), (), ()), 9)
    sw = Switch((1, 2, 3)).apply(pipeline.table_misses() + guard)
    assert sw.process(frame(1, "00:00:00:00:00:01", BCAST)).outputs == {}


def test_settings_are_checked():
    with pytest.raises(ValueError, match="positive"):
        topology.TopologySettings(lldp_interval_s=0)
    with pytest.raises(ValueError, match="longer than"):
        topology.TopologySettings(lldp_interval_s=2, link_timeout_s=1.5)


# --- whole networks in the simulator ---------------------------------------------------

def build_network(links, hosts, mode="reactive", with_guard=True, vlan_ports=None):
    fabric = fabric_of(links, hosts)
    settings = l2.L2Settings(mode=mode)
    ports = {}
    for (one, other) in links:
        for dpid, port in (one, other):
            ports.setdefault(dpid, set()).add(port)
    for dpid, port in hosts.values():
        ports.setdefault(dpid, set()).add(port)
    switches = {}
    for dpid, numbers in ports.items():
        specs = pipeline.table_misses() + l2.switch_defaults(settings)
        if with_guard:
            specs += topology.flood_guard(fabric, dpid) + l2.fabric_ports(settings, fabric, dpid)
        if vlan_ports is not None:
            configs = [vlan_ports.get((dpid, p), vlan.trunk_all(p)) for p in sorted(numbers)]
            flood = fabric.flood_ports(dpid) if with_guard else None
            specs += vlan.switch_plan(configs, [c.port for c in configs
                                                if (dpid, c.port) in vlan_ports], (), flood)
        switches[dpid] = Switch(sorted(numbers)).apply(specs)
    return Network(switches, links, hosts), fabric, settings


class FabricController:
    """What apps/l2_switch.py does on a fabric in reactive mode, minus Ryu."""

    def __init__(self, net, fabric, settings, untagged=None):
        self.net, self.fabric, self.settings = net, fabric, settings
        self.untagged = untagged or {}
        self.macs = MacTable(10_000)

    def send(self, host, pkt):
        delivery = self.net.send(host, pkt)
        for dpid, packet_in in delivery.packet_ins:
            src, port, vid = packet_in["eth_src"], packet_in["in_port"], packet_in["vlan_vid"]
            if is_multicast_mac(src) or not self.fabric.is_edge(dpid, port):
                continue
            verdict, _ = self.macs.observe(src, (dpid, port), vid, 0)
            if verdict == "new":
                routes = l2.route_host(self.fabric, src, vid, (dpid, port), 300, self.untagged)
                for target, specs in routes.items():
                    self.net.switches[target].apply(specs)
        return delivery


def test_plain_flooding_on_a_ring_storms_and_the_guard_prevents_it():
    links, hosts = ring(4)
    net, _, _ = build_network(links, hosts, with_guard=False)
    assert net.send("h1", frame(None, "00:00:00:00:00:01", BCAST)).storm
    net, _, _ = build_network(links, hosts)
    delivery = net.send("h1", frame(None, "00:00:00:00:00:01", BCAST))
    assert not delivery.storm
    assert {h: len(f) for h, f in delivery.received.items()} == {"h2": 1, "h3": 1, "h4": 1}
    assert delivery.link_frames == 3  # once over every tree link


def test_fat_tree_broadcast_reaches_every_host_exactly_once():
    links, hosts = fat_tree(4)
    net, _, _ = build_network(links, hosts)
    delivery = net.send("h000", frame(None, "00:00:00:00:00:01", BCAST))
    assert not delivery.storm
    assert sorted(delivery.received) == sorted(set(hosts) - {"h000"})
    assert all(len(frames) == 1 for frames in delivery.received.values())
    assert delivery.link_frames == 19


def test_known_unicast_takes_the_shortest_path_not_the_tree():
    links, hosts = ring(4)
    net, fabric, settings = build_network(links, hosts)
    ctl = FabricController(net, fabric, settings)
    mac = {h: "00:00:00:00:00:0%d" % i for i, h in enumerate(sorted(hosts), start=1)}
    for host in hosts:
        ctl.send(host, frame(None, mac[host], BCAST))  # every host speaks once: learned
    delivery = ctl.send("h3", frame(None, mac["h3"], mac["h4"]))
    assert {h: len(f) for h, f in delivery.received.items()} == {"h4": 1}
    assert delivery.link_frames == 1   # s3 -> s4 over the link the tree blocks
    assert delivery.packet_ins == []


def test_fat_tree_unicast_after_learning_is_five_switches_and_no_packet_in():
    links, hosts = fat_tree(4)
    net, fabric, settings = build_network(links, hosts)
    ctl = FabricController(net, fabric, settings)
    macs = {h: "02:00:00:00:00:%02x" % i for i, h in enumerate(sorted(hosts))}
    for host in hosts:
        ctl.send(host, frame(None, macs[host], BCAST))
    for src in hosts:
        for dst in hosts:
            if src != dst:
                delivery = ctl.send(src, frame(None, macs[src], macs[dst]))
                assert {h: len(f) for h, f in delivery.received.items()} == {dst: 1}
                assert delivery.packet_ins == []
                assert delivery.link_frames <= 4


def test_remote_hosts_are_not_learned_at_core_ports():
    links, hosts = ring(4)
    net, _, _ = build_network(links, hosts)
    delivery = net.send("h1", frame(None, "00:00:00:00:00:01", BCAST))
    assert [dpid for dpid, _ in delivery.packet_ins] == [1]  # only where h1 attaches


def test_datapath_learning_follows_the_tree_without_loops():
    links, hosts = ring(4)
    net, _, _ = build_network(links, hosts, mode="datapath")
    a, b = "00:00:00:00:00:03", "00:00:00:00:00:04"
    net.send("h3", frame(None, a, BCAST))
    net.send("h4", frame(None, b, BCAST))
    delivery = net.send("h3", frame(None, a, b))
    assert {h: len(f) for h, f in delivery.received.items()} == {"h4": 1}
    assert delivery.link_frames == 3  # s3-s2-s1-s4: the tree path
    assert not delivery.storm


def test_vlan_flooding_stays_on_the_tree_and_in_the_vlan():
    links, hosts = ring(4)
    hosts = dict(hosts, g1=(1, 4), g3=(3, 4))
    access = {(d, 3): vlan.PortVlan(3, tag=10) for d in range(1, 5)}
    access.update({(1, 4): vlan.PortVlan(4, tag=20), (3, 4): vlan.PortVlan(4, tag=20)})
    net, _, _ = build_network(links, hosts, vlan_ports=access)
    delivery = net.send("h1", frame(None, "00:00:00:00:00:01", BCAST))
    assert not delivery.storm
    assert sorted(delivery.received) == ["h2", "h3", "h4"]
    assert all(f[0]["vlan_vid"] is None for f in delivery.received.values())  # access: untagged
    delivery = net.send("g1", frame(None, "00:00:00:00:00:21", BCAST))
    assert sorted(delivery.received) == ["g3"]


def test_vlan_routes_pop_the_tag_where_vlan_0_leaves_untagged():
    links, hosts = ring(4)
    net, fabric, settings = build_network(links, hosts, vlan_ports={})
    untagged = {d: vlan.untagged_egress_pairs([vlan.trunk_all(p) for p in (1, 2, 3)])
                for d in range(1, 5)}
    ctl = FabricController(net, fabric, settings, untagged)
    ctl.send("h1", frame(None, "00:00:00:00:00:01", BCAST))
    ctl.send("h3", frame(None, "00:00:00:00:00:03", BCAST))
    delivery = ctl.send("h3", frame(None, "00:00:00:00:00:03", "00:00:00:00:00:01"))
    assert [f["vlan_vid"] for f in delivery.received["h1"]] == [None]


# --- the picture ------------------------------------------------------------------------

def test_svg_draws_every_switch_link_and_host():
    links, hosts = ring(4)
    fabric = fabric_of(links, hosts)
    view = topology.describe(fabric)
    view["switches"] = [{"dpid": d, "name": f"s{int(d, 16)}"} for d in view["switches"]]
    view["hosts"] = [{"mac": "00:00:00:00:00:01", "vlan": None, "dpid": "%016x" % 1, "port": 3}]
    view["root"] = "%016x" % 1
    svg = ET.fromstring(drawing.topology_svg(view))
    ns = "{http://www.w3.org/2000/svg}"
    lines = svg.findall(f"{ns}line")
    assert len(lines) == 4 + 1  # links + the host's
    assert sum("stroke-dasharray" in l.attrib for l in lines) == 1  # the blocked link
    assert {t.text for t in svg.findall(f"{ns}text")} >= {"s1", "s2", "s3", "s4"}


# --- reconciliation (flows/diff.py), on the table simulator ------------------------------

def test_reconcile_leaves_correct_entries_alone_and_never_opens_a_gap():
    from flows import diff
    settings = l2.L2Settings(mode="reactive")
    fabric = fabric_of(*ring(4))
    old = pipeline.table_misses() + l2.switch_defaults(settings) + \
        topology.flood_guard(topology.build((), (), ()), 1) + l2.learn_host(
            "02:00:00:00:00:09", 3, None, 300)
    new = pipeline.table_misses() + l2.switch_defaults(settings) + \
        topology.flood_guard(fabric, 1) + l2.fabric_ports(settings, fabric, 1)
    sw = Switch((1, 2, 3)).apply(old)
    adds, deletes = diff.reconcile(sw.flows(), new)
    assert not set(adds) & set(sw.flows())          # nothing that is right is resent
    # step by step, every entry both plans share stays installed: no gap for its traffic
    shared = set(old) & set(new)
    assert shared
    for change in adds + deletes:
        sw.apply([change])
        assert shared <= set(sw.flows())
    assert sorted(map(repr, sw.flows())) == sorted(map(repr, new))
    assert diff.reconcile(sw.flows(), new) == ([], [])  # a second pass changes nothing
    assert all(d.priority is not None for d in deletes)  # strict deletes only


def test_apply_then_revert_leaves_the_table_identical():
    from flows import diff
    settings = l2.L2Settings(mode="reactive")
    ports = [vlan.PortVlan(1, tag=10), vlan.PortVlan(2, trunks=(10, 20)), vlan.trunk_all(3)]
    before = pipeline.table_misses() + l2.switch_defaults(settings) + \
        vlan.switch_plan(ports, [1, 2])
    changed = pipeline.table_misses() + l2.switch_defaults(settings) + vlan.switch_plan(
        [vlan.PortVlan(1, tag=20)] + ports[1:], [1, 2])
    sw = Switch((1, 2, 3)).apply(before)
    snapshot = sw.snapshot()
    for target in (changed, before):
        adds, deletes = diff.reconcile(sw.flows(), target)
        sw.apply(adds + deletes)
    assert sw.snapshot() == snapshot
