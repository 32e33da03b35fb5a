"""Mininet topologies, usable as `mn --custom mininet_topos/topos.py --topo NAME` and from tests."""
