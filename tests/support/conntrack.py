"""A model of Open vSwitch's connection tracker for the table simulator (ofsim.py).

What `ct` does to a packet, as OVS's userspace datapath (the one this project's machines
run, datapath_type=netdev) does it; docs/conntrack-model.md says what is modelled, what
is not and what the differential test on real OVS checked.

- Connections live per zone, keyed by their original tuple (IPv4 or IPv6; TCP/UDP ports,
  ICMP echo id and type, other protocols by addresses alone); a packet matches one in
  the original direction or, by the tuple its reply has on the wire (after NAT), in the
  reply direction (+rpl).
- Only `commit` creates a connection: until then every packet of it is +new.
- After the commit: a reply is +est+rpl; a packet in the original direction is +est
  once a reply was seen, +new before (TCP: only a SYN sent again is +new, the rest
  +est).
- +inv: what cannot be tracked (no IP, ICMP(v6) other than echo and errors, e.g.
  neighbour discovery; an echo reply or a TCP SYN+ACK that opens nothing; TCP flag
  combinations OVS calls invalid).
- +rel: an ICMP error whose quoted packet belongs to a connection.
- ct_mark and ct_label stay with the connection (commit can set them, masked).
- NAT: a commit with nat(src|dst=range[:ports]) translates the connection; later packets
  going through ct with nat (any nat, a bare one too) are translated in the original
  direction and un-translated in the reply direction. Ports come from the range (or, with
  none, stay as they are) and the first free one is taken when several connections would
  otherwise get one reply tuple (without a range: the next one up in the port's class).
"""
import ipaddress
from dataclasses import dataclass, replace
from typing import Dict, List, Optional

from flows.spec import CT_FLAGS, Nat

IPV4, IPV6 = 0x0800, 0x86DD
TCP, UDP, ICMP, ICMPV6 = 6, 17, 1, 58
# echo-like requests and their replies (what ICMP conntrack can track); errors (+rel)
_ICMP_REPLY = {ICMP: {8: 0, 13: 14, 15: 16, 17: 18}, ICMPV6: {128: 129}}
_ICMP_ERRORS = {ICMP: {3, 4, 5, 11, 12}, ICMPV6: {1, 2, 3, 4}}
_ADDR = {IPV4: ("ipv4_src", "ipv4_dst"), IPV6: ("ipv6_src", "ipv6_dst")}
_PORTS = {TCP: ("tcp_src", "tcp_dst"), UDP: ("udp_src", "udp_dst")}
_TYPE = {ICMP: "icmpv4_type", ICMPV6: "icmpv6_type"}
TRK, NEW, EST, REL, RPL, INV, SNAT, DNAT = (CT_FLAGS[f] for f in (
    "trk", "new", "est", "rel", "rpl", "inv", "snat", "dnat"))
FIN, SYN, RST, PSH, ACK, URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20


@dataclass(frozen=True)
class Tuple5:
    """A direction of a connection: addresses, protocol and ports (ICMP: the echo id
    as `sport` and the message type as `dport`; other protocols: both 0)."""
    eth_type: int
    proto: int
    src: str
    dst: str
    sport: int = 0
    dport: int = 0

    def reverse(self) -> "Tuple5":
        if self.proto in _ICMP_REPLY:
            replies = _ICMP_REPLY[self.proto]
            back = {v: k for k, v in replies.items()}
            return replace(self, src=self.dst, dst=self.src,
                           dport=replies.get(self.dport, back.get(self.dport, self.dport)))
        return replace(self, src=self.dst, dst=self.src, sport=self.dport, dport=self.sport)

    def __str__(self):
        return f"{self.proto},{self.src}:{self.sport}->{self.dst}:{self.dport}"


def tuple_of(pkt) -> Optional[Tuple5]:
    """The packet's tuple; None when conntrack cannot track it (+inv)."""
    eth_type, proto = pkt.get("eth_type"), pkt.get("ip_proto", 0)
    if eth_type not in _ADDR:
        return None
    src, dst = (pkt.get(f) for f in _ADDR[eth_type])
    if proto in _PORTS:
        return Tuple5(eth_type, proto, src, dst, *(pkt.get(f, 0) for f in _PORTS[proto]))
    if proto in _TYPE:
        kind = pkt.get(_TYPE[proto])
        if kind in _ICMP_REPLY[proto] or kind in _ICMP_REPLY[proto].values():
            return Tuple5(eth_type, proto, src, dst, pkt.get("icmp_id", 0), kind)
        if kind in _ICMP_ERRORS[proto] and "icmp_quoted" in pkt:
            return Tuple5(eth_type, proto, src, dst, 0, kind)
        return None   # neighbour discovery, router advertisements, ...: not tracked
    return Tuple5(eth_type, proto, src, dst)


