"""Spreading a destination subnet over ports, without NAT: the load balancer's
"spread" mode, as the course's exercise does it with

    ovs-ofctl add-group br 'group_id=1,type=select,selection_method=dp_hash,
                            bucket=output:2,bucket=output:3'
    ovs-ofctl add-flow br 'ip,nw_dst=192.168.2.0/24,actions=group:1'

Every IPv4 packet to the subnet goes through a select group with one bucket per
port, which sends it out unchanged; OVS picks the bucket by a hash of the packet's
addresses and ports, so one flow stays on one port.

The selection method. OVS reads a group's selection_method only from OpenFlow 1.5
group-mods (and OpenFlow 1.0 with its Nicira group-mod): an OpenFlow 1.1-1.4
group-mod has no properties, and what follows the buckets is parsed as more buckets
(lib/ofp-group.c; OVS 3.1 decodes such a message as OFPGMFC_BAD_BUCKET). This controller speaks OpenFlow 1.3, so it cannot name the method;
it does not need to: a select group without one gets dp_hash from OVS (ofproto-dpif.c
group_set_selection_method, since 2.10: a symmetric L4 datapath hash over a table of
16-256 slots) whenever the bucket weights fit such a table, which equal weights on up
to 256 ports always do. The datapath flows show it as `hash(sym_l4(0))` followed by
a recirculation that matches `dp_hash`. What differs from an explicit
`selection_method=dp_hash`: the hash is the symmetric variant (both directions of a
flow hash alike), and `dump-groups` does not print the method.

One spread lives on one switch (its ports are that switch's). Its entry is below
every VIP entry of the `vip` table, so a VIP inside a spread subnet is still a VIP.
The frames leave as the pipeline carries them: for the LB alone (untagged), not
behind the VLAN app's tags.
"""
import ipaddress
from dataclasses import dataclass
from typing import Callable, Iterable, List, Optional, Sequence, Tuple

from flows import dpid as dpids
from flows.body import only_keys
from flows.spec import (Bucket, FlowDelete, FlowSpec, Group, GroupDelete, GroupRef, GroupSpec,
                        Match, Output, Owner)

APP = "lb"
IPV4 = 0x0800
PRIO_SPREAD = 120
MAX_SPREADS = 0xFFFF
MIN_PORTS, MAX_PORTS = 2, 64
SELECTION = "dp_hash"   # what OVS picks for these groups (see the module's doc)


@dataclass(frozen=True)
class Spread:
    spread_id: int
    dpid: int
    subnet: str            # "192.168.2.0/24"
    ports: Tuple[int, ...]

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)


def spread_owner(spread_id: int) -> Owner:
    return Owner(APP, "spread", spread_id)


def spread_ref(spread_id: int) -> GroupRef:
    return GroupRef(spread_owner(spread_id), spread_id)


# --- intent ------------------------------------------------------------------------

def _subnet(value) -> ipaddress.IPv4Network:
    if not isinstance(value, str):
        raise ValueError(f"subnet must be an IPv4 prefix like 192.168.2.0/24, not {value!r}")
    try:
        return ipaddress.IPv4Network(value)
    except ValueError as err:
        raise ValueError(f"subnet must be an IPv4 prefix like 192.168.2.0/24: {err}") from None


def spread_from_dict(spread_id: int, dpid: int, body,
                     resolve: Callable[[object], int]) -> Spread:
    """A spread from {"subnet", "ports"} (and "switch", read by the caller into `dpid`);
    `resolve(ref)` turns a port number or name into the switch's port number, raising
    ValueError for a port it does not have."""
    only_keys(body, ("subnet", "switch", "ports"), "spread")
    missing = [k for k in ("subnet", "ports") if k not in body]
    if missing:
        raise ValueError(f"a spread needs {', '.join(missing)}")
    net = _subnet(body["subnet"])
    raw = body["ports"]
    if not isinstance(raw, list) or not MIN_PORTS <= len(raw) <= MAX_PORTS:
        raise ValueError(f"ports must be a list of {MIN_PORTS} to {MAX_PORTS} ports "
                         f"(numbers or names), not {raw!r}")
    if any(isinstance(p, bool) or not isinstance(p, (int, str)) for p in raw):
        raise ValueError(f"ports are numbers or names, not {raw!r}")
    ports = tuple(resolve(p) for p in raw)
    if len(set(ports)) != len(ports):
        raise ValueError(f"a port is listed twice: {raw}")
    if not 1 <= spread_id <= MAX_SPREADS:
        raise ValueError(f"spread id must be 1..{MAX_SPREADS}, not {spread_id}")
    return Spread(spread_id, dpid, str(net), ports)


def overlapping(spread: Spread, others: Iterable[Spread]) -> Optional[Spread]:
    """Another spread of the same switch whose subnet overlaps this one's: a packet
    to the overlap would have two groups to go to."""
    return next((o for o in others if o.spread_id != spread.spread_id and o.dpid == spread.dpid
                 and o.network.overlaps(spread.network)), None)


def spread_to_dict(spread: Spread) -> dict:
    return {"id": spread.spread_id, "switch": dpids.format(spread.dpid), "subnet": spread.subnet,
            "ports": list(spread.ports), "selection_method": SELECTION}


def body_of(spread: Spread) -> dict:
    """What is stored of a spread (the REST body it was made from, ports as numbers)."""
    return {"subnet": spread.subnet, "switch": dpids.format(spread.dpid),
            "ports": list(spread.ports)}


# --- flows --------------------------------------------------------------------------

def spread_flows(spread: Spread) -> List:
    """The spread's select group, a bucket per port that outputs the packet as it is,
    and the entry that sends the subnet's IPv4 packets to it."""
    net = spread.network
    ref = spread_ref(spread.spread_id)
    group = GroupSpec(ref, "select", tuple(Bucket((Output(port),)) for port in spread.ports))
    entry = FlowSpec("vip", PRIO_SPREAD,
                     Match.of(eth_type=IPV4,
                              ipv4_dst=(str(net.network_address), str(net.netmask))),
                     spread_owner(spread.spread_id), actions=(Group(ref),))
    return [group, entry]


def forget_spread(spread_id: int) -> List:
    """Everything of one spread: its entry, then its group."""
    return [FlowDelete(spread_owner(spread_id)), GroupDelete(spread_ref(spread_id))]


def spreads_on(spreads: Sequence[Spread], dpid: int) -> List:
    """Everything of the spreads of switch `dpid`."""
    return [item for s in sorted(spreads, key=lambda s: s.spread_id) if s.dpid == dpid
            for item in spread_flows(s)]
