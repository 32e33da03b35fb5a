"""The load balancer's decisions (apps/lb.py sends what these return): where each
backend is, whether it is healthy, and what that makes a switch hold.

A health state machine per (VIP id, backend ip): a probe is due every interval; an
ARP answer locates a backend (UDP VIPs: and makes it healthy, there is no service
check); a TCP answer to a probe decides at once (SYN-ACK healthy, RST down); a probe
left unanswered for timeout_s is a miss, and `misses` in a row take the backend out.
Pure: the state is passed in and updated in place, `now` comes in, and each event
returns which VIPs to reprogram and which backends changed (for the log).
"""
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

from flows import lb

Key = Tuple[int, str]   # (VIP id, backend ip)


@dataclass
class BackendState:
    """What the controller knows of one backend of one VIP."""
    mac: Optional[str] = None
    dpid: Optional[int] = None
    port: Optional[int] = None
    vlan: Optional[int] = None  # its VLAN inside the pipeline (None: frames are untagged)
    healthy: bool = False
    last_probe: float = 0.0
    last_change: float = 0.0
    misses: int = 0           # probes in a row that got no answer
    verdict: bool = False     # a health check (or a take-over) has decided `healthy`


@dataclass
class Outcome:
    reprogram: List[int] = field(default_factory=list)          # VIP ids, in order
    changed: List[Tuple[int, str, bool]] = field(default_factory=list)  # (VIP, ip, healthy)
    reset: Optional[BackendState] = None   # a backend that accepted a probe: send it a RST


def state_of(backends: Dict[Key, BackendState], vip_id: int, ip: str,
             now: float) -> BackendState:
    if (vip_id, ip) not in backends:
        backends[(vip_id, ip)] = BackendState(last_change=now)
    return backends[(vip_id, ip)]


def set_health(backends, vip_id: int, ip: str, healthy: bool, now: float,
               out: Outcome) -> bool:
    """True when the backend's health changed (noted in `out.changed`)."""
    st = state_of(backends, vip_id, ip, now)
    st.verdict = True
    if st.healthy == healthy:
        return False
    st.healthy, st.last_change = healthy, now
    out.changed.append((vip_id, ip, healthy))
    return True


def on_arp_reply(vips: Mapping[int, lb.Vip], backends, dpid: int, port: int, reply,
                 now: float) -> Outcome:
    """`reply` (flows/probes.py ArpReply) came in on (dpid, port): the backend is there."""
    out = Outcome()
    for vip in list(vips.values()):
        if vip.backend(reply.ip) is None:
            continue
        st = state_of(backends, vip.vip_id, reply.ip, now)
        where = (reply.mac, dpid, port, reply.vlan)
        moved = (st.mac, st.dpid, st.port, st.vlan) != where
        st.mac, st.dpid, st.port, st.vlan = where
        if vip.protocol == "udp":   # no service check for UDP: reachable is healthy
            moved |= set_health(backends, vip.vip_id, reply.ip, True, now, out)
        if moved:
            out.reprogram.append(vip.vip_id)
    return out


def on_tcp_reply(backends, pending: Dict, dpid: int, reply, now: float) -> Outcome:
    """`reply` (flows/probes.py TcpReply) answers the probe sent from its probe port, if
    one is pending (`pending`: (dpid, probe port) -> (VIP id, ip, sent at))."""
    out = Outcome()
    waiting = pending.pop((dpid, reply.probe_port), None)
    if waiting is None:
        return out
    vip_id, ip, _ = waiting
    st = backends.get((vip_id, ip))
    if st is not None:
        st.misses = 0  # answered: accepted (healthy) or refused (down at once)
    if reply.accepted and st is not None and st.mac:
        out.reset = st
    if set_health(backends, vip_id, ip, reply.accepted, now, out):
        out.reprogram.append(vip_id)
    return out


def expired(pending: Dict, vips: Mapping[int, lb.Vip], now: float) -> List[Key]:
    """The probes that waited timeout_s in vain (taken out of `pending`, as are those
    of VIPs deleted meanwhile): each is a miss()."""
    out = []
    for key, (vip_id, ip, sent) in list(pending.items()):
        vip = vips.get(vip_id)
        if vip is None or now - sent >= vip.health.timeout_s:
            del pending[key]
            if vip is not None:
                out.append((vip_id, ip))
    return out


def miss(vip: lb.Vip, backends, ip: str, now: float) -> Outcome:
    out = Outcome()
    st = state_of(backends, vip.vip_id, ip, now)
    st.misses += 1
    if st.misses >= vip.health.misses and set_health(backends, vip.vip_id, ip, False, now, out):
        out.reprogram.append(vip.vip_id)
    return out


