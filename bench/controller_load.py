"""`make bench`: controller throughput, latency and footprint, cbench-style.

Fake OpenFlow 1.3 switches (bench/fake_switches.py) load each controller with
packet-ins from new source MACs; in the same run, against our learning app
(reactive mode) and Ryu's own ryu.app.simple_switch_13:
  - throughput: packet-ins answered per second with `window` outstanding per switch,
  - latency: one outstanding per switch, p50/p99 round trip,
  - scale: 100 switches x 1000 new MACs (100k learned), the time it takes, then the
    controller's RSS and its CPU while learning and while idle.
Every row shows the generator's CPU per packet-in answered (and the controller's CPU
share, so a row says which side was the limit). The first row is the generator
against bench/answering_controller.py, a peer that costs next to nothing: the rate
the generator can drive at all.
"""
import argparse
import os
import sys
from dataclasses import dataclass

from bench import answering_controller, record
from bench.fake_switches import FakeSwitches, Result
from mininet_topos import harness

PEERS = [
    # every fake packet-in comes from port 1 with a new MAC: port security would (rightly)
    # ban that port after max_macs_per_port, so it is off here, as simple_switch_13 has none
    ("l2_switch reactive", ("apps/l2_switch.py",),
     {"l2_switch": {"mode": "reactive", "max_macs": 1_000_000, "max_macs_per_port": 0}}, True),
    # the same app with every packet-in on Ryu's event path (controller/fastpath.py off)
    ("l2_switch, Ryu's path", ("apps/l2_switch.py",),
     {"l2_switch": {"mode": "reactive", "max_macs": 1_000_000, "max_macs_per_port": 0},
      "openflow": {"fast_path": False}}, True),
    ("ryu simple_switch_13", ("ryu.app.simple_switch_13",), None, False),
]
GENERATOR_ALONE = "generator alone"
SCALE_SWITCHES, SCALE_MACS = 100, 1000
_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime


