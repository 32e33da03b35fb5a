"""The controller at rest: its CPU with N fake switches connected and nothing to do.

    python -m bench.idle_cpu [--switches 100] [--seconds 30] [--combination NAME ...]

Each combination of apps gets a fresh ryu-manager; the fake switches
(bench/fake_switches.py) connect, do the handshake and keep what they are sent
(bench/flow_table.py, so the canary watch finds its entries, as on OVS); after the
connect-time work has settled, the controller's CPU (utime + stime from /proc) is read
over `seconds`. simple_switch_13 is the reference (issue 19: 0 % at 100 switches).
"""
import argparse
import os
import sys
import time

from bench import record
from bench.fake_switches import FLOW_MOD, MULTIPART_REQUEST, FakeSwitches
from bench.flow_table import FlowTable
from mininet_topos import harness

ALL_APPS = ("apps/l2_switch.py", "apps/vlan.py", "apps/lb.py", "apps/qos.py",
            "apps/overlay.py", "apps/topology.py", "apps/bond.py")
COMBINATIONS = {
    "simple_switch_13": ("ryu.app.simple_switch_13",),
    "l2_switch": ("apps/l2_switch.py",),
    "l2+vlan": ("apps/l2_switch.py", "apps/vlan.py"),
    "l2+topology": ("apps/topology.py", "apps/l2_switch.py"),
    "l2+lb+qos": ("apps/l2_switch.py", "apps/lb.py", "apps/qos.py"),
    "all": ALL_APPS,
}
# as bench/controller_load.py: every fake packet-in would come from port 1
CONFIG = {"l2_switch": {"mode": "reactive", "max_macs": 1_000_000, "max_macs_per_port": 0}}
_OFPMP_FLOW = 1


class KeepingSwitches(FakeSwitches):
    """Fake switches that keep their flows and answer flow-stats from them."""

    def __init__(self, *args, **kwargs):
        self.tables = {}
        super().__init__(*args, **kwargs)

    def _handle(self, switch, kind, xid, body, on_answer):
        table = self.tables.setdefault(switch.dpid, FlowTable())
        if kind == FLOW_MOD:
            table.apply(body)
        elif kind == MULTIPART_REQUEST and int.from_bytes(body[:2], "big") == _OFPMP_FLOW:
            for reply in table.stats_replies(xid, body):
                switch.outbox += reply
            return
        super()._handle(switch, kind, xid, body, on_answer)


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cpu(apps, switches, seconds, settle=5.0, keeping=True):
    """(CPU share of one core while idle, canary repairs in the log, log problems, the
    log's path).
    `keeping=False`: plain fake switches, which answer flow-stats with nothing."""
    ours = not apps[0].startswith("ryu.")
    controller = harness.Controller(apps, CONFIG if ours else None)
    controller.start(probe_rest=ours)
    try:
        fakes = (KeepingSwitches if keeping else FakeSwitches)(controller.of_port, switches)
        try:
            if not fakes.connect():
                raise RuntimeError("fake switches did not all connect:\n" + controller.log_tail())
            if ours:   # connect-time work (reconciles, OVSDB, QoS bring-up) is not idling
                deadline = time.monotonic() + 120
                while len(controller.reconciled_switches()) < switches and \
                        time.monotonic() < deadline:
                    fakes.idle(0.5)
            fakes.idle(settle)
            pid = controller.process.pid
            before, start = cpu_seconds(pid), time.monotonic()
            fakes.idle(seconds)
            share = (cpu_seconds(pid) - before) / (time.monotonic() - start)
        finally:
            fakes.close()
        repairs = controller.log_text().count("canary gone")
        return share, repairs, controller.problems(), controller.log_path
    finally:
        controller.stop()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--switches", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--combination", action="append", choices=sorted(COMBINATIONS))
    parser.add_argument("--plain", action="store_true",
                        help="fake switches that keep nothing (every canary poll repairs)")
    args = parser.parse_args(argv)
    names = args.combination or list(COMBINATIONS)
    print(f"bench: idle CPU, {args.switches} {'plain' if args.plain else 'keeping'} fake "
          f"switches, {args.seconds:g} s")
    rec = record.Run("idle_cpu", "Idle cost")
    table = rec.table(f"{args.switches} {'plain' if args.plain else 'keeping'} fake switches, "
                      f"{args.seconds:g} s idle, share of one core", [
                          record.Column("apps"), record.Column("idle CPU", "%"),
                          record.Column("repairs")])
    print(f"{'apps':<18}{'idle CPU':>9}{'repairs':>9}")
    failed = False
    for name in names:
        share, repairs, problems, log = idle_cpu(COMBINATIONS[name], args.switches,
                                                 args.seconds, keeping=not args.plain)
        apps, percent, repairs = table.add(name, round(share * 100, 1), repairs,
                                           peer=name == "simple_switch_13")
        print(f"{apps:<18}{percent:>8.1f}%{repairs:>9}" + (f"  (log: {log})" if problems else ""),
              flush=True)
        for line in problems:
            print("  controller problem:", line)
        failed = failed or bool(problems)
    rec.write()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
