"""Load balancing behind a virtual IP: intent -> the `vip` table and a select group.

For each VIP (all in the `vip` table, before QoS and MAC learning):
- ARP requests for the VIP are answered by the switch with the VIP's own MAC;
- every packet to the VIP goes through OVS's connection tracker (zone = VIP id); a
  connection already pinned to a backend (its ct_mark is the backend's address) goes
  straight to it, so adding or removing backends, which reshuffles the select
  group's hashing, never moves an established connection; conntrack forgets
  connections that close or go idle (its TCP timeouts);
- a new connection goes through the VIP's select group: OVS hashes the flow's
  addresses and ports onto one bucket (weighted); the bucket names the backend in
  reg0 and resubmits, and the vip table commits the connection with that mark and
  rewrites it to its backend:
    nat: destination MAC, IP and port become the backend's; the backend's replies
         get the VIP's IP and port back as their source, so clients see the VIP only;
    dsr: only the destination MAC changes (backends own the VIP on their loopback)
         and replies go straight back;
- health-check replies (to the controller's probe MAC) go to the controller, and ARP
  for the probe IP is answered so backends can reply to it.

VLANs. With the VLAN app loaded every frame in the pipeline carries a tag (untagged
frames of ports without settings get VLAN 0), and the app pops it only in its own
egress (the flood and l2_dst tables). What this module sends to a port itself (the
rewrite to a backend, the ARP answers out of the request's port) skips that egress,
so it pops the tag where the VLAN app says that (port, VLAN) leaves untagged
(`untagged`, its untagged_egress_pairs) and keeps it elsewhere. A backend's VLAN is
the tag its replies reach the controller with (None: the pipeline does not tag); a
VIP serves the VLANs its located backends are on (before any is located, or without
tags: every VLAN), so a client of another VLAN gets neither its ARP answer nor a
backend.

Split by concern: flows/lb_intent.py (VIPs, backends and health settings as REST and
the config file give them, checked, and the `lb` config section). Here: the app's
owners, where backends are found (`Located`) and the flow and group builders. The
intent's names are re-exported, so `from flows import lb` stays the one import of the
app's callers.
"""
import ipaddress
from dataclasses import dataclass
from typing import Dict, FrozenSet, Iterable, List, Optional, Sequence, Set, Tuple

from flows import arp
from flows.lb_intent import (MAX_VIPS, MODES, PROTOCOLS, Backend, Health,  # noqa: F401
                             LbSettings, Vip, backend_from_dict, vip_from_dict, vip_to_dict,
                             vips_from)
from flows.spec import (CONTROLLER, TAGGED, Bucket, Ct, FlowDelete, FlowSpec, Group,
                        GroupDelete, GroupRef, GroupSpec, Match, Output, Owner, PopVlan,
                        Resubmit, SetField)

APP = "lb"
IPV4 = 0x0800
PRIO_PROBE, PRIO_ARP, PRIO_COMMIT, PRIO_PINNED, PRIO_TRACK, PRIO_NEW = (
    400, 300, 220, 210, 200, 190)
PRIO_REPLY_OF_VIP, PRIO_NOT_A_REPLY, PRIO_REPLY = 160, 155, 150
PROBE_MAC = "02:1b:00:00:00:fe"


def vip_owner(vip_id: int) -> Owner:
    return Owner(APP, "vip", vip_id)


PROBES = Owner(APP, "probe")
REPLIES = Owner(APP, "reply")   # nat replies of every VIP (reply_flows)


def vip_mac(vip_id: int) -> str:
    """Each VIP answers ARP with a MAC of its own (locally administered)."""
    return "02:1b:00:00:%02x:%02x" % (vip_id >> 8, vip_id & 0xFF)


@dataclass(frozen=True)
class Located:
    """A backend the controller has found: its MAC, switch port and VLAN inside the
    pipeline (None when frames there are untagged: no VLAN app)."""
    backend: Backend
    mac: str
    switch_port: int
    vlan: Optional[int] = None


# (port, VLAN) pairs whose frames leave untagged, as the VLAN app declares them
# (flows.vlan.untagged_egress_pairs); empty without it.
UntaggedEgress = FrozenSet[Tuple[int, int]]


