"""Stateful security groups in flows: what one switch needs for its bound ports.

Three tables, before the load balancer's (a VIP's clients are checked as they send):

    sg      which packets conntrack sees: from a bound port (only from its own
            addresses; others are spoofed and dropped), or to a bound port's address,
            in the zone of the port's network. ICMPv6 neighbour discovery and MLD pass
            untracked (conntrack calls them invalid). Everything else passes on.
    sg_out  the source side. Invalid: drop. Replies (+rpl) of connections a rule let in
            pass, unless the connection was cut (ct_mark 1). Packets in the original
            direction from a bound port must match an egress rule of its groups (with
            no egress rule at all, everything may leave).
    sg_in   the destination side: packets to a bound port's address must match an
            ingress rule of its groups; then, and for destinations nobody binds, the
            connection is committed with ct_mark 0. `ct_clear` before going on: the
            load balancer tracks packets again in zones of its own.

Rules are checked for every packet in the original direction, not only the first: a
packet of an established connection that no rule allows any more commits ct_mark 1
and is dropped (Neutron's way), so the replies are dropped too, and a rule that allows
it again commits ct_mark 0, so the connection lives again.
"""
import ipaddress
from typing import Dict, List, Mapping, Tuple

from flows import qos_rules, switch_entries
from flows.security_model import APP, ETHERTYPES, PROTOCOLS, Acl, Binding, Rule, \
    SecuritySettings, binding_from_dict
from flows.spec import Conjunction, Ct, CtClear, FlowDelete, FlowSpec, Match, Owner

DEFAULTS = Owner(APP, "default")
MEMBERS = Owner(APP, "members")   # remote groups' member addresses, shared by their rules
NEXT = "vip"                 # the table after the security stage
ZONE_BASE = 0x4000           # zone of network N: ZONE_BASE + N (the LB's: VIP ids, below)
CUT_MARK = 1
# sg
ND_PRIORITY, TRUSTED_PRIORITY, FROM_PORT_PRIORITY, SPOOFED_PRIORITY, TO_PORT_PRIORITY = \
    300, 290, 210, 200, 100
# sg_out and sg_in
INVALID_PRIORITY, CUT_REPLY_PRIORITY, REPLY_PRIORITY = 500, 450, 400
RULE_PRIORITY, REMOTE_PRIORITY, CUT_PRIORITY, DENY_PRIORITY, COMMIT_PRIORITY = \
    100, 90, 20, 10, 5
ND_TYPES = (130, 131, 132, 133, 134, 135, 136, 137, 143)
LINK_LOCAL = ("fe80::", "ffc0::")
IPV4, IPV6 = ETHERTYPES["IPv4"], ETHERTYPES["IPv6"]


ACL_BASE = 1000            # an ACL's entry: ACL_BASE + its priority, above every other


def rule_owner(rule_id: int) -> Owner:
    return Owner(APP, "rule", rule_id)


def acl_owner(acl_id: int) -> Owner:
    return Owner(APP, "acl", acl_id)


def acl_flows(acl: Acl, port=None) -> List[FlowSpec]:
    """The ACL's entry in `sg` (`port`: the number its switch/port names here): allow
    goes past the security groups untracked, drop drops."""
    scope = Match.of(in_port=port, vlan_vid=acl.vlan).fields
    match = Match(tuple(sorted(qos_rules.match_spec(acl.match).fields + scope)))
    return [FlowSpec("sg", ACL_BASE + acl.priority, match, acl_owner(acl.acl_id),
                     goto=NEXT if acl.action == "allow" else None)]


def zone(binding: Binding) -> int:
    return ZONE_BASE + binding.network


def _family(address: str) -> int:
    return IPV6 if ":" in address else IPV4


def _address_field(address_or_net: str, side: str) -> Tuple[str, object]:
    """("ipv4_src", "10.0.0.1") or (..., (network, mask)) for a prefix."""
    net = ipaddress.ip_network(address_or_net, strict=False)
    name = f"ipv{net.version}_{side}"
    if net.prefixlen == net.max_prefixlen:
        return name, str(net.network_address)
    return name, (str(net.network_address), str(net.netmask))


def port_range_masks(low: int, high: int) -> List[Tuple[int, int]]:
    """The fewest (value, mask) pairs of 16-bit ports that cover low..high exactly."""
    out = []
    while low <= high:
        size = low & -low if low else 1 << 16
        while size > high - low + 1:
            size >>= 1
        out.append((low, 0xFFFF & ~(size - 1)))
        low += size
    return out


