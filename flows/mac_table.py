"""The controller's view of one switch's learned MACs (reactive mode).

Pure and clock-free: callers pass `now`. `observe` says what a packet-in means
so the caller can emit the matching flows. Two port-security verdicts: a port
that already has `max_per_port` MACs takes no new ones (PORT_FULL: the caller
bans new sources there for a while), and a MAC that moved `flap_moves` times
within `flap_window_s` stays where it was (FLAPPING: the caller bans the MAC).
"""
from collections import Counter, deque
from dataclasses import dataclass
from typing import Deque, Dict, List, Optional, Tuple

NEW = "new"          # learn it
MOVED = "moved"      # forget the old port, learn the new one
KNOWN = "known"      # nothing to do (a packet-in raced the flow install)
TABLE_FULL = "full"  # not learned: the frame is flooded as unknown unicast
PORT_FULL = "port_full"  # not learned: the port has its share of MACs already
FLAPPING = "flapping"    # not moved: it moves back and forth between ports

Key = Tuple[Optional[int], str]  # (vlan, mac)


@dataclass(slots=True)   # one per learned host: 100k of them in the scale bench
class MacEntry:
    mac: str
    port: int
    vlan: Optional[int]
    learned_at: float


class MacTable:
    def __init__(self, max_macs: int, max_per_port: int = 0, flap_moves: int = 0,
                 flap_window_s: float = 10.0):
        self.max_macs, self.max_per_port = max_macs, max_per_port  # 0: no per-port cap
        self.flap_moves, self.flap_window_s = flap_moves, flap_window_s  # 0: no flap check
        self._entries: Dict[Key, MacEntry] = {}
        self._per_port: Counter = Counter()
        self._moves: Dict[Key, Deque[float]] = {}

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
        if self.max_per_port and self._per_port[port] >= self.max_per_port:
            return PORT_FULL, previous
        if previous is not None and self.flap_moves:
            moves = self._moves.setdefault(key, deque())
            moves.append(now)
            while moves and now - moves[0] > self.flap_window_s:
                moves.popleft()
            if len(moves) >= self.flap_moves:
                return FLAPPING, previous
        if previous is not None:
            self._per_port[previous.port] -= 1
        self._per_port[port] += 1
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
        self._per_port[port] -= 1
        return True

    def clear(self):
        self._entries.clear()
        self._per_port.clear()
        self._moves.clear()

    def entries(self) -> List[MacEntry]:
        return sorted(self._entries.values(), key=lambda e: (e.vlan or 0, e.mac))
