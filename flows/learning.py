"""The learning switch's decisions (apps/l2_switch.py only sends what these return).

Pure: the MAC tables, bans and per-switch routes are passed in and updated in place,
time comes in as `now`, and each function returns the flow changes to send (per
switch where a fabric spans several). Unit tests drive the same functions the app
calls (tests/unit/test_l2_pipeline.py), so there is no copy of the app to keep in step.
"""
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

from flows import diff, l2
from flows.mac_table import FLAPPING, KNOWN, MOVED, PORT_FULL, TABLE_FULL, MacEntry, MacTable
from flows.spec import is_multicast_mac

Changes = List  # FlowSpecs and FlowDeletes, in the order to send them
PerSwitch = List[Tuple[int, Changes]]  # (dpid, changes), in the order to send them


def desired(settings: l2.L2Settings, untagged: Iterable[Tuple[int, int]] = (),
            fabric=None, dpid: Optional[int] = None) -> List:
    """Everything of this app's own a switch holds before any host has spoken (the
    caller frames it with the pipeline's misses and the app's canary,
    controller/desired.py): the defaults and, on a fabric, the ports that must not learn."""
    items = l2.switch_defaults(settings, untagged)
    if fabric is not None:
        items += l2.fabric_ports(settings, fabric, dpid)
    return items


def mac_table(settings: l2.L2Settings) -> MacTable:
    """A switch's MAC table with the settings' limits (port security included)."""
    return MacTable(settings.max_macs, settings.max_macs_per_port, settings.flap_moves,
                    settings.flap_window_s)


def learnable(src: str) -> bool:
    """Multicast sources are never learned (no host lives at a group address)."""
    return not is_multicast_mac(src)


@dataclass(slots=True)   # one per packet-in
class Verdict:
    """What one packet-in from an unknown source means."""
    verdict: str                        # flows/mac_table.py's
    previous: Optional[MacEntry] = None
    changes: Changes = field(default_factory=list)   # for the switch the frame came in on
    barrier: bool = True                # False: nothing later depends on these being in
    banned: Optional[Tuple] = None      # a ban that starts now (its key), to report
    not_learned: bool = False           # counted in the switch's not_learned

    @property
    def located(self) -> bool:
        """The host now lives at the frame's port (route it, tell the observers)."""
        return self.verdict not in (KNOWN, TABLE_FULL, PORT_FULL, FLAPPING)


def packet_in(settings: l2.L2Settings, macs: MacTable, bans: Dict, src: str, port: int,
              vlan: Optional[int], now: float, untagged=frozenset(), fabric=False) -> Verdict:
    """A frame from `src` came in on `port` (reactive mode, an edge port on a fabric).
    On a fabric (`fabric` true) the host's own entries come with its routes
    (route()), so only a move's deletes are returned here."""
    verdict, previous = macs.observe(src, port, vlan, now)
    return decide(settings, macs, bans, verdict, previous, src, port, vlan, now, untagged,
                  fabric)


def decide(settings: l2.L2Settings, macs: MacTable, bans: Dict, verdict: str,
           previous: Optional[MacEntry], src: str, port: int, vlan: Optional[int], now: float,
           untagged=frozenset(), fabric=False) -> Verdict:
    """What `macs.observe`'s verdict on a frame means (packet_in's second half).

    For NEW off a fabric it is always new_host(): l2.learn_host's entries, no barrier,
    located. The packet-in fast path relies on that: it sends those entries from
    precompiled bytes without building this Verdict (apps/l2_switch.py;
    tests/unit/test_fast_path.py compares the bytes)."""
    if verdict == TABLE_FULL:
        return Verdict(verdict, not_learned=True)
    if verdict in (PORT_FULL, FLAPPING):
        out = ban(settings, macs, bans, verdict, src, port, vlan, previous, now)
        out.not_learned = True
        return out
    if verdict == KNOWN:
        return Verdict(verdict, previous)
    changes = l2.forget_host(src, previous.port, vlan) if verdict == MOVED else []
    if fabric:
        return Verdict(verdict, previous, changes)
    return Verdict(verdict, previous, changes + new_host(settings, src, port, vlan, untagged),
                   barrier=False)


