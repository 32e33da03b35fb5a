"""The switch fabric as a graph, and forwarding on a network with loops.

A fabric is what link discovery found: switches, the links between them (each end a
(dpid, port)) and the *edge* ports, where no switch was heard (hosts live there). A
port that is neither is *pending*: just up and not yet decided. Nothing floods over
it, the way an 802.1D port listens before it forwards.

Flooding (broadcast, unknown unicast) follows a spanning tree of the switch graph:
breadth-first from the lowest dpid, ties broken by dpid then port, which is what
802.1D elects with default priorities and equal costs. Two guards keep a loop
impossible even while switches briefly disagree about the tree: a switch floods only
out of its tree and edge ports, and a frame that reaches the flood stage through any
other port is dropped (an in_port allow-list in `l2_dst`, below known destinations).

Known unicast follows shortest paths (hop count). Among equal-cost next hops a MAC
picks one by a stable hash, which spreads hosts over a fat-tree's core switches.
The graph is a networkx MultiGraph (parallel links between two switches are fine).
"""
import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Dict, FrozenSet, Iterable, List, Tuple

import networkx as nx

from flows import app_plan, lldp
from flows.dpid import format as format_dpid
from flows.spec import CONTROLLER, FlowSpec, Match, Output, Owner

APP = "topology"
DISCOVERY = Owner(APP, "lldp")       # LLDP frames go to the controller
FLOOD_GUARD = Owner(APP, "flood")    # the flood tree: allowed in-ports and out-ports

SwitchPort = Tuple[int, int]  # (dpid, port number)

# Inside the topology app's bands (controller/pipeline.py BANDS, which validation holds
# them to): LLDP above every ingress classification; in l2_dst above the learning app's
# miss, below known hosts; in flood above the learning app's flood, below per-VLAN lists.
_LLDP_PRIORITY = 1000
_ALLOW, _DENY = 3, 2
_FLOOD = 2


@dataclass(frozen=True, order=True)
class Link:
    """A switch-to-switch link; `a` < `b` so each link has one spelling."""
    a: SwitchPort
    b: SwitchPort

    @classmethod
    def between(cls, one: SwitchPort, other: SwitchPort) -> "Link":
        return cls(*sorted((one, other)))

    def port_at(self, dpid: int) -> int:
        return self.a[1] if self.a[0] == dpid else self.b[1]

    def far_end(self, dpid: int) -> int:
        return self.b[0] if self.a[0] == dpid else self.a[0]

    def __str__(self):  # as the logs write a link
        return f"{format_dpid(self.a[0])}:{self.a[1]} - {format_dpid(self.b[0])}:{self.b[1]}"


@dataclass(frozen=True)
class Fabric:
    switches: FrozenSet[int]
    links: FrozenSet[Link]
    edge: FrozenSet[SwitchPort]
    tree: FrozenSet[Link] = field(compare=False)

    @cached_property
    def graph(self) -> nx.MultiGraph:
        return _graph(self.switches, self.links)

    def core_ports(self, dpid: int) -> FrozenSet[int]:
        return frozenset(end[1] for link in self.links for end in (link.a, link.b)
                         if end[0] == dpid)

    def tree_ports(self, dpid: int) -> FrozenSet[int]:
        return frozenset(end[1] for link in self.tree for end in (link.a, link.b)
                         if end[0] == dpid)

    def edge_ports(self, dpid: int) -> FrozenSet[int]:
        return frozenset(port for switch, port in self.edge if switch == dpid)

    def flood_ports(self, dpid: int) -> FrozenSet[int]:
        """Where a flooded frame may go out and where one may come in from."""
        return self.edge_ports(dpid) | self.tree_ports(dpid)

    def is_edge(self, dpid: int, port: int) -> bool:
        return (dpid, port) in self.edge

    @cached_property
    def _distances(self) -> Dict[int, Dict[int, int]]:
        return {}  # home dpid -> hop counts to it, filled as next_hops asks

    def hops_to(self, home: int) -> Dict[int, int]:
        """{dpid: hop count to `home`} for every switch that can reach it."""
        if home not in self.switches:
            return {}
        distance = self._distances.get(home)
        if distance is None:
            distance = self._distances[home] = nx.single_source_shortest_path_length(
                self.graph, home)
        return distance

    def next_hops(self, home: int, key: str) -> Dict[int, int]:
        """{dpid: port towards `home`} for every other switch that can reach it, on a
        shortest path; `key` (a MAC) chooses among equal-cost next hops."""
        distance = self.hops_to(home)
        hops = {}
        for dpid, hops_away in distance.items():
            if dpid == home:
                continue
            choices = sorted((link.far_end(dpid), link.port_at(dpid))
                             for _, _, link in self.graph.edges(dpid, keys=True)
                             if distance.get(link.far_end(dpid)) == hops_away - 1)
            hops[dpid] = choices[_stable_hash(f"{key}@{dpid:x}") % len(choices)][1]
        return hops


