"""A small OpenFlow 1.3 table simulator that runs flows.spec values.

Enough of OpenFlow to answer "where does this frame go and how does it look
there": tables in pipeline order, priorities, exact and masked matches,
add-replaces-same-match, strict/non-strict deletes by cookie and mask,
apply-actions then goto_table, output (incl. FLOOD/ALL/IN_PORT/CONTROLLER
truncation), set_field, reg_move, resubmit, conntrack (ct with zones, commit,
marks, labels and NAT, ct_clear: the tracker is tests/support/conntrack.py), push/pop VLAN with its priority (PCP: push_vlan on an untagged frame gives
PCP 0, set_field vlan_vid keeps it, pop_vlan drops it), set_queue, meters (recorded on the
packet; deleting a meter deletes its flows, as in OVS), groups (all, select,
indirect), learn() writing entries, and idle/hard timeouts with
flow-removed notifications. Time is passed in (`now`), never read.
"""
import ipaddress
import zlib
from dataclasses import dataclass
from typing import Dict, List

from controller import pipeline
from flows.spec import (ALL, CONTROLLER, FLOOD, IN_PORT, TAGGED, UNTAGGED, FlowDelete,
                        Ct, CtClear, FlowSpec, Group, GroupDelete, GroupSpec, Learn, Match,
                        MeterDelete, MeterSpec, Move, Output, PopVlan, PushVlan, Resubmit,
                        SetField, SetQueue, DecTtl, Conjunction, ct_state_bits)
from tests.support import conntrack, wire


def frame(in_port, eth_src, eth_dst, vlan=None, eth_type=0x0800, pcp=None, **fields):
    """A packet as a dict of header fields; vlan None = untagged, vlan 0 with a `pcp`:
    priority-tagged. A tagged frame without a "vlan_pcp" key has PCP 0."""
    if pcp is not None and vlan is None:
        raise ValueError("an untagged frame has no PCP; give vlan=0 for a priority tag")
    pkt = {"in_port": in_port, "eth_src": eth_src, "eth_dst": eth_dst, "eth_type": eth_type,
           "vlan_vid": vlan}
    if pcp is not None:
        pkt["vlan_pcp"] = pcp
    pkt.update(fields)
    return pkt


def one_frame_each(sw, pkt):
    """{port: the one frame that left there} for `pkt` through `sw` (a port that got
    two copies fails)."""
    outputs = sw.process(pkt).outputs
    assert all(len(frames) == 1 for frames in outputs.values()), outputs
    return {port: frames[0] for port, frames in outputs.items()}


def pcp_of(pkt):
    """The frame's 802.1Q priority, None when it has no tag."""
    return None if pkt.get("vlan_vid") is None else pkt.get("vlan_pcp", 0)


def tag_of(pkt):
    """(VID, PCP) of a frame as it leaves, None when untagged."""
    return None if pkt.get("vlan_vid") is None else (pkt["vlan_vid"], pcp_of(pkt))


# metadata a packet has as 0 until something sets it (an untracked packet's ct fields)
_ZERO_UNLESS_SET = ("ct_zone", "ct_mark", "ct_label")


def _mac_int(mac):
    return int(mac.replace(":", ""), 16)


def _field_matches(name, want, mask, pkt) -> bool:
    if name == "ct_state":   # the packet carries its bits (0 while untracked)
        value, mask = ct_state_bits(want)
        return pkt.get("ct_state", 0) & mask == value
    have = pkt.get(name, 0 if name in _ZERO_UNLESS_SET or name.startswith("reg") else None)
    if name == "vlan_vid":
        if want == UNTAGGED:
            return have is None
        if want == TAGGED:
            return have is not None
        return have == want
    if name == "vlan_pcp":  # OpenFlow's prerequisite: only a tagged frame has one
        have = pcp_of(pkt)
    if name == "nw_ttl":    # Nicira's name for the IPv4 TTL / IPv6 hop limit
        have = pkt.get("ip_ttl", 64) if pkt.get("eth_type") in (0x0800, 0x86DD) else None
    if have is None:
        return False
    if name in ("ipv4_src", "ipv4_dst", "ipv6_src", "ipv6_dst"):
        have, want = int(ipaddress.ip_address(have)), int(ipaddress.ip_address(want))
        mask = -1 if mask is None else int(ipaddress.ip_address(mask))
        return have & mask == want & mask
    if mask is None:
        return have == want
    if name in ("eth_src", "eth_dst"):
        return _mac_int(have) & _mac_int(mask) == _mac_int(want) & _mac_int(mask)
    return have & mask == want & mask


