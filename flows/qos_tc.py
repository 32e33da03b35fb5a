"""tc: the classifier for OVS's userspace datapath (netdev), where `set_queue` is
lost (OVS sends through an AF_PACKET socket without the packet's priority): the same
rules rendered as u32 filters on the egress device, a short head-drop leaf per HTB
class, and the checks that a device still carries them (see docs/qos-design-notes.md).
"""
import ipaddress
from dataclasses import dataclass
from typing import Dict, FrozenSet, Iterable, List, Optional, Tuple

from flows.qos_model import PortQos
from flows.qos_rules import IPV4, L4_PORTS, Rule

SKB_TRUESIZE = 2304        # kernel accounting of one full-size frame in a socket buffer
# Leaves drop from the head: a full tail-drop pfifo makes the AF_PACKET send fail with
# ENOBUFS, and OVS (netdev_linux_sock_batch_send) then throws away the rest of that
# sendmmsg batch, up to 31 packets of any class, counted nowhere. pfifo_head_drop drops
# the class's oldest packet and returns NET_XMIT_CN, which AF_PACKET reports as sent.
LEAF_KIND = "pfifo_head_drop"
LEAF_HANDLE_BASE = 0x2000  # not the 0x1000 of the earlier pfifo leaves: tc cannot
                           # replace a qdisc by one of another kind under the same handle


@dataclass(frozen=True)
class TcFilter:
    pref: int
    protocol: str
    selectors: Tuple[str, ...]
    classid: str

    def identity(self) -> "TcFilterId":
        """How the filter reads back from `tc -j filter show` (see u32_keys)."""
        protocol = self.protocol   # "ip", "all" or 0x....: tc names some, brackets others
        if protocol.startswith("0x"):
            protocol = _TC_PROTOCOL_NAMES.get(protocol, f"[{int(protocol, 16)}]")
        return self.pref, self.classid, protocol, u32_keys(self.selectors)


# (pref, flowid, protocol as tc prints it, u32 keys): a filter as tc holds it
TcFilterId = Tuple[int, str, str, FrozenSet[Tuple[int, int, int]]]
_TC_PROTOCOL_NAMES = {"0x0806": "arp", "0x86dd": "ipv6", "0x8100": "802.1Q",
                      "0x88a8": "802.1ad", "0x8847": "mpls_uc", "0x8848": "mpls_mc",
                      "0x88cc": "LLDP"}
_IP_FIELD_OFFSET = {"src": 12, "dst": 16}
# ether addresses sit before the IP header: (offset, bytes of the address, shift) per word
_ETHER_WORDS = {"dst": ((-16, slice(0, 2), 0), (-12, slice(2, 6), 0)),
                "src": ((-8, slice(0, 4), 0), (-4, slice(4, 6), 16))}


def u32_keys(selectors: Iterable[str]) -> FrozenSet[Tuple[int, int, int]]:
    """The (value, mask, offset) 32-bit keys tc makes of our `match ...` selectors,
    merged per offset as tc does: what `tc -j filter show` prints for the filter, so a
    device's filters can be compared with a plan without trusting who wrote them."""
    words: Dict[int, List[int]] = {}

    def key(off, value, mask):
        word = words.setdefault(off, [0, 0])
        word[0] |= value & mask
        word[1] |= mask
    for selector in selectors:
        parts = selector.split()
        at = int(parts[5], 0) if parts[4:5] == ["at"] else 0
        if parts[:2] == ["match", "u32"]:
            key(at, int(parts[2], 0), int(parts[3], 0))
        elif parts[:2] == ["match", "u16"]:   # tc packs it into the word it sits in
            shift = 16 if at & 3 == 0 else 0
            key(at & ~3, int(parts[2], 0) << shift, int(parts[3], 0) << shift)
        elif parts[1:3] in (["ip", "src"], ["ip", "dst"]):
            net = ipaddress.ip_network(parts[3], strict=False)
            key(_IP_FIELD_OFFSET[parts[2]], int(net.network_address), int(net.netmask))
        elif parts[1:3] == ["ip", "protocol"]:
            key(8, int(parts[3], 0) << 16, int(parts[4], 0) << 16)
        elif parts[1:3] in (["ip", "sport"], ["ip", "dport"]):
            shift = 16 if parts[2] == "sport" else 0
            key(20, int(parts[3], 0) << shift, int(parts[4], 0) << shift)
        elif parts[1:3] in (["ether", "src"], ["ether", "dst"]):
            octets = bytes(int(b, 16) for b in parts[3].split(":"))
            for off, part, shift in _ETHER_WORDS[parts[2]]:
                chunk = octets[part]
                mask = (1 << 8 * len(chunk)) - 1
                key(off, int.from_bytes(chunk, "big") << shift, mask << shift)
        else:
            raise ValueError(f"no u32 key for selector {selector!r}")
    return frozenset((value, mask, off) for off, (value, mask) in words.items())


