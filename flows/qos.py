"""QoS intent -> flows, OVSDB rows and tc filters: HTB queues per port, rules that
classify traffic into a queue or through a meter, and ingress policing.

Rates are bit/s and bursts bits everywhere in here ("10M", "500k" are parsed at the
door); OVSDB's and OpenFlow's kbit/s appear only at the edges.

How a packet reaches its queue depends on the datapath (see docs/qos-design-notes.md):
- `system` (kernel): the rule's `set_queue` sets the packet's priority, the port's
  HTB tree (created by OVS from the QoS/Queue rows) puts it in that queue's class.
- `netdev` (userspace): OVS sends through an AF_PACKET socket without the priority, so
  `set_queue` is lost. The same rules are rendered as tc u32 filters on the egress
  device (`tc_plan`), each leaf class gets a short head-drop fifo so drops happen per
  class and not in OVS's shared socket buffer nor in the rest of OVS's send batch,
  and ingress policing becomes a meter.
"""
import ipaddress
import math
import re
from dataclasses import dataclass
from typing import Callable, Dict, FrozenSet, Iterable, List, Optional, Tuple

from flows import egress
from flows.body import only_keys
from flows.spec import FlowDelete, FlowSpec, Match, MeterDelete, MeterRef, MeterSpec, \
    Owner, SetQueue

APP = "qos"
RULES = Owner(APP, "rule")
EGRESS = Owner(APP, "egress")      # the redirects that carry a rule's port to the egress stage
POLICE = Owner(APP, "police")
MAX_QUEUE_ID = 1023        # keeps the tc leaf handles (0x2000 + id) distinct from 1:
MAX_RULE_ID = 0xFFFF       # rule ids double as meter numbers
DEFAULT_RULE_PRIORITY = 100
POLICE_PRIORITY = 10
HTB_PRIORITIES = range(0, 8)   # HTB class prio: 0 is served first

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(?:bit|bps|b)?(?:/s)?\s*$", re.IGNORECASE)
_SCALE = {"": 1, "k": 10 ** 3, "m": 10 ** 6, "g": 10 ** 9}


def parse_rate(value, what: str, allow_zero=False) -> int:
    """A rate (bit/s) or burst (bits): an int/float or a string like "10M", "1.5G", "500k"."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{what} must be a number of bits (e.g. 10000000 or \"10M\"), "
                         f"not {value!r}")
    if isinstance(value, str):
        found = _RATE.match(value)
        if not found:
            raise ValueError(f"{what} must be a number of bits (e.g. 10000000 or \"10M\"), "
                             f"not {value!r}")
        value = float(found.group(1)) * _SCALE[found.group(2).lower()]
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} must not be negative, got {value!r}")
    if value == 0 and not allow_zero:
        raise ValueError(f"{what} must be above 0")
    return int(round(value))


# --- the HTB tree of a port -------------------------------------------------------------

@dataclass(frozen=True)
class Queue:
    queue_id: int
    min_rate: int
    max_rate: int
    burst: Optional[int] = None
    priority: Optional[int] = None


@dataclass(frozen=True)
class Policing:
    """A rate limit: ingress policing of a port, or a rule's meter."""
    rate: int
    burst: int


@dataclass(frozen=True)
class PortQos:
    max_rate: Optional[int] = None           # None: no HTB tree on this port
    queues: Tuple[Queue, ...] = ()
    policing: Optional[Policing] = None

    def queue(self, queue_id) -> Optional[Queue]:
        return next((q for q in self.queues if q.queue_id == queue_id), None)

    @property
    def queue_ids(self):
        return [q.queue_id for q in self.queues]


def as_int(value, what, low, high):
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{what} must be an integer {low}..{high}, not {value!r}")
    return value


