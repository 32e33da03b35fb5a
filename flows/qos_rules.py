"""QoS classification rules (a match -> a queue, a meter, or both) and the `qos`
config section: parsed and checked at the door, then merged with REST's changes into
what one switch should have (desired_state)."""
import ipaddress
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

from flows import switch_entries
from flows.body import only_keys
from flows.qos_model import MAX_QUEUE_ID, Policing, PortQos, as_int, policing_from_dict, \
    port_qos_from_dict
from flows.spec import Match

MAX_RULE_ID = 0xFFFF       # rule ids double as meter numbers
DEFAULT_RULE_PRIORITY = 100

PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17}
IPV4 = 0x0800
L4_PORTS = {"tcp_src": 6, "tcp_dst": 6, "udp_src": 17, "udp_dst": 17}
MATCH_FIELDS = ("in_port", "eth_src", "eth_dst", "eth_type", "vlan_vid", "ipv4_src",
                "ipv4_dst", "ip_proto", *L4_PORTS)
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


def match_spec(pairs) -> Match:
    """A normalised match (match_from_dict's pairs) as a spec Match: an IPv4 prefix
    becomes (network, netmask)."""
    fields = {}
    for name, value in pairs:
        if name.startswith("ipv4_") and "/" in str(value):
            net = ipaddress.IPv4Network(value)
            value = (str(net.network_address), str(net.netmask))
        fields[name] = value
    return Match.of(**fields)


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
    for name, proto in L4_PORTS.items():
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
        ports = switch_entries.port_entries(self.ports, port_qos_from_dict)
        rules, ids = [], set()
        entries = switch_entries.keyed(self.rules, "rules", ("switch",))
        for index, (label, (switch,), body) in enumerate(entries):
            rule_id = as_int(body.pop("id", index + 1), f"{label} id", 1, MAX_RULE_ID)
            if (switch, rule_id) in ids:
                raise ValueError(f"{label}: id {rule_id} repeats; give each rule an id")
            ids.add((switch, rule_id))
            only_keys(body, ("match", "queue", "port", "meter", "priority"), label)
            rules.append((switch, rule_id, body))
        object.__setattr__(self, "ports", ports)
        object.__setattr__(self, "rules", tuple(rules))
        if isinstance(self.check_interval, bool) or not isinstance(self.check_interval,
                                                                  (int, float)) \
                or not 0.2 <= self.check_interval <= 3600:
            raise ValueError(f"check_interval must be 0.2..3600 seconds, "
                             f"not {self.check_interval!r}")
