"""Flow specs as plain immutable values.

Builders in `flows/` return these; `controller.ofcompile` turns them into Ryu
OpenFlow 1.3 messages. Tables are referred to by name (the pipeline declared in
`controller.pipeline` maps names to numbers) and ownership by an `Owner`
(encoded into the cookie by `controller.pipeline`). Value equality gives
dedupe and diffing for free.
"""
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Optional, Tuple, Union

# Reserved output ports, compiled to OFPP_* at the edge.
FLOOD = "flood"          # every port but the ingress port
ALL = "all"
IN_PORT = "in_port"
CONTROLLER = "controller"
NORMAL = "normal"         # OVS's own L2 switching (what implements bonds)

# Special values of the `vlan_vid` match field (a plain int means "tagged with that VID").
UNTAGGED = "untagged"
TAGGED = "tagged"


_CANONICAL_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
_ANY_MAC = re.compile(r"[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}")


def normalize_mac(mac: str) -> str:
    """'AA-BB-..' / 'aa:bb:..' -> 'aa:bb:cc:dd:ee:ff'; raises ValueError when malformed."""
    if isinstance(mac, str) and _CANONICAL_MAC.fullmatch(mac):
        return mac  # already canonical (every MAC the controller reads off the wire)
    # six pairs of ASCII hex digits, nothing else: int() alone would take " 2", "+2"
    # or non-ASCII digits and hand OpenFlow a MAC it cannot encode
    if not isinstance(mac, str) or not _ANY_MAC.fullmatch(mac):
        raise ValueError(f"malformed MAC address {mac!r}")
    return mac.replace("-", ":").lower()


def is_multicast_mac(mac: str) -> bool:
    return bool(int(mac[:2], 16) & 1)


@dataclass(frozen=True)
class Owner:
    """Who installed an entry and why; `purpose=None` in a delete means every purpose.
    `instance` names one thing within the purpose (a VIP id), so its entries can be
    deleted or read back alone."""
    app: str
    purpose: Optional[str] = None
    instance: Optional[int] = None


@dataclass(frozen=True)
class Match:
    """OXM-style match: sorted (field, value, mask) triples; mask None = exact."""
    fields: Tuple[Tuple[str, object, object], ...] = ()

    @classmethod
    def of(cls, **fields) -> "Match":
        triples = []
        for name, value in fields.items():
            if value is None:
                continue
            if isinstance(value, tuple):
                value, mask = value
            else:
                mask = None
            if name in CT_MATCH_BITS:
                _bits((value, mask) if mask is not None else value, CT_MATCH_BITS[name], name)
            if name in ("eth_src", "eth_dst"):
                value = normalize_mac(value)
                mask = normalize_mac(mask) if mask is not None else None
            triples.append((name, value, mask))
        return cls(tuple(sorted(triples, key=lambda t: t[0])))

    def get(self, name, default=None):
        for fname, value, mask in self.fields:
            if fname == name:
                return value if mask is None else (value, mask)
        return default

    def names(self):
        return {name for name, _, _ in self.fields}


# --- actions -----------------------------------------------------------------

@dataclass(frozen=True)
class Output:
    port: Union[int, str]
    max_len: int = 0  # bytes of the packet sent when port is CONTROLLER


@dataclass(frozen=True)
class SetField:
    field: str
    value: object


@dataclass(frozen=True)
class Move:
    """Copy one header field into another (Nicira reg_move), e.g. an ARP reply built
    in place: eth_src -> eth_dst, arp_sha -> arp_tha, arp_spa -> arp_tpa."""
    src: str
    dst: str


CT_ZONES = 1 << 16
CT_MARK_BITS, CT_LABEL_BITS = 32, 128


def _bits(value, bits: int, what: str):
    """A field value, or (value, mask), as (value, mask) of `bits` bits; raises ValueError."""
    value, mask = value if isinstance(value, tuple) else (value, (1 << bits) - 1)
    for part in (value, mask):
        if isinstance(part, bool) or not isinstance(part, int) or not 0 <= part < 1 << bits:
            raise ValueError(f"{what} must be {bits}-bit integers, not {part!r}")
    if value & ~mask:
        raise ValueError(f"{what} value {value:#x} has bits outside its mask {mask:#x}")
    return value, mask


