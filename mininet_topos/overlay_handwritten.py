"""The overlay lab without a controller: the course's hand-written tunnel flows.

The peer `make bench` measures our overlay app against (bench/overlay.py): the same
OverlayLab network (mininet_topos/overlay_topo.py, each hypervisor its own OVS,
userspace datapath), its bridges cut off from any controller and programmed once
with `ovs-vsctl` and `ovs-ofctl add-flows`, as the course does it by hand. The
course's tunnel bridge (br-tun; the Neutron OVS agent's pipeline, in the course's
table numbers):

    table 0   from the patch port -> table 1; from a tunnel port -> table 3
    table 1   unicast -> table 20; multicast/broadcast -> table 21
    table 2   drop
    table 3   tunnel_id -> mod_vlan_vid (the local VLAN), goto table 10
    table 10  learn() of the MAC -> table 20 entries (load tunnel_id, output to the
              in_port tunnel), then output to the patch port
    table 20  learned unicast, else resubmit table 21
    table 21  flood: strip_vlan, set_tunnel, output to all tunnels

and br-int as the agent leaves it: each VM port an access port of its tenant's
local VLAN (`tag=`), the patch port a trunk, OVS NORMAL learning. Where ours
differs (flows/overlay_bridges.py): table 21 floods only to hypervisors hosting the
VNI, and br-int is OpenFlow (flows/vlan.py, learn()) instead of NORMAL; on the
lab's three hypervisors with both tenants everywhere the flood lists are the same.
"""
from mininet_topos.labkit.controller import free_port
from mininet_topos.overlay_topo import PATCH_ON_TUN, UNDERLAY_NET, OverlayLab

# the course's numbers: local VLAN per tenant (the same on every hypervisor)
LOCAL_VLANS = {vni: index + 1 for index, (_, vni) in enumerate(OverlayLab.TENANTS)}
FIRST_TUNNEL_OFPORT = 2
LEARN_HARD_TIMEOUT = 300
UNICAST = "00:00:00:00:00:00/01:00:00:00:00:00"
MULTICAST = "01:00:00:00:00:00/01:00:00:00:00:00"


def tunnel_ports(number, hypervisors):
    """{port name: (ofport, remote VTEP)} on hypervisor `number`'s br-tun: one VXLAN
    port to each other hypervisor."""
    others = [n for n in range(1, hypervisors + 1) if n != number]
    return {f"vxlan-hv{n}": (FIRST_TUNNEL_OFPORT + i, f"{UNDERLAY_NET}.{n}")
            for i, n in enumerate(others)}


def tunnel_bridge_flows(tunnel_ofports, local_vlans=LOCAL_VLANS, patch=PATCH_ON_TUN):
    """br-tun's flows as `ovs-ofctl add-flows` lines (pure: a unit test reads them)."""
    tunnels = sorted(tunnel_ofports)
    to_all = ",".join(f"output:{port}" for port in tunnels)
    learn = (f"learn(table=20,hard_timeout={LEARN_HARD_TIMEOUT},priority=1,"
             "NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],"
             "load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],"
             "output:NXM_OF_IN_PORT[])")
    flows = [f"table=0,priority=1,in_port={patch},actions=resubmit(,1)"]
    flows += [f"table=0,priority=1,in_port={port},actions=resubmit(,3)" for port in tunnels]
    flows += [
        "table=0,priority=0,actions=drop",
        f"table=1,priority=1,dl_dst={UNICAST},actions=resubmit(,20)",
        f"table=1,priority=1,dl_dst={MULTICAST},actions=resubmit(,21)",
        "table=1,priority=0,actions=drop",
        "table=2,priority=0,actions=drop",
        "table=3,priority=0,actions=drop",
        f"table=10,priority=1,actions={learn},output:{patch}",
        "table=20,priority=0,actions=resubmit(,21)",
        "table=21,priority=0,actions=drop",
    ]
    for vni, vid in sorted(local_vlans.items()):
        flows.append(f"table=3,priority=1,tun_id={vni},actions=mod_vlan_vid:{vid},"
                     f"resubmit(,10)")
        if tunnels:
            flows.append(f"table=21,priority=1,dl_vlan={vid},actions=strip_vlan,"
                         f"set_tunnel:{vni},{to_all}")
    return flows


INTEGRATION_BRIDGE_FLOWS = ["table=0,priority=0,actions=NORMAL"]


def program(network, hypervisors):
    """Cut every hypervisor's bridges off their controller and program them by hand:
    VM port tags, the VXLAN mesh (key=flow: the VNI comes from the flows), the flows."""
    for number in range(1, hypervisors + 1):
        hv = network[f"hv{number}"]
        hv.vsctl("del-controller", "br-int", "--", "del-controller", "br-tun")
        tags = []
        for index, (_, vni) in enumerate(OverlayLab.TENANTS):
            tags += ["--", "set", "port", f"hv{number}-eth{2 + index}", f"tag={LOCAL_VLANS[vni]}"]
        hv.vsctl(*tags[1:])
        ports = tunnel_ports(number, hypervisors)
        mesh = []
        for name, (ofport, remote) in sorted(ports.items()):
            mesh += ["--", "add-port", "br-tun", name, "--", "set", "interface", name,
                     "type=vxlan", f"options:remote_ip={remote}", "options:key=flow",
                     f"ofport_request={ofport}"]
        hv.vsctl(*mesh[1:])
        for bridge, flows in (("br-int", INTEGRATION_BRIDGE_FLOWS),
                              ("br-tun", tunnel_bridge_flows([p for p, _ in ports.values()]))):
            path = hv.rundir / f"{bridge}.flows"
            path.write_text("\n".join(flows) + "\n")
            hv.ofctl("del-flows", bridge)
            hv.ofctl("add-flows", bridge, str(path))


def handwritten_lab(rundir, hypervisors=3):
    """The OverlayLab topology for the hand-written peer: its bridges first point at a
    port nobody listens on (program() then removes the controller)."""
    return OverlayLab(hypervisors=hypervisors, rundir=rundir, controller_port=free_port())