def pops_tag(port: int, vlan: Optional[int], untagged: UntaggedEgress) -> bool:
    """Must a frame of pipeline VLAN `vlan` lose its tag before it leaves `port`?"""
    return vlan is not None and (port, vlan) in untagged


def served_vlans(located: Iterable[Located]) -> Tuple[Optional[int], ...]:
    """The VLANs a VIP answers on: those of its located backends; (None,), every VLAN,
    while none is located or the pipeline does not tag."""
    vlans = {b.vlan for b in located}
    if not vlans or None in vlans:
        return (None,)
    return tuple(sorted(vlans))


# --- flows --------------------------------------------------------------------------

def _l4(vip: Vip):
    return vip.protocol, PROTOCOLS[vip.protocol]


def mark_of(ip: str) -> int:
    """A backend's connection mark (ct_mark, and reg0 on the way there): its address."""
    return int(ipaddress.IPv4Address(ip))


def _to_backend(vip: Vip, located: Located, untagged: UntaggedEgress):
    l4, _ = _l4(vip)
    rewrite = (SetField("eth_dst", located.mac),)
    if vip.mode == "nat":
        rewrite += (SetField("ipv4_dst", located.backend.ip),
                    SetField(f"{l4}_dst", located.backend.port))
    if pops_tag(located.switch_port, located.vlan, untagged):
        rewrite += (PopVlan(),)
    return rewrite + (Output(located.switch_port),)


def _tag_present(located: Located, untagged: UntaggedEgress) -> dict:
    popped = pops_tag(located.switch_port, located.vlan, untagged)
    return {"vlan_vid": TAGGED} if popped else {}


def _vlan_of(vlan: Optional[int]) -> dict:
    return {} if vlan is None else {"vlan_vid": vlan}


def arp_answers(ip: str, mac: str, owner: Owner, vlans: Sequence[Optional[int]],
                untagged: UntaggedEgress) -> List[FlowSpec]:
    """The switch answers ARP for `ip` with `mac` on `vlans` (None: any VLAN), out of
    the request's port: one entry per VLAN that keeps the request's tag, and above
    them one per (port, VLAN) leaving untagged that pops it."""
    every = None in vlans
    entries = [FlowSpec("vip", PRIO_ARP, arp.request_for(ip, **_vlan_of(vlan)), owner,
                        actions=arp.reply_actions(ip, mac)) for vlan in vlans]
    entries += [FlowSpec("vip", PRIO_ARP + 1, arp.request_for(ip, in_port=port, vlan_vid=vlan),
                         owner, actions=(PopVlan(),) + arp.reply_actions(ip, mac))
                for port, vlan in sorted(untagged) if every or vlan in vlans]
    return entries


def bucket(vip: Vip, located: Located) -> Bucket:
    """Name the backend in reg0 and go back to the vip table, which commits the
    connection with that mark and sends it on (a bucket can neither goto nor commit)."""
    return Bucket((SetField("reg0", mark_of(located.backend.ip)), Resubmit("vip")),
                  weight=located.backend.weight)


def vip_match(vip: Vip, **more) -> Match:
    l4, proto = _l4(vip)
    return Match.of(eth_type=IPV4, ip_proto=proto, ipv4_dst=vip.ip, **{f"{l4}_dst": vip.port},
                    **more)


