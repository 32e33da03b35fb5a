"""The flows of a hypervisor's two bridges. The tunnel bridge runs the overlay lab's
pipeline:

    0  tun_in        from the patch port -> 1; from a tunnel -> 3; else drop
    1  tun_from_int  unicast -> 20; multicast/broadcast -> 21
    2  tun_drop      drop
    3  tun_vni       tun_id=VNI -> push local VLAN, -> 10; unknown VNI -> drop
    10 tun_learn     learn(table 20: VLAN + eth_dst := eth_src -> strip VLAN,
                     tun_id := tun_id, output:in_port), then to the patch port
    20 tun_ucast     learned (or L2-population) entries; miss -> 21
    21 tun_flood     local VLAN -> strip, set_tunnel VNI, out to the tunnels of the
                     hypervisors that host that VNI; unknown VLAN -> drop

The integration bridge: VM ports are access ports of their network's local VLAN
(flows/vlan.py), the patch port a trunk of those VLANs, with datapath MAC learning
(flows/l2.py).

Apart from flows/overlay.py (the model that decides what each bridge holds) because
these builders take only what one bridge needs to know (`TunnelBridge`, port
settings) and know nothing of hypervisors they do not talk to.
"""
from dataclasses import dataclass
from typing import Iterable, List, Mapping, Tuple

from flows import arp, l2, vlan
from flows.spec import (FlowDelete, FlowSpec, Learn, Match, Output, Owner, PopVlan, PushVlan,
                        SetField)

APP = "overlay"
TUNNEL = Owner(APP, "tunnel")      # the fixed structure of a tunnel bridge
TENANT = Owner(APP, "tenant")      # per network: VNI <-> VLAN, flood lists
L2POP = Owner(APP, "l2pop")        # MACs the controller knows (L2 population)
LEARNED = Owner(APP, "learned")    # what learn() writes into tun_ucast
LEARN_HARD_TIMEOUT = 300
UNICAST = ("00:00:00:00:00:00", "01:00:00:00:00:00")
MULTICAST = ("01:00:00:00:00:00", "01:00:00:00:00:00")
INT_PATCH_PORT, TUN_PATCH_PORT = "patch-tun", "patch-int"   # the lab's patch port names
ARP_PRIORITY = 10


def tunnel_port_name(kind: str, remote: str) -> str:
    """The tunnel port towards `remote` on a tunnel bridge (<= 15 chars, as Linux wants)."""
    return f"{'vx' if kind == 'vxlan' else 'gre'}-{remote}"


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
