"""Overlay intent -> flows: tenant networks (VNIs) across hypervisors, each with an
integration bridge (VM ports are access ports of the network's local VLAN) patched
to a tunnel bridge that runs the overlay lab's pipeline:

    0  tun_in        from the patch port -> 1; from a tunnel -> 3; else drop
    1  tun_from_int  unicast -> 20; multicast/broadcast -> 21
    2  tun_drop      drop
    3  tun_vni       tun_id=VNI -> push local VLAN, -> 10; unknown VNI -> drop
    10 tun_learn     learn(table 20: VLAN + eth_dst := eth_src -> strip VLAN,
                     tun_id := tun_id, output:in_port), then to the patch port
    20 tun_ucast     learned (or L2-population) entries; miss -> 21
    21 tun_flood     local VLAN -> strip, set_tunnel VNI, out to the tunnels of the
                     hypervisors that host that VNI; unknown VLAN -> drop

Local VLANs are per hypervisor (the same VNI may have different ones) and stable:
a VNI keeps its VLAN while it stays on the hypervisor.
"""
import ipaddress
import re
from dataclasses import dataclass, field, replace
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

from flows import arp, l2, vlan
from flows.body import only_keys
from flows.dpid import DpidError, format as format_dpid, parse as parse_dpid
from flows.spec import (FlowDelete, FlowSpec, Learn, Match, Output, Owner, PopVlan, PushVlan,
                        SetField)

APP = "overlay"
TUNNEL = Owner(APP, "tunnel")      # the fixed structure of a tunnel bridge
TENANT = Owner(APP, "tenant")      # per network: VNI <-> VLAN, flood lists
L2POP = Owner(APP, "l2pop")        # MACs the controller knows (L2 population)
LEARNED = Owner(APP, "learned")    # what learn() writes into tun_ucast
MAX_VNI = 16_777_215
TUNNEL_TYPES = ("vxlan", "gre")
LEARN_HARD_TIMEOUT = 300
UNICAST = ("00:00:00:00:00:00", "01:00:00:00:00:00")
MULTICAST = ("01:00:00:00:00:00", "01:00:00:00:00:00")
INT_PATCH_PORT, TUN_PATCH_PORT = "patch-tun", "patch-int"   # the lab's patch port names
ARP_PRIORITY = 10
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,9}$")


# --- intent -----------------------------------------------------------------------

@dataclass(frozen=True)
class Hypervisor:
    name: str
    int_dpid: int
    tun_dpid: int
    underlay_ip: str
    ovsdb: Optional[str] = None      # its OVSDB (None: the controller's default)


@dataclass(frozen=True)
class Network:
    vni: int
    name: str
    tunnel_type: Optional[str] = None   # None: the overlay's default


@dataclass(frozen=True)
class VmPort:
    hypervisor: str
    port: str                        # on the integration bridge, by name or number
    vni: int
    mac: Optional[str] = None        # known MAC and IP: L2 population (table 20 entries,
    ip: Optional[str] = None         # ARP answers in the tunnel bridge)


def _dpid(value, what):
    try:
        number = parse_dpid(value)
    except DpidError as err:
        raise ValueError(f"{what}: {err}") from None
    if number == 0:  # the overlay has always refused 0 (and flows/dpid.py takes it)
        raise ValueError(f"{what} must be a datapath id other than 0")
    return number


def vni_of(value) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_VNI:
        raise ValueError(f"vni must be an integer 1..{MAX_VNI}, not {value!r}")
    return value


def tunnel_type_of(value) -> str:
    if value not in TUNNEL_TYPES:
        raise ValueError(f"tunnel_type must be one of {', '.join(TUNNEL_TYPES)}, not {value!r}")
    return value


def hypervisor_from_dict(body) -> Hypervisor:
    only_keys(body, ("name", "int_dpid", "tun_dpid", "underlay_ip", "ovsdb"), "hypervisor")
    missing = [k for k in ("name", "int_dpid", "tun_dpid", "underlay_ip") if k not in body]
    if missing:
        raise ValueError(f"hypervisor needs {', '.join(missing)}")
    name = body["name"]
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"hypervisor name must be 1-10 letters, digits, '_', '.', '-' "
                         f"(it goes into tunnel port names), not {name!r}")
    try:
        ip = str(ipaddress.IPv4Address(body["underlay_ip"]))
    except (ValueError, TypeError):
        raise ValueError(f"underlay_ip must be an IPv4 address, not {body['underlay_ip']!r}") \
            from None
    int_dpid, tun_dpid = _dpid(body["int_dpid"], "int_dpid"), _dpid(body["tun_dpid"], "tun_dpid")
    if int_dpid == tun_dpid:
        raise ValueError("int_dpid and tun_dpid must be two different bridges")
    ovsdb = body.get("ovsdb")
    if ovsdb is not None and (not isinstance(ovsdb, str) or
                              not re.match(r"^(tcp|ssl|unix):.+", ovsdb)):
        raise ValueError(f"ovsdb must be an OVSDB remote like tcp:IP:PORT or unix:PATH, "
                         f"not {ovsdb!r}")
    return Hypervisor(name, int_dpid, tun_dpid, ip, ovsdb)


