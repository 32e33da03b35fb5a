"""`make bench`: controller throughput, latency and footprint, cbench-style.

Fake OpenFlow 1.3 switches (bench/fake_switches.py) load each controller with
packet-ins from new source MACs; in the same run, against our learning app
(reactive mode) and Ryu's own ryu.app.simple_switch_13:
  - throughput: packet-ins answered per second with `window` outstanding per switch,
  - latency: one outstanding per switch, p50/p99 round trip,
  - scale: 100 switches x 100 new MACs (10k learned), then the controller's RSS and
    its CPU while learning and while idle.
The generator's own CPU is printed: if it is near 100 % of one core, the generator
and not the controller would be the limit.
"""
import argparse
import os
import sys

from bench.fake_switches import FakeSwitches
from mininet_topos import harness

PEERS = [
    # every fake packet-in comes from port 1 with a new MAC: port security would (rightly)
    # ban that port after max_macs_per_port, so it is off here, as simple_switch_13 has none
    ("l2_switch reactive", ("apps/l2_switch.py",),
     {"l2_switch": {"mode": "reactive", "max_macs": 1_000_000, "max_macs_per_port": 0}}, True),
    ("ryu simple_switch_13", ("ryu.app.simple_switch_13",), None, False),
]
_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime


def rss_mib(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(apps, config, ours, switches, seconds, window):
    controller = harness.Controller(apps, config)
    controller.start(probe_rest=ours)
    pid = controller.process.pid
    try:
        fakes = FakeSwitches(controller.of_port, switches)
        try:
            if not fakes.connect():
                raise RuntimeError("fake switches did not all connect:\n" + controller.log_tail())
            throughput = fakes.run(seconds, window)
            latency = fakes.run(seconds, 1)
        finally:
            fakes.close()
        fakes = FakeSwitches(controller.of_port, 100, first_dpid=1000)
        try:
            if not fakes.connect():
                raise RuntimeError("100 fake switches did not all connect")
            cpu_before = cpu_seconds(pid)
            scale = fakes.run(120, 10, per_switch_limit=100)
            learn_cpu = (cpu_seconds(pid) - cpu_before) / scale.seconds
            cpu_before = cpu_seconds(pid)
            fakes.idle(5)
            idle_cpu = (cpu_seconds(pid) - cpu_before) / 5
            rss = rss_mib(pid)
        finally:
            fakes.close()
        return {"throughput": throughput, "latency": latency, "scale": scale, "rss": rss,
                "learn_cpu": learn_cpu, "idle_cpu": idle_cpu, "problems": controller.problems()}
    finally:
        controller.stop()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--switches", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--window", type=int, default=50, help="outstanding per switch")
    args = parser.parse_args(argv)
    print(f"bench: controller load, {args.switches} fake switches, {args.seconds:g} s per "
          f"mode, throughput window {args.window}/switch")
    rows = []
    for label, apps, config, ours in PEERS:
        rows.append((label, measure(apps, config, ours, args.switches, args.seconds,
                                    args.window)))
        print(f"  measured: {label}", flush=True)
    peer = rows[-1][1]
    print(f"\n{'controller':<24}{'answers/s':>10}{'x ryu':>7}{'gen CPU':>9}"
          f"{'lat p50 ms':>12}{'p99 ms':>8}{'x ryu p99':>10}")
    for label, r in rows:
        t, lat = r["throughput"], r["latency"]
        print(f"{label:<24}{t.per_second:>10.0f}"
              f"{t.per_second / peer['throughput'].per_second:>7.2f}"
              f"{t.generator_cpu_s / t.seconds:>9.0%}{lat.percentile(0.5):>12.2f}"
              f"{lat.percentile(0.99):>8.2f}"
              f"{lat.percentile(0.99) / peer['latency'].percentile(0.99):>10.2f}")
    print(f"\n{'controller':<24}{'100 sw x 100 MACs':>18}{'learn CPU':>10}{'idle CPU':>9}"
          f"{'RSS MiB':>9}{'unanswered':>11}")
    for label, r in rows:
        s = r["scale"]
        print(f"{label:<24}{s.seconds:>17.1f}s{r['learn_cpu']:>10.0%}{r['idle_cpu']:>9.0%}"
              f"{r['rss']:>9.0f}{s.unanswered:>11}")
    problems = [p for _, r in rows for p in r["problems"]]
    for line in problems:
        print("controller problem:", line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