def vip_flows(vip: Vip, live: Iterable[Located], group_exists: bool,
              located: Iterable[Located] = (), untagged: UntaggedEgress = frozenset()) -> List:
    """The VIP's group (replaced in place when it exists) with a bucket per live backend,
    its ARP answer, and its entries: untracked packets go through conntrack (zone = VIP
    id); a tracked packet whose connection carries a backend's mark goes to it; a new
    one goes to the group, whose bucket comes back with the backend in reg0 to be
    committed. Every located backend (`located`, live or not: its connections stay
    pinned) has its pinned and commit entries and, in nat mode, the rewrite of its
    replies. `untagged`: see the module's VLANs paragraph."""
    owner = vip_owner(vip.vip_id)
    ref = GroupRef(owner, vip.vip_id)
    located = sorted(located, key=lambda b: b.backend.ip)
    vlans = served_vlans(located)
    items = [GroupSpec(ref, "select", tuple(bucket(vip, b) for b in live),
                     modify=group_exists)]
    items += arp_answers(vip.ip, vip_mac(vip.vip_id), owner, vlans, untagged)
    # only frames of the served VLANs enter conntrack: others miss the VIP entirely
    items += [FlowSpec("vip", PRIO_TRACK, vip_match(vip, ct_state="-trk", **_vlan_of(vlan)),
                       owner, actions=(Ct(zone=vip.vip_id, table="vip"),)) for vlan in vlans]
    items.append(FlowSpec("vip", PRIO_NEW, vip_match(vip, ct_state="+trk"), owner,
                          actions=(Group(ref),)))
    for backend in located:
        mark = mark_of(backend.backend.ip)
        # the pinned entry names the backend's VLAN so a restarted controller reads
        # it back (adopt); the commit entry does not (a bucket must always end here),
        # but where it pops the tag it must say one is there: OVS refuses a pop_vlan
        # its match does not guarantee a tag for (OFPBAC_MATCH_INCONSISTENT)
        items += [
            FlowSpec("vip", PRIO_COMMIT, vip_match(vip, ct_state="+trk", reg0=mark,
                                                   **_tag_present(backend, untagged)), owner,
                     actions=(Ct(zone=vip.vip_id, commit=True, mark_from="reg0"),)
                     + _to_backend(vip, backend, untagged)),
            FlowSpec("vip", PRIO_PINNED, vip_match(vip, ct_state="+trk", ct_mark=mark,
                                                   **_vlan_of(backend.vlan)), owner,
                     actions=_to_backend(vip, backend, untagged))]
    if vip.mode == "nat":
        items.append(FlowSpec("vip", PRIO_REPLY_OF_VIP,
                              _from(vip, vip.ip, vip.port, ct_state="+trk+rpl"), owner,
                              goto="qos"))
    return items


def _from(vip, ip, port, **more):
    l4, proto = _l4(vip)
    return Match.of(eth_type=IPV4, ip_proto=proto, ipv4_src=ip, **{f"{l4}_src": port}, **more)


def reply_flows(vips: Iterable[Tuple[Vip, Iterable[Located]]]) -> List[FlowSpec]:
    """nat: how a packet from a backend's service gets its VIP back, for every nat VIP
    at once (`vips`: each with its located backends). A reply carries no trace of the
    VIP its connection came through, and several VIPs may share one backend IP:port,
    so the VIPs of one backend service are tried in turn (by VIP id): the packet gets
    the first one's address as its source and is looked up in its conntrack zone; a
    reply of a connection made through that VIP goes on like that (the VIP's own
    priority-160 entry), anything else tries the next VIP, and after the last one gets
    its own source back (a client talking to the backend directly).

    One owner (REPLIES) for all of them: the entries of one backend service depend on
    every VIP that uses it, so none of those VIPs may delete them alone."""
    chains: Dict[Tuple[str, str, int], List[Vip]] = {}
    for vip, located in vips:
        if vip.mode != "nat":
            continue
        for backend in located:
            b = backend.backend
            chains.setdefault((b.ip, vip.protocol, b.port), []).append(vip)
    items = []
    for (ip, _, port), chain in sorted(chains.items()):
        chain = sorted(chain, key=lambda v: v.vip_id)
        mark = mark_of(ip)
        first = chain[0]
        items.append(FlowSpec("vip", PRIO_REPLY, _from(first, ip, port, ct_state="-trk"),
                              REPLIES, actions=(SetField("reg0", mark),)
                              + _as_from_vip(first)))
        for vip, after in zip(chain, chain[1:] + [None]):
            l4, _ = _l4(vip)
            then = _as_from_vip(after) if after is not None else (
                SetField("ipv4_src", ip), SetField(f"{l4}_src", port))
            items.append(FlowSpec("vip", PRIO_NOT_A_REPLY,
                                  _from(vip, vip.ip, vip.port, ct_state="+trk-rpl", reg0=mark),
                                  REPLIES, actions=then,
                                  goto="qos" if after is None else None))
    return items


