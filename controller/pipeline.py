"""The one shared pipeline every app programs, and the cookie scheme.

Apps compose on one switch because they agree on this table layout. Each table
ends in a priority-0 miss owned by "pipeline" that passes the frame on, so a
table whose app is not loaded is transparent; apps put their own defaults at
priority >= 1.

    0 ingress   port/VLAN classification (access tag, trunk admit), port security
    1 police    per-port ingress rate limits (a meter per policed port)
    2 sg        security groups: what conntrack sees, in which zone; spoofing dropped
    3 sg_out    security groups: the source port's egress rules, replies, cut marks
    4 sg_in     security groups: the destination port's ingress rules, the commit
    5 vip       load-balancer VIPs: ARP replies, VIP -> select group, reply NAT
    6 qos       classification into queues (set_queue) or meters
    7 l2_src    MAC learning: is this (port, VLAN, source MAC) known?
    8 router    gateways: ARP and ping answered, what is routed, SNAT/DNAT (conntrack)
    9 route     longest-prefix match: next hop's MAC, VLAN, TTL less one
   10 l2_dst    forwarding by (VLAN, destination MAC); miss -> flood
   11 flood     broadcast/unknown unicast: per-VLAN member ports

Frames leave the switch only from the egress tables (l2_dst, flood): that is where
VLAN egress happens (the internal tag popped for untagged ports, other VLANs kept
off a port). A table before them that wants a frame out of port P writes P into
flows.egress.OUT_PORT and goes on (flows/egress.py); `validate` refuses an Output to
a port from any other table. What stays allowed everywhere: CONTROLLER (a copy for
the controller: packet-ins, LLDP, probe replies), IN_PORT (an answer built in place,
sent back to the asker: ARP responders) and NORMAL (OVS's own switching, which does
OVS's VLAN handling itself: the bond app). The load balancer's vip table is the one
declared exception (Table.direct_output_apps): its entries still send to a backend's
port directly.

The overlay's tunnel bridges are bridges of their own and run TUNNEL_PIPELINE, with
the overlay lab's table numbers. Table names are unique across both, so a spec's
table name says which bridge it is for.

Cookie (64 bits): bits 63..56 the owning app, 55..48 the purpose, 47..0 free
for the app (e.g. a rule id). Every entry the controller installs carries
one, so an app deletes and reconciles exactly its own entries
(`cookie`/`cookie_mask` in a flow-mod or stats request).

Meters have no cookie, so their ids carry the same information: bits 31..24 the
app, 23..16 the purpose, 15..0 the owner's number (a rule id, a port number).

Which app writes which table, and at which priorities, is declared too (BANDS):
`validate` refuses an entry outside its app's bands, so two apps that share a table
cannot drift into each other's priorities unnoticed. Each app's canary sits in a band
of its own at the top of `ingress`, at 0xFF00 + the app's id: distinct app ids
(checked below) give distinct canaries.
"""
from typing import Dict, List, Optional, Tuple

from controller.pipeline_types import Band, PipelineError, Table  # noqa: F401 (pipeline.Band)
from flows import egress
from flows.spec import CONTROLLER, IN_PORT, NORMAL, UNTAGGED, FlowDelete, FlowSpec, GroupRef, \
    Learn, Match, MeterRef, Output, Owner


# vlan_pcp: OpenFlow's prerequisite (a tagged frame) is the spec's own business
_L2_FIELDS = frozenset({"in_port", "vlan_vid", "vlan_pcp", "eth_src", "eth_dst", "eth_type"})
_L3_FIELDS = _L2_FIELDS | {"ip_proto", "ipv4_src", "ipv4_dst", "tcp_src", "tcp_dst",
                           "udp_src", "udp_dst", "arp_op", "arp_tpa", "arp_spa"}
_SG_FIELDS = _L3_FIELDS | {"ipv6_src", "ipv6_dst", "icmpv6_type", "ct_state", "ct_mark",
                           "ct_zone", "conj_id"}
_ROUTER_FIELDS = _L3_FIELDS | {"icmpv4_type", "ct_state", "ct_zone", "reg2", "ipv6_src",
                               "ipv6_dst", "icmpv6_type", "ipv6_nd_target", "nw_ttl"}

