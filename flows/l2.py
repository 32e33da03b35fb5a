"""MAC learning as flows, in two modes.

Both modes use two tables, the classic split (FAUCET's eth_src/eth_dst):
- `l2_src` decides whether a source is already known: known (port, VLAN, MAC)
  go on to `l2_dst`; the rest are learned.
- `l2_dst` forwards known destinations; a miss goes to the `flood` table.

reactive: an unknown source is *copied* to the controller (truncated to
`packet_in_bytes`) and still continues to `l2_dst`, so the switch forwards or
floods it itself: no packet-out, no buffering, no first packet lost. The
controller then installs a source entry and a destination entry.

datapath: the switch learns by itself with learn(): every frame refreshes an
`l2_dst` entry "eth_dst = this frame's eth_src -> output to its in_port", so
steady-state traffic never involves the controller.
"""
from dataclasses import dataclass
from typing import Dict, FrozenSet, Iterable, List, Mapping, Optional, Tuple

from flows.spec import (CONTROLLER, FLOOD, UNTAGGED, FlowDelete, FlowSpec, Learn, Match,
                        Output, Owner, PacketInLimit, PopVlan)

APP = "l2_switch"
MODES = ("reactive", "datapath")

# Entries at priority 1 sit above the pipeline's own table-miss (priority 0). Every
# priority here lies in the learning app's bands (controller/pipeline.py BANDS).
DEFAULT_PRIORITY = 1
HOST_PRIORITY = 100

DEFAULTS = Owner(APP, "default")
HOSTS = Owner(APP, "host")        # reactive entries the controller installs
LEARNED = Owner(APP, "learned")   # datapath entries written by learn()