def _stable_hash(text: str) -> int:
    # Per switch, and not CRC32: CRC is linear, so the low bits chosen at one hop
    # would follow those chosen at the previous one and leave some cores unused.
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "big")


def build(switches: Iterable[int], links: Iterable[Link], edge: Iterable[SwitchPort]) -> Fabric:
    """The fabric of these switches; links and edge ports of unknown switches are
    left out, and a port with a link is never an edge port."""
    switches = frozenset(switches)
    links = frozenset(link for link in links
                      if link.a[0] in switches and link.b[0] in switches and
                      link.a[0] != link.b[0])  # a cable between two ports of one switch
    core = {end for link in links for end in (link.a, link.b)}
    edge = frozenset(end for end in edge if end[0] in switches and end not in core)
    return Fabric(switches, links, edge, _spanning_tree(switches, links))


def _graph(switches: FrozenSet[int], links: FrozenSet[Link]) -> nx.MultiGraph:
    graph = nx.MultiGraph()
    graph.add_nodes_from(switches)
    for link in links:
        graph.add_edge(link.a[0], link.b[0], key=link)
    return graph


def _spanning_tree(switches: FrozenSet[int], links: FrozenSet[Link]) -> FrozenSet[Link]:
    graph = _graph(switches, links)
    tree = set()
    for component in nx.connected_components(graph):
        for parent, child in nx.bfs_edges(graph, min(component), sort_neighbors=sorted):
            tree.add(min(graph[parent][child]))  # of parallel links, the lowest ports
    return frozenset(tree)


# --- links shared by the nodes of a cluster (controller/shared_learned.py) ------------

def links_document(links: Iterable[Link]) -> dict:
    """What one node publishes: the links it heard itself, [a dpid, a port, b dpid,
    b port] each, sorted (the same links always make the same document)."""
    return {"links": [[link.a[0], link.a[1], link.b[0], link.b[1]] for link in sorted(set(links))]}


def links_of(document) -> FrozenSet[Link]:
    """The links of one node's document; ValueError when it is not one."""
    entries = document.get("links") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError("a links document is {\"links\": [[dpid, port, dpid, port], ...]}")
    links = set()
    for entry in entries:
        if not (isinstance(entry, list) and len(entry) == 4 and
                all(isinstance(n, int) and not isinstance(n, bool) for n in entry) and
                0 <= entry[0] < 1 << 64 and 0 <= entry[2] < 1 << 64 and
                0 < entry[1] < 1 << 32 and 0 < entry[3] < 1 << 32):
            raise ValueError(f"a link is [dpid, port, dpid, port] (a 64-bit datapath id, "
                             f"a 32-bit port number), not {entry!r}")
        links.add(Link.between((entry[0], entry[1]), (entry[2], entry[3])))
    return frozenset(links)


def age_links(seen: Dict[Link, float], present: Iterable[Link], now: float,
              timeout_s: float) -> List[Link]:
    """Links in `present` count as seen `now`; the others in `seen` stay until
    `timeout_s` after they were last seen, like a link whose LLDP stopped (so a dead
    node's links outlive its lease long enough for the new master to hear them).
    Updates `seen` in place; returns the links that timed out."""
    for link in present:
        seen[link] = now
    gone = sorted(link for link, when in seen.items() if now - when > timeout_s)
    for link in gone:
        del seen[link]
    return gone


