"""The topology app in a cluster: links as documents, their aging, the union of every
node's links, and the app building its fabric (and flood tree) from that union."""
import random

import pytest
import webob

from apps import topology as topology_app
from controller import config
from flows import lldp, topology
from flows.topology import Link
from controller import shared_learned
from tests.support.fakeswitch import run_inline
from tests.support.topology_app import Clock, app, bring_up, lldp_in, port_down  # noqa: F401

FOR_APP = shared_learned.for_app   # the real one, before any test stands in for it
# a triangle: s1:1-s2:1, s2:2-s3:1, s3:2-s1:2
L12, L23, L13 = Link((1, 1), (2, 1)), Link((2, 2), (3, 1)), Link((1, 2), (3, 2))


# --- pure: documents, aging, union --------------------------------------------------------

def test_a_links_document_says_each_link_once_in_one_order():
    document = topology.links_document([L23, L12, L12])
    assert document == {"links": [[1, 1, 2, 1], [2, 2, 3, 1]]}
    assert topology.links_of(document) == {L12, L23}
    assert topology.links_of({"links": [[3, 1, 2, 2]]}) == {L23}   # either spelling


@pytest.mark.parametrize("document", [
    [], {}, {"links": {}}, {"links": [[1, 2, 3]]}, {"links": [[1, 2, 3, "4"]]},
    {"links": [[1, 2, 3, -4]]}, {"links": [[1, True, 3, 4]]}, {"links": [1]},
    {"links": [[1 << 64, 2, 3, 4]]}, {"links": [[1, 1 << 32, 3, 4]]}, {"links": [[1, 0, 3, 4]]},
])
def test_a_document_that_is_no_links_document_is_refused(document):
    with pytest.raises(ValueError, match="dpid, port, dpid, port"):
        topology.links_of(document)


def test_links_age_out_only_after_the_timeout_since_last_seen():
    seen = {}
    assert topology.age_links(seen, {L12, L23}, 10.0, 3.5) == []
    assert topology.age_links(seen, {L12}, 12.0, 3.5) == []        # L23 not seen any more
    assert set(seen) == {L12, L23}                                 # ...but not gone yet
    assert topology.age_links(seen, {L12}, 13.6, 3.5) == [L23]     # 3.6 s after: gone
    assert set(seen) == {L12}


def test_the_union_keeps_local_links_and_remote_ones_whose_ends_are_live_here():
    live = {(1, 1), (2, 1), (2, 2)}               # s3's ports are down (or unknown) here
    union = topology.union_links({L12}, {L12, L23, L13}, live.__contains__)
    assert union == {L12}
    assert topology.union_links(set(), {L23}, lambda end: True) == {L23}


def test_partial_views_disagree_on_the_tree_and_their_union_is_the_whole_fabric():
    """Node 1 masters s2 (it hears the links at s2), node 2 s1 and s3: alone, node 1
    would flood s2 towards s3 on a link node 2 blocks; from the union, in whatever
    order anyone heard what, both compute the one tree the whole fabric has."""
    switches, edge = {1, 2, 3}, [(1, 3), (2, 3), (3, 3)]
    whole = topology.build(switches, [L12, L23, L13], edge)
    node1 = {L12, L23}
    node2 = {L12, L23, L13}
    alone = topology.build(switches, node1, edge)
    assert topology.flood_guard(alone, 2) != topology.flood_guard(whole, 2)
    for _ in range(20):
        heard1, heard2 = list(node1), list(node2)
        random.shuffle(heard1)
        random.shuffle(heard2)
        union = topology.union_links(heard1, topology.links_of(
            topology.links_document(heard2)), lambda end: True)
        fabric = topology.build(switches, union, edge)
        assert fabric == whole and fabric.tree == whole.tree == {L12, L13}
        assert all(topology.flood_guard(fabric, d) == topology.flood_guard(whole, d)
                   for d in switches)


# --- the app, with a stand-in for controller/shared_learned.py ---------------------------

class FakeShared:
    node_id = "n1"

    def __init__(self):
        self.others, self.published = {}, []

    def documents(self):
        return dict(self.others)

    def publish(self, document):
        self.published.append(document)


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(topology_app.time, "monotonic", clock)
    return clock


@pytest.fixture(autouse=True)
def shared(monkeypatch):
    """Before the app is built: it finds itself a cluster node with this stand-in."""
    shared = FakeShared()
    monkeypatch.setattr(topology_app.shared_learned, "for_app", lambda app, on_change: shared)
    return shared


def others_say(app, shared, **documents):
    shared.others = documents
    app._shared_changed(shared.documents())


def test_one_node_runs_without_shared_links(monkeypatch, clock):
    monkeypatch.setattr(topology_app.shared_learned, "for_app", FOR_APP)
    monkeypatch.setattr(config, "load_file", lambda path=None: {})
    run_inline(monkeypatch, topology_app.hub)
    assert topology_app.Topology().shared is None


def test_the_fabric_is_the_union_and_only_what_was_heard_here_is_published(app, shared, clock):
    s1, s2, s3 = (bring_up(app, d) for d in (1, 2, 3))
    lldp_in(app, s1, 1, lldp.frame(2, 1))           # this node masters s1: hears L12
    others_say(app, shared, n2={"links": [[2, 2, 3, 1], [1, 2, 3, 2], [1, 1, 2, 1]]})
    assert app.fabric.links == {L12, L23, L13}
    assert app.fabric.tree == {L12, L13}            # what every node computes
    assert shared.published[-1] == {"links": [[1, 1, 2, 1]]}
    view = webob.Request.blank("/v1/topology").get_response(app.wsgi).json
    assert len(view["links"]) == 3
    assert view["learned"] == {"node": "n1", "heard_here": 1, "from_others": 3,
                               "nodes": ["n2"]}


def test_a_dead_nodes_links_stay_for_the_link_timeout_then_go(app, shared, clock):
    for dpid in (1, 2, 3):
        bring_up(app, dpid)
    others_say(app, shared, n2={"links": [[2, 2, 3, 1]]})
    assert app.fabric.links == {L23}
    others_say(app, shared)                         # n2's lease expired
    clock.now += 3.0
    app._refresh()
    assert app.fabric.links == {L23}                # the new master has time to hear it
    clock.now += 0.6
    app._refresh()
    assert app.fabric.links == frozenset()


def test_a_port_down_drops_another_nodes_link_at_once(app, shared, clock):
    bring_up(app, 1)
    s2 = bring_up(app, 2)
    bring_up(app, 3)
    others_say(app, shared, n2={"links": [[2, 2, 3, 1]]})
    port_down(app, s2, 2)                           # every node hears port status
    assert app.fabric.links == frozenset()
    clock.now += 1
    app._refresh()                                  # n2 has not said so yet: still gone
    assert app.fabric.links == frozenset()


def test_a_bad_document_is_left_out_and_the_others_count(app, shared, clock, caplog):
    for dpid in (1, 2, 3):
        bring_up(app, dpid)
    others_say(app, shared, n2={"links": "no"}, n3={"links": [[2, 2, 3, 1]]})
    assert app.fabric.links == {L23}
    assert "links of node n2 left out" in caplog.text