def matches(match: Match, pkt) -> bool:
    return all(_field_matches(name, value, mask, pkt) for name, value, mask in match.fields)


def _check_pop_vlan(spec: FlowSpec):
    """OVS refuses (OFPBAC_MATCH_INCONSISTENT) a flow whose actions pop (or set) a VLAN
    tag its match does not guarantee: the match must name a VLAN, or a tag pushed earlier in the
    same actions must be there."""
    vid = spec.match.get("vlan_vid")
    tagged = vid is not None and vid != UNTAGGED
    for action in spec.actions:
        if isinstance(action, PushVlan):
            tagged = True
        elif isinstance(action, PopVlan):
            if not tagged:
                raise ValueError(f"pop_vlan without a tag in the match "
                                 f"(OFPBAC_MATCH_INCONSISTENT): {spec}")
            tagged = False
        elif isinstance(action, SetField) and action.field in ("vlan_vid", "vlan_pcp") \
                and not tagged:   # OVS refuses these too (the router's retag once did)
            raise ValueError(f"set_field {action.field} without a tag in the match "
                             f"(OFPBAC_MATCH_INCONSISTENT): {spec}")


def _check_conjunction(spec: FlowSpec):
    """OVS refuses an entry that mixes conjunction with other actions or goes on."""
    conj = [a for a in spec.actions if isinstance(a, Conjunction)]
    if conj and (len(conj) != len(spec.actions) or spec.goto is not None):
        raise ValueError(f"conjunction beside other actions (OFPBAC_BAD_ARGUMENT): {spec}")


def _check_ct(spec: FlowSpec):
    """OVS refuses (OFPBAC_MATCH_INCONSISTENT) a ct whose flow does not match IP, and a
    NAT range of the other IP family than the match."""
    eth_type = spec.match.get("eth_type")
    for action in spec.actions:
        if isinstance(action, Ct):
            if eth_type not in (conntrack.IPV4, conntrack.IPV6):
                raise ValueError(f"ct without an IP eth_type match "
                                 f"(OFPBAC_MATCH_INCONSISTENT): {spec}")
            if action.nat is not None and action.nat.ip_min is not None and \
                    action.nat.ipv6 != (eth_type == conntrack.IPV6):
                raise ValueError(f"nat range of the other IP family than the match "
                                 f"(OFPBAC_MATCH_INCONSISTENT): {spec}")


def _put(store, item, missing, exists):
    """Add or modify a group or meter, refused as OVS refuses: an add of an existing
    one, a modify of a missing one."""
    if item.modify != (item.ref in store):
        raise ValueError(f"{item.ref} " + (f"does not exist ({missing})" if item.modify
                                           else f"exists ({exists})"))
    store[item.ref] = item


@dataclass
class Entry:
    spec: FlowSpec
    installed_at: float
    last_used: float
    packets: int = 0


@dataclass
class Result:
    outputs: Dict[int, List[dict]]
    packet_ins: List[dict]
    tables_visited: List[str]


