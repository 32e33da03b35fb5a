"""Security groups as data: rules, port bindings and the `security` config section,
checked at the door (a bad key or value is a ValueError that names it).

    security:
      groups:
        web:                                   # a group: a list of rules
          - {direction: ingress, protocol: tcp, ports: 80}
          - {direction: ingress, protocol: icmp, remote: 10.0.0.0/24}
      ports:
        - {switch: s1, port: s1-eth2, addresses: [10.0.0.2], groups: [web]}
      acls:                                    # stateless, before the groups
        - {switch: s1, port: s1-eth3, match: {udp_dst: 53}, action: drop}
        - {vlan: 20, match: {ipv4_dst: 10.0.0.0/24}, action: allow, priority: 200}

A port bound to groups (its `addresses` are the ones it may send from and is reached
at; `network` chooses its conntrack zone) gets Neutron's semantics: nothing comes in
unless an ingress rule of one of its groups allows it, replies of what it opened come
back, and egress is open until its groups have an egress rule, then only what the
egress rules allow. Rules are OpenStack's: `direction`, `protocol` (tcp, udp, icmp,
icmpv6 or any), `ports` (tcp/udp: "80" or "8000-8080"), `remote` (a CIDR, the far end:
the source of an ingress rule, the destination of an egress rule) or `remote_group` (the
far end is an address of a port bound to that group, on any switch) and `ethertype`
(IPv4 or IPv6, from `remote` when it is given, else IPv4).

An ACL is stateless and comes first: frames in at one port (`switch` and `port`), in
one VLAN (`vlan`, the tag inside the pipeline) or anywhere (neither) that match its
L2-L4 fields (the QoS rules' `match`) are dropped (`drop`) or let past the security
groups untracked (`allow`), the highest `priority` (1-999, default 100) first.
"""
import ipaddress
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

from flows import qos_rules, switch_entries
from flows.body import only_keys

APP = "security"
MAX_RULE_ID = 0xFFFF
MAX_NETWORK = 4095
DIRECTIONS = ("ingress", "egress")
PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58}
ETHERTYPES = {"IPv4": 0x0800, "IPv6": 0x86DD}
RULE_KEYS = ("direction", "protocol", "ports", "remote", "remote_group", "ethertype")
BINDING_KEYS = ("addresses", "groups", "network")
ACL_KEYS = ("switch", "port", "vlan", "match", "action", "priority")
ACL_ACTIONS = ("allow", "drop")
MAX_ACL_PRIORITY = 999
GROUP_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


@dataclass(frozen=True)
class Rule:
    rule_id: int
    group: str
    direction: str
    ethertype: str = "IPv4"
    protocol: Optional[str] = None          # None: any protocol
    port_min: Optional[int] = None
    port_max: Optional[int] = None
    remote: Optional[str] = None            # a CIDR; None: anywhere
    remote_group: Optional[str] = None      # the far end: an address of a group's port

    def to_dict(self) -> dict:
        ports = None
        if self.port_min is not None:
            ports = str(self.port_min) if self.port_min == self.port_max else \
                f"{self.port_min}-{self.port_max}"
        return {"id": self.rule_id, "group": self.group, "direction": self.direction,
                "ethertype": self.ethertype, "protocol": self.protocol or "any",
                "ports": ports, "remote": self.remote, "remote_group": self.remote_group}


@dataclass(frozen=True)
class Binding:
    """A port's part in the security groups: its addresses, groups and network."""
    addresses: Tuple[str, ...]
    groups: Tuple[str, ...]
    network: int = 0

    def to_dict(self) -> dict:
        return {"addresses": list(self.addresses), "groups": list(self.groups),
                "network": self.network}


def _int(value, what, low, high):
    if isinstance(value, str) and value.strip().isdigit() and value.isascii():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{what} must be an integer {low}..{high}, not {value!r}")
    return value


def group_name(value) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 64 or \
            not set(value) <= GROUP_NAME_CHARS:
        raise ValueError(f"a group name is 1-64 letters, digits, '-', '_' or '.', "
                         f"not {value!r}")
    return value


