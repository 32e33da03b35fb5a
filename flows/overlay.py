"""Overlay intent -> flows: tenant networks (VNIs) across hypervisors, each with an
integration bridge (VM ports are access ports of the network's local VLAN) patched
to a tunnel bridge that runs the overlay lab's pipeline (tables 0/1/2/3/10/20/21).

Local VLANs are per hypervisor (the same VNI may have different ones) and stable:
a VNI keeps its VLAN while it stays on the hypervisor.

Split by concern: flows/overlay_intent.py (hypervisors, networks and VM ports as
REST and the config file give them, each checked on its own), flows/overlay_bridges.py
(the owners and the flows of one tunnel or integration bridge, its pipeline table by
table). Here: the whole overlay's model (what may change and what each bridge then
holds), the local VLAN allocation and the `overlay` config section. The parts' names
are re-exported, so `from flows import overlay` stays the one import of the app's
callers.
"""
from dataclasses import dataclass, field, replace
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

from flows import vlan
from flows.dpid import format as format_dpid
from flows.overlay_bridges import (  # noqa: F401
    APP, ARP_PRIORITY, INT_PATCH_PORT, INTEGRATION_BRIDGE_LEARNED, INTEGRATION_BRIDGE_OWNERS,
    L2POP, LEARN_HARD_TIMEOUT, LEARNED, MULTICAST, TENANT, TUN_PATCH_PORT, TUNNEL,
    TUNNEL_BRIDGE_OWNERS, UNICAST, TunnelBridge, arp_responder_flows, forget_integration_bridge,
    forget_tunnel_bridge, integration_plan, integration_ports, l2pop_flows, network_flows,
    tunnel_plan, tunnel_port_name, tunnel_structure)
from flows.overlay_intent import (  # noqa: F401
    MAX_VNI, TUNNEL_TYPES, Hypervisor, Network, VmPort, hypervisor_from_dict, hypervisor_to_dict,
    network_from_dict, network_to_dict, tunnel_type_of, vm_port_from_dict, vm_port_to_dict,
    vni_of)


class Conflict(ValueError):
    """The request is well formed but clashes with what exists (REST 409)."""