PIPELINE: Tuple[Table, ...] = (
    Table("ingress", 0, "port and VLAN classification", _L2_FIELDS, ("police",)),
    Table("police", 1, "ingress rate limits per port", frozenset({"in_port"}), ("sg",)),
    Table("sg", 2, "security groups: tracking", _SG_FIELDS, ("sg_out", "vip")),
    Table("sg_out", 3, "security groups: egress rules", _SG_FIELDS, ("sg_in", "vip")),
    Table("sg_in", 4, "security groups: ingress rules", _SG_FIELDS, ("vip",)),
    # a frame the router translated (reg2) goes from vip straight back to the router
    Table("vip", 5, "virtual IPs (load balancer)",
          _L3_FIELDS | {"ct_state", "ct_mark", "reg0", "reg2"},
          ("qos", "router"), direct_output_apps=frozenset({"lb"})),
    Table("qos", 6, "queue and meter classification", _L3_FIELDS, ("l2_src",)),
    Table("l2_src", 7, "source MAC learning", _L2_FIELDS, ("router",)),
    Table("router", 8, "gateways and NAT (router)", _ROUTER_FIELDS, ("route", "l2_dst")),
    Table("route", 9, "routes: longest prefix first", _ROUTER_FIELDS, ("l2_dst",)),
    Table("l2_dst", 10, "destination MAC forwarding", _L2_FIELDS | {egress.OUT_PORT},
          ("flood",), egress=True),
    Table("flood", 11, "flooding per VLAN", _L2_FIELDS | {egress.OUT_PORT}, (), egress=True),
)

# The overlay lab's tunnel bridge: a bridge of its own (patched to an integration
# bridge that runs PIPELINE), with the lab's table numbers.
_TUN_FIELDS = frozenset({"in_port", "vlan_vid", "eth_src", "eth_dst", "eth_type", "tunnel_id",
                         "arp_op", "arp_tpa"})
TUNNEL_PIPELINE: Tuple[Table, ...] = (
    Table("tun_in", 0, "from the patch port or a tunnel", frozenset({"in_port"}),
          ("tun_from_int", "tun_vni")),
    Table("tun_from_int", 1, "unicast or flood", _TUN_FIELDS, ("tun_ucast", "tun_flood")),
    Table("tun_drop", 2, "drop", frozenset(), ()),
    Table("tun_vni", 3, "VNI -> local VLAN", _TUN_FIELDS, ("tun_learn",)),
    Table("tun_learn", 10, "learn the sender's tunnel, to the patch port", _TUN_FIELDS, ()),
    Table("tun_ucast", 20, "known MACs -> their tunnel", _TUN_FIELDS, ("tun_flood",)),
    Table("tun_flood", 21, "per VLAN: strip, VNI, to the tunnels", _TUN_FIELDS, ()),
)
PIPELINES: Dict[str, Tuple[Table, ...]] = {"main": PIPELINE, "tunnel": TUNNEL_PIPELINE}