def check_zone(zone) -> int:
    if isinstance(zone, bool) or not isinstance(zone, int) or not 0 <= zone < CT_ZONES:
        raise ValueError(f"conntrack zone must be an integer 0..65535, not {zone!r}")
    return zone


def _address(text, what):
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"NAT {what} {text!r} is not an IPv4 or IPv6 address") from None


@dataclass(frozen=True)
class Nat:
    """NAT inside a `Ct` (OVS's nat). `kind` "src" or "dst" with an address range
    (`ip_min`..`ip_max`, one address when `ip_max` is not given) and optionally a port
    range: a new connection is committed translated to an address (and port) of the
    range. Nat() alone (kind None) applies the NAT a committed connection already has to
    a later packet of it, in either direction; OVS never translates without a nat in the
    ct action, whatever the connection holds."""
    kind: Optional[str] = None
    ip_min: Optional[str] = None
    ip_max: Optional[str] = None
    port_min: Optional[int] = None
    port_max: Optional[int] = None

    def __post_init__(self):
        if self.kind is None:
            if (self.ip_min, self.ip_max, self.port_min, self.port_max) != (None,) * 4:
                raise ValueError("nat with addresses or ports needs kind 'src' or 'dst'")
            return
        if self.kind not in ("src", "dst"):
            raise ValueError(f"nat kind must be 'src' or 'dst', not {self.kind!r}")
        if self.ip_min is None:
            raise ValueError(f"nat({self.kind}) needs an address range")
        low = _address(self.ip_min, "address")
        high = low if self.ip_max is None else _address(self.ip_max, "address")
        if low.version != high.version or high < low:
            raise ValueError(f"NAT address range {self.ip_min}-{self.ip_max} is not a range "
                             "of one family, low to high")
        object.__setattr__(self, "ip_min", str(low))
        object.__setattr__(self, "ip_max", str(high))
        if self.port_min is None and self.port_max is not None:
            raise ValueError("a NAT port range needs its low end")
        if self.port_min is not None:
            high_port = self.port_min if self.port_max is None else self.port_max
            for port in (self.port_min, high_port):
                if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
                    raise ValueError(f"NAT ports must be 1..65535, not {port!r}")
            if high_port < self.port_min:
                raise ValueError(f"NAT port range {self.port_min}-{high_port} runs backwards")
            object.__setattr__(self, "port_max", high_port)

    @property
    def ipv6(self) -> bool:
        return self.ip_min is not None and ":" in self.ip_min


@dataclass(frozen=True)
class Ct:
    """Send the packet through connection tracking in `zone`. Without `commit`: look it
    up, then continue in `table` with ct_state/ct_zone/ct_mark/ct_label set (match
    "ct_state" with "+trk"/"-trk", "ct_mark"). With `commit`: record the connection,
    storing the packet's `mark_from` field (e.g. "reg0") or the constant `mark` (a
    value, or (value, mask) to change only the mask's bits) as its ct_mark, and `label`
    (128 bits, set whole) as its ct_label. `nat`: see `Nat`. Without `table` the packet
    goes on after the action as it came (OVS does not recirculate it)."""
    zone: int
    table: Optional[str] = None
    commit: bool = False
    mark_from: Optional[str] = None
    mark: Optional[Tuple[int, int]] = None
    label: Optional[Tuple[int, int]] = None
    nat: Optional[Nat] = None

    def __post_init__(self):
        check_zone(self.zone)
        if self.mark is not None:
            object.__setattr__(self, "mark", _bits(self.mark, CT_MARK_BITS, "ct_mark"))
        if self.label is not None:
            object.__setattr__(self, "label", _bits(self.label, CT_LABEL_BITS, "ct_label"))
            if self.label[1] != (1 << CT_LABEL_BITS) - 1:
                # Ryu 4.34 cannot encode a masked 128-bit load (its reg_load2 pads wrong)
                raise ValueError("ct sets its ct_label whole (no mask)")
        if self.mark is not None and self.mark_from is not None:
            raise ValueError("ct sets its mark from a field or to a constant, not both")
        if not self.commit and (self.mark, self.label, self.mark_from) != (None,) * 3:
            raise ValueError("ct can set ct_mark or ct_label only with commit (OVS refuses it)")
        if self.nat is not None and not isinstance(self.nat, Nat):
            raise ValueError(f"ct nat must be a Nat, not {self.nat!r}")
        if self.nat is not None and self.nat.kind is not None and not self.commit:
            raise ValueError("nat with an address range needs commit: only a committed "
                             "connection keeps its translation")