def new_host(settings: l2.L2Settings, src: str, port: int, vlan: Optional[int],
             untagged=frozenset()) -> Changes:
    """The entries that learn a host at `port` (no barrier needed after them)."""
    return l2.learn_host(src, port, vlan, settings.idle_timeout,
                         untagged_egress=(port, vlan) in untagged)


def ban(settings: l2.L2Settings, macs: MacTable, bans: Dict, verdict: str, mac: str, port: int,
        vlan: Optional[int], previous: Optional[MacEntry], now: float) -> Verdict:
    """Port security: drop what would thrash the tables, for ban_s, in the switch
    (counted there; no more packet-ins for it meanwhile). `bans`: key -> when it ends."""
    key = ("port", port) if verdict == PORT_FULL else ("mac", vlan, mac)
    if bans.get(key, 0) > now:
        return Verdict(verdict, previous)  # already banned; a packet-in that raced the drop
    bans[key] = now + settings.ban_s
    if verdict == PORT_FULL:
        return Verdict(verdict, previous, [l2.ban_new_sources(port, settings.ban_s)],
                       barrier=False, banned=key)
    changes = [l2.ban_mac(mac, vlan, settings.ban_s)]
    if macs.remove(mac, previous.port, vlan):
        changes = l2.forget_host(mac, previous.port, vlan) + changes
    return Verdict(verdict, previous, changes, banned=key)


def bans_after_expiry(bans: Dict, now: float) -> Dict:
    """A ban ended (its entry was removed): forget it and any others past due."""
    return {key: end for key, end in bans.items() if end > now + 0.5}


def active_bans(bans: Dict, now: float) -> List[dict]:
    out = [({"port": key[1]} if key[0] == "port" else {"mac": key[2], "vlan": key[1]})
           | {"ends_in_s": round(end - now, 1)} for key, end in bans.items() if end > now]
    return sorted(out, key=lambda ban: (ban.get("port", 0), ban.get("mac", "")))


def adopt(macs: MacTable, routes: Dict, installed: Iterable, now: float) -> List:
    """Reactive host entries a previous controller left (read back), to keep: each
    source entry puts its MAC back into `macs`; a destination entry whose host does not
    live here is a route to a host on another switch (into `routes`; pruned once a
    fabric says where hosts are)."""
    installed, kept = list(installed), []
    for spec in installed:
        if spec.owner == l2.HOSTS and spec.table == "l2_src":
            mac, port, vlan = l2.host_of(spec)
            if macs.observe(mac, port, vlan, now)[0] != TABLE_FULL:
                kept.append(spec)
    for spec in installed:
        if spec.owner == l2.HOSTS and spec.table == "l2_dst":
            mac, _, vlan = l2.host_of(spec)
            if macs.get(mac, vlan) is None:
                routes[(vlan, mac)] = spec
            kept.append(spec)
    return kept


def relearn(settings: l2.L2Settings, macs: MacTable, old_untagged, untagged) -> Changes:
    """The VLAN app changed which (port, VLAN) pairs leave untagged: the defaults move
    over in place, datapath mode's learned entries (they baked in the old tag handling)
    are flushed, and the hosts' entries are rewritten."""
    changes = diff.plan_changes(l2.switch_defaults(settings, old_untagged),
                                l2.switch_defaults(settings, untagged))
    if settings.mode == "datapath":
        changes.append(l2.forget_learned())
    for entry in macs.entries():
        changes += l2.learn_host(entry.mac, entry.port, entry.vlan, settings.idle_timeout,
                                 (entry.port, entry.vlan) in untagged)
    return changes


def expired_host(macs: MacTable, mac: str, port: int, vlan: Optional[int]) -> Optional[MacEntry]:
    """A host's source entry timed out: the table entry to forget (None when the host
    has moved on since, so the expiry is of an old location)."""
    entry = macs.get(mac, vlan)
    return entry if entry is not None and entry.port == port else None