CANARY_BASE = 0xFF00
# The priority constants in flows/*.py choose inside these bands; a change that leaves
# them fails validation (tests/unit/test_contracts.py runs every app's desired specs).
BANDS: Dict[str, Tuple[Band, ...]] = {
    "ingress": (
        Band("vlan", 1, 1, "VLAN defaults: untagged frames join VLAN 0, tagged pass"),
        Band("bond", 1, 1, "NORMAL on a bridge the bond app owns outright"),
        Band("vlan", 10, 39, "per-port classification: deny 10, admit 20, PCP-tagged 30"),
        Band("topology", 1000, 1000, "LLDP to the controller, above every classification"),
        Band(None, CANARY_BASE + 1, 0xFFFF, "one canary per app: CANARY_BASE + app id",
             purpose="canary"),
    ),
    "police": (Band("qos", 10, 10, "a policed port's meter"),),
    "sg": (Band("security", 100, 300, "to a bound address 100, spoofed 200, from a bound "
                                      "port 210, the controller's own addresses 290, "
                                      "neighbour discovery 300"),
           Band("security", 1001, 1999, "stateless ACLs: 1000 + the ACL's priority",
                purpose="acl")),
    "sg_out": (Band("security", 10, 500, "deny 10, cut 20, remote-group rules 90, egress "
                                         "rules 100, replies 400, cut replies 450, "
                                         "invalid 500"),),
    "sg_in": (Band("security", 5, 100, "commit 5, deny 10, cut 20, remote-group rules 90, "
                                       "ingress rules 100"),),
    "vip": (Band("lb", 100, 499, "spreads 120, replies 150-160, conntrack 190-220, ARP 300-301, "
                          "probes 400"),
            Band("router", 500, 500, "what the router translated coming in, back from the "
                                     "security stage: on to the router (past the LB and QoS, "
                                     "which saw it on its first pass)")),
    "qos": (Band("qos", 1, 0xFFFF, "user rules at the priority the rule gives"),),
    "l2_src": (
        Band("l2_switch", 1, 9, "send-to-controller/learn default 1, VLAN-0 strip 2, "
                                "switch-to-switch ports 3"),
        Band("l2_switch", 50, 50, "port security: a banned port's new sources"),
        Band("vlan", 60, 60, "flood-only VLANs skip learning, above a port ban: a ban "
                             "guards learning, which these VLANs do not do"),
        Band("l2_switch", 100, 199, "known sources 100, a banned flapping MAC 150"),
        Band("router", 40, 40, "the gateway's own MAC is never learnt (routed frames "
                               "carry it as their source): above learning, below bans"),
    ),
    "router": (Band("router", 10, 1050, "drop 10, by destination prefix 100-363 (4 per "
                                        "length step, the source's rank inside; IPv6 "
                                        "connected networks 100), from outside 900-910, "
                                        "ARP/ping/ND 1000-1001, ARP replies and ND "
                                        "advertisements 1050"),),
    "route": (Band("router", 10, 1000, "drop 10, unresolved or a next hop 100 + 2 x "
                                       "prefix length (+1 connected; IPv6 connected "
                                       "networks 100), neighbours 300, TTL running out "
                                       "800, own addresses 900, invalid 1000"),),
    "l2_dst": (
        Band("l2_switch", 1, 1, "unknown destination: to the flood table"),
        Band("topology", 2, 3, "flood guard: allowed in-ports 3, drop 2"),
        Band("router", 4, 4, "the gateway's ARP requests, sent in by the controller, "
                             "flood past the guard"),
        Band("l2_switch", 100, 101, "known destinations 100, VLAN 0 untagged 101"),
        Band("qos", 1000, 1000, "a rule's port: to the egress stage (flows/egress.py)"),
    ),
    "flood": (
        Band("l2_switch", 1, 1, "flood out of every port"),
        Band("topology", 2, 4, "flood along the spanning tree"),
        Band("vlan", 5, 19, "per-VLAN flood lists 10, VLAN 0 PCP 9, every trunk 5"),
        Band("qos", 20, 29, "a directed frame without the VLAN app (flows/egress.py)"),
        Band("vlan", 30, 49, "directed frames per (port, VLAN) (flows/egress.py)"),
    ),
}
BANDS.update({t.name: (Band("overlay", 0, 100, "the overlay's own tunnel bridges"),)
              for t in TUNNEL_PIPELINE})
for _table in PIPELINE:   # every table's pass-through miss
    BANDS[_table.name] = (Band("pipeline", 0, 0, "table miss", purpose="miss"),) + \
        BANDS.get(_table.name, ())
# Bands of two apps that share a switch and overlap: each a tie OpenFlow leaves
# undefined when one frame matches both entries; listed so no new one comes unnoticed.
KNOWN_OVERLAPS: Dict = {}   # (table, app, app): why two apps' bands may overlap
# Apps that write a switch only when they own it outright (the other apps delete theirs)
SOLE_OWNERS = frozenset({"bond", "overlay"})
TABLES: Dict[str, Table] = {t.name: t for tables in PIPELINES.values() for t in tables}
_PIPELINE_OF = {t.name: kind for kind, tables in PIPELINES.items() for t in tables}

APP_IDS: Dict[str, int] = {
    "pipeline": 0x01,
    "l2_switch": 0x10,
    "vlan": 0x20,
    "qos": 0x30,
    "lb": 0x40,
    "overlay": 0x50,
    "topology": 0x60,
    "bond": 0x70,
    "security": 0x80,
    "router": 0x90,
}
# The flows/ module that holds each app's decisions (settings class, plan hooks:
# flows/app_plan.py), in the order `sdn plan` asks them: facts reach the later apps.
APP_LOGIC: Dict[str, str] = {"vlan": "flows.vlan", "l2_switch": "flows.l2", "qos": "flows.qos",
                             "lb": "flows.lb", "overlay": "flows.overlay", "bond": "flows.bond",
                             "topology": "flows.topology", "security": "flows.security",
                             "router": "flows.router"}