@dataclass(frozen=True)
class CtClear:
    """Forget the packet's conntrack state (OVS's ct_clear): it is untracked again
    (ct_state, ct_zone, ct_mark, ct_label 0), so it can be tracked anew, e.g. in
    another zone."""


# ct fields a match may name, their width: (value, mask) or a plain value
CT_MATCH_BITS = {"ct_zone": 16, "ct_mark": CT_MARK_BITS, "ct_label": CT_LABEL_BITS}


CT_FLAGS = {"new": 0x01, "est": 0x02, "rel": 0x04, "rpl": 0x08, "inv": 0x10, "trk": 0x20,
            "snat": 0x40, "dnat": 0x80}


def ct_state_bits(text: str):
    """"+trk-rpl" -> (value, mask) of OVS's ct_state bits; raises ValueError."""
    value = mask = 0
    for sign, flag in re.findall(r"([+-])([a-z]+)", text):
        if flag not in CT_FLAGS:
            raise ValueError(f"unknown ct_state flag {flag!r} in {text!r}")
        mask |= CT_FLAGS[flag]
        value |= CT_FLAGS[flag] if sign == "+" else 0
    if not mask:
        raise ValueError(f"ct_state needs flags like +trk-rpl, not {text!r}")
    return value, mask


@dataclass(frozen=True)
class Resubmit:
    """Run the packet through `table` again from here (Nicira resubmit), e.g. from a
    group bucket, which cannot goto."""
    table: str


@dataclass(frozen=True)
class PushVlan:
    ethertype: int = 0x8100


@dataclass(frozen=True)
class PopVlan:
    pass


@dataclass(frozen=True)
class DecTtl:
    """Decrement the IPv4 TTL (IPv6 hop limit), as a router does; a packet whose TTL
    would reach 0 is dropped (OpenFlow 1.3 dec_nw_ttl: OVS sends it to the controller
    only when the switch config asks for invalid-TTL packet-ins, which ours does not)."""


@dataclass(frozen=True)
class GroupRef:
    """A group named by its owner and a number unique within that owner (a VIP id);
    `controller.pipeline.group_id` turns it into the switch's id."""
    owner: "Owner"
    number: int


@dataclass(frozen=True)
class Group:
    """Send the packet through a group."""
    ref: GroupRef


@dataclass(frozen=True)
class SetQueue:
    queue_id: int