def rss_mib(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Load:
    """One mode against one controller: the generator's result, the controller's CPU."""
    result: Result
    controller_cpu: float   # share of one core over the run

    @classmethod
    def measure(cls, fakes, pid, seconds, window, per_switch_limit=0):
        before = cpu_seconds(pid)
        result = fakes.run(seconds, window, per_switch_limit)
        load = cls(result, (cpu_seconds(pid) - before) / result.seconds)
        fakes.idle(0.5)   # what the controller still owed goes by before the next mode
        return load


def connected(port, count, first_dpid=1, log=lambda: ""):
    fakes = FakeSwitches(port, count, first_dpid=first_dpid)
    if not fakes.connect():
        fakes.close()
        raise RuntimeError(f"{count} fake switches did not all connect:\n{log()}")
    return fakes


def load_modes(port, pid, switches, seconds, window, log=lambda: ""):
    fakes = connected(port, switches, log=log)
    try:
        return {"throughput": Load.measure(fakes, pid, seconds, window),
                "latency": Load.measure(fakes, pid, seconds, 1)}
    finally:
        fakes.close()


def measure(apps, config, ours, switches, seconds, window):
    controller = harness.Controller(apps, config)
    controller.start(probe_rest=ours)
    try:
        rows = load_modes(controller.of_port, controller.process.pid, switches, seconds,
                          window, controller.log_tail)
        rows["problems"] = controller.problems()
    finally:
        controller.stop()
    # the scale row in a controller of its own: its RSS is then what 100k MACs cost, not
    # what the throughput mode learned before (a fast controller learns ten times more)
    controller = harness.Controller(apps, config)
    controller.start(probe_rest=ours)
    pid = controller.process.pid
    try:
        fakes = connected(controller.of_port, SCALE_SWITCHES, 1000, controller.log_tail)
        try:
            rows["scale"] = Load.measure(fakes, pid, 300, 10, per_switch_limit=SCALE_MACS)
            before = cpu_seconds(pid)
            fakes.idle(5)
            rows["idle_cpu"] = (cpu_seconds(pid) - before) / 5
            rows["rss"] = rss_mib(pid)
        finally:
            fakes.close()
        rows["problems"] += controller.problems()
        return rows
    finally:
        controller.stop()


def print_rows(rows, rec):
    """Record both tables in `rec` and print them from the recorded rows."""
    peer = rows[-1][1]
    load = rec.table("throughput (window per switch) and latency (one outstanding)", [
        record.Column("controller"), record.Column("answers/s"), record.Column("x ryu"),
        record.Column("ctl CPU", "%"), record.Column("gen", "µs"),
        record.Column("lat p50", "ms"), record.Column("p99", "ms"), record.Column("x ryu p99"),
        record.Column("lat ctl CPU", "%"), record.Column("lat gen", "µs")])
    for label, r in rows:
        t, lat = r["throughput"], r["latency"]
        p99 = lat.result.percentile(0.99)
        load.add(label, round(t.result.per_second),
                 round(t.result.per_second / peer["throughput"].result.per_second, 2),
                 round(t.controller_cpu * 100), round(t.result.generator_us, 2),
                 round(lat.result.percentile(0.5), 3), round(p99, 3),
                 round(p99 / peer["latency"].result.percentile(0.99), 2),
                 round(lat.controller_cpu * 100), round(lat.result.generator_us, 2),
                 peer=r is peer or label == GENERATOR_ALONE)
    print(f"\n{'controller':<24}{'answers/s':>10}{'x ryu':>7}{'ctl CPU':>8}{'gen µs':>7}"
          f"{'lat p50 ms':>11}{'p99 ms':>7}{'x ryu':>6}{'ctl CPU':>8}{'gen µs':>7}")
    for label, rate, x_ryu, cpu, gen, p50, p99, x_p99, lat_cpu, lat_gen in load.rows:
        print(f"{label:<24}{rate:>10.0f}{x_ryu:>7.2f}{cpu:>7}%{gen:>7.2f}"
              f"{p50:>11.3f}{p99:>7.3f}{x_p99:>6.2f}{lat_cpu:>7}%{lat_gen:>7.2f}")
    scale = rec.table(f"{SCALE_SWITCHES} switches x {SCALE_MACS} new MACs each, then 5 s idle, "
                      f"in a controller process of its own", [
                          record.Column("controller"), record.Column("learning", "s"),
                          record.Column("learn CPU", "%"), record.Column("idle CPU", "%"),
                          record.Column("RSS", "MiB"), record.Column("x ryu"),
                          record.Column("unanswered"), record.Column("gen", "µs")])
    for label, r in rows:
        if "scale" in r:
            s = r["scale"].result
            scale.add(label, round(s.seconds, 1), round(r["scale"].controller_cpu * 100),
                      round(r["idle_cpu"] * 100, 1), round(r["rss"]),
                      round(r["rss"] / peer["rss"], 2), s.unanswered, round(s.generator_us, 2),
                      peer=r is peer)
    print(f"\n{'controller':<24}{f'{SCALE_SWITCHES} sw x {SCALE_MACS} MACs':>19}"
          f"{'learn CPU':>10}{'idle CPU':>9}{'RSS MiB':>8}{'x ryu':>6}{'unanswered':>11}"
          f"{'gen µs':>7}")
    for label, seconds, cpu, idle, rss, x_ryu, unanswered, gen in scale.rows:
        print(f"{label:<24}{seconds:>18.1f}s{cpu:>9}%{idle:>8.1f}%{rss:>8.0f}{x_ryu:>6.2f}"
              f"{unanswered:>11}{gen:>7.2f}")
    print("gen µs: the generator's CPU per packet-in answered; ctl CPU: the controller's "
          "share of one core")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--switches", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--window", type=int, default=50, help="outstanding per switch")
    parser.add_argument("--generator-only", action="store_true",
                        help="only the generator against bench/answering_controller.py")
    args = parser.parse_args(argv)
    rec = record.Run("controller_load", "The controller under packet-ins")
    print(f"bench: controller load, {args.switches} fake switches, {args.seconds:g} s per "
          f"mode, throughput window {args.window}/switch")
    with answering_controller.running() as (port, pid):
        rows = [(GENERATOR_ALONE, load_modes(port, pid, args.switches, args.seconds,
                                             args.window))]
    print(f"  measured: {GENERATOR_ALONE}", flush=True)
    for label, apps, config, ours in [] if args.generator_only else PEERS:
        rows.append((label, measure(apps, config, ours, args.switches, args.seconds,
                                    args.window)))
        print(f"  measured: {label}", flush=True)
    print_rows(rows, rec)
    rec.write()
    problems = [p for _, r in rows for p in r.get("problems", ())]
    for line in problems:
        print("controller problem:", line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
