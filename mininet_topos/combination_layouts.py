"""Where the hosts of the app combination matrix sit: each host's address and VLAN,
the VIP, the two layouts (one switch, a looped ring) and the Mininet topology built
from a layout.

Apart from mininet_topos/combinations.py (which apps combine, and the runner) and
mininet_topos/combination_checks.py (what each app's check looks for) because both
read these addresses and ports: the one place that says where h1 is.
"""
from dataclasses import dataclass
from typing import Dict, Tuple

from mininet.topo import Topo

from mininet_topos.topos import DatapathAware

IPS = {"h1": "10.0.0.1", "h2": "10.0.0.2", "h3": "10.0.0.3", "h4": "10.0.0.4",
       "b1": "10.0.0.11", "b2": "10.0.0.12", "hb1": "10.0.0.21", "hb2": "10.0.0.22"}
VLAN_OF = {"h1": 10, "h2": 10, "h4": 10, "b1": 10, "b2": 10, "h3": 20}
VIP = "10.0.0.100"


@dataclass(frozen=True)
class Layout:
    """Where each host sits ((switch, port)), the links between switches, and which
    links are the bonded pair's (always present on the ring; on one switch only when
    the bond app runs, since two parallel links without it are a loop)."""
    name: str
    switches: Tuple[str, ...]
    hosts: Dict[str, Tuple[str, int]]
    links: Tuple[Tuple[str, int, str, int], ...]
    bond_links: Tuple[Tuple[str, int, str, int], ...]
    bond_always: bool

    def bonds(self):
        members = {}
        for a, pa, b, pb in self.bond_links:
            members.setdefault(a, []).append(pa)
            members.setdefault(b, []).append(pb)
        return members


SINGLE = Layout(
    "single", ("s1", "s2", "s3"),
    {"h1": ("s1", 1), "h2": ("s1", 2), "h3": ("s1", 3), "h4": ("s1", 4),
     "b1": ("s1", 11), "b2": ("s1", 12), "hb1": ("s2", 1), "hb2": ("s3", 1)},
    (), (("s2", 3, "s3", 3), ("s2", 4, "s3", 4)), bond_always=False)
RING = Layout(
    "ring", ("s1", "s2", "s3", "s4"),
    {"h1": ("s1", 3), "h2": ("s1", 4), "b1": ("s1", 11), "b2": ("s1", 12),
     "h3": ("s2", 3), "h4": ("s2", 4), "hb1": ("s3", 3), "hb2": ("s4", 3)},
    (("s1", 1, "s2", 2), ("s2", 1, "s3", 2), ("s4", 1, "s1", 2)),
    (("s3", 1, "s4", 2), ("s3", 5, "s4", 5)), bond_always=True)
LAYOUTS = {"single": SINGLE, "ring": RING}


class LayoutTopo(DatapathAware, Topo):
    def build(self, layout=SINGLE, bonded=False):
        with_pair = bonded or layout.bond_always
        used = {s for s, _ in layout.hosts.values()} if with_pair else {"s1"}
        for name in layout.switches:
            if name in used or with_pair:
                self.addSwitch(name, dpid="%016x" % int(name[1:]))
        for host, (switch, port) in layout.hosts.items():
            if switch in self.switches():
                self.addLink(self.addHost(host, ip=f"{IPS[host]}/24"), switch, port2=port)
        for a, pa, b, pb in layout.links + (layout.bond_links if with_pair else ()):
            self.addLink(a, b, port1=pa, port2=pb)