@dataclass(frozen=True)
class Learn:
    """Nicira learn(): add/refresh an entry in `table` built from the packet.

    `matches` are (field in the new entry, field of this packet it is copied
    from), e.g. ("eth_dst", "eth_src"); `output_from` names the packet field
    whose value becomes the new entry's output port (usually "in_port"); `loads`
    are (field the new entry sets, field of this packet it is copied from), e.g.
    ("tunnel_id", "tunnel_id") so the entry sends into the tunnel it learned from.
    `constants` are (field, value) the new entry matches whatever the packet, e.g.
    ("vlan_pcp", 0).
    """
    table: str
    owner: Owner
    matches: Tuple[Tuple[str, str], ...]
    output_from: str = "in_port"
    strip_vlan: bool = False  # the new entry removes the tag before output (load 0 -> TCI)
    loads: Tuple[Tuple[str, str], ...] = ()
    priority: int = 100
    idle_timeout: int = 0
    hard_timeout: int = 0
    constants: Tuple[Tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Conjunction:
    """Clause `clause` of `n_clauses` of the conjunctive match `conj_id` (Nicira
    conjunction(id, k/n)). An entry with it matches nothing by itself: a packet that
    matches an entry of every clause of one id at one priority is looked up again with
    conj_id set, where an entry matching `conj_id` acts. A set membership of n addresses
    against m port matches costs n + m entries instead of n x m. Such an entry has
    conjunction actions only (OVS refuses anything else beside them)."""
    conj_id: int
    clause: int
    n_clauses: int

    def __post_init__(self):
        if not 2 <= self.n_clauses <= 64 or not 1 <= self.clause <= self.n_clauses:
            raise ValueError(f"conjunction clause {self.clause}/{self.n_clauses}: "
                             "1 <= clause <= n_clauses, 2..64 clauses")
        if not 0 <= self.conj_id <= 0xFFFFFFFF:
            raise ValueError(f"conjunction id {self.conj_id} out of 32 bits")


# Every action kind, once: controller/ofactions.py compiles, decodes and prints each
# and tests/support/ofsim.py runs each (tests/unit/test_action_registry.py checks both).
ACTION_KINDS = (Output, SetField, Move, Ct, CtClear, Resubmit, PushVlan, PopVlan, Group, SetQueue,
                Learn, DecTtl, Conjunction)
Action = Union[ACTION_KINDS]

# --- groups -----------------------------------------------------------------------


@dataclass(frozen=True)
class Bucket:
    actions: Tuple[Action, ...]
    weight: int = 1


@dataclass(frozen=True)
class GroupSpec:
    """An OpenFlow group: "select" (one bucket per flow, by hash and weight), "all" or
    "indirect". `modify` replaces the buckets of an existing group in place (deleting
    a group would delete every flow that uses it)."""
    ref: GroupRef
    type: str
    buckets: Tuple[Bucket, ...]
    modify: bool = False


@dataclass(frozen=True)
class GroupDelete:
    """Remove a group; the switch also removes every flow that sends to it."""
    ref: GroupRef

# --- meters (OpenFlow 1.3 rate limiters a flow can go through) -------------------


@dataclass(frozen=True)
class MeterRef:
    """A meter named by its owner and a number unique within that owner (a rule id,
    a port number); `controller.pipeline.meter_id` turns it into the switch's id."""
    owner: Owner
    number: int


@dataclass(frozen=True)
class MeterSpec:
    """A meter with one drop band: traffic above `rate` bit/s (after a `burst` of
    bits) is dropped. `modify` changes an existing meter in place."""
    ref: MeterRef
    rate: int
    burst: int
    modify: bool = False


@dataclass(frozen=True)
class MeterDelete:
    """Remove a meter; the switch also removes every flow that uses it."""
    ref: MeterRef


@dataclass(frozen=True)
class PacketInLimit:
    """The switch's controller meter (OpenFlow 1.3 OFPM_CONTROLLER): packet-ins above
    `rate` per second (after a burst of `burst` packets) are dropped in the switch,
    whichever flow sent them. `rate` 0 removes the limit."""
    rate: int
    burst: int


@dataclass(frozen=True)
class FlowSpec:
    table: str
    priority: int
    match: Match
    owner: Owner
    actions: Tuple[Action, ...] = ()
    goto: Optional[str] = None
    idle_timeout: int = 0
    hard_timeout: int = 0
    notify_removed: bool = False  # ask for a flow-removed message when it expires
    meter: Optional[MeterRef] = None  # go through this meter before the actions


@dataclass(frozen=True)
class FlowDelete:
    """Delete entries owned by `owner` (all of the app's when purpose is None).

    With `priority` set the delete is strict (exactly that match + priority);
    otherwise every entry whose match is at least as specific as `match` goes.
    `table=None` means every table.
    """
    owner: Owner
    table: Optional[str] = None
    match: Match = field(default_factory=Match)
    priority: Optional[int] = None
