"""Port VLAN configuration with Open vSwitch's semantics, as flows.

A port is configured the way `ovs-vsctl` users think (vswitch.xml, Port vlan_mode):
- access (`tag=101`): untagged frames in join VLAN 101; tagged frames in are dropped;
  frames leave untagged, and only those of VLAN 101.
- trunk (`trunks=[101,102]`, or `[]`/absent = every VLAN): tagged frames of those VLANs in;
  an untagged frame belongs to VLAN 0, accepted only if the port trunks VLAN 0 (an empty
  list trunks everything); frames leave tagged, except VLAN 0 which leaves untagged.
- native-tagged / native-untagged (`tag=10` plus trunks): like a trunk, but untagged frames
  in join the native VLAN; on the way out the native VLAN is tagged / untagged. VLAN 0 is
  never carried by them, even with empty trunks or 0 in trunks (seen on OVS 3.1).

Priority-tagged frames (an 802.1Q header with VID 0 and a PCP) count as untagged (802.1Q,
and OVS: an access port drops only a *nonzero* VID): on access and native ports they
join the port's VLAN with their PCP kept, so they leave a trunk tagged with that PCP; on
a trunk they are VLAN 0 like untagged frames.

Inside the pipeline every frame carries its VLAN: `ingress` pushes it for untagged
frames (PCP 0) and sets it in the tag of priority-tagged ones (set_field keeps the PCP).
On the way out, `untagged_egress` says where it must be popped.
"""
from dataclasses import dataclass, field
from typing import FrozenSet, Iterable, List, Optional, Tuple

from flows import egress, switch_entries
from flows.spec import (TAGGED, UNTAGGED, FlowDelete, FlowSpec, Match, Output, Owner, PopVlan,
                        PushVlan, SetField)

APP = "vlan"
CLASSIFY = Owner(APP, "default")
FLOOD_OWNER = Owner(APP, "flood")
EGRESS_OWNER = Owner(APP, "egress")
NATIVE_MODES = ("native-tagged", "native-untagged")
MAX_VID = 4094

# ingress priorities: admit rules above the port's catch-all drop; the priority-tagged
# rule above the "any tagged" admit of a native port that trunks everything
_PRIORITY_TAGGED, _ADMIT, _DENY = 30, 20, 10


def _check_vid(vid, what, allow_zero=False):
    low = 0 if allow_zero else 1
    if isinstance(vid, bool) or not isinstance(vid, int) or not low <= vid <= MAX_VID:
        raise ValueError(f"{what} must be an integer VLAN id {low}..{MAX_VID}, not {vid!r}")


@dataclass(frozen=True)
class PortVlan:
    port: int
    tag: Optional[int] = None
    trunks: Tuple[int, ...] = ()
    native_mode: Optional[str] = None

    def __post_init__(self):
        if self.tag is not None:
            _check_vid(self.tag, "tag")
        for vid in self.trunks:
            _check_vid(vid, "every trunk", allow_zero=True)
        if len(set(self.trunks)) != len(self.trunks):
            raise ValueError(f"trunks lists a VLAN twice: {list(self.trunks)}")
        if self.native_mode is not None:
            if self.native_mode not in NATIVE_MODES:
                raise ValueError(f"native_mode must be one of {', '.join(NATIVE_MODES)}")
            if self.tag is None:
                raise ValueError(f"{self.native_mode} needs a tag (the native VLAN)")
        elif self.tag is not None and self.trunks:
            raise ValueError("give either tag (access port) or trunks, not both "
                             "(or set native_mode for a native VLAN on a trunk)")

    @property
    def mode(self) -> str:
        if self.native_mode:
            return self.native_mode
        return "access" if self.tag is not None else "trunk"

    def carries(self, vid: int) -> bool:
        if self.mode == "access":
            return vid == self.tag
        if self.native_mode:
            # untagged and priority-tagged frames in join the native VLAN, so VLAN 0
            # (a trunk's untagged frames) has no encoding here: OVS never sends it out
            if vid == 0:
                return False
            if vid == self.tag:
                return True
        return not self.trunks or vid in self.trunks

    def untagged_egress(self, vid: int) -> bool:
        """Does a frame of VLAN `vid` leave this port without a tag?"""
        if self.mode == "access" or self.mode == "native-untagged":
            return vid == self.tag
        return vid == 0 and self.mode == "trunk"