def rule_matches(rule: Rule, side: str) -> List[dict]:
    """The match fields of a rule, one dict per port-range piece; `side` is where its
    remote end is ("dst" for egress rules, "src" for ingress)."""
    fields = {"eth_type": ETHERTYPES[rule.ethertype]}
    if rule.protocol is not None:
        fields["ip_proto"] = PROTOCOLS[rule.protocol]
    if rule.remote is not None:
        name, value = _address_field(rule.remote, side)
        fields[name] = value
    if rule.port_min is None:
        return [fields]
    name = f"{rule.protocol}_dst"
    return [dict(fields, **{name: piece if piece[1] != 0xFFFF else piece[0]})
            for piece in port_range_masks(rule.port_min, rule.port_max)]


def _rules_of(binding: Binding, groups: Mapping[str, Tuple[Rule, ...]], direction: str):
    seen = {}
    for name in binding.groups:
        for rule in groups.get(name, ()):
            if rule.direction == direction:
                seen[rule.rule_id] = rule
    return [seen[i] for i in sorted(seen)]


def _flow(table, priority, owner, actions=(), goto=None, **match) -> FlowSpec:
    return FlowSpec(table, priority, Match.of(**match), owner, tuple(actions), goto=goto)


def _track(z: int):
    # ct_clear first: a frame the router translated comes through here again, tracked
    # in the router's zone
    return [CtClear(), Ct(z, table="sg_out")]


def _tracking(port: int, binding: Binding) -> List[FlowSpec]:
    z = zone(binding)
    specs = []
    for address in binding.addresses:
        name, value = _address_field(address, "src")
        specs.append(_flow("sg", FROM_PORT_PRIORITY, DEFAULTS, _track(z),
                           in_port=port, eth_type=_family(address), **{name: value}))
        name, value = _address_field(address, "dst")
        specs.append(_flow("sg", TO_PORT_PRIORITY, DEFAULTS, _track(z),
                           eth_type=_family(address), **{name: value}))
    if any(_family(a) == IPV6 for a in binding.addresses):
        specs.append(_flow("sg", FROM_PORT_PRIORITY, DEFAULTS, _track(z),
                           in_port=port, eth_type=IPV6, ipv6_src=LINK_LOCAL))
    specs += [_flow("sg", SPOOFED_PRIORITY, DEFAULTS, in_port=port, eth_type=eth_type)
              for eth_type in (IPV4, IPV6)]
    return specs


def conj_id(rule: Rule, binding: Binding) -> int:
    """One conjunctive match per (rule, network): its ports' accept commits in the
    network's zone (rule ids are 16 bits, networks 12)."""
    return rule.rule_id << 12 | binding.network


def _remote_group(table, rule, binding, members, port_side: List[dict], accept, goto):
    """A rule whose far end is a group's members as a conjunctive match: clause 1 the
    rule's own match at the port (m entries), clause 2 each member address (n entries,
    shared by every rule naming the group), and the conj_id entry that accepts: n + m
    entries, where matching each member against each port piece would be n x m."""
    side = "dst" if rule.direction == "egress" else "src"
    family = ETHERTYPES[rule.ethertype]
    cid = conj_id(rule, binding)
    owner = rule_owner(rule.rule_id)
    specs = [_flow(table, REMOTE_PRIORITY, owner, [Conjunction(cid, 1, 2)],
                   ct_state="+trk-rpl", **fields) for fields in port_side]
    for address in members.get(rule.remote_group, ()):
        if _family(address) == family:
            name, value = _address_field(address, side)
            specs.append(_flow(table, REMOTE_PRIORITY, MEMBERS, [Conjunction(cid, 2, 2)],
                               ct_state="+trk-rpl", eth_type=family, **{name: value}))
    # the conj_id entry needs the IP match a ct action does (OVS refuses it otherwise)
    specs.append(_flow(table, REMOTE_PRIORITY, owner, accept, goto=goto, conj_id=cid,
                       eth_type=family))
    return specs


