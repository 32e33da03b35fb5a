"""The controller's view of one switch's learned MACs (reactive mode).

Pure and clock-free: callers pass `now`. `observe` says what a packet-in means
so the caller can emit the matching flows.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

NEW = "new"          # learn it
MOVED = "moved"      # forget the old port, learn the new one
KNOWN = "known"      # nothing to do (a packet-in raced the flow install)
TABLE_FULL = "full"  # not learned: the frame is flooded as unknown unicast

Key = Tuple[Optional[int], str]  # (vlan, mac)


@dataclass
class MacEntry:
    mac: str
    port: int
    vlan: Optional[int]
    learned_at: float


class MacTable:
    def __init__(self, max_macs: int):
        self.max_macs = max_macs
        self._entries: Dict[Key, MacEntry] = {}

    def __len__(self):
        return len(self._entries)

    def observe(self, mac: str, port: int, vlan: Optional[int], now: float):
        """Returns (verdict, previous entry or None)."""
        key = (vlan, mac)
        previous = self._entries.get(key)
        if previous is not None and previous.port == port:
            return KNOWN, previous
        if previous is None and len(self._entries) >= self.max_macs:
            return TABLE_FULL, None
        self._entries[key] = MacEntry(mac, port, vlan, now)
        return (MOVED if previous is not None else NEW), previous

    def get(self, mac: str, vlan: Optional[int]) -> Optional[MacEntry]:
        return self._entries.get((vlan, mac))

    def remove(self, mac: str, port: int, vlan: Optional[int]) -> bool:
        """Forget `mac` if it is still on `port` (an expiry of an old location
        must not erase the new one)."""
        key = (vlan, mac)
        entry = self._entries.get(key)
        if entry is None or entry.port != port:
            return False
        del self._entries[key]
        return True

    def clear(self):
        self._entries.clear()

    def entries(self) -> List[MacEntry]:
        return sorted(self._entries.values(), key=lambda e: (e.vlan or 0, e.mac))