def trunk_all(port: int) -> PortVlan:
    """What OVS does with a port that has neither tag nor trunks."""
    return PortVlan(port)


def _push(vid):
    return (PushVlan(), SetField("vlan_vid", vid))


def classify_port(cfg: PortVlan) -> List[FlowSpec]:
    """ingress entries for one port: admit what it carries (tagging untagged frames),
    drop the rest of what arrives on it."""
    entries = []

    def admit(vlan_match, actions=()):
        entries.append(FlowSpec("ingress", _ADMIT, Match.of(in_port=cfg.port, vlan_vid=vlan_match),
                                CLASSIFY, actions=actions, goto="police"))

    if cfg.tag is not None:  # access and native: a VID-0 tag carries only a priority
        entries.append(FlowSpec("ingress", _PRIORITY_TAGGED,
                                Match.of(in_port=cfg.port, vlan_vid=0), CLASSIFY,
                                actions=(SetField("vlan_vid", cfg.tag),), goto="police"))
    if cfg.mode == "access":
        admit(UNTAGGED, _push(cfg.tag))
    else:
        untagged_vid = cfg.tag if cfg.native_mode else 0
        if cfg.carries(untagged_vid):
            admit(UNTAGGED, _push(untagged_vid))
        if not cfg.trunks:
            admit(TAGGED)
        else:
            tagged = set(cfg.trunks) | ({cfg.tag} if cfg.native_mode else set())
            for vid in sorted(tagged):
                admit(vid)
    entries.append(FlowSpec("ingress", _DENY, Match.of(in_port=cfg.port), CLASSIFY))
    return entries


def flood_vlan(vid: int, ports: Iterable[PortVlan],
               flood_ports: Optional[FrozenSet[int]] = None) -> FlowSpec:
    """Broadcast / unknown unicast of VLAN `vid` to its member ports: tagged members
    first, then pop the tag for the untagged ones (the order matters in one action list).
    OpenFlow never sends a frame back out of its ingress port. `flood_ports`: on a
    fabric with loops, the ports on the flood tree (flows/topology.py); None: all."""
    members = _flood_members(vid, ports, flood_ports)
    tagged = [Output(p.port) for p in members if not p.untagged_egress(vid)]
    untagged = [Output(p.port) for p in members if p.untagged_egress(vid)]
    actions = tuple(tagged) + ((PopVlan(),) + tuple(untagged) if untagged else ())
    # VLAN 0 leaves untagged only with PCP 0: see flood_priority_tagged
    match = Match.of(vlan_vid=0, vlan_pcp=0) if vid == 0 else Match.of(vlan_vid=vid)
    return FlowSpec("flood", 10, match, FLOOD_OWNER, actions=actions)


def _flood_members(vid, ports, flood_ports):
    return sorted((p for p in ports if p.carries(vid) and
                   (flood_ports is None or p.port in flood_ports)), key=lambda p: p.port)


def flood_priority_tagged(ports: Iterable[PortVlan],
                          flood_ports: Optional[FrozenSet[int]] = None) -> FlowSpec:
    """VLAN 0 frames with a nonzero PCP (priority-tagged on a trunk) to VLAN 0's members,
    tag kept: OVS 3.1 omits a VID-0 header on output only when the PCP is 0 too (its
    priority-tags setting notwithstanding; measured with ofproto/trace and frames). Only
    trunks carry VLAN 0, so no member pops. Below flood_vlan(0), which takes PCP 0."""
    members = _flood_members(0, ports, flood_ports)
    return FlowSpec("flood", 9, Match.of(vlan_vid=0), FLOOD_OWNER,
                    actions=tuple(Output(p.port) for p in members))


