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


class Claims:
    """The claims of one ryu-manager's apps (held by its controller.runtime.Runtime)."""

    def __init__(self):
        self._owners: Dict[int, str] = {}
        self._named: Dict[str, str] = {}        # bridge name -> app
        self._names: Dict[int, Optional[str]] = {}   # datapath id -> bridge name (None: unknown)
        self._resolver: Optional[Callable[[int], str]] = None

    def claim(self, app: str, dpids: Iterable[int]) -> None:
        """`app` owns exactly `dpids` from now on (its earlier claims are dropped)."""
        _replace(self._owners, app, dpids, lambda dpid: f"switch {format_dpid(dpid)}")

    def claim_names(self, app: str, names: Iterable[str],
                    resolver: Callable[[int], str]) -> None:
        """`app` owns exactly the bridges called `names` (besides its datapath ids);
        `resolver(dpid)` names a connecting switch's bridge (raises when it cannot)."""
        _replace(self._named, app, names, lambda name: f"bridge {name}")
        self._resolver = resolver

    def owner(self, dpid: int) -> Optional[str]:
        holder = self._owners.get(dpid)
        if holder is None and self._named and dpid is not None:
            holder = self._named.get(self._bridge_name(dpid))
        return holder

    def known_name(self, dpid: int) -> Optional[str]:
        """The bridge name OVSDB gave for `dpid` on this connection, if it was asked
        (no lookup here: controller/switch_names.py falls back on it)."""
        return self._names.get(dpid)

    def forget_name(self, dpid: Optional[int]) -> None:
        """A switch's connection ended: the next one may be another bridge with that id."""
        self._names.pop(dpid, None)

    def _bridge_name(self, dpid: int) -> Optional[str]:
        """Asked once per connection: every event of every app comes here, so a lookup
        that failed (no such bridge in OVSDB, OVSDB away) is not repeated per event; the
        switch is then nobody's by name until it connects again."""
        if dpid not in self._names:
            try:
                self._names[dpid] = self._resolver(dpid)
            except Exception as err:  # noqa: B902 - an unknown name only means "not claimed"
                LOG.warning("claims: cannot name switch %s: %s", format_dpid(dpid), err)
                self._names[dpid] = None
        return self._names[dpid]

    def leaves_alone(self, app: str, dpid: Optional[int]) -> bool:
        """Whether `app` must ignore switch `dpid` (another app owns it)."""
        holder = self.owner(dpid) if dpid is not None else None
        return holder is not None and holder != app


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