@dataclass(frozen=True)
class TcPlan:
    leaves: Tuple[Tuple[str, str, int], ...]   # (classid, leaf qdisc handle, LEAF_KIND limit)
    filters: Tuple[TcFilter, ...]


def htb_classid(queue_id: int) -> str:
    """OVS gives queue N the HTB class 1:(N+1) (tc writes minors in hex); 1:fffe is the root."""
    return "1:%x" % (queue_id + 1)


def leaf_limit(socket_buffer_bytes: int, queues: int) -> int:
    """Packets each leaf may hold so that all leaves together fit, with room to spare,
    in OVS's AF_PACKET socket buffer (net.core.wmem_default): then a full class
    drops its own packets instead of the socket refusing everyone's (EAGAIN, which
    loses the rest of OVS's batch whatever its class). Deeper leaves hold longer
    bursts, but then one flooded class fills the socket: with 1000-packet leaves a
    ping in another class lost 92-96 % during a flood (docs/qos-loss-notes.md)."""
    budget = socket_buffer_bytes // SKB_TRUESIZE * 2 // 3
    return max(4, budget // max(1, queues))


def _selectors(rule: Rule, tagged: bool = False) -> Tuple[str, ...]:
    """tc's view of the rule's match. `tagged`: for frames that leave with an 802.1Q
    tag (a trunk port), see _tagged_filter."""
    out = []
    for name, value in rule.match:
        if name in ("ipv4_src", "ipv4_dst"):
            prefix = value if "/" in str(value) else f"{value}/32"
            out.append(f"match ip {name[5:]} {prefix}")
        elif name == "ip_proto":
            out.append(f"match ip protocol {value} 0xff")
        elif name in L4_PORTS:   # fixed offsets: IPv4 without options, as tc's `ip sport` assumes
            out.append(f"match ip {'sport' if name.endswith('src') else 'dport'} {value} 0xffff")
        elif name in ("eth_src", "eth_dst") and tagged:
            octets = bytes(int(b, 16) for b in value.split(":"))
            for off, part, shift in _ETHER_WORDS[name[4:]]:
                chunk = octets[part]
                mask = ((1 << 8 * len(chunk)) - 1) << shift
                out.append("match u32 0x%08x 0x%08x at %d"
                           % (int.from_bytes(chunk, "big") << shift, mask, off - _TAG))
        elif name in ("eth_src", "eth_dst"):
            out.append(f"match ether {name[4:]} {value}")
    return tuple(out) or ("match u32 0 0",)


_TAG = 4   # bytes of an 802.1Q tag


def _tagged_filter(rule: Rule, pref: int, classid: str) -> Optional["TcFilter"]:
    """The rule's filter for frames that leave tagged (issue 16, 5: on a trunk port the
    untagged filter never matched, everything went to the default class).

    What tc sees of a tagged frame OVS's userspace datapath sends through its AF_PACKET
    socket (seen on Linux 6.18; the kernel parses the header of what a raw socket sends
    and puts the network header behind the VLAN tags): the protocol is 802.1Q and the
    network offset is the IP header, so `match ip ...` keys hold as they are, the
    EtherType behind the tag is the 16 bits just before it (at -2) and the MACs sit 4
    bytes further back than tc's `match ether` assumes. None when the untagged filter
    already takes tagged frames as well (a catch-all of protocol all)."""
    protocol = _protocol(rule)
    selectors = _selectors(rule, tagged=True)
    if protocol != "all":
        selectors = ("match u16 0x%04x 0xffff at -2" % rule.field("eth_type"),) \
            + tuple(x for x in selectors if x != "match u32 0 0")
    elif selectors == ("match u32 0 0",):
        return None
    return TcFilter(pref, "0x8100", selectors, classid)


def _protocol(rule: Rule) -> str:
    eth_type = rule.field("eth_type")
    if eth_type is None:
        return "all"
    return "ip" if eth_type == IPV4 else "0x%04x" % eth_type


def tc_plan(port: int, qos: PortQos, rules: Iterable[Rule], socket_buffer_bytes: int) -> TcPlan:
    """The leaf qdiscs and u32 filters that make `port`'s HTB classes see the rules
    that send traffic to its queues. Filter preference follows rule priority
    (then id): tc tries lower prefs first, OpenFlow higher priorities."""
    limit = leaf_limit(socket_buffer_bytes, len(qos.queues))
    leaves = tuple((htb_classid(q.queue_id), "%x:" % (LEAF_HANDLE_BASE + q.queue_id), limit)
                   for q in qos.queues)
    mine = [r for r in rules if r.queue is not None and qos.queue(r.queue) is not None
            and r.port in (None, port)]
    mine.sort(key=lambda r: (-r.priority, r.rule_id))
    # two prefs per rule, untagged then tagged, so rule order holds for tagged frames
    # too (a protocol-all filter sees them as well); one pref holds one protocol in tc
    filters = []
    for i, rule in enumerate(mine):
        classid = htb_classid(rule.queue)
        filters.append(TcFilter(100 + 2 * i, _protocol(rule), _selectors(rule), classid))
        tagged = _tagged_filter(rule, 101 + 2 * i, classid)
        if tagged is not None:
            filters.append(tagged)
    return TcPlan(leaves, tuple(filters))


def tc_batch(device: str, plan: TcPlan) -> List[str]:
    """`tc -batch` lines that replace our filters and leaves on `device`."""
    lines = [f"filter del dev {device} parent 1:"]
    lines += [f"qdisc replace dev {device} parent {classid} handle {handle} {LEAF_KIND} "
              f"limit {limit}"
              for classid, handle, limit in plan.leaves]
    lines += [f"filter add dev {device} parent 1: protocol {f.protocol} prio {f.pref} u32 "
              f"{' '.join(f.selectors)} flowid {f.classid}" for f in plan.filters]
    return lines


def tc_in_place(plan: TcPlan, filters: FrozenSet[TcFilterId],
                leaves: Dict[str, Tuple[str, int]]) -> bool:
    """Whether a device already carries `plan`: exactly its filters (read back, see
    TcFilter.identity) and its leaves (OVS rebuilding a tree loses both; a tail-drop
    pfifo left by an earlier version is replaced)."""
    return (filters == {f.identity() for f in plan.filters}
            and all(leaves.get(classid) == (LEAF_KIND, limit)
                    for classid, _, limit in plan.leaves))


def tc_tree_problems(qos: PortQos, root_qdisc: Optional[Tuple[str, str]],
                     classes: Dict[str, Tuple[int, int]]) -> List[str]:
    """How the HTB tree read from a device (root qdisc (kind, handle); classid ->
    (rate, ceil) in bit/s) differs from what OVSDB describes; [] when it matches.
    Something else replacing OVS's tree (Mininet's TCLink(bw=...) does) shows here."""
    if root_qdisc != ("htb", "1:"):
        found = "no root qdisc" if root_qdisc is None else 'root qdisc "%s %s"' % root_qdisc
        return [f"expected OVS's htb 1: tree, found {found}; something else (e.g. Mininet's "
                f"TCLink bw=...) replaced it: PUT the port's QoS again to rebuild it"]
    want = {"1:fffe": (qos.max_rate, qos.max_rate)}
    want.update({htb_classid(q.queue_id): (q.min_rate, q.max_rate) for q in qos.queues})
    problems = []
    for classid, (rate, ceil) in sorted(want.items()):
        if classid not in classes:
            problems.append(f"class {classid} is missing")
            continue
        have_rate, have_ceil = classes[classid]
        for what, wanted, have in (("rate", rate, have_rate), ("ceil", ceil, have_ceil)):
            # tc rounds rates; OVS raises tiny min-rates to one frame's worth
            if abs(have - wanted) > max(0.02 * wanted, 16000):
                problems.append(f"class {classid} {what} is {have} bit/s, OVSDB says {wanted}")
    return problems
