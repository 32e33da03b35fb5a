"""flows/learning.py: the decisions apps/l2_switch.py sends, on their own (port
security, a fabric's routes), checked in the table simulator where it matters."""
from controller import desired_state
from flows import l2, learning, topology
from flows.mac_table import FLAPPING, KNOWN, MOVED, NEW, PORT_FULL, TABLE_FULL
from flows.spec import FlowDelete, Match
from flows.topology import Link
from tests.support.ofsim import Switch, frame

H1, H2 = "00:00:00:00:00:01", "00:00:00:00:00:02"
BCAST = "ff:ff:ff:ff:ff:ff"


def settings(**more):
    return l2.L2Settings(**more)


def test_a_new_host_gets_its_entries_and_a_known_one_nothing():
    s = settings()
    macs, bans = learning.mac_table(s), {}
    first = learning.packet_in(s, macs, bans, H1, 1, None, now=0)
    assert first.verdict == NEW and first.located and not first.barrier
    assert first.changes == l2.learn_host(H1, 1, None, s.idle_timeout)
    again = learning.packet_in(s, macs, bans, H1, 1, None, now=1)
    assert again.verdict == KNOWN and again.changes == [] and not again.located


def test_a_move_deletes_the_old_port_first_and_on_a_fabric_leaves_the_rest_to_routes():
    s = settings()
    macs = learning.mac_table(s)
    learning.packet_in(s, macs, {}, H1, 1, None, now=0)
    moved = learning.packet_in(s, macs, {}, H1, 2, None, now=1, fabric=True)
    assert moved.verdict == MOVED and moved.previous.port == 1 and moved.barrier
    assert moved.changes == l2.forget_host(H1, 1, None) and moved.located


def test_a_full_table_counts_the_source_and_sends_nothing():
    s = settings(max_macs=1)
    macs = learning.mac_table(s)
    learning.packet_in(s, macs, {}, H1, 1, None, now=0)
    full = learning.packet_in(s, macs, {}, H2, 2, None, now=0)
    assert (full.verdict, full.changes, full.not_learned, full.located) == \
        (TABLE_FULL, [], True, False)


def test_a_full_port_is_banned_once_until_the_ban_ends():
    s = settings(max_macs_per_port=1, ban_s=30)
    macs, bans = learning.mac_table(s), {}
    learning.packet_in(s, macs, bans, H1, 1, None, now=0)
    first = learning.packet_in(s, macs, bans, H2, 1, None, now=1)
    assert first.verdict == PORT_FULL and first.banned == ("port", 1) and first.not_learned
    assert first.changes == [l2.ban_new_sources(1, 30)] and not first.barrier
    raced = learning.packet_in(s, macs, bans, H2, 1, None, now=2)
    assert raced.changes == [] and raced.banned is None and raced.not_learned
    assert learning.active_bans(bans, now=11) == [{"port": 1, "ends_in_s": 20.0}]
    assert learning.bans_after_expiry(bans, now=31) == {}
    later = learning.packet_in(s, macs, bans, H2, 1, None, now=32)
    assert later.banned == ("port", 1)


def test_a_flapping_mac_is_forgotten_and_banned_on_every_port():
    s = settings(flap_moves=2, flap_window_s=10, ban_s=30)
    macs, bans = learning.mac_table(s), {}
    learning.packet_in(s, macs, bans, H1, 1, None, now=0)
    learning.packet_in(s, macs, bans, H1, 2, None, now=1)
    flap = learning.packet_in(s, macs, bans, H1, 1, None, now=2)
    assert flap.verdict == FLAPPING and flap.banned == ("mac", None, H1)
    assert flap.changes == l2.forget_host(H1, 2, None) + [l2.ban_mac(H1, None, 30)]
    assert macs.get(H1, None) is None
    sw = Switch((1, 2, 3)).apply(desired_state.framed(l2.APP, learning.desired(s)) + flap.changes)
    assert all(sw.process(frame(port, H1, BCAST)).outputs == {} for port in (1, 2, 3))


def test_expiry_of_an_old_location_keeps_the_new_one():
    s = settings()
    macs = learning.mac_table(s)
    learning.packet_in(s, macs, {}, H1, 1, None, now=0)
    learning.packet_in(s, macs, {}, H1, 2, None, now=1)
    assert learning.expired_host(macs, H1, 1, None) is None
    entry = learning.expired_host(macs, H1, 2, None)
    assert learning.forget(macs, entry) == l2.forget_host(H1, 2, None)
    assert learning.forget(macs, entry) == []          # already gone