PURPOSE_IDS: Dict[str, int] = {
    "miss": 0x01,
    "default": 0x02,
    "host": 0x03,
    "learned": 0x04,
    "flood": 0x05,      # per-VLAN flood lists
    "flood_vlan": 0x06,  # VLANs whose MACs are not learned (the VLAN app's flood-vlans)
    "rule": 0x07,       # user rules (QoS classification); the free bits hold the rule id
    "police": 0x08,     # ingress policing of a port
    "tunnel": 0x09,     # the overlay's tunnel bridge pipeline
    "tenant": 0x0A,     # per-network entries (VNI <-> local VLAN, flood lists)
    "l2pop": 0x0B,      # controller-known MACs and ARP answers (L2 population)
    "vip": 0x0C,        # a virtual IP: ARP answer, its select group, reply rewrite
    "lldp": 0x0D,       # link discovery frames to the controller
    "probe": 0x0E,      # health-check replies to the controller
    "ban": 0x0F,        # port security: drops with a hard timeout
    "canary": 0x10,     # one entry whose absence means the switch lost our entries
    "egress": 0x11,     # where frames directed to a port leave (flows/egress.py)
    "inter_switch": 0x12,  # switch-to-switch ports, where the learning app does not learn
    "reply": 0x13,      # the load balancer's nat replies, shared by the VIPs of a backend
    "spread": 0x14,     # a destination subnet spread over ports by a select group
    "acl": 0x15,        # a stateless ACL (the security app's); the free bits hold its id
    "gateway": 0x16,    # the router's gateways: ARP and ping answers, what is routed
    "route": 0x17,      # the router's connected networks and static routes
    "nat": 0x18,        # the router's SNAT and floating IPs
    "neighbour": 0x19,  # a host the router knows: its MAC and VLAN
    "members": 0x1A,    # a remote group's member addresses (conjunction clauses)
    "expired": 0x1B,    # routed packets whose TTL runs out: to the controller (time-exceeded)
}


def _check_unique(ids: Dict[str, int], what: str, high: int) -> None:
    """Ids are cookie (and canary priority) bits: two names with one id would be one owner."""
    seen: Dict[int, str] = {}
    for name, value in ids.items():
        if not 0 < value <= high:
            raise PipelineError(f"{what} {name!r} has id {value:#x}, outside 1..{high:#x}")
        if value in seen:
            raise PipelineError(f"{what}s {seen[value]!r} and {name!r} share the id {value:#x}")
        seen[value] = name


_check_unique(APP_IDS, "app", 0xFF)
if set(APP_LOGIC) != set(APP_IDS) - {"pipeline"}:
    raise PipelineError(f"APP_LOGIC names {sorted(APP_LOGIC)}, APP_IDS every app but pipeline")
_check_unique(PURPOSE_IDS, "purpose", 0xFF)
_APP_MASK = 0xFF << 56
_PURPOSE_MASK = 0xFF << 48
_INSTANCE_MASK = (1 << 48) - 1


def table_id(name: str) -> int:
    try:
        return TABLES[name].table_id
    except KeyError:
        raise PipelineError(f"unknown table {name!r}; the pipeline has {', '.join(TABLES)}") from None


NOT_OURS = "not ours"


def owner_label(cookie: int) -> str:
    """"vlan/default" for a cookie of ours ("security/rule 3" for a user's rule, by its
    id), NOT_OURS for anyone else's (another tool's entry, OVS's own default NORMAL
    flow): how listings name an entry's owner."""
    owner = owner_of(cookie)
    if owner is None:
        return NOT_OURS
    label = "/".join(str(p) for p in (owner.app, owner.purpose) if p)
    if owner.purpose in ("rule", "acl") and owner.instance is not None:
        label += f" {owner.instance}"   # the user's rule by its id: "security/rule 3"
    return label


def kind_of_tables(numbers) -> str:
    """Which pipeline a bridge whose entries sit in tables `numbers` runs: "tunnel" when
    any is a table only the tunnel pipeline has (10, 20, 21), else "main"."""
    main = {t.table_id for t in PIPELINES["main"]}
    tunnel_only = {t.table_id for t in PIPELINES["tunnel"]} - main
    return "tunnel" if tunnel_only & set(numbers) else "main"


