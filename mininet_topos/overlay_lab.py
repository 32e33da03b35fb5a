"""`make lab-overlay`: the overlay lab, three hypervisors joined by VXLAN tunnels.

Each hypervisor runs its own OVS (br-int for the VMs, br-tun with the lab's tables
0/1/2/3/10/20/21) in a namespace; two tenants use the same addresses 10.0.0.1-3. The
controller creates the tunnel mesh through each hypervisor's OVSDB and programs both
bridges. The lab checks that each tenant's VMs reach each other, that the other
tenant sees none of it, that the underlay carries the tenant's VNI, that learn()
fills table 20 with the tunnel id and port, and measures iperf3 through a tunnel.
Writes reports/overlay-lab.md with a drawing (reports/overlay-lab.png).
"""
import math
import re
import sys
import tempfile

from mininet_topos import harness
from mininet_topos.labs import LabRun, command_line, pyplot, save_diagram
from mininet_topos.overlay_topo import OverlayLab

PAIRS = ((1, 2), (1, 3), (2, 3))
TENANT_COLORS = {"a": "tab:red", "b": "tab:blue"}


def draw(path, hypervisors=3):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 6))
    spots, angles = {}, {}
    for number in range(1, hypervisors + 1):
        angles[number] = math.pi / 2 + (number - 1) * 2 * math.pi / hypervisors
        spots[number] = (2.2 * math.cos(angles[number]), 2.2 * math.sin(angles[number]))
    for a, b in PAIRS:
        (xa, ya), (xb, yb) = spots[a], spots[b]
        ax.plot([xa, xb], [ya, yb], color="grey", linestyle="--", zorder=1)
        ax.text((xa + xb) / 2, (ya + yb) / 2, "VXLAN", fontsize=8, color="grey",
                ha="center", backgroundcolor="white", zorder=2)
    for number, (x, y) in spots.items():
        ax.add_patch(plt.Rectangle((x - 0.75, y - 0.45), 1.5, 0.9, color="lightgrey",
                                   zorder=2))
        ax.text(x, y + 0.2, f"hv{number}  192.168.50.{number}", ha="center", fontsize=9,
                weight="bold", zorder=3)
        ax.text(x, y - 0.15, "br-int | br-tun", ha="center", fontsize=8, zorder=3)
        for index, tenant in enumerate(("a", "b")):
            turn = angles[number] + (index - 0.5) * 0.5
            vx, vy = 3.6 * math.cos(turn), 3.6 * math.sin(turn)
            ax.plot([x, vx], [y, vy], color=TENANT_COLORS[tenant], zorder=1)
            ax.text(vx, vy, f"vm{number}{tenant}\n10.0.0.{number}", ha="center",
                    va="center", fontsize=8, color=TENANT_COLORS[tenant],
                    backgroundcolor="white", zorder=3)
    save_diagram(fig, ax, path, "Overlay lab: tenant a (VNI 100, red) and b (VNI 200, "
                 "blue), same addresses", (-4.6, 4.6), (-3.4, 4.4))


def vm(network, number, tenant):
    return network[f"vm{number}{tenant}"]


def programmed(controller):
    body = controller.rest("GET", "/v1/overlay")[1]
    return bool(body["hypervisors"]) and all(h["programmed"] and "problem" not in h
                                             for h in body["hypervisors"])