def _bad_tcp_flags(flags) -> bool:
    """Flag combinations OVS's TCP tracker calls invalid whatever the connection."""
    if flags & SYN and flags & (RST | FIN):
        return True
    if not flags & SYN and not flags & (ACK | RST):
        return True
    return not flags & ACK and bool(flags & (FIN | PSH | URG))


def _opens(pkt, t: Tuple5) -> bool:
    """Whether a first packet may start a connection (OVS's valid_new)."""
    if t.proto in _ICMP_REPLY:
        return t.dport in _ICMP_REPLY[t.proto]      # a request, not a reply or an error
    if t.proto == TCP:
        flags = pkt.get("tcp_flags", SYN)
        return not _bad_tcp_flags(flags) and not (flags & SYN and flags & ACK)
    return True


@dataclass
class Connection:
    zone: int
    original: Tuple5          # the first packet's tuple, before NAT
    reply: Tuple5             # what a reply looks like on the wire (after NAT)
    mark: int = 0
    label: int = 0
    nat: Optional[str] = None   # "src" or "dst": the translation it was committed with
    replied: bool = False      # a packet in the reply direction was seen

    def update(self, reply: bool, pkt) -> int:
        """The ct_state of a packet of this connection, as OVS 3.1's trackers give it:
        until the first reply an original-direction packet is still new (for TCP only a
        SYN sent again; other TCP packets are established)."""
        proto = self.original.proto
        flags = pkt.get("tcp_flags", SYN) if proto == TCP else 0
        if proto == TCP and _bad_tcp_flags(flags):
            return TRK | INV
        if reply:
            self.replied = True
            return TRK | EST | RPL
        if not self.replied and (proto != TCP or flags & (SYN | ACK) == SYN):
            return TRK | NEW
        return TRK | EST

    def __str__(self):
        nat = f",nat={self.nat}" if self.nat else ""
        return (f"zone={self.zone},orig=({self.original}),reply=({self.reply}),"
                f"mark={self.mark:#x},label={self.label:#x}{nat}")


_EPHEMERAL = ((1, 511), (600, 1023), (1024, 65535))   # OVS keeps a port in its class