def test_adopt_puts_hosts_back_and_keeps_routes_to_hosts_elsewhere():
    s = settings()
    macs, routes = learning.mac_table(s), {}
    here = l2.learn_host(H1, 1, None, 300)
    route = [e for e in l2.learn_host(H2, 4, None, 300) if e.table == "l2_dst"]
    defaults = l2.switch_defaults(s)
    kept = learning.adopt(macs, routes, here + route + defaults, now=0)
    assert kept == here + route
    assert [(e.mac, e.port) for e in macs.entries()] == [(H1, 1)]
    assert routes == {(None, H2): route[0]}


def line(n):
    """Switches 1..n in a row, port 2 towards the next, port 1 towards the previous;
    a host port 3 on each."""
    links = [Link.between((d, 2), (d + 1, 1)) for d in range(1, n)]
    return topology.build(range(1, n + 1), links, [(d, 3) for d in range(1, n + 1)])


def test_routes_go_out_nearest_the_host_first_and_only_where_they_changed():
    fabric, s = line(3), settings()
    routes = {3: {}, 1: {}, 2: {}}
    sent = learning.route(fabric, s, H1, None, 1, 3, routes, {}, include_home=True)
    assert [dpid for dpid, _ in sent] == [1, 2, 3]
    assert sent[0][1] == l2.learn_host(H1, 3, None, s.idle_timeout)
    assert [c[0].actions[-1].port for _, c in sent[1:]] == [1, 1]   # towards switch 1
    assert learning.route(fabric, s, H1, None, 1, 3, routes, {}, include_home=False) == []
    gone = learning.unroute(routes, H1, None)
    assert gone == [(3, l2.forget_route(H1, None)), (2, l2.forget_route(H1, None))]
    assert routes == {3: {}, 1: {}, 2: {}}


def test_a_host_heard_at_an_edge_is_forgotten_where_it_was_and_stale_routes_go():
    s = settings()
    tables = {1: learning.mac_table(s), 2: learning.mac_table(s)}
    learning.packet_in(s, tables[1], {}, H1, 3, None, now=0, fabric=True)
    assert learning.forget_elsewhere(tables, H1, None, here=2) == \
        [(1, l2.forget_host(H1, 3, None))]
    assert learning.forget_elsewhere(tables, H1, None, here=2) == []
    routes = {1: {(None, H2): "entry"}, 2: {}}
    assert learning.stale_routes(routes, tables.values()) == [(1, l2.forget_route(H2, None))]
    assert routes == {1: {}, 2: {}}


def test_relearn_moves_defaults_and_hosts_to_the_new_tag_handling():
    s = settings(mode="datapath")
    macs = learning.mac_table(s)
    changes = learning.relearn(s, macs, frozenset(), frozenset({(1, 10)}))
    assert FlowDelete(l2.LEARNED) in changes          # learned entries baked in the old
    reactive = settings()
    macs = learning.mac_table(reactive)
    learning.packet_in(reactive, macs, {}, H1, 1, 10, now=0)
    changes = learning.relearn(reactive, macs, frozenset(), frozenset({(1, 10)}))
    assert changes == l2.learn_host(H1, 1, 10, reactive.idle_timeout, untagged_egress=True)


def test_a_new_fabric_changes_only_the_no_learning_entries_that_differ():
    s, fabric = settings(), line(3)
    plans, sent = learning.refabric(s, None, fabric, {1: [], 2: [], 3: []})
    assert [dpid for dpid, _ in sent] == [1, 2, 3]       # switch 1: port 2; 2: 1, 2; 3: 1
    assert {d: [e.match.get("in_port") for e in p] for d, p in plans.items()} == \
        {1: [2], 2: [1, 2], 3: [1]}
    assert learning.refabric(s, fabric, fabric, plans) == (plans, [])
    shorter = line(2)
    plans, sent = learning.refabric(s, fabric, shorter, {1: plans[1], 2: plans[2]})
    assert sent == [(2, [FlowDelete(l2.NO_LEARN, "l2_src", Match.of(in_port=2),
                                    l2.NO_LEARN_PRIORITY)])]


def test_in_datapath_mode_a_new_flood_tree_flushes_what_was_learned_along_the_old():
    s, fabric = settings(mode="datapath"), line(2)
    plans, sent = learning.refabric(s, None, fabric, {1: [], 2: []})
    assert sent == [(1, [l2.forget_learned()]), (2, [l2.forget_learned()])]  # a line: all tree
    assert learning.refabric(s, fabric, fabric, plans) == (plans, [])

