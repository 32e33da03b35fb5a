"""mininet_topos/demo.py --topo: read as `mn --topo` reads it, by Mininet's own parser
(only the topology's graph is built: no network, no root)."""
import argparse

import pytest

from mininet_topos import demo
from mininet_topos.topos import Linear, Ring, Single, Tree


def shape(topo):
    return type(topo), len(topo.switches()), len(topo.hosts()), len(topo.links())


@pytest.mark.parametrize("text, expected", [
    ("tree,depth=2,fanout=2", (Tree, 3, 4, 6)),
    ("tree,2,2", (Tree, 3, 4, 6)),
    ("tree,2,fanout=3", (Tree, 4, 9, 12)),
    ("linear,3", (Linear, 3, 3, 5)),
    ("linear,k=2,n=2", (Linear, 2, 4, 5)),
    ("single,4", (Single, 1, 4, 4)),
    ("ring,n=5", (Ring, 5, 5, 10)),        # this project's own
])
def test_topo_is_read_as_mn_reads_it(text, expected, monkeypatch):
    monkeypatch.setenv("SDN_DATAPATH", "netdev")
    assert shape(demo.parse_topo(text)) == expected


def test_the_default_and_mns_minimal_work(monkeypatch):
    monkeypatch.setenv("SDN_DATAPATH", "netdev")
    assert shape(demo.parse_topo("minimal"))[1:] == (1, 2, 2)
    assert shape(demo.parse_topo("reversed,3"))[1:] == (1, 3, 3)
    args = demo.build_parser().parse_args([])
    assert shape(args.topo) == (Tree, 3, 4, 6)


@pytest.mark.parametrize("text, words", [
    ("nosuch,2", "unknown topology 'nosuch'; have bondlab, bondring"),
    ("tree,dept=2", "topology 'tree,dept=2': "),
    ("tree,depth=x", "topology 'tree,depth=x': "),
])
def test_a_bad_topology_is_a_usage_error_that_says_why(text, words, monkeypatch):
    monkeypatch.setenv("SDN_DATAPATH", "netdev")
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        demo.parse_topo(text)
    assert str(refused.value).startswith(words)