def policing_from_dict(body, what) -> Policing:
    only_keys(body, ("rate", "burst"), what)
    if "rate" not in body:
        raise ValueError(f"{what} needs a rate")
    rate = parse_rate(body["rate"], f"{what} rate")
    # Default burst: 10 % of a second's worth, at least ten full-size frames.
    burst = parse_rate(body.get("burst", max(rate // 10, 10 * 1500 * 8)), f"{what} burst")
    return Policing(rate, burst)


def _queue_from_dict(queue_id, body, port_max) -> Queue:
    where = f"queue {queue_id}"
    only_keys(body, ("min_rate", "max_rate", "burst", "priority"), where)
    if "min_rate" not in body:
        raise ValueError(f"{where} needs a min_rate (the rate it is guaranteed)")
    min_rate = parse_rate(body["min_rate"], f"{where} min_rate", allow_zero=True)
    max_rate = parse_rate(body.get("max_rate", port_max), f"{where} max_rate")
    if min_rate > max_rate:
        raise ValueError(f"{where}: min_rate {min_rate} is above its max_rate {max_rate}")
    if max_rate > port_max:
        raise ValueError(f"{where}: max_rate {max_rate} is above the port's max_rate {port_max}")
    burst = parse_rate(body["burst"], f"{where} burst") if "burst" in body else None
    priority = None
    if "priority" in body:
        priority = as_int(body["priority"], f"{where} priority", HTB_PRIORITIES.start,
                        HTB_PRIORITIES.stop - 1)
    return Queue(queue_id, min_rate, max_rate, burst, priority)


def port_qos_from_dict(body) -> PortQos:
    """Validate a port's QoS as the REST API and config file give it:
    {"max_rate": "10M", "queues": {"0": {"min_rate": "3M", "max_rate": "10M"}, ...},
     "ingress_policing": {"rate": "5M", "burst": "500k"}}"""
    only_keys(body, ("max_rate", "queues", "ingress_policing"), "port QoS")
    if not any(k in body for k in ("max_rate", "queues", "ingress_policing")):
        raise ValueError("port QoS needs max_rate and queues (an HTB tree), "
                         "ingress_policing, or both")
    max_rate, queues = None, ()
    if "max_rate" in body or "queues" in body:
        if "max_rate" not in body:
            raise ValueError("queues need the port's max_rate")
        max_rate = parse_rate(body["max_rate"], "max_rate")
        raw = body.get("queues")
        if not isinstance(raw, dict) or not raw:
            raise ValueError('queues must be a non-empty object of queue id -> settings, '
                             'e.g. {"0": {"min_rate": "3M"}}')
        ids = [as_int(k, "a queue id", 0, MAX_QUEUE_ID) for k in raw]
        if len(set(ids)) != len(ids):
            raise ValueError(f"queue ids repeat: {sorted(raw)}")
        queues = tuple(sorted((_queue_from_dict(i, v, max_rate) for i, v in zip(ids, raw.values())),
                              key=lambda q: q.queue_id))
        total = sum(q.min_rate for q in queues)
        if total > max_rate:
            raise ValueError(f"the queues' min_rates add up to {total}, above the port's "
                             f"max_rate {max_rate}")
    policing = None
    if body.get("ingress_policing") is not None:
        policing = policing_from_dict(body["ingress_policing"], "ingress_policing")
    return PortQos(max_rate, queues, policing)


def port_qos_to_dict(qos: PortQos) -> dict:
    out = {}
    if qos.max_rate is not None:
        out["max_rate"] = qos.max_rate
        out["queues"] = {str(q.queue_id): {k: v for k, v in (
            ("min_rate", q.min_rate), ("max_rate", q.max_rate), ("burst", q.burst),
            ("priority", q.priority)) if v is not None} for q in qos.queues}
    if qos.policing is not None:
        out["ingress_policing"] = {"rate": qos.policing.rate, "burst": qos.policing.burst}
    return out


def ovsdb_queue_configs(qos: PortQos) -> Dict[int, Dict[str, str]]:
    """Queue id -> the Queue row's other_config, as `ovs-vsctl create queue` takes it."""
    configs = {}
    for q in qos.queues:
        config = {"min-rate": str(q.min_rate), "max-rate": str(q.max_rate)}
        if q.burst is not None:
            config["burst"] = str(q.burst)
        if q.priority is not None:
            config["priority"] = str(q.priority)
        configs[q.queue_id] = config
    return configs


def ovsdb_policing(policing: Optional[Policing]) -> Tuple[int, int]:
    """Interface ingress_policing_rate/_burst (kbit/s, kbit); (0, 0) switches it off."""
    if policing is None:
        return 0, 0
    return -(-policing.rate // 1000), -(-policing.burst // 1000)


# --- classification rules -------------------------------------------------------------

PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17}
IPV4 = 0x0800
_L4 = {"tcp_src": 6, "tcp_dst": 6, "udp_src": 17, "udp_dst": 17}
MATCH_FIELDS = ("in_port", "eth_src", "eth_dst", "eth_type", "vlan_vid", "ipv4_src",
                "ipv4_dst", "ip_proto", *_L4)
# What a tc filter on the egress device cannot see.
NOT_VISIBLE_TO_TC = ("in_port", "vlan_vid")


@dataclass(frozen=True)
class Rule:
    rule_id: int
    match: Tuple[Tuple[str, object], ...]   # normalised (field, value), sorted
    priority: int = DEFAULT_RULE_PRIORITY
    queue: Optional[int] = None
    port: Optional[int] = None               # with a queue: enqueue (set_queue, out by port)
    meter: Optional[Policing] = None

    def field(self, name, default=None):
        return dict(self.match).get(name, default)


def _ipv4(value, what):
    try:
        net = ipaddress.IPv4Network(value, strict=False)
    except (ValueError, TypeError):
        raise ValueError(f"{what} must be an IPv4 address or prefix, not {value!r}") from None
    return str(net.network_address) if net.prefixlen == 32 else str(net)


def match_from_dict(raw, resolve_port: Callable) -> Tuple[Tuple[str, object], ...]:
    """Validate and normalise a rule's match; adds the prerequisites OpenFlow needs
    (eth_type for IP fields, ip_proto for L4 ports) and rejects conflicting ones."""
    only_keys(raw, MATCH_FIELDS, "match")
    fields = {}
    for name, value in raw.items():
        if name == "in_port":
            fields[name] = resolve_port(value)
        elif name in ("eth_src", "eth_dst"):
            fields[name] = Match.of(**{name: value}).get(name)
        elif name == "eth_type":
            if isinstance(value, str) and value.lower().startswith("0x"):
                try:
                    value = int(value, 16)
                except ValueError:
                    pass
            fields[name] = as_int(value, "eth_type", 0x600, 0xFFFF)
        elif name == "vlan_vid":
            fields[name] = as_int(value, "vlan_vid", 1, 4094)
        elif name in ("ipv4_src", "ipv4_dst"):
            fields[name] = _ipv4(value, name)
        elif name == "ip_proto":
            if isinstance(value, str) and value.lower() in PROTOCOLS:
                value = PROTOCOLS[value.lower()]
            fields[name] = as_int(value, "ip_proto (a number or tcp, udp, icmp)", 0, 255)
        else:
            fields[name] = as_int(value, name, 0, 0xFFFF)
    for name, proto in _L4.items():
        if name in fields:
            if fields.setdefault("ip_proto", proto) != proto:
                raise ValueError(f"{name} needs ip_proto {proto}, not {fields['ip_proto']}")
    if any(n in fields for n in ("ipv4_src", "ipv4_dst", "ip_proto")):
        if fields.setdefault("eth_type", IPV4) != IPV4:
            raise ValueError(f"IPv4 fields need eth_type 0x0800, not {fields['eth_type']:#06x}")
    return tuple(sorted(fields.items()))


def rule_from_dict(rule_id: int, body, resolve_port: Callable, ports: Dict[int, PortQos],
                   tc_classified: bool) -> Rule:
    """A rule from {"match": {...}, "queue": 1, "port": 4, "meter": {"rate": "2M"},
    "priority": 100}. `ports` is the switch's port QoS (queues must exist there);
    `tc_classified` says queues are picked by tc filters (netdev datapath)."""
    only_keys(body, ("match", "queue", "port", "meter", "priority"), "rule")
    if body.get("queue") is None and body.get("meter") is None:
        raise ValueError("a rule needs a queue, a meter, or both")
    match = match_from_dict(body.get("match") or {}, resolve_port)
    priority = as_int(body.get("priority", DEFAULT_RULE_PRIORITY), "priority", 1, 0xFFFF)
    port = resolve_port(body["port"]) if body.get("port") is not None else None
    queue = None
    if body.get("queue") is not None:
        queue = as_int(body["queue"], "queue", 0, MAX_QUEUE_ID)
        if port is not None:
            qos = ports.get(port)
            if qos is None or not qos.queues:
                raise ValueError(f"port {port} has no queues: configure its QoS first")
            if qos.queue(queue) is None:
                raise ValueError(f"port {port} has no queue {queue}; its queues are "
                                 f"{', '.join(map(str, qos.queue_ids))}")
        elif not any(q.queue(queue) for q in ports.values()):
            raise ValueError(f"no port of this switch has a queue {queue}")
        hidden = [name for name, _ in match if name in NOT_VISIBLE_TO_TC]
        if tc_classified and hidden:
            raise ValueError(
                f"this switch runs OVS's userspace datapath, where queues are chosen by tc "
                f"filters on the egress device, which cannot see {', '.join(hidden)}; match "
                f"on eth_src or ipv4_src instead (meters may use {', '.join(hidden)})")
    elif port is not None:
        raise ValueError("port names where a queue is; a meter-only rule has no port")
    meter = policing_from_dict(body["meter"], "meter") if body.get("meter") is not None else None
    return Rule(as_int(rule_id, "rule id", 1, MAX_RULE_ID), match, priority, queue, port, meter)


def switch_bodies(settings, overrides, is_named, resolve, problems=None):
    """({port: body}, {rule id: body}) of one switch: the config file's entries whose
    switch `is_named` this one, then `overrides` ({"ports": {..}, "rules": {..}}, from
    REST; None removes). Config ports the switch does not have go to `problems`."""
    ports, rules = {}, {}
    for switch_ref, port_ref, body in settings.ports:
        if is_named(switch_ref):
            number = resolve(port_ref)
            if number is None:
                if problems is not None:
                    problems.append(f"config: no port {port_ref!r} on this switch")
            else:
                ports[number] = body
    for switch_ref, rule_id, body in settings.rules:
        if is_named(switch_ref):
            rules[rule_id] = body
    for key, target in (("ports", ports), ("rules", rules)):
        for ref, body in (overrides or {}).get(key, {}).items():
            if body is None:
                target.pop(int(ref), None)
            else:
                target[int(ref)] = body
    return ports, rules


def desired_state(settings, overrides, is_named, resolve, present, tc_classified):
    """({port: PortQos}, {rule id: Rule}, [problems]) for one switch whose ports are
    `present` (numbers): rules that do not fit (a queue that is not there, the same slot
    as another rule) are left out and reported."""
    rules, problems = {}, []
    port_bodies, rule_bodies = switch_bodies(settings, overrides, is_named, resolve, problems)
    ports = {number: port_qos_from_dict(body) for number, body in port_bodies.items()
             if number in present}

    def must_resolve(ref):
        number = resolve(ref)
        if number is None:
            raise ValueError(f"the switch has no port {ref!r}")
        return number
    for rule_id, body in sorted(rule_bodies.items()):
        try:
            rule = rule_from_dict(rule_id, body, must_resolve, ports, tc_classified)
        except ValueError as err:
            problems.append(f"rule {rule_id}: {err}")
            continue
        clash = next((r for r in rules.values() if same_slot(r, rule)), None)
        if clash is not None:
            problems.append(f"rule {rule_id}: same match and priority as rule {clash.rule_id}")
            continue
        rules[rule_id] = rule
    return ports, rules, problems


def rule_to_dict(rule: Rule) -> dict:
    out = {"id": rule.rule_id, "match": dict(rule.match), "priority": rule.priority}
    if rule.queue is not None:
        out["queue"] = rule.queue
    if rule.port is not None:
        out["port"] = rule.port
    if rule.meter is not None:
        out["meter"] = {"rate": rule.meter.rate, "burst": rule.meter.burst}
    return out


def same_slot(a: Rule, b: Rule) -> bool:
    """Two rules with one match and priority would be one OpenFlow entry."""
    return a.match == b.match and a.priority == b.priority


def _of_match(rule: Rule) -> Match:
    fields = {}
    for name, value in rule.match:
        if name.startswith("ipv4_") and "/" in str(value):
            net = ipaddress.IPv4Network(value)
            value = (str(net.network_address), str(net.netmask))
        fields[name] = value
    return Match.of(**fields)


def rule_meter(rule: Rule) -> Optional[MeterSpec]:
    if rule.meter is None:
        return None
    return MeterSpec(MeterRef(RULES, rule.rule_id), rule.meter.rate, rule.meter.burst)


def rule_flows(rule: Rule) -> List:
    """The meter (if any), then the qos-table entry: set_queue and go on to the
    learning tables. A rule that names its port (enqueue) also directs the frame
    there (flows/egress.py): it still leaves from the egress stage, which pops the
    VLAN tag where it must and never sends a VLAN's frame to a port without it (an
    output here skipped both, issue 16 2b)."""
    meter = rule_meter(rule)
    actions = ()
    if rule.queue is not None:
        actions = (SetQueue(rule.queue),)
        if rule.port is not None:
            actions += (egress.direct_to(rule.port),)
    flow = FlowSpec("qos", rule.priority, _of_match(rule), RULES, actions=actions,
                    goto="l2_src", meter=None if meter is None else meter.ref)
    return ([meter] if meter else []) + [flow]


def directed_ports(rules: Iterable[Rule]) -> List[int]:
    return sorted({r.port for r in rules if r.queue is not None and r.port is not None})


def police_flows(port: int, policing: Policing) -> List:
    ref = MeterRef(POLICE, port)
    return [MeterSpec(ref, policing.rate, policing.burst),
            FlowSpec("police", POLICE_PRIORITY, Match.of(in_port=port), POLICE, meter=ref,
                     goto="vip")]


def switch_plan(ports: Dict[int, PortQos], rules: Iterable[Rule], meter_policing: bool) -> List:
    """Everything this app installs on a switch (after forgetting what it had):
    policing meters (when policing is done by meters) and rules in id order."""
    items = []
    if meter_policing:
        for port, qos in sorted(ports.items()):
            if qos.policing is not None:
                items += police_flows(port, qos.policing)
    rules = sorted(rules, key=lambda r: r.rule_id)
    # the redirects first: a directed frame must never meet a switch without them
    for port in directed_ports(rules):
        items += egress.redirect_and_fallback(EGRESS, port)
    for rule in rules:
        items += rule_flows(rule)
    return items


def forget(ports: Iterable[int], rules: Iterable[Rule]) -> List:
    """Deletes for every entry and meter this app may have on a switch. Meters are
    deleted by id (they have no cookie); deleting a meter deletes its flows."""
    items = [FlowDelete(Owner(APP))]
    items += [MeterDelete(MeterRef(POLICE, port)) for port in sorted(ports)]
    items += [MeterDelete(MeterRef(RULES, r.rule_id)) for r in sorted(rules,
                                                                      key=lambda r: r.rule_id)]
    return items


@dataclass(frozen=True)
class QosSettings:
    """The `qos` config section; switch and port references stay names or numbers
    until a switch says what it has.

        qos:
          ports:
            - {switch: s1, port: s1-eth4, max_rate: 10M,
               queues: {0: {min_rate: 3M}, 1: {min_rate: 1M}, 2: {min_rate: 6M}}}
          rules:
            - {switch: s1, match: {ipv4_src: 192.168.100.100}, queue: 0, port: s1-eth4}
          check_interval: 2     # seconds between tc tree checks and queue-stats samples
    """
    ports: tuple = ()
    rules: tuple = ()
    check_interval: float = 2.0

    def __post_init__(self):
        ports = []
        for index, entry in enumerate(self.ports or ()):
            if not isinstance(entry, dict) or "switch" not in entry or "port" not in entry:
                raise ValueError(f"ports[{index}] needs switch and port")
            body = {k: v for k, v in entry.items() if k not in ("switch", "port")}
            try:
                port_qos_from_dict(body)
            except ValueError as err:
                raise ValueError(f"ports[{index}] ({entry['switch']} {entry['port']}): {err}")
            ports.append((entry["switch"], entry["port"], body))
        rules, ids = [], set()
        for index, entry in enumerate(self.rules or ()):
            if not isinstance(entry, dict) or "switch" not in entry:
                raise ValueError(f"rules[{index}] needs a switch")
            rule_id = as_int(entry.get("id", index + 1), f"rules[{index}] id", 1, MAX_RULE_ID)
            if (entry["switch"], rule_id) in ids:
                raise ValueError(f"rules[{index}]: id {rule_id} repeats; give each rule an id")
            ids.add((entry["switch"], rule_id))
            body = {k: v for k, v in entry.items() if k not in ("switch", "id")}
            only_keys(body, ("match", "queue", "port", "meter", "priority"), f"rules[{index}]")
            rules.append((entry["switch"], rule_id, body))
        object.__setattr__(self, "ports", tuple(ports))
        object.__setattr__(self, "rules", tuple(rules))
        if isinstance(self.check_interval, bool) or not isinstance(self.check_interval,
                                                                  (int, float)) \
                or not 0.2 <= self.check_interval <= 3600:
            raise ValueError(f"check_interval must be 0.2..3600 seconds, "
                             f"not {self.check_interval!r}")


# --- tc: the classifier for the userspace datapath ------------------------------------

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
        elif name in _L4:   # fixed offsets: IPv4 without options, as tc's `ip sport` assumes
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
