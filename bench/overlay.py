"""`make bench` (overlay line): iperf3 VM -> VM across two of the overlay lab's three
hypervisors, through the controller's VXLAN (and GRE) overlay and through the course's
hand-written tunnel flows on the same lab (mininet_topos/overlay_handwritten.py, no
controller), against the same two hosts on one OVS bridge with NORMAL, all in the
same run; the ping round trip of each; and how many flows a tunnel bridge holds for
N hypervisors and M networks (from flows/overlay.py, checked against a real bridge).
"""
import re
import statistics
import sys
import tempfile

from bench import record
from controller import pipeline
from flows import overlay
from mininet_topos import harness, overlay_handwritten
from mininet_topos.overlay_topo import OverlayLab
from mininet_topos.topos import Single

HYPERVISORS = 3   # the overlay lab's (make lab-overlay); the VMs measured are on hv1, hv2
_RTT = re.compile(r"= [\d.]+/([\d.]+)/")
# on a real tunnel bridge, what the model does not count: learn()'s entries, the canary
_NOT_MODELLED = {pipeline.cookie(owner)
                 for owner in (overlay.LEARNED, pipeline.canary_owner(overlay.APP))}


def rate(src, dst, seconds, runs):
    """(median iperf3 Mbit/s, mean ping round trip in ms) src -> dst. OVS's native
    tunnelling drops a tunnel's first packets while it resolves the remote VTEP, so
    the first pings may be retried."""
    reached = harness.wait_until(lambda: harness.ping(src, dst, count=2, timeout=2), 10)
    assert reached, f"{src.name} cannot reach {dst.name}"
    found = _RTT.search(src.cmd(f"ping -q -c 20 -i 0.05 {dst.IP()}"))
    assert found, f"no round trip {src.name} -> {dst.name}"
    mbps = statistics.median(harness.iperf3(src, dst, seconds=seconds) for _ in range(runs)) / 1e6
    return mbps, float(found.group(1))


def handwritten_rate(seconds, runs):
    """The course's flows, set by hand on the same lab, no controller."""
    topo = overlay_handwritten.handwritten_lab(tempfile.mkdtemp(prefix="sdn-bench-"),
                                               HYPERVISORS)
    with harness.Network(topo, controller=None) as network:
        overlay_handwritten.program(network, HYPERVISORS)
        return rate(network["vm1a"], network["vm2a"], seconds, runs)


def overlay_rate(tunnel_type, seconds, runs):
    def topo(controller):
        return OverlayLab(hypervisors=HYPERVISORS, rundir=tempfile.mkdtemp(prefix="sdn-bench-"),
                          controller_port=controller.of_port)

    def config(topology):
        section = topology.app_config()
        section["overlay"]["tunnel_type"] = tunnel_type
        return section

    with harness.running(topo, apps=("apps/overlay.py",), config=config) as (controller,
                                                                                  network):
        ready = harness.wait_until(lambda: all(
            h["programmed"] for h in controller.rest("GET", "/v1/overlay")[1]["hypervisors"]), 30)
        if not ready:
            sys.exit(f"overlay not programmed: {controller.rest('GET', '/v1/overlay')}")
        measured = rate(network["vm1a"], network["vm2a"], seconds, runs)
        hv1 = network["hv1"]
        installed = [f for f in hv1.flows("br-tun") if f.cookie not in _NOT_MODELLED]
        problems = controller.problems()
        if problems:
            sys.exit("controller problems:\n" + "\n".join(problems))
    return measured, len(installed)


def modelled_flows(hypervisors, networks):
    """Flows the controller installs on one tunnel bridge when every network has a VM
    on every hypervisor (learned entries not counted)."""
    model = overlay.Model()
    for n in range(1, hypervisors + 1):
        model = model.with_hypervisor(overlay.Hypervisor(f"hv{n}", 0x1000 + n, 0x2000 + n,
                                                         f"10.0.{n // 256}.{n % 256}"))
    for vni in range(1, networks + 1):
        model = model.with_network(overlay.Network(vni, f"net{vni}"))
        for n in range(1, hypervisors + 1):
            model = model.with_port(overlay.VmPort(f"hv{n}", f"vm{vni}", vni))
    ofports = {name: number for number, name in enumerate(
        ["patch-int", *model.tunnel_ports("hv1")], start=1)}
    vlans = overlay.allocate_vlans({}, model.vnis_on("hv1"))
    return len(overlay.tunnel_plan(model.tunnel_bridge("hv1", vlans, ofports.get)))


def main(seconds=5, runs=3):
    run = record.Run("overlay", "The overlay")
    harness.ensure_ovs()
    rows = []
    with harness.Network(Single(2), controller=None) as network:
        rows.append(("one bridge, OVS NORMAL", rate(network["h1"], network["h2"], seconds, runs)))
    hand = handwritten_rate(seconds, runs)
    rows.append(("hand-written flows, vxlan (course)", hand))
    installed = {}
    for kind in ("vxlan", "gre"):
        measured, installed[kind] = overlay_rate(kind, seconds, runs)
        rows.append((f"overlay app, {kind}", measured))
    table = run.table(f"VM -> VM across 2 of {HYPERVISORS} hypervisors, iperf3 median of "
                      f"{runs} x {seconds} s, ping 20 x 50 ms (mean)", [
                          record.Column("setup"), record.Column("rate", "Mbit/s"),
                          record.Column("x NORMAL"), record.Column("x hand"),
                          record.Column("ping", "ms")])
    for label, (mbps, rtt) in rows:
        table.add(label, round(mbps), round(mbps / rows[0][1][0], 2), round(mbps / hand[0], 2),
                  round(rtt, 3), peer="app" not in label)
    print(f"\nVM -> VM across 2 of {HYPERVISORS} hypervisors, iperf3 {runs} x {seconds} s "
          f"(median), ping 20 x 50 ms (mean)")
    print(f"{'setup':<38}{'Mbit/s':>9}{'x NORMAL':>10}{'x hand':>8}{'ping ms':>9}")
    for label, mbps, x_normal, x_hand, rtt in table.rows:
        print(f"{label:<38}{mbps:>9.0f}{x_normal:>10.2f}{x_hand:>8.2f}{rtt:>9.3f}")
    ours = dict(rows)["overlay app, vxlan"]
    print(f"ours / hand-written (vxlan, same lab): throughput {ours[0] / hand[0]:.2f}, "
          f"round trip {ours[1] / hand[1]:.2f}")
    model = run.table("flows on one tunnel bridge (every network on every hypervisor, "
                      "learned not counted)", [record.Column("hypervisors"),
                                               record.Column("networks"),
                                               record.Column("flows")])
    for hypervisors in (3, 10, 50):
        for networks in (2, 10, 100):
            model.add(hypervisors, networks, modelled_flows(hypervisors, networks))
    print("\nflows on one tunnel bridge (every network on every hypervisor, learned not counted)")
    print(f"{'hypervisors':>12}{'networks':>10}{'flows':>8}")
    for hypervisors, networks, flows in model.rows:
        print(f"{hypervisors:>12}{networks:>10}{flows:>8}")
    real = run.table("a real tunnel bridge against the model", [
        record.Column("hypervisors"), record.Column("networks"),
        record.Column("flows on the bridge"), record.Column("model")])
    real.add(HYPERVISORS, 2, installed["vxlan"], modelled_flows(HYPERVISORS, 2))
    print(f"real bridge, {HYPERVISORS} hypervisors x 2 networks: {real.rows[0][2]} flows "
          f"(model: {real.rows[0][3]})")
    run.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