def _source_side(port: int, binding: Binding, groups, members) -> List[FlowSpec]:
    z, rules = zone(binding), _rules_of(binding, groups, "egress")
    specs = [_flow("sg_out", RULE_PRIORITY, rule_owner(rule.rule_id), goto="sg_in",
                   in_port=port, ct_state="+trk-rpl", **fields)
             for rule in rules if rule.remote_group is None
             for fields in rule_matches(rule, "dst")]
    for rule in rules:
        if rule.remote_group is not None:
            specs += _remote_group("sg_out", rule, binding, members,
                                   [dict(fields, in_port=port)
                                    for fields in rule_matches(rule, "dst")], (), "sg_in")
    if not rules:   # no egress rule at all: everything may leave
        specs.append(_flow("sg_out", RULE_PRIORITY, DEFAULTS, goto="sg_in", in_port=port,
                           ct_state="+trk-rpl"))
    # a ct action needs an IP match (OVS refuses it otherwise): one per family
    return specs + [
        _flow("sg_out", CUT_PRIORITY, DEFAULTS, [Ct(z, commit=True, mark=CUT_MARK)],
              in_port=port, ct_state="+trk+est-rpl", eth_type=eth_type)
        for eth_type in (IPV4, IPV6)] + [
        _flow("sg_out", DENY_PRIORITY, DEFAULTS, in_port=port, ct_state="+trk")]


def _destination_side(binding: Binding, groups, members) -> List[FlowSpec]:
    z, rules = zone(binding), _rules_of(binding, groups, "ingress")
    accept = [Ct(z, commit=True, mark=0), CtClear()]
    specs = []
    for rule in rules:
        if rule.remote_group is None:
            continue
        port_side = []
        for address in binding.addresses:
            if ETHERTYPES[rule.ethertype] == _family(address):
                name, value = _address_field(address, "dst")
                port_side += [dict(fields, **{name: value})
                              for fields in rule_matches(rule, "src")]
        if port_side:
            specs += _remote_group("sg_in", rule, binding, members, port_side, accept, NEXT)
    for address in binding.addresses:
        name, value = _address_field(address, "dst")
        to_port = {"eth_type": _family(address), name: value}
        specs += [_flow("sg_in", RULE_PRIORITY, rule_owner(rule.rule_id), accept, goto=NEXT,
                        ct_state="+trk-rpl", **dict(fields, **to_port))
                  for rule in rules if ETHERTYPES[rule.ethertype] == _family(address)
                  and rule.remote_group is None
                  for fields in rule_matches(rule, "src")]
        specs += [
            _flow("sg_in", CUT_PRIORITY, DEFAULTS, [Ct(z, commit=True, mark=CUT_MARK)],
                  ct_state="+trk+est-rpl", **to_port),
            _flow("sg_in", DENY_PRIORITY, DEFAULTS, ct_state="+trk", **to_port)]
    return specs


def _shared(zones, trusted) -> List[FlowSpec]:
    """Entries every switch with a bound port has once."""
    specs = [_flow("sg", ND_PRIORITY, DEFAULTS, goto=NEXT, eth_type=IPV6, ip_proto=58,
                   icmpv6_type=kind) for kind in ND_TYPES]
    for address in trusted:   # the controller's own (the LB's probes): left alone
        name, value = _address_field(address, "dst")
        specs.append(_flow("sg", TRUSTED_PRIORITY, DEFAULTS, goto=NEXT,
                           eth_type=_family(address), **{name: value}))
    specs += [
        _flow("sg_out", INVALID_PRIORITY, DEFAULTS, ct_state="+trk+inv"),
        _flow("sg_out", CUT_REPLY_PRIORITY, DEFAULTS, ct_state="+trk+rpl", ct_mark=CUT_MARK),
        _flow("sg_out", REPLY_PRIORITY, DEFAULTS, [CtClear()], goto=NEXT, ct_state="+trk+rpl")]
    # what a bound port sends to a destination nobody binds: committed in its zone
    specs += [_flow("sg_in", COMMIT_PRIORITY, DEFAULTS, [Ct(z, commit=True, mark=0), CtClear()],
                    goto=NEXT, ct_state="+trk-rpl", ct_zone=z, eth_type=eth_type)
              for z in sorted(zones) for eth_type in (IPV4, IPV6)]
    return specs