def union_links(local: Iterable[Link], remote: Iterable[Link], is_live) -> FrozenSet[Link]:
    """The fabric's links: heard here, or by another node, whose two ends this node
    sees live (every node hears every port status, so a port down drops the link here
    at once, before its owner says so)."""
    return frozenset(local) | frozenset(link for link in remote
                                        if is_live(link.a) and is_live(link.b))


def discovery_trap() -> List[FlowSpec]:
    """Our LLDP frames go to the controller and nowhere else."""
    return [FlowSpec("ingress", _LLDP_PRIORITY,
                     Match.of(eth_type=lldp.ETH_TYPE_LLDP, eth_dst=lldp.LLDP_MAC), DISCOVERY,
                     actions=(Output(CONTROLLER, max_len=0xFFFF),))]


def flood_guard(fabric: Fabric, dpid: int) -> List[FlowSpec]:
    """One switch's share of the flood tree. A switch the fabric does not know yet
    floods nothing (every port is pending)."""
    allowed = sorted(fabric.flood_ports(dpid)) if dpid in fabric.switches else []
    return [FlowSpec("l2_dst", _ALLOW, Match.of(in_port=port), FLOOD_GUARD, goto="flood")
            for port in allowed] + [
        FlowSpec("l2_dst", _DENY, Match(), FLOOD_GUARD),
        FlowSpec("flood", _FLOOD, Match(), FLOOD_GUARD,
                 actions=tuple(Output(port) for port in allowed)),
    ]


def allowed_in_ports(guard: Iterable[FlowSpec]) -> FrozenSet[int]:
    """The ports a flood guard (as read back from a switch) lets floods come in from."""
    return frozenset(spec.match.get("in_port") for spec in guard
                     if spec.table == "l2_dst" and spec.priority == _ALLOW)


def describe(fabric: Fabric) -> dict:
    """The fabric for the REST API (dpids as 16 hex digits, as everywhere else)."""
    def end(switch_port):
        return {"dpid": format_dpid(switch_port[0]), "port": switch_port[1]}

    return {
        "switches": [format_dpid(dpid) for dpid in sorted(fabric.switches)],
        "links": [{"a": end(link.a), "b": end(link.b), "in_tree": link in fabric.tree}
                  for link in sorted(fabric.links)],
        "edge_ports": [end(port) for port in sorted(fabric.edge)],
        "flood_tree": [{"a": end(link.a), "b": end(link.b)} for link in sorted(fabric.tree)],
    }


def port_role(fabric: Fabric, dpid: int, port: int) -> str:
    """edge (hosts), tree (floods), blocked (a link off the tree: unicast only) or
    pending (not decided yet)."""
    if (dpid, port) in fabric.edge:
        return "edge"
    if port in fabric.tree_ports(dpid):
        return "tree"
    if port in fabric.core_ports(dpid):
        return "blocked"
    return "pending"


@dataclass(frozen=True)
class TopologySettings:
    """The `topology` config section."""
    lldp_interval_s: float = 1.0   # LLDP out of every live port this often
    link_timeout_s: float = 3.5    # a link not heard of for this long is gone
    edge_after_s: float = 3.0      # a live port without LLDP for this long faces hosts

    def __post_init__(self):
        for name in ("lldp_interval_s", "link_timeout_s", "edge_after_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
        if self.link_timeout_s <= self.lldp_interval_s or self.edge_after_s <= self.lldp_interval_s:
            raise ValueError("link_timeout_s and edge_after_s must be longer than "
                             "lldp_interval_s (a port needs a chance to hear LLDP)")


# --- the plan protocol (flows/app_plan.py) ----------------------------------------------

NOT_PLANNED = "depends on the links LLDP finds"
# with the topology app every switch is in its fabric (a bonded bridge too: flows/bond.py)
CONFIGURED_FACTS = {app_plan.IN_FABRIC: True}
