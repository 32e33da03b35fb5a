"""Switches one app owns outright. Most apps share every switch through the declared
pipeline; the overlay app owns its hypervisors' br-int and br-tun (their whole
pipeline is its own) and the bond app owns bridges with bonds (OVS's NORMAL switching
runs the bonds), so the other apps, started in the same ryu-manager, must leave those
switches alone: `SdnApp` drops their events for every other app (but a connection's
end, so they can forget a switch they had before it was claimed).

Claims are made by datapath id when an app learns which switches are its own, best
before those switches connect (the overlay: from its config and REST model; the bond
app: bridges its config names by datapath id, and those with REST bonds)."""
from typing import Dict, Iterable, Optional

LEFT_ALONE_MARK = "leaving alone"   # logged by each app that ignores a claimed switch
_owners: Dict[int, str] = {}


def claim(app: str, dpids: Iterable[int]) -> None:
    """`app` owns exactly `dpids` from now on (its earlier claims are dropped)."""
    for dpid in [d for d, owner in _owners.items() if owner == app]:
        del _owners[dpid]
    for dpid in dpids:
        holder = _owners.setdefault(dpid, app)
        if holder != app:
            raise ValueError(f"switch {dpid:016x} is already {holder}'s")


def owner(dpid: int) -> Optional[str]:
    return _owners.get(dpid)


def leaves_alone(app: str, dpid: Optional[int]) -> bool:
    """Whether `app` must ignore switch `dpid` (another app owns it)."""
    holder = _owners.get(dpid) if dpid is not None else None
    return holder is not None and holder != app