def forget(macs: MacTable, entry: MacEntry) -> Changes:
    """`entry` left its port: the table forgets it and its entries go ([] when it was no
    longer there)."""
    if not macs.remove(entry.mac, entry.port, entry.vlan):
        return []
    return l2.forget_host(entry.mac, entry.port, entry.vlan)


def on_port(macs: MacTable, port: int) -> List[MacEntry]:
    """The hosts learned on `port` (it went down: they go with it)."""
    return [entry for entry in macs.entries() if entry.port == port]


# --- a fabric of switches (flows/topology.py) -------------------------------------------

def route(fabric, settings: l2.L2Settings, mac: str, vlan: Optional[int], home: int, port: int,
          routes: Mapping[int, Dict], untagged: Mapping, include_home: bool) -> PerSwitch:
    """Point every switch at `mac`'s home (dpid, port), returning only what changed.
    `routes`: per connected switch, {(vlan, mac): entry} last sent there (updated)."""
    wanted_by = l2.route_host(fabric, mac, vlan, (home, port), settings.idle_timeout, untagged)
    key, out = (vlan, mac), []
    # nearest the host first: a switch forwarding towards it must not reach a next
    # hop that has no entry yet (that one would flood, and a frame coming in off the
    # flood tree is dropped there)
    hops = fabric.hops_to(home)
    for dpid, mine in sorted(routes.items(), key=lambda item: hops.get(item[0], len(hops) + 1)):
        if dpid == home:
            mine.pop(key, None)
            if include_home:
                out.append((dpid, wanted_by[dpid]))
            continue
        wanted = wanted_by.get(dpid, [None])[0]
        if mine.get(key) == wanted:
            continue
        if wanted is None:
            del mine[key]
            out.append((dpid, l2.forget_route(mac, vlan)))
        else:
            mine[key] = wanted
            out.append((dpid, [wanted]))
    return out


def unroute(routes: Mapping[int, Dict], mac: str, vlan: Optional[int]) -> PerSwitch:
    """`mac` is gone: the routes towards it on every switch go too."""
    return [(dpid, l2.forget_route(mac, vlan)) for dpid, mine in routes.items()
            if mine.pop((vlan, mac), None) is not None]


def forget_elsewhere(tables: Mapping[int, MacTable], mac: str, vlan: Optional[int],
                     here: int) -> PerSwitch:
    """A host heard at an edge port of `here` no longer lives on another switch."""
    out = []
    for dpid, macs in tables.items():
        entry = macs.get(mac, vlan) if dpid != here else None
        if entry is not None and macs.remove(mac, entry.port, vlan):
            out.append((dpid, l2.forget_host(mac, entry.port, vlan)))
    return out


def refabric(settings: l2.L2Settings, old, fabric, no_learn: Mapping[int, List]):
    """The fabric changed from `old` (None: there was none): ({dpid: its no-learning
    entries now}, what to send). Each switch's no-learning entries (`no_learn`: as last
    sent) change only where they differ; in datapath mode a new flood tree flushes what
    the switches learned along the old one."""
    plans, out = {}, []
    for dpid, last in no_learn.items():
        plans[dpid] = l2.fabric_ports(settings, fabric, dpid)
        changes = diff.plan_changes(last, plans[dpid])
        if changes:
            out.append((dpid, changes))
    if settings.mode == "datapath" and (old is None or old.tree != fabric.tree):
        out += [(dpid, [l2.forget_learned()]) for dpid in no_learn]
    return plans, out


def stale_routes(routes: Mapping[int, Dict], tables: Iterable[MacTable],
                 elsewhere: Iterable = ()) -> PerSwitch:
    """Routes adopted from a previous controller towards hosts no switch knows (nor,
    in a cluster, another node: `elsewhere`, (vlan, mac) keys)."""
    homed = {(e.vlan, e.mac) for macs in tables for e in macs.entries()} | set(elsewhere)
    out = []
    for dpid, mine in routes.items():
        for key in [key for key in mine if key not in homed]:
            del mine[key]
            out.append((dpid, l2.forget_route(key[1], key[0])))
    return out