def _as_from_vip(vip: Vip):
    """Give a backend's packet `vip` as its source and look it up in the VIP's zone."""
    l4, _ = _l4(vip)
    return (SetField("ipv4_src", vip.ip), SetField(f"{l4}_src", vip.port),
            Ct(zone=vip.vip_id, table="vip"))


def forget_vip(vip_id: int) -> List:
    """Everything of one VIP: its entries, then its group."""
    return [FlowDelete(vip_owner(vip_id)), GroupDelete(GroupRef(vip_owner(vip_id), vip_id))]


def adopt(installed: Iterable) -> Tuple[Dict[Tuple[int, str], Tuple[str, int, Optional[int]]],
                                        Set[Tuple[int, str]]]:
    """What a previous controller left on a switch (decoded flows and groups): where each
    backend is, {(VIP id, backend ip): (MAC, port, VLAN or None)} from the pinned
    entries, and which
    backends were live, {(VIP id, ip)} from the groups' buckets. Taking these over keeps
    the plan unchanged across a restart until health checks say otherwise."""
    located, live = {}, set()
    for item in installed:
        if isinstance(item, FlowSpec) and item.priority == PRIO_PINNED and item.owner \
                and item.owner.purpose == "vip" and isinstance(item.match.get("ct_mark"), int):
            mac = next((a.value for a in item.actions
                        if isinstance(a, SetField) and a.field == "eth_dst"), None)
            port = next((a.port for a in item.actions if isinstance(a, Output)), None)
            if mac is not None and isinstance(port, int):
                ip = str(ipaddress.IPv4Address(item.match.get("ct_mark")))
                vlan = item.match.get("vlan_vid")
                located[(item.owner.instance, ip)] = (mac, port,
                                                      vlan if isinstance(vlan, int) else None)
        elif isinstance(item, GroupSpec) and item.ref.owner.purpose == "vip":
            live |= {(item.ref.number, str(ipaddress.IPv4Address(a.value)))
                     for b in item.buckets for a in b.actions
                     if isinstance(a, SetField) and a.field == "reg0"}
    return located, live


def probe_flows(probe_ip: str, untagged: UntaggedEgress = frozenset()) -> List[FlowSpec]:
    """Replies to the controller's health probes go to it (tagged or not: probes.py
    parses both); ARP for the probe IP is answered on every VLAN so a backend can
    reply to a probe."""
    return [FlowSpec("vip", PRIO_PROBE, Match.of(eth_dst=PROBE_MAC), PROBES,
                     actions=(Output(CONTROLLER, max_len=0xFFFF),))] + \
        arp_answers(probe_ip, PROBE_MAC, PROBES, (None,), untagged)


# --- the plan protocol (flows/app_plan.py): `sdn plan` finds the app through it -------

SETTINGS = LbSettings


def plan(settings: LbSettings, switch, facts):
    """The config's VIPs with no backend located yet, a fresh controller's first push
    (flows/lb_health.py, which builds on this module and so is imported on use); with
    the VLAN app, its ARP answers pop the tag where frames leave untagged."""
    from flows import lb_health
    from flows.app_plan import CONTROLLER_ADDRESSES, UNTAGGED, SwitchPlan
    problems = []
    vips = vips_from(settings, {}, problems)
    wanted = lb_health.desired(settings, vips, {}, switch.datapath.id, facts.get(UNTAGGED, ()))
    return SwitchPlan(wanted.items(), problems=problems,
                      facts={CONTROLLER_ADDRESSES: controller_addresses(settings)})


def controller_addresses(settings: LbSettings) -> tuple:
    """The addresses the controller itself speaks from on the data plane: the health
    probes' source, which the switch answers ARP for and whose replies it sends to the
    controller. Nothing else lives there, so a firewall stage leaves them alone (it never
    saw the probes the controller sent as packet-outs)."""
    return (settings.probe_ip,) if settings.probe_ip else ()