def directed_egress(cfg: PortVlan, named: Iterable[int]) -> List[FlowSpec]:
    """flood entries for frames an earlier table directed to `cfg.port` (flows/egress.py):
    the VLANs it carries leave it as its mode says (untagged ones without the tag), any
    other VLAN's frame is dropped. `named`: the VLANs some port names; a trunk of every
    VLAN also takes the rest, tagged."""
    def leave(vid):
        out = (Output(cfg.port),)
        return (PopVlan(),) + out if cfg.untagged_egress(vid) else out
    entries = [FlowSpec("flood", egress.VLAN_PRIORITY, egress.directed(cfg.port, vlan_vid=vid),
                        EGRESS_OWNER, actions=leave(vid))
               for vid in sorted(set(named)) if cfg.carries(vid)]
    if cfg.mode != "access" and not cfg.trunks:
        entries.append(FlowSpec("flood", egress.VLAN_TAGGED_PRIORITY,
                                egress.directed(cfg.port, vlan_vid=TAGGED), EGRESS_OWNER,
                                actions=(Output(cfg.port),)))
    entries.append(FlowSpec("flood", egress.VLAN_DENY_PRIORITY, egress.directed(cfg.port),
                            EGRESS_OWNER))
    return entries


def untagged_egress_pairs(ports: Iterable[PortVlan]) -> FrozenSet[Tuple[int, int]]:
    """(port, VLAN) pairs whose frames leave untagged: what the learning app needs to
    pop the tag (or learn a stripping entry) for."""
    pairs = set()
    for cfg in ports:
        candidate = cfg.tag if cfg.mode in ("access", "native-untagged") else 0
        if candidate is not None and cfg.carries(candidate) and cfg.untagged_egress(candidate):
            pairs.add((cfg.port, candidate))
    return frozenset(pairs)


FLOOD_ONLY = Owner(APP, "flood_vlan")  # l2_src entries that skip learning for a VLAN
# above the learning app's port ban (50): a ban protects the controller and the MAC
# table from a port's flood of new sources, and a flood-only VLAN's frames reach
# neither, so a ban earned in a learning VLAN must not cut a flood-only VLAN on the
# same (trunk) port; below known hosts (100), which a flood-only VLAN never has
FLOOD_ONLY_PRIORITY = 60
_FIELDS = ("tag", "trunks", "native_mode")


def port_vlan_from_dict(port: int, body: dict) -> PortVlan:
    """{"tag": 101} / {"trunks": [101, 102]} / plus "native_mode", strictly checked."""
    if not isinstance(body, dict):
        raise ValueError("VLAN settings must be an object with tag, trunks or native_mode")
    unknown = sorted(set(body) - set(_FIELDS))
    if unknown:
        raise ValueError(f"unknown VLAN setting(s) {', '.join(unknown)}; use {', '.join(_FIELDS)}")
    trunks = body.get("trunks", [])
    if not isinstance(trunks, list):
        raise ValueError(f"trunks must be a list of VLAN ids, not {trunks!r}")
    native = body.get("native_mode")
    if native is not None and not isinstance(native, str):
        raise ValueError("native_mode must be a string")
    return PortVlan(port, tag=body.get("tag"), trunks=tuple(trunks), native_mode=native)


def configured_ports(entries, is_named, resolve, overrides=None, missing=None):
    """{port number: PortVlan} of one switch's explicitly configured ports: the config
    file's, then REST's (flows/switch_entries.py `for_switch`)."""
    return switch_entries.for_switch(entries, is_named, resolve, port_vlan_from_dict,
                                     overrides, missing)


def effective_ports(configured, port_numbers) -> List[PortVlan]:
    """Every port's VLAN settings: configured ones as they are, the rest trunks of every
    VLAN (OVS's default for a port without tag or trunks)."""
    return [configured.get(no, trunk_all(no)) for no in sorted(port_numbers)]


def port_vlan_to_dict(cfg: PortVlan) -> dict:
    return {"mode": cfg.mode, "tag": cfg.tag, "trunks": list(cfg.trunks),
            "native_mode": cfg.native_mode}


def vlans_named(ports: Iterable[PortVlan]) -> FrozenSet[int]:
    """Every VLAN some port names (VLAN 0, the untagged VLAN of trunks, always)."""
    named = {0}
    for cfg in ports:
        named.update(cfg.trunks)
        if cfg.tag is not None:
            named.add(cfg.tag)
    return frozenset(named)


