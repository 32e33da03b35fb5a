"""Switches one app owns outright. Most apps share every switch through the declared
pipeline; the overlay app owns its hypervisors' br-int and br-tun (their whole
pipeline is its own) and the bond app owns bridges with bonds (OVS's NORMAL switching
runs the bonds), so the other apps, started in the same ryu-manager, must leave those
switches alone: `SdnApp` drops their events for every other app (but a connection's
end, so they can forget a switch they had before it was claimed).

Claims are made before those switches connect: by datapath id (the overlay: from its
config and REST model; the bond app: bridges its config names by datapath id, and
those with REST bonds) or by bridge name (the bond app's config), which a resolver
turns into the name of a connecting switch (an OVSDB lookup, once per datapath id)."""
import logging
from typing import Callable, Dict, Iterable, Optional

from flows.dpid import format as format_dpid

LOG = logging.getLogger(__name__)
LEFT_ALONE_MARK = "leaving alone"   # logged by each app that ignores a claimed switch
_owners: Dict[int, str] = {}
_named: Dict[str, str] = {}        # bridge name -> app
_names: Dict[int, Optional[str]] = {}   # datapath id -> bridge name (None: unknown)
_resolver: Optional[Callable[[int], str]] = None


def claim(app: str, dpids: Iterable[int]) -> None:
    """`app` owns exactly `dpids` from now on (its earlier claims are dropped)."""
    _replace(_owners, app, dpids, lambda dpid: f"switch {format_dpid(dpid)}")


def claim_names(app: str, names: Iterable[str], resolver: Callable[[int], str]) -> None:
    """`app` owns exactly the bridges called `names` (besides its datapath ids);
    `resolver(dpid)` names a connecting switch's bridge (raises when it cannot)."""
    global _resolver
    _replace(_named, app, names, lambda name: f"bridge {name}")
    _resolver = resolver


def _replace(registry, app, keys, describe):
    """All or nothing: a key another app holds refuses the whole change."""
    keys = list(keys)
    for key in keys:
        holder = registry.get(key, app)
        if holder != app:
            raise ValueError(f"{describe(key)} is already {holder}'s")
    for key in [k for k, holder in registry.items() if holder == app]:
        del registry[key]
    registry.update(dict.fromkeys(keys, app))


def owner(dpid: int) -> Optional[str]:
    holder = _owners.get(dpid)
    if holder is None and _named and dpid is not None:
        holder = _named.get(_bridge_name(dpid))
    return holder


def forget_name(dpid: Optional[int]) -> None:
    """A switch's connection ended: the next one may be another bridge with that id."""
    _names.pop(dpid, None)


def _bridge_name(dpid: int) -> Optional[str]:
    """Asked once per connection: every event of every app comes here, so a lookup
    that failed (no such bridge in OVSDB, OVSDB away) is not repeated per event; the
    switch is then nobody's by name until it connects again."""
    if dpid not in _names:
        try:
            _names[dpid] = _resolver(dpid)
        except Exception as err:  # noqa: B902 - an unknown name only means "not claimed"
            LOG.warning("claims: cannot name switch %s: %s", format_dpid(dpid), err)
            _names[dpid] = None
    return _names[dpid]


def leaves_alone(app: str, dpid: Optional[int]) -> bool:
    """Whether `app` must ignore switch `dpid` (another app owns it)."""
    holder = owner(dpid) if dpid is not None else None
    return holder is not None and holder != app