class Switch:
    def __init__(self, ports, now=0.0, kind="main", declared=True, through_wire=True):
        """`kind`: the bridge's pipeline, "main" or "tunnel" (the overlay's tunnel bridge).
        `declared`: check each flow against the pipeline declaration (controller.pipeline)
        as the builders must; False where the switch is modelled, which does not know it.
        `through_wire`: `apply` runs what the compiler emits for the items, read back from
        its bytes (tests/support/wire.py), not the items themselves, so an encoding bug
        fails simulator tests too; False where they are decoded already."""
        self.declared, self.through_wire, self.kind = declared, through_wire, kind
        self.ports = sorted(ports)
        self.now = now
        self.start = pipeline.PIPELINES[kind][0].name
        self.tables: Dict[str, List[Entry]] = {t.name: [] for t in pipeline.PIPELINES[kind]}
        self.groups: Dict[object, GroupSpec] = {}  # GroupRef -> spec
        self.meters: Dict[object, MeterSpec] = {}  # MeterRef -> spec
        self.ct = conntrack.Conntrack()
        self.removed: List[FlowSpec] = []     # flow-removed notifications sent
        self.packet_ins: List[dict] = []

    # --- programming --------------------------------------------------------------

    def apply(self, items):
        """Program the switch with specs and deletes, in order (see `through_wire`)."""
        items = list(items)
        if self.through_wire:
            items = [i for i in wire.compiled(items, self.kind) if i is not None]
        for item in items:
            if isinstance(item, FlowDelete):
                self.delete(item)
            elif isinstance(item, GroupSpec):
                _put(self.groups, item, "OFPGMFC_UNKNOWN_GROUP", "OFPGMFC_GROUP_EXISTS")
            elif isinstance(item, GroupDelete):
                self.groups.pop(item.ref, None)
                for entries in self.tables.values():
                    entries[:] = [e for e in entries
                                  if Group(item.ref) not in e.spec.actions]
            elif isinstance(item, MeterSpec):
                _put(self.meters, item, "OFPMMFC_UNKNOWN_METER", "OFPMMFC_METER_EXISTS")
            elif isinstance(item, MeterDelete):
                self.meters.pop(item.ref, None)
                for entries in self.tables.values():
                    entries[:] = [e for e in entries if e.spec.meter != item.ref]
            else:
                self.add(item)
        return self

    def add(self, spec: FlowSpec):
        if self.declared:
            pipeline.validate(spec)
        _check_pop_vlan(spec)
        _check_ct(spec)
        _check_conjunction(spec)
        if spec.meter is not None and spec.meter not in self.meters:
            raise ValueError(f"flow uses unknown meter {spec.meter} (OFPMMFC_UNKNOWN_METER)")
        table = self.tables[spec.table]
        table[:] = [e for e in table
                    if not (e.spec.match == spec.match and e.spec.priority == spec.priority)]
        table.append(Entry(spec, self.now, self.now))
        table.sort(key=lambda e: -e.spec.priority)

    def delete(self, delete: FlowDelete):
        if self.declared:
            pipeline.validate(delete)
        want = pipeline.cookie(delete.owner)
        mask = pipeline.cookie_mask(delete.owner)
        names = [delete.table] if delete.table else list(self.tables)
        for name in names:
            self.tables[name][:] = [e for e in self.tables[name]
                                    if not self._deleted_by(e.spec, delete, want, mask)]

    @staticmethod
    def _deleted_by(spec, delete, want, mask):
        if pipeline.cookie(spec.owner) & mask != want & mask:
            return False
        if delete.priority is not None:  # strict
            return spec.priority == delete.priority and spec.match == delete.match
        mine = {name: (value, m) for name, value, m in spec.match.fields}
        return all(mine.get(name) == (value, m) for name, value, m in delete.match.fields)

    def flows(self, table=None, owner=None):
        specs = [e.spec for name, entries in self.tables.items() if table in (None, name)
                 for e in entries]
        if owner is not None:
            specs = [s for s in specs if s.owner == owner]
        return specs

    def snapshot(self):
        """The whole flow state as a comparable value (order-independent)."""
        return frozenset([e.spec for entries in self.tables.values() for e in entries]
                         + list(self.meters.values()))

    @property
    def conntrack(self) -> Dict[tuple, int]:
        """Committed connections, (zone, src, dst, proto, sport, dport) -> ct_mark: the
        short view tests compare (self.ct has the tracker itself)."""
        return {(c.zone, c.original.src, c.original.dst, c.original.proto, c.original.sport,
                 c.original.dport): c.mark for c in self.ct.entries()}

    # --- time ---------------------------------------------------------------------

    def advance(self, now):
        """Move the clock; expire idle/hard timeouts (notifying when asked)."""
        self.now = now
        for entries in self.tables.values():
            for entry in list(entries):
                spec = entry.spec
                idle = spec.idle_timeout and now - entry.last_used >= spec.idle_timeout
                hard = spec.hard_timeout and now - entry.installed_at >= spec.hard_timeout
                if idle or hard:
                    entries.remove(entry)
                    if spec.notify_removed:
                        self.removed.append(spec)

    # --- forwarding -----------------------------------------------------------------

    def process(self, pkt) -> Result:
        result = Result({}, [], [])
        self._walk(dict(pkt), result, self.start)
        return result

    def _walk(self, pkt, result, table):
        while table is not None:
            result.tables_visited.append(table)
            entry = self._lookup(table, pkt)
            if entry is None:
                break  # OpenFlow 1.3 without a table-miss entry: drop
            entry.packets += 1
            entry.last_used = self.now
            if entry.spec.meter is not None:
                pkt.setdefault("meters", []).append(self.meters[entry.spec.meter])
            pkt = self._run(entry.spec.actions, pkt, result)
            if pkt is None:
                break
            table = entry.spec.goto
        return pkt

    def _lookup(self, table, pkt):
        """The entry a packet meets in `table`, as OVS's classifier finds it: the highest
        priority entry that matches, where an entry of conjunction actions only counts
        once every clause of its id has a matching entry at its priority; then the
        packet is looked up again with conj_id set to that id (the one of highest
        priority, which OVS leaves undefined when several complete at one priority)."""
        clauses, hard = {}, None
        for entry in self.tables[table]:
            if not matches(entry.spec.match, pkt):
                continue
            conj = [a for a in entry.spec.actions if isinstance(a, Conjunction)]
            if not conj:
                hard = entry
                break
            for action in conj:
                seen = clauses.setdefault((entry.spec.priority, action.conj_id),
                                          (action.n_clauses, set()))[1]
                seen.add(action.clause)
        done = sorted(((priority, conj_id) for (priority, conj_id), (n, seen)
                       in clauses.items() if len(seen) == n
                       and (hard is None or priority > hard.spec.priority)), reverse=True)
        if not done:
            return hard
        again = dict(pkt, conj_id=done[0][1])
        return next((e for e in self.tables[table] if matches(e.spec.match, again)
                     and not any(isinstance(a, Conjunction) for a in e.spec.actions)), None)

    def _run(self, actions, pkt, result):
        for action in actions:
            run = SIMULATE.get(type(action))
            if run is None:
                raise TypeError(f"simulator cannot run {action!r}")
            pkt = run(self, action, pkt, result)
            if pkt is None:   # dropped (a TTL run out)
                return None
        return pkt

    def _set_field(self, action, pkt, result):
        if action.field in ("vlan_vid", "vlan_pcp") and pkt.get("vlan_vid") is None:
            # OVS refuses these on an untagged frame (push_vlan first)
            raise ValueError(f"set_field {action.field} on an untagged frame")
        pkt[action.field] = action.value
        return pkt

    @staticmethod
    def _push_vlan(pkt):
        # OpenFlow 1.3: the new tag copies VID and PCP of the tag it goes over
        # (this model has one tag level), else VID 0 and PCP 0
        if pkt["vlan_vid"] is None:
            pkt["vlan_vid"] = 0
            pkt.pop("vlan_pcp", None)
        return pkt

    @staticmethod
    def _pop_vlan(pkt):
        pkt["vlan_vid"] = None
        pkt.pop("vlan_pcp", None)
        return pkt

    def _output(self, action, pkt, result):
        port = action.port
        if port == CONTROLLER:
            copy = dict(pkt, truncated_to=action.max_len)
            result.packet_ins.append(copy)
            self.packet_ins.append(copy)
            return pkt
        if port == FLOOD:
            targets = [p for p in self.ports if p != pkt["in_port"]]
        elif port == ALL:
            targets = list(self.ports)
        elif port == IN_PORT:
            targets = [pkt["in_port"]]
        elif port == pkt["in_port"]:
            targets = []  # OpenFlow never sends back out of the ingress port implicitly
        else:
            targets = [port]
        for target in targets:
            result.outputs.setdefault(target, []).append(dict(pkt))
        return pkt

    def _ct(self, ct: Ct, pkt, result):
        """The packet goes through the tracker (tests/support/conntrack.py). With a
        `table` that copy is recirculated there; the packet itself goes on after the
        action, untracked as in OVS (its ct fields are only seen past the recirculation),
        with NAT applied when there is no table (OVS's datapath rewrites it in place)."""
        mark = ct.mark if ct.mark_from is None else (pkt.get(ct.mark_from, 0), 0xFFFFFFFF)
        tracked = self.ct.execute(dict(pkt), ct.zone, ct.commit, ct.nat, mark, ct.label)
        if ct.table is not None:
            self._walk(tracked, result, ct.table)
            return pkt
        return conntrack.clear(tracked)

    def _group(self, action, pkt, result):
        group = self.groups[action.ref]
        if group.type == "select":
            if not group.buckets:
                return pkt  # an empty select group drops
            key = "".join(str(pkt.get(f)) for f in ("eth_src", "eth_dst", "ipv4_src",
                                                      "ipv4_dst", "ip_proto", "tcp_src",
                                                      "tcp_dst"))
            slots = [b for b in group.buckets for _ in range(b.weight)]
            buckets = [slots[zlib.crc32(key.encode()) % len(slots)]]
        elif group.type == "indirect":
            buckets = group.buckets[:1]
        else:
            buckets = group.buckets
        for bucket in buckets:
            self._run(bucket.actions, dict(pkt), result)
        return pkt

    def _learn(self, learn: Learn, pkt, result=None):
        fields = {dst: pkt[src] for dst, src in learn.matches}
        fields.update(learn.constants)
        if fields.get("vlan_vid", 0) is None:
            # OVS copies the TCI's VID bits: 0 for an untagged frame, which then
            # matches untagged frames only.
            fields["vlan_vid"] = UNTAGGED
        out = tuple(SetField(dst, pkt[src]) for dst, src in learn.loads) + \
            (Output(pkt[learn.output_from]),)
        learned = FlowSpec(learn.table, learn.priority, Match.of(**fields), learn.owner,
                           actions=((PopVlan(),) + out) if learn.strip_vlan else out,
                           idle_timeout=learn.idle_timeout, hard_timeout=learn.hard_timeout)
        existing = next((e for e in self.tables[learn.table]
                         if e.spec.match == learned.match and e.spec.priority == learned.priority),
                        None)
        if existing is not None and existing.spec == learned:
            # OVS refreshes an identical entry: its "modified" time, from which
            # hard_timeout counts, moves to now.
            existing.installed_at = self.now
        else:
            self.add(learned)
        return pkt


