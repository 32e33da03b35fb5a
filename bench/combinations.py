"""`make reliability` (second table): the whole app combination matrix on real OVS.

Every app alone, every pair that can share a network, all together, on one switch and
on a looped ring (with the topology app), in both learning modes, plus the overlay
alone, beside each app and beside all of them: mininet_topos/combinations.py says
which apps can share what and runs each combination's checks. Prints one row per
combination (its checks' failures, or ok) and the total time.

    python -m bench.combinations                     # everything (about 15 minutes)
    python -m bench.combinations --layout ring --mode datapath --only lb
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench import record
from mininet_topos import combinations as matrix


def select(combos, layout=None, mode=None, only=None, ids=None):
    return [c for c in combos if (not ids or c.id in ids) and (layout is None or c.layout == layout)
            and (mode is None or c.mode == mode or c.layout == "overlay")
            and (only is None or only in c.apps)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layout", choices=[*matrix.LAYOUTS, "overlay"])
    parser.add_argument("--mode", choices=matrix.MODES)
    parser.add_argument("--only", help="combinations containing this app")
    parser.add_argument("--id", action="append", help="exactly this combination (repeatable)")
    args = parser.parse_args(argv)
    combos = select(matrix.full_matrix(), args.layout, args.mode, args.only, args.id)
    rec = record.Run("combinations", "The app combination matrix")
    table = rec.table("every combination's checks on real OVS", [
        record.Column("combination"), record.Column("time", "s"), record.Column("result")])
    started, failed = time.monotonic(), 0
    print(f"{'combination':<62} {'s':>5}  result")
    for combo in combos:
        try:
            if combo.layout == "overlay":
                with tempfile.TemporaryDirectory(prefix="sdn-combo-") as rundir:
                    failures, seconds, problems = matrix.run_overlay(combo, Path(rundir) / "hv")
            else:
                failures, seconds, problems = matrix.run(combo)
        except RuntimeError as err:   # the network or the controller did not come up
            failures, seconds, problems = [f"start: {err}"], 0.0, []
        failures += [f"log: {p}" for p in problems[:3]]
        failed += bool(failures)
        name, seconds, result = table.add(combo.id, round(seconds, 1),
                                          "; ".join(failures) or "ok")
        print(f"{name:<62} {seconds:5.1f}  {result}", flush=True)
    total = rec.table("the whole matrix", [record.Column("combinations"),
                                           record.Column("failed"), record.Column("time", "s")])
    total.add(len(combos), failed, round(time.monotonic() - started))
    for count, failing, elapsed in total.rows:
        print(f"{count} combinations, {failing} failed, {elapsed} s")
    rec.write()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