def table_name(number: int, kind: str = "main") -> str:
    """The name of table `number` in pipeline `kind` ("main" or "tunnel")."""
    for table in PIPELINES[kind]:
        if table.table_id == number:
            return table.name
    raise PipelineError(f"no table {number} in the {kind} pipeline")


def cookie(owner: Owner) -> int:
    if owner.app not in APP_IDS:
        raise PipelineError(f"unknown app {owner.app!r} in cookie")
    value = APP_IDS[owner.app] << 56
    if owner.purpose is not None:
        if owner.purpose not in PURPOSE_IDS:
            raise PipelineError(f"unknown purpose {owner.purpose!r} in cookie")
        value |= PURPOSE_IDS[owner.purpose] << 48
    if owner.instance is not None:
        if owner.purpose is None or not 0 < owner.instance <= _INSTANCE_MASK:
            raise PipelineError(f"owner instance {owner.instance!r} needs a purpose and must "
                                f"be 1..{_INSTANCE_MASK}")
        value |= owner.instance
    return value


def cookie_mask(owner: Owner) -> int:
    """The mask that selects exactly `owner`'s entries (all purposes if purpose is None,
    every instance if instance is None)."""
    if owner.instance is not None:
        return _APP_MASK | _PURPOSE_MASK | _INSTANCE_MASK
    return _APP_MASK if owner.purpose is None else _APP_MASK | _PURPOSE_MASK


def owner_of(value: int) -> Optional[Owner]:
    """Decode a cookie read back from a switch; None for cookies that are not ours."""
    apps = {v: k for k, v in APP_IDS.items()}
    purposes = {v: k for k, v in PURPOSE_IDS.items()}
    app = apps.get((value & _APP_MASK) >> 56)
    if app is None:
        return None
    return Owner(app, purposes.get((value & _PURPOSE_MASK) >> 48),
                 (value & _INSTANCE_MASK) or None)


def meter_id(ref: MeterRef) -> int:
    if ref.owner.purpose is None:
        raise PipelineError(f"meter {ref!r} needs an owner purpose")
    if not 0 <= ref.number <= 0xFFFF:
        raise PipelineError(f"meter number {ref.number} out of range 0..65535")
    return cookie(Owner(ref.owner.app, ref.owner.purpose)) >> 32 | ref.number


def group_id(ref: GroupRef) -> int:
    """Group ids carry owner and purpose like meter ids (groups have no cookie)."""
    return meter_id(MeterRef(ref.owner, ref.number))


def group_owner(value: int) -> Optional[GroupRef]:
    ref = meter_owner(value)
    return None if ref is None else GroupRef(ref.owner, ref.number)


def meter_owner(value: int) -> Optional[MeterRef]:
    """Decode a meter id read back from a switch; None when it is not ours."""
    owner = owner_of(value << 32)
    return None if owner is None else MeterRef(owner, value & 0xFFFF)


def validate(spec) -> None:
    """Raise PipelineError unless `spec` fits the declared pipeline."""
    if isinstance(spec, FlowDelete):
        if spec.table is not None:
            table_id(spec.table)
        cookie(spec.owner)
        return
    if not isinstance(spec, FlowSpec):
        raise PipelineError(f"not a flow spec: {spec!r}")
    table = TABLES.get(spec.table)
    if table is None:
        table_id(spec.table)  # raises with the list of tables
    illegal = spec.match.names() - table.matches
    if illegal:
        raise PipelineError(f"table {spec.table!r} cannot match on {', '.join(sorted(illegal))}")
    if "vlan_pcp" in spec.match.names() and spec.match.get("vlan_vid") in (None, UNTAGGED):
        # OpenFlow's prerequisite; OVS refuses the flow-mod (OFPBMC_BAD_PREREQ)
        raise PipelineError("a vlan_pcp match needs a vlan_vid match of a tagged frame")
    if spec.goto is not None and spec.goto not in table.next_tables:
        raise PipelineError(f"table {spec.table!r} may not go to {spec.goto!r} "
                            f"(allowed: {', '.join(table.next_tables) or 'none'})")
    if not 0 <= spec.priority <= 0xFFFF:
        raise PipelineError(f"priority {spec.priority} out of range")
    cookie(spec.owner)
    if spec.meter is not None:
        meter_id(spec.meter)
    for action in spec.actions:
        if isinstance(action, Output):
            _check_output(table, spec, action)
        if isinstance(action, Learn):
            learned = TABLES.get(action.table)
            if learned is None or learned.table_id < table.table_id or \
                    _PIPELINE_OF[learned.name] != _PIPELINE_OF[table.name]:
                raise PipelineError(f"learn() from {spec.table!r} must write that table or a "
                                    f"later one, not {action.table!r}")
            cookie(action.owner)
            check_band(action.table, action.owner, action.priority)
    # last: a spec that breaks a rule above gets that rule's error
    check_band(spec.table, spec.owner, spec.priority)


