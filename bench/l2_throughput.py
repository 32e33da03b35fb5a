"""`make bench`: the learning app against OVS NORMAL and Ryu's simple_switch_13.

For each forwarding setup on the same topology, in the same run:
  - iperf3 TCP throughput between the two hosts farthest apart (median of runs),
  - time of a first pingall (cold: everything learned from scratch),
  - packet-ins during a second pingall (warm: should need no controller).
Ratios are against OVS NORMAL (the switch learning by itself, no controller).
"""
import statistics
import sys
import time

from bench import record
from bench.throughput import iperf3_parser, packet_ins, print_problems, ready_to_measure
from mininet_topos import harness
from mininet_topos.topos import topos

# (label, ryu-manager apps or None for no controller, config, serves our REST API)
SETUPS = [
    ("OVS NORMAL (no controller)", None, None, False),
    ("l2_switch reactive", ("apps/l2_switch.py",), {"l2_switch": {"mode": "reactive"}}, True),
    ("l2_switch datapath", ("apps/l2_switch.py",), {"l2_switch": {"mode": "datapath"}}, True),
    ("ryu simple_switch_13", ("ryu.app.simple_switch_13",), None, False),
]


def measure(topo_factory, apps, config, ours, seconds, runs):
    controller = harness.Controller(apps, config) if apps else None
    try:
        if controller:
            controller.start(probe_rest=ours)
        network = harness.Network(topo_factory(), controller)
        with network:
            start = time.monotonic()
            loss_cold = network.pingall()
            cold_s = time.monotonic() - start
            before = packet_ins(controller, ours)
            loss_warm = network.pingall()
            after = packet_ins(controller, ours)
            first, last = network.hosts[0], network.hosts[-1]
            rates = [harness.iperf3(first, last, seconds=seconds) for _ in range(runs)]
        return {"loss": max(loss_cold, loss_warm), "pingall_s": cold_s,
                "warm_packet_ins": None if before is None else after - before,
                "mbps": statistics.median(rates) / 1e6,
                "problems": controller.problems() if controller else []}
    finally:
        if controller:
            controller.stop()


def main(argv=None):
    parser = iperf3_parser(__doc__)
    parser.add_argument("--topo", default="tree,2,2")
    args = parser.parse_args(argv)
    run = record.Run("l2_throughput", "Learning switch")
    ready_to_measure()
    name, *params = args.topo.split(",")
    topo_factory = lambda: topos[name](*map(int, params))  # noqa: E731
    print(f"bench: topology {args.topo} on the {topo_factory().datapath} datapath, "
          f"iperf3 {args.runs} x {args.seconds} s h1 -> last host (median)")
    rows = []
    for label, apps, config, ours in SETUPS:
        result = measure(topo_factory, apps, config, ours, args.seconds, args.runs)
        rows.append((label, result))
        print(f"  measured: {label}", flush=True)
    baseline = rows[0][1]["mbps"]
    table = run.table(f"{args.topo}, iperf3 h1 -> last host, median of {args.runs} x "
                      f"{args.seconds} s", [
                          record.Column("setup"), record.Column("rate", "Mbit/s"),
                          record.Column("x NORMAL"), record.Column("first pingall", "s"),
                          record.Column("loss", "%"), record.Column("warm packet-ins")])
    for label, r in rows:
        table.add(label, round(r["mbps"]), round(r["mbps"] / baseline, 2),
                  round(r["pingall_s"], 2), round(r["loss"]), r["warm_packet_ins"],
                  peer=r is rows[0][1])
    print(f"\n{'setup':<28}{'Mbit/s':>9}{'x NORMAL':>10}{'pingall s':>11}"
          f"{'loss %':>8}{'warm packet-ins':>17}")
    for label, mbps, ratio, pingall_s, loss, warm in table.rows:
        warm = "n/a" if warm is None else warm
        print(f"{label:<28}{mbps:>9.0f}{ratio:>10.2f}{pingall_s:>11.2f}{loss:>8.0f}{warm:>17}")
    run.write()
    problems = print_problems(r["problems"] for _, r in rows)
    return 1 if problems or any(r["loss"] for _, r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