def run(lab, controller, network, seconds):
    lab.step("the controller builds the tunnel mesh and programs both bridges of each")
    ready = harness.wait_until(lambda: programmed(controller), 30)
    lab.check("hypervisors programmed", 3, sum(
        h["programmed"] for h in controller.rest("GET", "/v1/overlay")[1]["hypervisors"]),
        ready)
    # OVS drops a tunnel's first packet while it resolves the remote VTEP's MAC
    harness.wait_until(lambda: all(harness.ping(vm(network, a, "b"), vm(network, b, "b"),
                                                timeout=1) for a, b in PAIRS), 10)

    lab.step("tenant a pings across the tunnels; tenant b's VMs and the underlay listen")
    tenant_a_macs = {vm(network, n, "a").MAC() for n in (1, 2, 3)}
    others = [(vm(network, n, "b"), f"vm{n}b-eth0") for n in (1, 2, 3)]
    with harness.Capture(others, bpf="arp or ip or ip6") as tenant_b, \
            harness.Capture([(network["hv1"], "hv1-eth1")], bpf="udp port 4789") as wire:
        reached = [harness.ping(vm(network, a, "a"), vm(network, b, "a"), count=2, timeout=2)
                   for a, b in PAIRS]
    lab.check("tenant a: vm1a-vm2a, vm1a-vm3a, vm2a-vm3a", "all reply",
              f"{sum(reached)} of 3 reply", all(reached))
    leaked = [f for intf in tenant_b.lines for f in tenant_b.frames(intf)
              if f[0] in tenant_a_macs]
    lab.check("tenant a frames seen by tenant b's VMs", 0, len(leaked), not leaked)
    lines = wire.lines["hv1-eth1"]
    inner = [(re.search(r"vni (\d+)", outer).group(1), re.findall(r"[0-9a-f:]{17}", frame)[:1])
             for outer, frame in zip(lines, lines[1:]) if "vni" in outer]
    vnis = sorted({vni for vni, src in inner if src and src[0] in tenant_a_macs})
    lab.check("VNI of tenant a's frames on the underlay", "100", ",".join(vnis) or "-",
              vnis == ["100"])

    lab.step("tenant b on the same addresses")
    reached = [harness.ping(vm(network, a, "b"), vm(network, b, "b"), count=2, timeout=2)
               for a, b in PAIRS]
    lab.check("tenant b: the same three pairs", "all reply", f"{sum(reached)} of 3 reply",
              all(reached))

    lab.step("learn() filled br-tun table 20 on hv1 (MAC -> tunnel id + tunnel port)")
    learned = [flow for flow in network["hv1"].flows("br-tun", table=20)
               if flow.cookie >> 48 == 0x5004]     # the overlay app's, purpose learned
    with_tun_id = [flow for flow in learned if flow.loads().get("NXM_NX_TUN_ID") == 100]
    lab.check("learned entries for tenant a's remote VMs", ">= 2", len(with_tun_id),
              len(with_tun_id) >= 2)

    lab.step(f"iperf3 vm1a -> vm2a through the tunnel for {seconds} s")
    bits = harness.iperf3(vm(network, 1, "a"), vm(network, 2, "a"), seconds=seconds)
    lab.check("TCP through VXLAN (userspace datapath)", "> 10 Mbit/s",
              f"{bits / 1e6:.0f} Mbit/s", bits > 10e6)


def main(argv=None):
    parser = command_line(__doc__)
    parser.add_argument("--seconds", type=int, default=3, help="iperf3 duration")
    args = parser.parse_args(argv)
    lab = LabRun("Overlay lab", "overlay-lab", args.reports)
    lab.note("Three hypervisors, each its own OVS (userspace datapath) in a namespace, "
             "joined by an IP underlay (192.168.50.0/24, MTU 1600); tenants a (VNI 100) "
             "and b (VNI 200) with the same addresses; the overlay app alone drives all six "
             "bridges and creates the VXLAN mesh through each hypervisor's OVSDB.")
    lab.step("starting the controller (overlay) and three hypervisors")
    with tempfile.TemporaryDirectory(prefix="overlay-lab-") as rundir:
        def topo(controller):
            return OverlayLab(hypervisors=3, rundir=rundir, controller_port=controller.of_port)
        with harness.running(topo, apps=("apps/overlay.py",),
                             config=lambda t: t.app_config()) as (controller, network):
            run(lab, controller, network, args.seconds)
            problems = controller.problems()
    draw(lab.picture("overlay-lab.png", "three hypervisors, two tenants, one VXLAN mesh"))
    return lab.finish(problems)


if __name__ == "__main__":
    sys.exit(main())
