"""Hosts the nodes of a cluster share (reactive learning on a fabric).

A host is learned by the master of the switch it attaches to (only it gets the
packet-in). The other nodes must route to it on their switches too: without a route a
switch floods frames to it as unknown unicast along the tree, and that flood meets the
routes of the host's own node on the way (duplicates: seen on a triangle split over two
nodes, 4 in 5 pings). So each node publishes the hosts it learned at edge ports of the
switches it masters (controller/shared_learned.py), and routes to the other nodes' as
to its own. Pure: the apps/l2_switch.py glue passes tables and documents in.
"""
import re
from typing import Callable, Dict, Iterable, Mapping, Optional, Tuple

Key = Tuple[Optional[int], str]      # (vlan, mac), as the MAC tables key hosts
Home = Tuple[int, int]               # (dpid, port)


def hosts_document(tables: Mapping, is_edge: Callable[[int, int], bool],
                   mine: Callable[[int], bool]) -> dict:
    """{"hosts": [[vlan, mac, dpid, port], ...]} (sorted): the hosts in the MAC tables
    (dpid -> MacTable) of switches this node masters (`mine`), at edge ports."""
    hosts = sorted(((entry.vlan, entry.mac, dpid, entry.port)
                    for dpid, macs in tables.items() if mine(dpid)
                    for entry in macs.entries() if is_edge(dpid, entry.port)),
                   key=lambda host: (host[0] is not None, host[0] or 0) + host[1:])
    return {"hosts": [list(host) for host in hosts]}


def hosts_of(document) -> Dict[Key, Home]:
    """{(vlan, mac): (dpid, port)} of one node's document; ValueError when it is none."""
    entries = document.get("hosts") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError("a hosts document is {\"hosts\": [[vlan, mac, dpid, port], ...]}")
    hosts = {}
    for entry in entries:
        if not (isinstance(entry, list) and len(entry) == 4 and isinstance(entry[1], str)
                and _MAC.match(entry[1]) and (entry[0] is None or _whole(entry[0], 4096))
                and _whole(entry[2], 1 << 64) and _whole(entry[3], 1 << 32)
                and entry[3] > 0):
            raise ValueError(f"a host is [vlan (0-4095) or null, mac (xx:xx:xx:xx:xx:xx), "
                             f"dpid (64 bits), port (32 bits)], not {entry!r}")
        hosts[(entry[0], entry[1].lower())] = (entry[2], entry[3])
    return hosts


_MAC = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}\Z")


def _whole(value, below) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < below


def remote_hosts(documents: Iterable[Mapping[Key, Home]], local: Iterable[Key]
                 ) -> Dict[Key, Home]:
    """Where the other nodes' hosts are, leaving out the ones this node learned itself
    (it heard them last: its own word wins). A host two nodes both claim (it moved
    between their switches, and one has not noticed yet) goes to the lowest (dpid,
    port), so every node picks the same until the stale claim goes."""
    local, out = set(local), {}
    for hosts in documents:
        for key, home in hosts.items():
            if key not in local and (key not in out or home < out[key]):
                out[key] = home
    return out


def changes(old: Mapping[Key, Home], new: Mapping[Key, Home]):
    """(hosts to route now: {key: home}, hosts to unroute: [key]) going from old to new."""
    moved = {key: home for key, home in sorted(new.items(), key=_order)
             if old.get(key) != home}
    return moved, sorted((key for key in old if key not in new), key=lambda key: _order((key,)))


def _order(item):
    (vlan, mac) = item[0]
    return (vlan is not None, vlan or 0, mac)