def network_from_dict(body) -> Network:
    only_keys(body, ("vni", "name", "tunnel_type"), "network")
    if "vni" not in body:
        raise ValueError("network needs a vni")
    name = body.get("name", f"vni{body['vni']}")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"network name must be a non-empty string, not {name!r}")
    kind = body.get("tunnel_type")
    return Network(vni_of(body["vni"]), name, None if kind is None else tunnel_type_of(kind))


def vm_port_from_dict(body) -> VmPort:
    only_keys(body, ("hypervisor", "port", "vni", "mac", "ip"), "port")
    missing = [k for k in ("hypervisor", "port", "vni") if k not in body]
    if missing:
        raise ValueError(f"port needs {', '.join(missing)}")
    port = body["port"]
    if isinstance(port, bool) or not isinstance(port, (str, int)) or str(port) == "":
        raise ValueError(f"port must be a port name or number, not {port!r}")
    mac = body.get("mac")
    if mac is not None:
        mac = Match.of(eth_src=mac).get("eth_src")   # normalises, raises when malformed
    ip = body.get("ip")
    if ip is not None:
        try:
            ip = str(ipaddress.IPv4Address(ip))
        except (ValueError, TypeError):
            raise ValueError(f"ip must be an IPv4 address, not {ip!r}") from None
        if mac is None:
            raise ValueError("ip needs the port's mac (ARP answers carry it)")
    return VmPort(str(body["hypervisor"]), str(port), vni_of(body["vni"]), mac, ip)


def vm_port_to_dict(port: VmPort) -> dict:
    return {k: v for k, v in (("hypervisor", port.hypervisor), ("port", port.port),
                              ("vni", port.vni), ("mac", port.mac), ("ip", port.ip))
            if v is not None}


def hypervisor_to_dict(hv: Hypervisor) -> dict:
    out = {"name": hv.name, "int_dpid": format_dpid(hv.int_dpid),
           "tun_dpid": format_dpid(hv.tun_dpid), "underlay_ip": hv.underlay_ip}
    if hv.ovsdb:
        out["ovsdb"] = hv.ovsdb
    return out


def network_to_dict(network: Network) -> dict:
    out = {"vni": network.vni, "name": network.name}
    if network.tunnel_type:
        out["tunnel_type"] = network.tunnel_type
    return out


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


def tunnel_port_name(kind: str, remote: str) -> str:
    """The tunnel port towards `remote` on a tunnel bridge (<= 15 chars, as Linux wants)."""
    return f"{'vx' if kind == 'vxlan' else 'gre'}-{remote}"


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


# --- the tunnel bridge ------------------------------------------------------------

@dataclass(frozen=True)
class TunnelBridge:
    """What one hypervisor's tunnel bridge needs to know."""
    patch_port: int
    tunnels: Mapping[Tuple[str, str], int]        # (remote hypervisor, type) -> ofport
    local_vlans: Mapping[int, int]                # vni -> VLAN on this hypervisor
    vni_types: Mapping[int, str]                  # vni -> tunnel type
    remote_members: Mapping[int, Tuple[str, ...]]  # vni -> other hypervisors hosting it
    remote_macs: Tuple[Tuple[int, str, str], ...] = ()  # L2 pop: (vni, mac, hypervisor)
    arp_answers: Tuple[Tuple[int, str, str], ...] = ()  # L2 pop: (vni, ip, mac)


def tunnel_structure(patch_port: int, tunnel_ports: Iterable[int]) -> List[FlowSpec]:
    """Tables 0, 1, 2, 10 and the misses of 3, 20 and 21: independent of networks."""
    specs = [FlowSpec("tun_in", 1, Match.of(in_port=patch_port), TUNNEL, goto="tun_from_int")]
    specs += [FlowSpec("tun_in", 1, Match.of(in_port=port), TUNNEL, goto="tun_vni")
              for port in sorted(tunnel_ports)]
    specs += [
        FlowSpec("tun_in", 0, Match(), TUNNEL),
        FlowSpec("tun_from_int", 1, Match.of(eth_dst=UNICAST), TUNNEL, goto="tun_ucast"),
        FlowSpec("tun_from_int", 1, Match.of(eth_dst=MULTICAST), TUNNEL, goto="tun_flood"),
        FlowSpec("tun_from_int", 0, Match(), TUNNEL),
        FlowSpec("tun_drop", 0, Match(), TUNNEL),
        FlowSpec("tun_vni", 0, Match(), TUNNEL),
        FlowSpec("tun_learn", 1, Match(), TUNNEL, actions=(
            Learn("tun_ucast", LEARNED, (("vlan_vid", "vlan_vid"), ("eth_dst", "eth_src")),
                  strip_vlan=True, loads=(("tunnel_id", "tunnel_id"),),
                  hard_timeout=LEARN_HARD_TIMEOUT),
            Output(patch_port))),
        FlowSpec("tun_ucast", 0, Match(), TUNNEL, goto="tun_flood"),
        FlowSpec("tun_flood", 0, Match(), TUNNEL),
    ]
    return specs