def desired(bindings: Mapping[int, Binding], groups: Mapping[str, Tuple[Rule, ...]],
            trusted: Tuple[str, ...] = (), acls=(),
            members: Mapping[str, Tuple[str, ...]] = None) -> List[FlowSpec]:
    """Every entry one switch needs for its bound ports ({port number: Binding}). A
    packet to a port bound on another switch is checked there, where it leaves the
    fabric; one between two switches' bound ports, at both ends. Packets to `trusted`
    addresses (the controller's own: the load balancer's health probes, whose requests
    conntrack never saw) pass untracked. `acls`: (Acl, port number or None) of the
    ACLs that apply here, before everything else. `members`: {group: the addresses of
    every port bound to it, on any switch} (a rule's remote_group), from
    `group_members`; by default those of the bindings here."""
    members = group_members(bindings.values()) if members is None else members
    specs = [spec for acl, port in acls for spec in acl_flows(acl, port)]
    if not bindings:
        return _dedupe(specs)
    for port, binding in sorted(bindings.items()):
        specs += _tracking(port, binding) + _source_side(port, binding, groups, members)
        specs += _destination_side(binding, groups, members)
    return _dedupe(specs + _shared({zone(b) for b in bindings.values()}, trusted))


def group_members(bindings) -> Dict[str, Tuple[str, ...]]:
    """{group: the addresses of the given bindings bound to it}, sorted."""
    found: Dict[str, set] = {}
    for binding in bindings:
        for name in binding.groups:
            found.setdefault(name, set()).update(binding.addresses)
    return {name: tuple(sorted(addresses)) for name, addresses in sorted(found.items())}


def _dedupe(specs: List[FlowSpec]) -> List[FlowSpec]:
    """One entry per (table, priority, match): two bound ports sharing an address would
    otherwise ask for the same entry twice. Conjunction clauses of one match (a member
    of two remote groups' rules, two rules with one port match) become one entry with
    every conjunction action, as OVS keeps them."""
    seen: Dict[tuple, FlowSpec] = {}
    for spec in specs:
        key = (spec.table, spec.priority, spec.match)
        had = seen.get(key)
        if had is None:
            seen[key] = spec
        elif _clauses(had) and _clauses(spec):
            actions = tuple(sorted(set(had.actions) | set(spec.actions),
                                   key=lambda a: (a.conj_id, a.clause)))
            owner = had.owner if had.owner == spec.owner else MEMBERS
            seen[key] = FlowSpec(had.table, had.priority, had.match, owner, actions)
    return list(seen.values())


def _clauses(spec: FlowSpec) -> bool:
    return bool(spec.actions) and all(isinstance(a, Conjunction) for a in spec.actions)


def forget_everything() -> List[FlowDelete]:
    return [FlowDelete(Owner(APP))]


def bound_ports(entries, is_named, resolve, overrides=None, missing=None) -> Dict[int, Binding]:
    """{port number: Binding} of one switch: the config file's, then REST's
    (flows/switch_entries.py `for_switch`)."""
    return switch_entries.for_switch(entries, is_named, resolve,
                                     lambda number, body: binding_from_dict(body),
                                     overrides, missing)


def acls_here(acls, is_named, resolve, missing=None) -> List[Tuple[Acl, object]]:
    """(Acl, port number or None) of the ACLs one switch applies: those on a port of
    its own (`resolve` gives the number; a port it lacks: `missing(ref)`), those on a
    VLAN and those on everything."""
    here = []
    for acl in acls:
        if acl.switch is None:
            here.append((acl, None))
        elif is_named(acl.switch):
            number = resolve(acl.port)
            if number is None:
                if missing is not None:
                    missing(acl.port)
                continue
            here.append((acl, number))
    return here


# --- the plan protocol (flows/app_plan.py): `sdn plan` finds the app through it -------

SETTINGS = SecuritySettings


def plan(settings: SecuritySettings, switch, facts):
    """The entries for the switch's bound ports, as the app pushes them (with the load
    balancer's probe source left alone when it is planned too)."""
    from flows.app_plan import CONTROLLER_ADDRESSES, SwitchPlan
    result = SwitchPlan()
    bound = bound_ports(settings.ports, switch.is_named, switch.resolve,
                        missing=lambda ref: result.problems.append(f"no port {ref!r} on "
                                                                   "this switch"))
    acls = acls_here(settings.acls, switch.is_named, switch.resolve,
                     lambda ref: result.problems.append(f"an ACL names port {ref!r}, which "
                                                        "this switch does not have"))
    members = group_members(binding_from_dict(body) for _, _, body in settings.ports)
    result.items = desired(bound, settings.groups, facts.get(CONTROLLER_ADDRESSES, ()), acls,
                           members)
    return result