@dataclass(frozen=True)
class L2Settings:
    mode: str = "reactive"
    idle_timeout: int = 300     # seconds a silent MAC stays learned
    max_macs: int = 4096        # per switch; when full, new MACs are flooded, not learned
    packet_in_bytes: int = 128  # truncation of packet-ins (headers only)
    # port security (reactive mode): a port with this many MACs learns no more; new
    # sources there are dropped for ban_s seconds (0: no per-port limit)
    max_macs_per_port: int = 256
    # a MAC that moves this often within flap_window_s is dropped for ban_s (0: off)
    flap_moves: int = 5
    flap_window_s: int = 10
    ban_s: int = 30
    # packet-ins per second the switch may send the controller (all apps' together; an
    # OpenFlow controller meter in the switch drops the rest); 0: no limit
    packet_in_rate: int = 1000

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        for name in ("max_macs_per_port", "flap_moves", "packet_in_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be 0 (off) or a positive integer, not {value!r}")
        for name in ("idle_timeout", "max_macs", "packet_in_bytes", "flap_window_s", "ban_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if self.idle_timeout > 65535 or self.ban_s > 65535:
            raise ValueError("idle_timeout and ban_s must be at most 65535 seconds "
                             "(OpenFlow limit)")
        if self.packet_in_bytes < 18:
            raise ValueError("packet_in_bytes must be at least 18 (an Ethernet + 802.1Q header)")


# (port, VLAN) pairs whose frames leave the port untagged (access ports, a native-untagged
# VLAN, VLAN 0 on trunks), as the VLAN app declares them. Empty for a plain learning switch:
# frames then leave exactly as they came in.
UntaggedEgress = FrozenSet[Tuple[int, int]]
STRIP_PRIORITY = 2


# VLAN 0 leaving a trunk: OVS omits the VID-0 header only when the PCP is 0 as well;
# a priority-tagged frame with a PCP keeps it. So for VLAN 0 a destination has two
# entries: this one (PCP 0: pop) above the plain one at HOST_PRIORITY (tag kept).
VLAN0_UNTAGGED_PRIORITY = 101
# Where a frame goes once its source is learnt (or left alone): the router's table,
# which passes what is not for a gateway on to l2_dst (a plain miss when the router
# app is not loaded)
AFTER_LEARNING = "router"


def _learn(settings: L2Settings, strip_vlan: bool, pcp_0=False) -> Learn:
    # hard_timeout, not idle: OVS restarts it whenever learn() refreshes the entry, so
    # it ages a MAC from the last frame it *sent* (traffic towards it does not count).
    return Learn(table="l2_dst", owner=LEARNED,
                 priority=VLAN0_UNTAGGED_PRIORITY if pcp_0 else HOST_PRIORITY,
                 hard_timeout=settings.idle_timeout,
                 matches=(("vlan_vid", "vlan_vid"), ("eth_dst", "eth_src")),
                 output_from="in_port", strip_vlan=strip_vlan,
                 constants=(("vlan_pcp", 0),) if pcp_0 else ())


def _strip_learns(settings: L2Settings, vid: int):
    if vid == 0:
        return (_learn(settings, strip_vlan=False), _learn(settings, True, pcp_0=True))
    return (_learn(settings, strip_vlan=True),)


def packet_in_limit(settings: L2Settings) -> PacketInLimit:
    """The switch's controller meter: a burst of a quarter second at the rate."""
    return PacketInLimit(settings.packet_in_rate, max(1, settings.packet_in_rate // 4))


def switch_defaults(settings: L2Settings, untagged: Iterable[Tuple[int, int]] = ()
                    ) -> List[FlowSpec]:
    """The entries a switch needs before any host has spoken.

    In datapath mode a frame learned from an untagged-egress (port, VLAN) pair gets a
    learn() that strips the tag, since learned entries cannot carry pop_vlan."""
    everything = Match()
    if settings.mode == "reactive":
        learn_unknown_source = (Output(CONTROLLER, max_len=settings.packet_in_bytes),)
    else:
        learn_unknown_source = (_learn(settings, strip_vlan=False),)
    specs = [
        FlowSpec("l2_src", DEFAULT_PRIORITY, everything, DEFAULTS,
                 actions=learn_unknown_source, goto=AFTER_LEARNING),
        FlowSpec("l2_dst", DEFAULT_PRIORITY, everything, DEFAULTS, goto="flood"),
        FlowSpec("flood", DEFAULT_PRIORITY, everything, DEFAULTS, actions=(Output(FLOOD),)),
    ]
    if settings.mode == "datapath":
        specs += [FlowSpec("l2_src", STRIP_PRIORITY, Match.of(in_port=port, vlan_vid=vid),
                           DEFAULTS, actions=_strip_learns(settings, vid), goto=AFTER_LEARNING)
                  for port, vid in sorted(untagged)]
    return specs


def _vlan(vlan: Optional[int]):
    # A MAC learned from an untagged frame matches untagged frames only (learn() does the
    # same): an entry learned before the VLAN app tagged this port can never capture the
    # tagged traffic that follows.
    return UNTAGGED if vlan is None else vlan


def _src_match(mac: str, port: int, vlan: Optional[int]) -> Match:
    return Match.of(in_port=port, vlan_vid=_vlan(vlan), eth_src=mac)


def _dst_match(mac: str, vlan: Optional[int]) -> Match:
    return Match.of(vlan_vid=_vlan(vlan), eth_dst=mac)


def _dst_entries(mac: str, vlan: Optional[int], port: int, untagged_egress: bool
                 ) -> List[FlowSpec]:
    """l2_dst entries sending `mac`'s frames out of `port` (see VLAN0_UNTAGGED_PRIORITY)."""
    if untagged_egress and vlan == 0:
        return [FlowSpec("l2_dst", VLAN0_UNTAGGED_PRIORITY,
                         Match.of(vlan_vid=0, vlan_pcp=0, eth_dst=mac), HOSTS,
                         actions=(PopVlan(), Output(port))),
                FlowSpec("l2_dst", HOST_PRIORITY, _dst_match(mac, 0), HOSTS,
                         actions=(Output(port),))]
    out = (PopVlan(), Output(port)) if untagged_egress else (Output(port),)
    return [FlowSpec("l2_dst", HOST_PRIORITY, _dst_match(mac, vlan), HOSTS, actions=out)]


def _forget_dst(mac: str, vlan: Optional[int]) -> List[FlowDelete]:
    deletes = [FlowDelete(HOSTS, "l2_dst", _dst_match(mac, vlan), HOST_PRIORITY)]
    if vlan == 0:  # strict: a no-op where there is no such entry
        deletes.append(FlowDelete(HOSTS, "l2_dst", Match.of(vlan_vid=0, vlan_pcp=0, eth_dst=mac),
                                  VLAN0_UNTAGGED_PRIORITY))
    return deletes


def learn_host(mac: str, port: int, vlan: Optional[int], idle_timeout: int,
               untagged_egress: bool = False) -> List[FlowSpec]:
    """Reactive mode: `mac` lives behind `port`.

    Only the source entry ages (idle: refreshed by frames the host sends) and it
    reports its expiry; the controller then removes the destination entry with
    forget_host. Giving the destination entry its own idle timeout would age it
    by traffic *towards* the host: it could expire while the source entry lives
    on, and with no new packet-in the host would be flooded to for good.
    `untagged_egress`: frames to this host leave without their VLAN tag.
    """
    return [
        FlowSpec("l2_src", HOST_PRIORITY, _src_match(mac, port, vlan), HOSTS, goto=AFTER_LEARNING,
                 idle_timeout=idle_timeout, notify_removed=True),
    ] + _dst_entries(mac, vlan, port, untagged_egress)


def host_of(spec: FlowSpec) -> Tuple[str, Optional[int], Optional[int]]:
    """(mac, port or None, vlan) of a learn_host entry read back from a switch."""
    vlan = spec.match.get("vlan_vid")
    vlan = None if vlan == UNTAGGED else vlan
    if spec.table == "l2_src":
        return spec.match.get("eth_src"), spec.match.get("in_port"), vlan
    return spec.match.get("eth_dst"), None, vlan


BANS = Owner(APP, "ban")
BAN_PORT_PRIORITY = 50   # below known hosts (100): those already learned there keep working
BAN_MAC_PRIORITY = 150   # above them: a flapping MAC is dropped on every port


def ban_new_sources(port: int, seconds: int) -> FlowSpec:
    """Port security: frames from sources not yet known on `port` are dropped (and
    counted) for `seconds`, instead of reaching the controller."""
    return FlowSpec("l2_src", BAN_PORT_PRIORITY, Match.of(in_port=port), BANS,
                    hard_timeout=seconds, notify_removed=True)


def ban_mac(mac: str, vlan: Optional[int], seconds: int) -> FlowSpec:
    """A flapping MAC's frames are dropped (and counted) for `seconds`."""
    return FlowSpec("l2_src", BAN_MAC_PRIORITY, Match.of(vlan_vid=_vlan(vlan), eth_src=mac),
                    BANS, hard_timeout=seconds, notify_removed=True)


def forget_host(mac: str, port: int, vlan: Optional[int]) -> List[FlowDelete]:
    """The inverse of learn_host (strict deletes: exactly those entries)."""
    return [FlowDelete(HOSTS, "l2_src", _src_match(mac, port, vlan), HOST_PRIORITY)] + \
        _forget_dst(mac, vlan)


def forget_route(mac: str, vlan: Optional[int]) -> List[FlowDelete]:
    """The inverse of a route_host entry on a switch that is not the host's home."""
    return _forget_dst(mac, vlan)


def forget_all_hosts() -> List[FlowDelete]:
    """Flush every learned MAC of either mode; the defaults stay."""
    return [FlowDelete(HOSTS), FlowDelete(LEARNED)]


def forget_learned() -> FlowDelete:
    """Every entry learn() wrote (datapath mode), e.g. when the flood tree changed."""
    return FlowDelete(LEARNED)


def forget_everything() -> List[FlowDelete]:
    """Every entry this app owns, in every table (used before re-pushing on connect)."""
    return [FlowDelete(Owner(APP))]


# --- on a fabric of switches with loops (flows/topology.py) ------------------------

NO_LEARN = Owner(APP, "inter_switch")  # switch-to-switch ports: hosts are learned where they attach
NO_LEARN_PRIORITY = 3


def fabric_ports(settings: L2Settings, fabric, dpid: int) -> List[FlowSpec]:
    """Where a switch of a fabric must not learn. reactive: no switch-to-switch port
    (the controller locates a host at its edge port and routes to it from every other
    switch). datapath: no core port off the flood tree (learned entries then follow the
    tree, as 802.1D bridges' do)."""
    ports = fabric.core_ports(dpid)
    if settings.mode == "datapath":
        ports -= fabric.tree_ports(dpid)
    return [FlowSpec("l2_src", NO_LEARN_PRIORITY, Match.of(in_port=port), NO_LEARN,
                     goto=AFTER_LEARNING) for port in sorted(ports)]


def route_host(fabric, mac: str, vlan: Optional[int], home: Tuple[int, int],
               idle_timeout: int, untagged: Mapping[int, UntaggedEgress]
               ) -> Dict[int, List[FlowSpec]]:
    """Reactive mode on a fabric: `mac` attaches at `home` (dpid, port). Its own switch
    gets learn_host; every switch that can reach it a destination entry towards the
    next hop of a shortest path. `untagged`: per dpid, the (port, VLAN) pairs that
    leave untagged (VLAN 0 on trunks)."""
    dpid, port = home
    routes = {dpid: learn_host(mac, port, vlan, idle_timeout,
                               untagged_egress=(port, vlan) in untagged.get(dpid, ()))}
    for other, out in fabric.next_hops(dpid, mac).items():
        routes[other] = _dst_entries(mac, vlan, out, (out, vlan) in untagged.get(other, ()))
    return routes


# --- the plan protocol (flows/app_plan.py): `sdn plan` finds the app through it -------

SETTINGS = L2Settings
PLANNED_BY_DEFAULT = True   # ryu-manager's default app: a config with no planned section


def plan(settings: L2Settings, switch, facts):
    """The defaults a switch holds before any host has spoken (flows/learning.py, which
    builds on this module and so is imported on use), stripping where the VLAN app
    leaves frames untagged."""
    from flows import learning
    from flows.app_plan import UNTAGGED, SwitchPlan
    return SwitchPlan(learning.desired(settings, facts.get(UNTAGGED, ())))