def network_flows(bridge: TunnelBridge, vni: int) -> List[FlowSpec]:
    """Table 3's VNI -> VLAN and table 21's VLAN -> VNI flood to the hypervisors that
    host `vni` (none: no flood entry, the miss drops)."""
    vid, kind = bridge.local_vlans[vni], bridge.vni_types[vni]
    specs = [FlowSpec("tun_vni", 1, Match.of(tunnel_id=vni), TENANT,
                      actions=(PushVlan(), SetField("vlan_vid", vid)), goto="tun_learn")]
    outs = [Output(bridge.tunnels[(remote, kind)])
            for remote in sorted(bridge.remote_members.get(vni, ()))
            if (remote, kind) in bridge.tunnels]
    if outs:
        specs.append(FlowSpec("tun_flood", 1, Match.of(vlan_vid=vid), TENANT,
                              actions=(PopVlan(), SetField("tunnel_id", vni), *outs)))
    return specs


def l2pop_flows(bridge: TunnelBridge) -> List[FlowSpec]:
    """tun_ucast entries for MACs the controller knows, where learn() would put them."""
    specs = []
    for vni, mac, remote in sorted(bridge.remote_macs):
        port = bridge.tunnels.get((remote, bridge.vni_types.get(vni)))
        if vni in bridge.local_vlans and port is not None:
            specs.append(FlowSpec("tun_ucast", 100, Match.of(vlan_vid=bridge.local_vlans[vni],
                                                             eth_dst=mac), L2POP,
                                  actions=(PopVlan(), SetField("tunnel_id", vni),
                                           Output(port))))
    return specs


def arp_responder_flows(bridge: TunnelBridge) -> List[FlowSpec]:
    """ARP requests from local VMs for IPs the controller knows are answered in table 1,
    built in place and sent back through the patch port: no broadcast crosses the
    underlay for them."""
    specs = []
    for vni, ip, mac in sorted(bridge.arp_answers):
        if vni not in bridge.local_vlans:
            continue
        specs.append(FlowSpec("tun_from_int", ARP_PRIORITY,
                              arp.request_for(ip, vlan_vid=bridge.local_vlans[vni]), L2POP,
                              actions=arp.reply_actions(ip, mac)))
    return specs


def tunnel_plan(bridge: TunnelBridge) -> List[FlowSpec]:
    specs = tunnel_structure(bridge.patch_port, bridge.tunnels.values())
    for vni in sorted(bridge.local_vlans):
        specs += network_flows(bridge, vni)
    return specs + l2pop_flows(bridge) + arp_responder_flows(bridge)


TUNNEL_BRIDGE_OWNERS = (TUNNEL, TENANT, L2POP)  # not LEARNED: learn() keeps those right


def forget_tunnel_bridge() -> List[FlowDelete]:
    """Deletes for what the controller installs on a tunnel bridge; entries learn()
    wrote stay (they are still right)."""
    return [FlowDelete(owner) for owner in TUNNEL_BRIDGE_OWNERS]


# --- the integration bridge --------------------------------------------------------

def integration_ports(vm_ports: Mapping[int, int], patch_port: int,
                      local_vlans: Mapping[int, int]) -> List[vlan.PortVlan]:
    """Port VLAN settings of an integration bridge: each VM port an access port of its
    network's local VLAN ({port: vni}), the patch port a trunk of those VLANs."""
    ports = [vlan.port_vlan_from_dict(port, {"tag": local_vlans[vni]})
             for port, vni in sorted(vm_ports.items())]
    trunked = sorted(set(local_vlans.values()))
    if trunked:   # (an empty trunk list would mean every VLAN)
        ports.append(vlan.port_vlan_from_dict(patch_port, {"trunks": trunked}))
    return ports


INTEGRATION_BRIDGE_OWNERS = (Owner(vlan.APP), Owner(l2.APP))  # with the table misses
INTEGRATION_BRIDGE_LEARNED = l2.LEARNED


def forget_integration_bridge() -> List[FlowDelete]:
    """Deletes for everything an integration bridge's plan installs."""
    return vlan.forget_everything() + l2.forget_everything()


def integration_plan(ports: List[vlan.PortVlan], table_misses: List[FlowSpec]) -> List:
    """VLAN classification and per-VLAN flooding (flows/vlan.py) with datapath MAC
    learning (flows/l2.py) on the main pipeline; ports of no network drop everything."""
    configured = [p.port for p in ports]
    settings = l2.L2Settings(mode="datapath")
    return (table_misses + vlan.switch_plan(ports, configured, ())
            + l2.switch_defaults(settings, vlan.untagged_egress_pairs(ports)))


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