def probes_due(vips: Mapping[int, lb.Vip], backends, now: float):
    """[(vip, backend, state)] to probe now (each marked as probed)."""
    due = []
    for vip in list(vips.values()):
        for backend in vip.backends:
            st = state_of(backends, vip.vip_id, backend.ip, now)
            if now - st.last_probe < vip.health.interval_s:
                continue
            st.last_probe = now
            due.append((vip, backend, st))
    return due


def probe_by_arp(vip: lb.Vip, st: BackendState, connected: Iterable[int]) -> bool:
    """ARP (flooded) until the backend is located on a connected switch, and for UDP
    VIPs always; otherwise a TCP SYN to its service port."""
    return st.mac is None or vip.protocol == "udp" or st.dpid not in set(connected)


def take_over(vips: Mapping[int, lb.Vip], backends, dpid: int, located: Mapping, live,
              now: float) -> List[Tuple[int, str, BackendState]]:
    """What a previous controller left on switch `dpid` (flows/lb.py adopt()): where
    backends are, and which were live. Returns the backends whose health this decided."""
    decided = []
    for (vip_id, ip), (mac, port, vlan) in sorted(located.items()):
        vip = vips.get(vip_id)
        if vip is None or vip.backend(ip) is None:
            continue
        st = state_of(backends, vip_id, ip, now)
        # an ARP answer may have located the backend while this switch was being
        # read (it is fresher: keep it), but until a health check has decided, the
        # previous controller's verdict stands, so the group comes out unchanged
        if st.mac is None:
            st.mac, st.dpid, st.port, st.vlan = mac, dpid, port, vlan
        if not st.verdict:
            st.healthy, st.verdict = (vip_id, ip) in live, True
            decided.append((vip_id, ip, st))
    return decided


# --- what a switch holds -----------------------------------------------------------------

def located(vip: lb.Vip, backends, dpid: int, healthy_only: bool) -> List[lb.Located]:
    out = []
    for backend in vip.backends:
        st = backends.get((vip.vip_id, backend.ip))
        if st and st.mac and st.dpid == dpid and (st.healthy or not healthy_only):
            out.append(lb.Located(backend, st.mac, st.port, st.vlan))
    return out


@dataclass
class VipPlan:
    items: List                     # the VIP's group and entries
    buckets: List[str]              # backend IPs, in bucket order
    vlans: Tuple                    # the VLANs its located backends are on (one, normally)


def vip_plan(vip: lb.Vip, backends, dpid: int, untagged=frozenset(),
             group_exists: bool = False) -> VipPlan:
    live = located(vip, backends, dpid, healthy_only=True)
    where = located(vip, backends, dpid, False)
    return VipPlan(lb.vip_flows(vip, live, group_exists, where, untagged),
                   [b.backend.ip for b in live], lb.served_vlans(where))


def probe_entries(settings: lb.LbSettings, untagged=frozenset()) -> List:
    if not settings.probe_ip:
        return []
    return lb.probe_flows(settings.probe_ip, untagged)


def reply_entries(vips: Mapping[int, lb.Vip], backends, dpid: int) -> List:
    """The nat replies of every VIP, from the backends located on switch `dpid` (live
    or not: their connections stay pinned)."""
    return lb.reply_flows([(vip, located(vip, backends, dpid, False))
                           for _, vip in sorted(vips.items())])


@dataclass
class Desired:
    probes: List                    # the probe entries
    vips: Dict[int, VipPlan]        # by VIP id, in id order
    replies: List = field(default_factory=list)   # every nat VIP's reply entries

    def items(self) -> List:
        return self.probes + [item for plan in self.vips.values() for item in plan.items] \
            + self.replies


def desired(settings: lb.LbSettings, vips: Mapping[int, lb.Vip], backends, dpid: int,
            untagged=frozenset()) -> Desired:
    """Everything of this app's own on switch `dpid` (the caller frames it with the
    pipeline's misses and the canary, controller/desired_state.py): the probe entries and
    each VIP's group and entries, given where backends are and which are healthy (no
    backends known: a fresh controller's first push, as `sdn plan` shows it)."""
    untagged = frozenset(untagged)
    return Desired(probe_entries(settings, untagged),
                   {vip_id: vip_plan(vip, backends, dpid, untagged)
                    for vip_id, vip in sorted(vips.items())},
                   reply_entries(vips, backends, dpid))