class Conntrack:
    """Connection tables, one per zone, and what `ct` does with a packet."""

    def __init__(self):
        self.zones: Dict[int, List[Connection]] = {}

    # --- what tests and traces read -------------------------------------------------

    def entries(self, zone=None) -> List[Connection]:
        return [c for z, conns in sorted(self.zones.items()) if zone in (None, z)
                for c in conns]

    def dump(self, zone=None) -> List[str]:
        """One line per connection, in the spirit of ovs-appctl dpctl/dump-conntrack."""
        return [str(c) for c in self.entries(zone)]

    def flush(self, zone=None, original: Optional[Tuple5] = None) -> int:
        """Forget connections (all, a zone's, or the one with this original tuple), as
        ovs-appctl dpctl/flush-conntrack [zone=N] [tuple] does; returns how many."""
        gone = 0
        for z, conns in self.zones.items():
            if zone not in (None, z):
                continue
            keep = [c for c in conns if original is not None and c.original != original]
            gone += len(conns) - len(keep)
            conns[:] = keep
        return gone

    # --- the ct action ----------------------------------------------------------------

    def _find(self, zone, t: Tuple5):
        for conn in self.zones.get(zone, ()):
            if conn.original == t:
                return conn, False
            if conn.reply == t:
                return conn, True
        return None, False

    def execute(self, pkt, zone, commit=False, nat: Optional[Nat] = None, mark=None,
                label=None):
        """Run `pkt` (a dict, changed in place) through the tracker in `zone`: its
        ct_state, ct_zone, ct_mark and ct_label, and its headers when NAT applies."""
        if pkt.get("ct_state") and pkt.get("ct_zone") != zone:
            clear(pkt)       # OVS starts afresh when a tracked packet enters another zone
        cached = pkt.get("ct_conn")
        t = tuple_of(pkt)
        if t is None:
            return _write(pkt, zone, TRK | INV, None)
        if cached is not None and cached[0] == zone and cached[1] is not None:
            conn, reply = cached[1], cached[2]      # looked up in this zone already
            state = pkt["ct_state"]
        else:
            conn, reply = self._find(zone, t)
            if conn is not None:
                state = conn.update(reply, pkt)
            elif t.proto in _TYPE and t.dport in _ICMP_ERRORS[t.proto]:
                conn, reply, state = self._related(zone, pkt)
            else:
                state = TRK | NEW if _opens(pkt, t) else TRK | INV
        if conn is None and commit and state == TRK | NEW:
            conn = self._commit(zone, t, nat)
        if conn is not None and commit:
            if mark is not None:
                conn.mark = mark[0] | conn.mark & ~mark[1]
            if label is not None:
                conn.label = label[0] | conn.label & ~label[1]
        if conn is not None and nat is not None and conn.nat and not state & REL \
                and not pkt.get("ct_state", 0) & (SNAT | DNAT):
            state |= _translate(pkt, conn, reply)
        return _write(pkt, zone, state, conn, reply)

    def _related(self, zone, pkt):
        quoted = tuple_of(pkt["icmp_quoted"])
        if quoted is not None:
            conn, reply = self._find(zone, quoted)
            if conn is not None:
                # the quoted packet went the other way: an error about an original
                # packet travels in the reply direction
                return conn, not reply, TRK | REL | (0 if reply else RPL)
        return None, False, TRK | INV

    def _commit(self, zone, t: Tuple5, nat: Optional[Nat]) -> Connection:
        conns = self.zones.setdefault(zone, [])
        conn = Connection(zone, t, t.reverse())
        if nat is not None and nat.kind is not None:
            conn.nat, conn.reply = nat.kind, self._translated_reply(conns, t, nat)
        conns.append(conn)
        return conn

    @staticmethod
    def _translated_reply(conns, t: Tuple5, nat: Nat) -> Tuple5:
        """The reply tuple of `t` translated into `nat`'s range, unique in the zone."""
        taken = {c.reply for c in conns} | {c.original for c in conns}
        side = "sport" if nat.kind == "src" else "dport"
        ports = [getattr(t, side)]
        if t.proto in _PORTS:
            if nat.port_min is not None:
                ports = list(range(nat.port_min, nat.port_max + 1))
            else:   # the port stays unless taken, then the next free one of its class
                low, high = next(r for r in _EPHEMERAL if r[0] <= ports[0] <= r[1])
                ports = list(range(ports[0], high + 1)) + list(range(low, ports[0]))
        low, high = (int(ipaddress.ip_address(a)) for a in (nat.ip_min, nat.ip_max))
        for number in range(low, high + 1):
            address = str(ipaddress.ip_address(number))
            for port in ports:
                moved = replace(t, **({"src": address} if nat.kind == "src" else
                                      {"dst": address}), **{side: port})
                if moved.reverse() not in taken:
                    return moved.reverse()
        raise RuntimeError(f"NAT range {nat} exhausted for {t}")  # OVS drops the packet


def _translate(pkt, conn: Connection, reply: bool) -> int:
    """Rewrite the packet's headers as the connection's NAT says; its ct_state bit."""
    t = tuple_of(pkt)
    # original direction: the packet becomes what the reply tuple reversed says;
    # reply direction: the packet becomes the original tuple reversed
    want = conn.original.reverse() if reply else conn.reply.reverse()
    src, dst = _ADDR[t.eth_type]
    pkt[src], pkt[dst] = want.src, want.dst
    if t.proto in _PORTS:
        sport, dport = _PORTS[t.proto]
        pkt[sport], pkt[dport] = want.sport, want.dport
    return SNAT if conn.nat == "src" else DNAT


def _write(pkt, zone, state, conn, reply=False):
    pkt.update(ct_state=state, ct_zone=zone, ct_mark=conn.mark if conn else 0,
               ct_label=conn.label if conn else 0, ct_conn=(zone, conn, reply))
    return pkt


CT_FIELDS = ("ct_state", "ct_zone", "ct_mark", "ct_label", "ct_conn")


def clear(pkt):
    """ct_clear: the packet is untracked again."""
    for name in CT_FIELDS:
        pkt.pop(name, None)
    return pkt