def _ports(value) -> Tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        low = high = value
    elif isinstance(value, str) and value.count("-") <= 1:
        low, _, high = value.partition("-")
        low = _int(low.strip(), "ports", 1, 65535)
        high = low if not high.strip() and "-" not in value else high.strip()
    else:
        raise ValueError(f"ports must be a port 1..65535 or a range like '8000-8080', "
                         f"not {value!r}")
    low, high = _int(low, "ports", 1, 65535), _int(high, "ports", 1, 65535)
    if high < low:
        raise ValueError(f"ports range {low}-{high} runs backwards")
    return low, high


def _remote(value) -> str:
    try:
        if not isinstance(value, str):
            raise TypeError(value)        # ipaddress takes an int for an address too
        return str(ipaddress.ip_network(value, strict=False))
    except (ValueError, TypeError):
        raise ValueError(f"remote must be an IPv4 or IPv6 address or CIDR, not {value!r}") \
            from None


def rule_from_dict(body, group: str, rule_id: int) -> Rule:
    only_keys(body, RULE_KEYS, "rule")
    direction = body.get("direction")
    if direction not in DIRECTIONS:
        raise ValueError(f"rule direction must be ingress or egress, not {direction!r}")
    protocol = body.get("protocol", "any")
    if protocol not in (*PROTOCOLS, "any"):
        raise ValueError(f"rule protocol must be one of {', '.join([*PROTOCOLS, 'any'])}, "
                         f"not {protocol!r}")
    protocol = None if protocol == "any" else protocol
    remote = None if body.get("remote") is None else _remote(body["remote"])
    remote_group = None if body.get("remote_group") is None else group_name(body["remote_group"])
    if remote is not None and remote_group is not None:
        raise ValueError("a rule's far end is a remote prefix or a remote_group, not both")
    family = None if remote is None else ("IPv6" if ":" in remote else "IPv4")
    ethertype = body.get("ethertype", family or ("IPv6" if protocol == "icmpv6" else "IPv4"))
    if not isinstance(ethertype, str) or ethertype not in ETHERTYPES:
        raise ValueError(f"rule ethertype must be IPv4 or IPv6, not {ethertype!r}")
    if family is not None and family != ethertype:
        raise ValueError(f"remote {remote} is not an {ethertype} network")
    if (protocol, ethertype) in (("icmp", "IPv6"), ("icmpv6", "IPv4")):
        raise ValueError(f"protocol {protocol} does not go with ethertype {ethertype}")
    low = high = None
    if body.get("ports") is not None:
        if protocol not in ("tcp", "udp"):
            raise ValueError("ports need protocol tcp or udp")
        low, high = _ports(body["ports"])
    return Rule(rule_id, group_name(group), direction, ethertype, protocol, low, high, remote,
                remote_group)


def unknown_remote_groups(groups) -> list:
    """The remote groups the rules of `groups` name that are not among them."""
    return sorted({r.remote_group for rules in groups.values() for r in rules
                   if r.remote_group is not None} - set(groups))


MAX_ADDRESSES = 64


def _address(value) -> str:
    try:
        if not isinstance(value, str):
            raise TypeError(value)
        address = ipaddress.ip_address(value)
    except (ValueError, TypeError):
        raise ValueError(f"addresses must list IPv4 or IPv6 addresses, not {value!r}") from None
    if address.is_multicast or address.is_unspecified or address.is_loopback or \
            address == ipaddress.IPv4Address("255.255.255.255"):
        raise ValueError(f"a port's address is a unicast address of its own, not {value}")
    return str(address)


def binding_from_dict(body) -> Binding:
    only_keys(body, BINDING_KEYS, "port")
    addresses = body.get("addresses")
    if not isinstance(addresses, list) or not 1 <= len(addresses) <= MAX_ADDRESSES:
        raise ValueError(f"a bound port needs addresses: a list of 1-{MAX_ADDRESSES} of its IP "
                         "addresses (what it may send from and is reached at)")
    groups = body.get("groups", [])
    if not isinstance(groups, list) or len(groups) > MAX_ADDRESSES:
        raise ValueError(f"groups must be a list of group names, not {groups!r}")
    network = _int(body.get("network", 0), "network", 0, MAX_NETWORK)
    return Binding(tuple(dict.fromkeys(_address(a) for a in addresses)),
                   tuple(dict.fromkeys(group_name(g) for g in groups)), network)


