"""`make bench`: looped topologies, our topology + learning apps against OVS NORMAL
with OVS's own rapid spanning tree (RSTP), the peer that also survives loops.

For ring(4) and fat-tree(4), in the same run: time from starting the network to the
first pingall with 0 % loss (bring-up, discovery or RSTP convergence, learning),
packet-ins during a second pingall, and iperf3 TCP between hosts on different
switches (median of runs).
"""
import statistics
import sys
import time

from bench import record
from bench.throughput import iperf3_parser, packet_ins, print_problems, ready_to_measure
from mininet_topos import harness
from mininet_topos.topos import FatTree, Ring

APPS = ("apps/topology.py", "apps/l2_switch.py")
SETUPS = [
    ("OVS NORMAL + RSTP (no controller)", None),
    ("topology + l2_switch reactive", "reactive"),
    ("topology + l2_switch datapath", "datapath"),
]
TOPOLOGIES = [("ring(4)", lambda: Ring(4), "h1", "h3"),
              ("fat-tree(4)", lambda: FatTree(4), "h000", "h311")]


def first_full_pingall(network, timeout=90):
    deadline = time.monotonic() + timeout
    while network.pingall(timeout="0.5") != 0:
        if time.monotonic() > deadline:
            raise RuntimeError("no loss-free pingall within %d s" % timeout)


def measure(topo_factory, mode, src, dst, seconds, runs):
    controller = None
    if mode is not None:
        controller = harness.Controller(APPS, {"l2_switch": {"mode": mode}})
        controller.start()
    try:
        started = time.monotonic()
        with harness.Network(topo_factory(), controller, rstp=mode is None) as network:
            first_full_pingall(network)
            ready_s = time.monotonic() - started
            before = packet_ins(controller, ours=controller is not None)
            assert network.pingall() == 0
            warm = None if before is None else packet_ins(controller, True) - before
            rates = [harness.iperf3(network[src], network[dst], seconds=seconds)
                     for _ in range(runs)]
        return {"ready_s": ready_s, "warm": warm, "mbps": statistics.median(rates) / 1e6,
                "problems": controller.problems() if controller else []}
    finally:
        if controller:
            controller.stop()


def main(argv=None):
    args = iperf3_parser(__doc__).parse_args(argv)
    run = record.Run("topology", "Looped topologies")
    ready_to_measure()
    print(f"bench: looped topologies, iperf3 {args.runs} x {args.seconds} s (median)")
    rows = []
    for name, factory, src, dst in TOPOLOGIES:
        for label, mode in SETUPS:
            rows.append((name, label, measure(factory, mode, src, dst, args.seconds, args.runs)))
            print(f"  measured: {name} {label}", flush=True)
    table = run.table(f"ready = start to the first loss-free pingall; iperf3 median of "
                      f"{args.runs} x {args.seconds} s", [
                          record.Column("topology"), record.Column("setup"),
                          record.Column("ready", "s"), record.Column("rate", "Mbit/s"),
                          record.Column("x RSTP"), record.Column("packet-ins, 2nd pingall")])
    for name, label, r in rows:
        peer = next(x for n, _, x in rows if n == name)
        table.add(name, label, round(r["ready_s"], 1), round(r["mbps"]),
                  round(r["mbps"] / peer["mbps"], 2), r["warm"], peer=r is peer)
    print(f"\n{'topology':<13}{'setup':<36}{'ready s':>8}{'Mbit/s':>8}{'x RSTP':>8}"
          f"{'warm packet-ins':>17}")
    for name, label, ready_s, mbps, ratio, warm in table.rows:
        warm = "n/a" if warm is None else warm
        print(f"{name:<13}{label:<36}{ready_s:>8.1f}{mbps:>8.0f}{ratio:>8.2f}{warm:>17}")
    run.write()
    problems = print_problems(r["problems"] for _, _, r in rows)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