@dataclass(frozen=True)
class Model:
    """The whole overlay: every hypervisor, network and VM port. Changes return a new
    model or raise ValueError (bad input) / Conflict (clashes)."""
    hypervisors: Tuple[Hypervisor, ...] = ()
    networks: Tuple[Network, ...] = ()
    ports: Tuple[VmPort, ...] = ()
    tunnel_type: str = "vxlan"
    l2_population: bool = False

    def hypervisor(self, name) -> Optional[Hypervisor]:
        return next((h for h in self.hypervisors if h.name == name), None)

    def network(self, vni) -> Optional[Network]:
        return next((n for n in self.networks if n.vni == vni), None)

    def type_of(self, vni) -> str:
        network = self.network(vni)
        return (network and network.tunnel_type) or self.tunnel_type

    def vnis_on(self, hv: str):
        return sorted({p.vni for p in self.ports if p.hypervisor == hv})

    def role_of(self, dpid: int) -> Optional[Tuple[str, str]]:
        """(hypervisor name, "int" or "tun") of a datapath, or None."""
        for hv in self.hypervisors:
            if dpid in (hv.int_dpid, hv.tun_dpid):
                return hv.name, "int" if dpid == hv.int_dpid else "tun"
        return None

    def bridge_plan(self, dpid: int, local_vlans, resolve, table_misses) -> Optional[List]:
        """What bridge `dpid` should hold (`local_vlans`: its hypervisor's VNI -> VLAN;
        `resolve(name)`: a port's ofport there, None while unknown); None when it cannot
        be computed yet (patch port not seen) or the bridge is no hypervisor's."""
        role = self.role_of(dpid)
        if role is None:
            return None
        hv, kind = role
        if kind == "tun":
            bridge = self.tunnel_bridge(hv, local_vlans, resolve)
            return None if bridge is None else tunnel_plan(bridge)
        ports = self.integration_ports(hv, local_vlans, resolve)
        return None if ports is None else integration_plan(ports, table_misses)

    def hosts_of(self, vni):
        return sorted({p.hypervisor for p in self.ports if p.vni == vni})

    def with_hypervisor(self, hv: Hypervisor) -> "Model":
        for other in self.hypervisors:
            for what, mine, theirs in (("name", hv.name, other.name),
                                       ("underlay_ip", hv.underlay_ip, other.underlay_ip)):
                if mine == theirs:
                    raise Conflict(f"hypervisor {other.name} already has {what} {mine}")
            taken = {other.int_dpid, other.tun_dpid} & {hv.int_dpid, hv.tun_dpid}
            if taken:
                raise Conflict(f"datapath {format_dpid(min(taken))} is already hypervisor "
                               f"{other.name}'s")
        return replace(self, hypervisors=self.hypervisors + (hv,))

    def without_hypervisor(self, name) -> "Model":
        if self.hypervisor(name) is None:
            raise LookupError(f"no hypervisor {name!r}")
        attached = [p.port for p in self.ports if p.hypervisor == name]
        if attached:
            raise Conflict(f"hypervisor {name} still has VM ports ({', '.join(attached)}); "
                           f"detach them first")
        return replace(self, hypervisors=tuple(h for h in self.hypervisors if h.name != name))

    def with_network(self, network: Network) -> "Model":
        if self.network(network.vni) is not None:
            raise Conflict(f"VNI {network.vni} exists (network {self.network(network.vni).name})")
        return replace(self, networks=self.networks + (network,))

    def without_network(self, vni) -> "Model":
        if self.network(vni) is None:
            raise LookupError(f"no network with VNI {vni}")
        if self.hosts_of(vni):
            raise Conflict(f"VNI {vni} still has VM ports on {', '.join(self.hosts_of(vni))}; "
                           f"detach them first")
        return replace(self, networks=tuple(n for n in self.networks if n.vni != vni))

    def with_port(self, port: VmPort, resolve=None) -> "Model":
        """`resolve(hypervisor, port)` -> canonical port name or None (unknown port)."""
        if self.hypervisor(port.hypervisor) is None:
            raise ValueError(f"unknown hypervisor {port.hypervisor!r}")
        if self.network(port.vni) is None:
            raise ValueError(f"unknown network VNI {port.vni}; create it first")
        if resolve is not None:
            name = resolve(port.hypervisor, port.port)
            if name is None:
                raise ValueError(f"hypervisor {port.hypervisor}'s integration bridge has no "
                                 f"port {port.port!r}")
            port = replace(port, port=name)
        clash = next((p for p in self.ports
                      if (p.hypervisor, p.port) == (port.hypervisor, port.port)), None)
        if clash is not None:
            raise Conflict(f"port {port.port} of {port.hypervisor} is already attached to "
                           f"VNI {clash.vni}")
        if port.mac is not None:
            same = next((p for p in self.ports if p.vni == port.vni and p.mac == port.mac), None)
            if same is not None:
                raise Conflict(f"MAC {port.mac} is already in VNI {port.vni} "
                               f"({same.hypervisor} {same.port})")
        return replace(self, ports=self.ports + (port,))

    def without_port(self, hypervisor, port) -> "Model":
        kept = tuple(p for p in self.ports if (p.hypervisor, p.port) != (hypervisor, port))
        if len(kept) == len(self.ports):
            raise LookupError(f"no VM port {port} on {hypervisor}")
        return replace(self, ports=kept)

    def tunnel_ports(self, hv: str):
        """{port name: (type, remote underlay IP)} on `hv`'s tunnel bridge: a full mesh,
        one port per other hypervisor and tunnel type in use."""
        kinds = sorted({self.tunnel_type} | {n.tunnel_type for n in self.networks
                                             if n.tunnel_type})
        return {tunnel_port_name(kind, other.name): (kind, other.underlay_ip)
                for other in self.hypervisors if other.name != hv for kind in kinds}

    def tunnel_bridge(self, hv: str, local_vlans, resolve_tun) -> Optional["TunnelBridge"]:
        """The tunnel bridge of `hv`; `resolve_tun(name)` gives a port's ofport on it
        (None while unknown). None until the patch port is known."""
        patch = resolve_tun(TUN_PATCH_PORT)
        if patch is None:
            return None
        tunnels = {}
        for other in self.hypervisors:
            for kind in TUNNEL_TYPES:
                ofport = resolve_tun(tunnel_port_name(kind, other.name))
                if other.name != hv and ofport is not None:
                    tunnels[(other.name, kind)] = ofport
        vnis = self.vnis_on(hv)
        remote_macs, arp = (), ()
        if self.l2_population:
            remote = [p for p in self.ports if p.hypervisor != hv and p.vni in vnis and p.mac]
            remote_macs = tuple((p.vni, p.mac, p.hypervisor) for p in remote)
            arp = tuple((p.vni, p.ip, p.mac) for p in remote if p.ip)
        return TunnelBridge(
            patch, tunnels, {vni: local_vlans[vni] for vni in vnis},
            {vni: self.type_of(vni) for vni in vnis},
            {vni: tuple(h for h in self.hosts_of(vni) if h != hv) for vni in vnis},
            remote_macs, arp)

    def integration_ports(self, hv: str, local_vlans, resolve_int):
        """flows.vlan port settings of `hv`'s integration bridge (None until its patch
        port is known); VM ports not seen on the bridge yet are left out."""
        patch = resolve_int(INT_PATCH_PORT)
        if patch is None:
            return None
        vm_ports = {}
        for port in self.ports:
            number = resolve_int(port.port) if port.hypervisor == hv else None
            if number is not None:
                vm_ports[number] = port.vni
        return integration_ports(vm_ports, patch, {vni: local_vlans[vni]
                                                   for vni in self.vnis_on(hv)})