def groups_from_dict(raw, first_id: int = 1) -> Dict[str, Tuple[Rule, ...]]:
    """{name: [rule body, ...]} -> {name: (Rule, ...)}; rules without an id are numbered
    from `first_id` on, in order; ids must be unique."""
    if not isinstance(raw, dict):
        raise ValueError(f"groups must map group names to lists of rules, not {raw!r}")
    bodies = [body for rules in raw.values() if isinstance(rules, list) for body in rules]
    ids = iter(numbered(bodies, "rule", first_id))
    groups = {}
    for name, rules in raw.items():
        group_name(name)
        if not isinstance(rules, list):
            raise ValueError(f"group {name!r} must be a list of rules, not {rules!r}")
        parsed = []
        for index, body in enumerate(rules):
            with switch_entries.prefixed(f"groups.{name}[{index}]"):
                parsed.append(rule_from_dict(_without_id(body), name, next(ids)))
        groups[name] = tuple(parsed)
    return groups


def groups_to_dict(groups) -> dict:
    return {name: [{k: v for k, v in r.to_dict().items() if k != "group" and v is not None}
                   for r in rules] for name, rules in groups.items()}


@dataclass(frozen=True)
class Acl:
    acl_id: int
    action: str                              # allow | drop
    match: Tuple[Tuple[str, object], ...]    # normalised (field, value), as QoS rules'
    priority: int = 100
    switch: object = None                    # with `port`: frames in at that port
    port: object = None
    vlan: Optional[int] = None               # frames in that VLAN (the pipeline's tag)

    def to_dict(self) -> dict:
        return {"id": self.acl_id, "action": self.action, "priority": self.priority,
                "match": dict(self.match), "switch": self.switch, "port": self.port,
                "vlan": self.vlan}


def _no_in_port(ref):
    raise ValueError("an ACL names its port with switch and port, not in_port")


def acl_from_dict(body, acl_id: int) -> Acl:
    only_keys(body, ACL_KEYS, "acl")
    action = body.get("action")
    if action not in ACL_ACTIONS:
        raise ValueError(f"acl action must be allow or drop, not {action!r}")
    priority = _int(body.get("priority", 100), "acl priority", 1, MAX_ACL_PRIORITY)
    switch, port, vlan = body.get("switch"), body.get("port"), body.get("vlan")
    if (switch is None) != (port is None):
        raise ValueError("an ACL on a port needs both switch and port")
    if switch is not None:
        switch_entries.switch_ref(switch, "acl switch")
        switch_entries.port_ref(port, "acl port")
        if vlan is not None:
            raise ValueError("an ACL is on a port or on a VLAN, not both")
    if vlan is not None:
        vlan = _int(vlan, "acl vlan", 1, MAX_NETWORK)
    match = body.get("match", {})
    if not isinstance(match, dict):
        raise ValueError(f"acl match must be an object of fields, not {match!r}")
    return Acl(_int(acl_id, "acl id", 1, MAX_RULE_ID), action,
               qos_rules.match_from_dict(match, _no_in_port), priority, switch, port, vlan)


def acls_from_list(raw) -> Tuple[Acl, ...]:
    """The config's `acls`: numbered in order (or by their `id`), ids unique."""
    if not isinstance(raw, list):
        raise ValueError(f"acls must be a list, not {raw!r}")
    out = []
    for index, (body, acl_id) in enumerate(zip(raw, numbered(raw, "acl"))):
        with switch_entries.prefixed(f"acls[{index}]"):
            out.append(acl_from_dict(_without_id(body), acl_id))
    return tuple(out)


