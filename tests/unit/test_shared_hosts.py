"""Hosts shared by the nodes of a cluster (flows/shared_hosts.py) and the learning app
routing to another node's hosts as to its own (apps/l2_switch.py, reactive, fabric)."""
import pytest
from ryu.ofproto import ofproto_v1_3 as ofp

from apps import l2_switch
from controller import events, pipeline
from flows import shared_hosts, topology
from flows.mac_table import MacTable
from tests.support.fakeswitch import BACKGROUND_LOOPS
from tests.support.l2_app import connect, eth, flow_mods, make_app, packet_in

LOOPS = BACKGROUND_LOOPS | {"_share_loop"}   # endless: never run inline
PAIR = topology.build({1, 2}, [topology.Link((1, 1), (2, 1))], [(1, 2), (2, 2)])
H1, H2 = "02:00:00:00:00:01", "02:00:00:00:00:02"


def table(*hosts):
    macs = MacTable(100)
    for mac, port, vlan in hosts:
        macs.observe(mac, port, vlan, 0.0)
    return macs


# --- pure ----------------------------------------------------------------------------

def test_a_node_publishes_the_hosts_at_edge_ports_of_its_own_switches():
    tables = {1: table((H1, 3, None), (H2, 1, 10), ("02:00:00:00:00:03", 3, 10)),
              2: table(("02:00:00:00:00:04", 3, None))}
    document = shared_hosts.hosts_document(tables, lambda dpid, port: port == 3,
                                           lambda dpid: dpid == 1)
    assert document == {"hosts": [[None, H1, 1, 3], [10, "02:00:00:00:00:03", 1, 3]]}
    assert shared_hosts.hosts_of(document) == {(None, H1): (1, 3),
                                               (10, "02:00:00:00:00:03"): (1, 3)}


@pytest.mark.parametrize("document", [
    [], {}, {"hosts": {}}, {"hosts": [[None, H1, 1]]}, {"hosts": [[None, 5, 1, 3]]},
    {"hosts": [["10", H1, 1, 3]]}, {"hosts": [[None, H1, -1, 3]]}, {"hosts": [[None, H1, 1, True]]},
    # what the routes would choke on, found by a review: not a MAC, out of range
    {"hosts": [[None, "00:00:00:00:00:00:zz", 1, 3]]}, {"hosts": [[None, "zz", 1, 3]]},
    {"hosts": [[4096, H1, 1, 3]]}, {"hosts": [[None, H1, 1 << 64, 3]]},
    {"hosts": [[None, H1, 1, 1 << 32]]}, {"hosts": [[None, H1, 1, 0]]},
])
def test_a_document_that_is_no_hosts_document_is_refused(document):
    with pytest.raises(ValueError, match="vlan"):
        shared_hosts.hosts_of(document)


def test_this_nodes_own_hosts_win_and_a_host_claimed_twice_goes_to_the_lowest_home():
    n2 = {(None, H1): (2, 3), (None, H2): (3, 3)}
    n3 = {(None, H2): (2, 4)}
    assert shared_hosts.remote_hosts([n2, n3], local=[(None, H1)]) == {(None, H2): (2, 4)}
    assert shared_hosts.remote_hosts([n3, n2], local=[]) == {(None, H1): (2, 3),
                                                             (None, H2): (2, 4)}


def test_changes_say_what_to_route_and_what_to_unroute():
    old = {(None, H1): (2, 3), (10, H2): (2, 4)}
    new = {(None, H1): (3, 3), (None, H2): (2, 4)}
    assert shared_hosts.changes(old, new) == ({(None, H1): (3, 3), (None, H2): (2, 4)},
                                              [(10, H2)])
    assert shared_hosts.changes(new, new) == ({}, [])


# --- the learning app as node n1, master of s1, with s2 another node's ----------------

class FakeShared:
    node_id = "n1"

    def __init__(self):
        self.published = []

    def publish(self, document):
        self.published.append(document)


@pytest.fixture
def node(monkeypatch):
    shared = FakeShared()
    monkeypatch.setattr(l2_switch.shared_learned, "for_app", lambda app, on_change: shared)
    monkeypatch.setattr(l2_switch.hub, "spawn", lambda run, *args: None
                        if run.__name__ in LOOPS else run(*args))
    app = make_app(monkeypatch, mode="reactive")
    app.runtime.may_write = lambda dpid: dpid == 1
    datapaths = {dpid: connect(app, dpid) for dpid in (1, 2)}
    app._topology(events.EventTopology(PAIR))
    for datapath in datapaths.values():
        datapath.sent.clear()
    return app, shared, datapaths


def routes_on(datapath, mac):
    return [(m.command, m.instructions[0].actions[0].port if m.instructions else None)
            for m in flow_mods(datapath)
            if m.table_id == pipeline.table_id("l2_dst") and m.match.get("eth_dst") == mac]


def test_a_host_learned_here_is_published(node):
    app, shared, datapaths = node
    app._packet_in(packet_in(datapaths[1], 2, eth("ff:ff:ff:ff:ff:ff", H1)))
    assert shared.published[-1] == {"hosts": [[None, H1, 1, 2]]}


def test_another_nodes_host_is_routed_to_and_unrouted_when_it_goes(node):
    app, _, datapaths = node
    app._hosts_changed({"n2": {"hosts": [[None, H2, 2, 2]]}})
    assert routes_on(datapaths[1], H2) == [(ofp.OFPFC_ADD, 1)]    # s1: over the link
    datapaths[1].sent.clear()
    app._topology(events.EventTopology(topology.build(PAIR.switches, PAIR.links, PAIR.edge)))
    # a fabric event (the same fabric, anew): the route is kept, not deleted and re-added
    assert routes_on(datapaths[1], H2) == []
    app._hosts_changed({})                                        # n2's lease expired
    assert [command for command, _ in routes_on(datapaths[1], H2)] == [ofp.OFPFC_DELETE_STRICT]


def test_a_host_this_node_learned_is_its_own(node, caplog):
    app, _, datapaths = node
    app._packet_in(packet_in(datapaths[1], 2, eth("ff:ff:ff:ff:ff:ff", H2)))
    datapaths[1].sent.clear()
    app._hosts_changed({"n2": {"hosts": [[None, H2, 2, 2]]}, "n3": {"hosts": "bad"}})
    assert routes_on(datapaths[1], H2) == [] and app.remote_hosts == {}
    assert "hosts of node n3 left out" in caplog.text
