"""Which live connections a security change would cut: the preview behind
`POST /v1/security/plan` and `sdn plan --delete-rule N`.

The connections come from conntrack as OVS prints them (`ovs-appctl
dpctl/dump-conntrack`), in the security groups' zones (ZONE_BASE + network). A
connection is allowed while its original direction passes both ends' groups, as the
flows decide it packet by packet (flows/security.py): the destination's ingress rules
when the destination is a bound address of that network, the source's egress rules when
the source is bound there and its groups have any. A change cuts what it allowed before
and not after; connections already cut (ct_mark 1) are counted apart.
"""
import ipaddress
from typing import Iterable, List, Mapping, Optional, Tuple

from flows import conntrack_dump
from flows.conntrack_dump import Connection
from flows.security import CUT_MARK, ZONE_BASE
from flows.security_model import MAX_NETWORK, Binding, Rule


def network_of(conn: Connection) -> Optional[int]:
    network = conn.zone - ZONE_BASE
    return network if 0 <= network <= MAX_NETWORK else None


def parse_conntrack(text: str) -> List[Connection]:
    """The security groups' connections of a dump-conntrack text (their zones only)."""
    return [c for c in conntrack_dump.parse(text) if network_of(c) is not None]


def _in(address: str, prefix: str) -> bool:
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(prefix)
    except (ValueError, TypeError):
        return False


def rule_allows(rule: Rule, conn: Connection, members: Mapping[str, Tuple[str, ...]]) -> bool:
    """Whether `rule` lets `conn`'s original direction through at its own port."""
    far = conn.src if rule.direction == "ingress" else conn.dst
    if (rule.ethertype == "IPv6") != (":" in far):
        return False
    if rule.protocol is not None and rule.protocol != conn.protocol:
        return False
    if rule.port_min is not None and not (
            conn.dport is not None and rule.port_min <= conn.dport <= rule.port_max):
        return False
    if rule.remote is not None and not _in(far, rule.remote):
        return False
    if rule.remote_group is not None and far not in members.get(rule.remote_group, ()):
        return False
    return True


def _binding_of(address: str, network: int, bindings: Iterable[Binding]) -> Optional[Binding]:
    return next((b for b in bindings if address in b.addresses and b.network == network), None)


def allowed(conn: Connection, bindings: List[Binding], groups: Mapping[str, Tuple[Rule, ...]],
            members: Mapping[str, Tuple[str, ...]]) -> bool:
    def rules(binding, direction):
        return [r for name in binding.groups for r in groups.get(name, ())
                if r.direction == direction]
    source = _binding_of(conn.src, network_of(conn), bindings)
    if source is not None:
        egress = rules(source, "egress")
        if egress and not any(rule_allows(r, conn, members) for r in egress):
            return False
    destination = _binding_of(conn.dst, network_of(conn), bindings)
    if destination is not None:
        return any(rule_allows(r, conn, members) for r in rules(destination, "ingress"))
    return True


def preview(conns: List[Connection], bindings: List[Binding], before, after,
            members_before, members_after) -> dict:
    """{"cut": [connections], "kept": n, "already_cut": n, "read": n} for a change from
    `before` to `after` (groups, and the remote groups' members of each)."""
    cut, kept, already = [], 0, 0
    for conn in conns:
        if conn.mark == CUT_MARK:
            already += 1
        elif allowed(conn, bindings, before, members_before) and \
                not allowed(conn, bindings, after, members_after):
            cut.append(conn.to_dict())
        else:
            kept += 1
    return {"cut": cut, "kept": kept, "already_cut": already, "read": len(conns)}