def _dec_ttl(pkt):
    """An IP packet's TTL less one (64 when the frame does not say); at 0 it is dropped:
    None stops the walk. (OVS makes an invalid-TTL packet-in of it, which it delivers
    to no controller unless the connection's async config asks: by default, none.)"""
    ttl = pkt.get("ip_ttl", 64) - 1
    if ttl <= 0:
        return None
    pkt["ip_ttl"] = ttl
    return pkt


def _set(pkt, name, value):
    pkt[name] = value
    return pkt


# The simulator's half of the action registry (controller/ofactions.py holds the
# compile, decode and print halves): how each kind of flows.spec.ACTION_KINDS runs, as
# (switch, action, packet, result) -> the packet as it goes on.
SIMULATE = {
    Output: Switch._output,
    SetField: Switch._set_field,
    Move: lambda sw, a, pkt, result: _set(pkt, a.dst, pkt.get(a.src)),
    PushVlan: lambda sw, a, pkt, result: Switch._push_vlan(pkt),
    PopVlan: lambda sw, a, pkt, result: Switch._pop_vlan(pkt),
    DecTtl: lambda sw, a, pkt, result: _dec_ttl(pkt),
    # never run: an entry of conjunction actions only takes part in the lookup (_lookup)
    Conjunction: lambda sw, a, pkt, result: pkt,
    SetQueue: lambda sw, a, pkt, result: _set(pkt, "queue", a.queue_id),
    Group: Switch._group,
    Learn: Switch._learn,
    Resubmit: lambda sw, a, pkt, result: sw._walk(pkt, result, a.table),
    Ct: Switch._ct,
    CtClear: lambda sw, a, pkt, result: conntrack.clear(pkt),
}
