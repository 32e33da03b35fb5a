"""The bridge name of each connected switch, for switch references by name at the
edges (REST paths and bodies, and the CLI through them) and for the listings that
show names. Inside, a switch is its datapath id; a name is only read here.

A switch's name is its LOCAL port's (OVS names that port after the bridge), from the
port-description reply the runtime asks for on every connection: every OVS sends one,
with or without OVSDB access. Until it arrives, a name OVSDB already gave for the
datapath id (`fallback`: the claims' lookup, controller/claims.py) stands in. Kept per
connection, like readiness: a switch that reconnects may be another bridge with the
same datapath id.

Ryu-free: the app base decodes the reply and hands the name in."""
from typing import Callable, Dict, List, Optional

from flows import dpid


class SwitchNames:
    def __init__(self, fallback: Callable[[int], Optional[str]] = lambda dpid: None):
        self._switches = {}   # dpid -> (datapath, its LOCAL port's name or None while unknown)
        self._fallback = fallback   # dpid -> a name known otherwise (no I/O), or None

    def connected(self, datapath) -> bool:
        """A switch's features arrived; True the first time for this connection (the
        runtime then asks its port description)."""
        entry = self._switches.get(datapath.id)
        if entry is not None and entry[0] is datapath:
            return False
        self._switches[datapath.id] = (datapath, None)
        return True

    def named(self, datapath, name: str) -> None:
        """The LOCAL port of `datapath` is called `name`."""
        entry = self._switches.get(datapath.id)
        if entry is not None and entry[0] is datapath:   # not an ended connection's news
            self._switches[datapath.id] = (datapath, name)

    def gone(self, datapath) -> None:
        entry = self._switches.get(datapath.id)
        if entry is not None and entry[0] is datapath:
            del self._switches[datapath.id]

    def name_of(self, number: int) -> Optional[str]:
        entry = self._switches.get(number)
        if entry is None:
            return None
        return entry[1] if entry[1] is not None else self._fallback(number)

    def by_name(self) -> Dict[str, List[int]]:
        out = {}
        for number in sorted(self._switches):
            name = self.name_of(number)
            if name is not None:
                out.setdefault(name, []).append(number)
        return out

    def resolve(self, ref) -> int:
        """The datapath id switch reference `ref` names (flows/dpid.py `resolve`: a
        datapath id, or a connected bridge's name); its errors as they are."""
        return dpid.resolve(ref, self.by_name())