def numbered(bodies, what: str, first_id: int = 1) -> list:
    """The id of each config entry in order: its own `id`, or the next free one from
    `first_id` on; ids must be unique and at most MAX_RULE_ID."""
    given = [b["id"] for b in bodies if isinstance(b, dict) and "id" in b]
    taken = {_int(i, f"{what} id", 1, MAX_RULE_ID) for i in given}
    if len(taken) != len(given):
        raise ValueError(f"{what} ids must be unique")
    ids, next_id = [], first_id
    for body in bodies:
        if isinstance(body, dict) and "id" in body:
            ids.append(_int(body["id"], f"{what} id", 1, MAX_RULE_ID))
            continue
        while next_id in taken:
            next_id += 1
        if next_id > MAX_RULE_ID:
            raise ValueError(f"more than {MAX_RULE_ID} {what}s")
        ids.append(next_id)
        taken.add(next_id)
    return ids


def _without_id(body):
    return {k: v for k, v in body.items() if k != "id"} if isinstance(body, dict) else body


def stored_rule(key, body) -> Optional[Rule]:
    """One REST-made rule as the state store keeps it ({"id": {"group": g, ...rule}},
    None for a deleted one); ValueError when it does not parse."""
    rule_id = _int(key, "rule id", 1, MAX_RULE_ID)
    if body is None:
        return None
    if not isinstance(body, dict):
        raise ValueError(f"rule {key} must be an object, not {body!r}")
    return rule_from_dict({k: v for k, v in body.items() if k != "group"}, body.get("group"),
                          rule_id)


def stored_acl(key, body) -> Optional[Acl]:
    """One REST-made ACL as the state store keeps it (None for a deleted one)."""
    acl_id = _int(key, "acl id", 1, MAX_RULE_ID)
    return None if body is None else acl_from_dict(body, acl_id)


def effective_groups(config_groups, stored) -> Dict[str, Tuple[Rule, ...]]:
    """{group: (Rule, ...)}: the config file's groups, then REST's rules (added, or
    deleted: None); a group stays while the config names it, a rule is in it or a rule
    names it as its remote group."""
    rules = {r.rule_id: r for rs in config_groups.values() for r in rs}
    named = set(config_groups)
    for key, body in stored.items():
        rule = stored_rule(key, body)
        if rule is None:
            rules.pop(int(key), None)
        else:
            rules[rule.rule_id] = rule
            named.add(rule.group)
    # a group a rule names as its remote group stays too (its members are ports)
    named |= {r.remote_group for r in rules.values() if r.remote_group is not None}
    out = {name: [] for name in sorted(named)}
    for _, rule in sorted(rules.items()):
        out[rule.group].append(rule)
    return {name: tuple(rs) for name, rs in out.items()}


def effective_acls(config_acls, stored) -> Dict[int, Acl]:
    """{id: Acl}: the config file's ACLs, then REST's (added, or deleted: None)."""
    acls = {a.acl_id: a for a in config_acls}
    for key, body in stored.items():
        acl = stored_acl(key, body)
        if acl is None:
            acls.pop(int(key), None)
        else:
            acls[acl.acl_id] = acl
    return dict(sorted(acls.items()))


@dataclass(frozen=True)
class SecuritySettings:
    """The `security` config section (see the module docstring)."""
    groups: dict = field(default_factory=dict)
    ports: tuple = ()
    acls: tuple = ()

    def __post_init__(self):
        acls = list(self.acls) if isinstance(self.acls, tuple) else self.acls
        object.__setattr__(self, "acls", acls_from_list(acls if acls is not None else []))
        object.__setattr__(self, "groups", groups_from_dict(self.groups or {}))
        unknown = unknown_remote_groups(self.groups)
        if unknown:
            raise ValueError(f"rules name unknown remote group(s) {', '.join(unknown)}")
        object.__setattr__(self, "ports", switch_entries.port_entries(
            self.ports, binding_from_dict))
        for _, _, body in self.ports:
            unknown = set(binding_from_dict(body).groups) - set(self.groups)
            if unknown:
                raise ValueError(f"ports name unknown group(s) {', '.join(sorted(unknown))}")