def members(ports: Iterable[PortVlan]):
    """{VLAN: [(port, leaves tagged?)]} for every VLAN some port names."""
    ports = sorted(ports, key=lambda p: p.port)
    return {vid: [(p.port, not p.untagged_egress(vid)) for p in ports if p.carries(vid)]
            for vid in sorted(vlans_named(ports))}


def switch_plan(ports: Iterable[PortVlan], configured: Iterable[int],
                flood_only: Iterable[int] = (),
                flood_ports: Optional[FrozenSet[int]] = None) -> List[FlowSpec]:
    """Everything the VLAN app installs on one switch.

    `ports`: every known port (unconfigured ones as trunk_all); `configured`: the port
    numbers with explicit settings; `flood_ports`: see flood_vlan. A port the controller
    does not know yet is treated as OVS treats a port without settings: a trunk of
    every VLAN.
    """
    ports = sorted(ports, key=lambda p: p.port)
    # flood-only VLANs first: a frame classified into one must never reach the
    # learning table before its no-learn entry is there (the switch applies in order)
    specs = [FlowSpec("l2_src", FLOOD_ONLY_PRIORITY, Match.of(vlan_vid=vid), FLOOD_ONLY,
                      goto="router")  # l2.AFTER_LEARNING: past learning
             for vid in sorted(set(flood_only))]
    specs += [
        FlowSpec("ingress", 1, Match.of(vlan_vid=UNTAGGED), CLASSIFY, actions=_push(0),
                 goto="police"),
        FlowSpec("ingress", 1, Match.of(vlan_vid=TAGGED), CLASSIFY, goto="police"),
    ]
    configured = set(configured)
    for cfg in ports:
        if cfg.port in configured:
            specs += classify_port(cfg)
    specs += [flood_vlan(vid, ports, flood_ports) for vid in sorted(vlans_named(ports))]
    specs.append(flood_priority_tagged(ports, flood_ports))
    carry_all = [Output(p.port) for p in ports if p.mode != "access" and not p.trunks and
                 (flood_ports is None or p.port in flood_ports)]
    specs.append(FlowSpec("flood", 5, Match.of(vlan_vid=TAGGED), FLOOD_OWNER,
                          actions=tuple(carry_all)))
    named = vlans_named(ports)
    for cfg in ports:
        specs += directed_egress(cfg, named)
    return specs


def forget_everything() -> List[FlowDelete]:
    """Every entry this app owns, in every table (before re-pushing a switch's plan)."""
    return [FlowDelete(Owner(APP))]


@dataclass(frozen=True)
class VlanSettings:
    """The `vlan` config section. Port references (switch name or dpid, port name or
    number) stay unresolved until a switch says which names and numbers it has."""
    ports: tuple = ()
    flood_vlans: tuple = field(default=())

    def __post_init__(self):
        object.__setattr__(self, "ports", switch_entries.port_entries(
            self.ports, lambda body: port_vlan_from_dict(0, body)))
        for vid in self.flood_vlans or ():
            if isinstance(vid, bool) or not isinstance(vid, int) or not 0 <= vid <= MAX_VID:
                raise ValueError(f"flood_vlans must list VLAN ids 0..{MAX_VID}, not {vid!r}")
        object.__setattr__(self, "flood_vlans", frozenset(self.flood_vlans or ()))


# --- the plan protocol (flows/app_plan.py): `sdn plan` finds the app through it -------

SETTINGS = VlanSettings


def plan(settings: VlanSettings, switch, facts):
    """The switch's classification and flood lists, pushed as the app does (table
    misses first: run alone it passes frames on itself, the canary last); the ports
    whose frames leave untagged go to the apps after it (learning switch, LB)."""
    from flows.app_plan import UNTAGGED, SwitchPlan
    result = SwitchPlan(canary_last=True)
    configured = configured_ports(
        settings.ports, switch.is_named, switch.resolve,
        missing=lambda ref: result.problems.append(f"no port {ref!r} on this switch"))
    ports = effective_ports(configured, switch.ports)
    result.items = switch_plan(ports, configured, settings.flood_vlans)
    result.facts[UNTAGGED] = untagged_egress_pairs(ports)
    return result