def allocate_vlans(current: Mapping[int, int], vnis: Iterable[int]) -> Dict[int, int]:
    """{vni: local VLAN} for `vnis`: VNIs keep the VLAN they have, new ones get the
    lowest free one (1..4094)."""
    wanted = sorted(set(vnis))
    kept = {vni: vid for vni, vid in current.items() if vni in wanted}
    used = set(kept.values())
    free = (vid for vid in range(1, vlan.MAX_VID + 1) if vid not in used)
    for vni in wanted:
        if vni not in kept:
            try:
                kept[vni] = next(free)
            except StopIteration:
                raise ValueError("no free local VLAN left on this hypervisor") from None
    return kept


@dataclass(frozen=True)
class OverlaySettings:
    """The `overlay` config section:

        overlay:
          tunnel_type: vxlan          # or gre; a network may choose its own
          l2_population: false
          hypervisors: [{name: hv1, int_dpid: 4097, tun_dpid: 8193,
                         underlay_ip: 192.168.50.1, ovsdb: "unix:/tmp/sdn-overlay/hv1/db.sock"}]
          networks: [{vni: 100, name: tenant-a}]
          ports: [{hypervisor: hv1, port: hv1-eth2, vni: 100}]
    """
    tunnel_type: str = "vxlan"
    l2_population: bool = False
    hypervisors: tuple = ()
    networks: tuple = ()
    ports: tuple = field(default=())

    def __post_init__(self):
        tunnel_type_of(self.tunnel_type)
        if not isinstance(self.l2_population, bool):
            raise ValueError(f"l2_population must be true or false, not {self.l2_population!r}")
        self.model()   # every entry valid and consistent

    def model(self) -> Model:
        model = Model(tunnel_type=self.tunnel_type, l2_population=self.l2_population)
        for what, parse, add in (("hypervisors", hypervisor_from_dict, "with_hypervisor"),
                                 ("networks", network_from_dict, "with_network"),
                                 ("ports", vm_port_from_dict, "with_port")):
            for index, body in enumerate(getattr(self, what) or ()):
                try:
                    model = getattr(model, add)(parse(body))
                except ValueError as err:
                    raise ValueError(f"{what}[{index}]: {err}") from None
        return model


# --- the plan protocol (flows/app_plan.py): `sdn plan` finds the app through it -------

SETTINGS = OverlaySettings


def owns(settings: OverlaySettings, switch, facts) -> bool:
    """A hypervisor's bridges are the overlay's alone."""
    return settings.model().role_of(switch.datapath.id) is not None


def plan(settings: OverlaySettings, switch, facts):
    """One hypervisor bridge, as a fresh controller programs it (its VLANs allocated
    from none), and the tunnel ports a tunnel bridge needs in OVSDB. An integration
    bridge runs the main pipeline (table misses); a tunnel bridge has its own."""
    from flows.app_plan import SwitchPlan
    model, dpid = settings.model(), switch.datapath.id
    result = SwitchPlan(None, canary_last=True)
    role = model.role_of(dpid)
    if role is None:
        result.problems.append(f"datapath {format_dpid(dpid)} is no hypervisor's int_dpid "
                               f"or tun_dpid")
        return result
    hv, kind = role
    result.items = model.bridge_plan(dpid, allocate_vlans({}, model.vnis_on(hv)),
                                     switch.resolve, [])
    result.misses = kind == "int"
    if result.items is None:
        patch = TUN_PATCH_PORT if kind == "tun" else INT_PATCH_PORT
        result.problems.append(f"{hv}'s {kind} bridge needs its patch port {patch!r} among "
                               f"the ports")
        return result
    if kind == "int":
        result.problems += [f"VM port {p.port!r} of {hv} is not among the ports (left out "
                            f"until it is on the bridge)" for p in model.ports
                            if p.hypervisor == hv and switch.resolve(p.port) is None]
        return result
    for name, (tunnel_type, remote) in sorted(model.tunnel_ports(hv).items()):
        result.ovsdb.append(f"Port {name} on {switch.name}: type={tunnel_type} "
                            f"options:remote_ip={remote},key=flow")
        if switch.resolve(name) is None:
            result.problems.append(f"tunnel port {name!r} is not among the ports (its "
                                   f"entries are left out until OVS numbers it)")
    return result