def bands_for(table: str, owner: Owner) -> Tuple[Band, ...]:
    """The bands where `owner`'s entries may go in `table`."""
    bands = BANDS.get(table, ())
    reserved = {b.purpose for b in bands if b.purpose is not None}
    purpose = owner.purpose if owner.purpose in reserved else None
    return tuple(b for b in bands if b.app in (None, owner.app) and b.purpose == purpose)


def check_band(table: str, owner: Owner, priority: int) -> None:
    """Raise PipelineError unless `owner`'s app declared `priority` in `table` (BANDS)."""
    allowed = bands_for(table, owner)
    if any(b.holds(priority) for b in allowed):
        return
    what = f"app {owner.app!r} (purpose {owner.purpose!r})"
    if not allowed:
        writers = sorted({b.app or f"any app's {b.purpose}" for b in BANDS.get(table, ())})
        raise PipelineError(f"{what} may not write table {table!r} (priority {priority}); "
                            f"the pipeline declares {', '.join(writers) or 'nobody'} there")
    raise PipelineError(f"{what} writes table {table!r} at priority {priority}, outside its "
                        f"band{'s' if len(allowed) > 1 else ''} there: "
                        f"{', '.join(f'{b.low}..{b.high}' for b in allowed)}")


# Outputs any table may do: none of them forwards a frame past the egress stage's duties.
_ANYWHERE = (CONTROLLER, IN_PORT, NORMAL)


def _check_output(table: Table, spec: FlowSpec, action: Output) -> None:
    if table.egress or _PIPELINE_OF[table.name] != "main" or action.port in _ANYWHERE \
            or spec.owner.app in table.direct_output_apps:
        return
    raise PipelineError(
        f"table {table.name!r} may not output to {action.port!r}: frames leave from the "
        f"egress tables ({', '.join(t.name for t in PIPELINE if t.egress)}), where VLAN "
        f"egress happens; direct the frame there instead (flows/egress.py direct_to)")


MISSES = Owner("pipeline", "miss")
_CANARY_ETH_TYPE = 0x88B6   # IEEE 802 local experimental 2: nothing real carries it


def other_apps_removal(app: str) -> List[FlowDelete]:
    """Deletes of every other app's entries (by cookie, one app at a time; the shared
    table misses stay): what a switch owned outright by `app` must not keep."""
    return [FlowDelete(Owner(other)) for other in APP_IDS if other not in (app, "pipeline")]


def canary_owner(app: str) -> Owner:
    return Owner(app, "canary")


def canary(app: str) -> FlowSpec:
    """An entry no frame matches in practice. If it is gone, so is (almost surely)
    everything else the controller installed: an ovs-ofctl del-flows, a datapath that
    lost its tables, so the apps re-push."""
    # one per app, so each app notices the loss itself. Its own priority: two canaries
    # with one match and priority would be one entry, the second add replacing the
    # first. App ids are distinct bytes (checked at import), so these are distinct.
    # notify_removed: a delete that takes it makes the switch say so at once (a
    # FLOW_REMOVED, reason DELETE), so the app repairs without polling for it
    # (controller/southbound.py, the canary watch).
    return FlowSpec("ingress", canary_priority(app), Match.of(eth_type=_CANARY_ETH_TYPE),
                    canary_owner(app), notify_removed=True)


def canary_priority(app: str) -> int:
    if app not in APP_IDS:
        raise PipelineError(f"unknown app {app!r}")
    return CANARY_BASE + APP_IDS[app]


def table_misses() -> List[FlowSpec]:
    """Priority-0 pass-through for every table of the main pipeline (the last one drops)."""
    misses = []
    for table in PIPELINE:
        goto = table.next_tables[0] if table.next_tables else None
        misses.append(FlowSpec(table.name, 0, Match(), MISSES, goto=goto))
    return misses
