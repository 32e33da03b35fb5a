"""`make bench`: time to install 10k flows from the controller vs `ovs-ofctl add-flows`.

The same 10k entries (untagged destination MAC -> output port) go into one netdev
bridge twice: from a Ryu app through our flows/ -> ofcompile -> southbound path (one
batched write, confirmed by a barrier reply), and from a file with ovs-ofctl
add-flows (which also waits for the switch to confirm). Both tables are compared
afterwards: they must hold exactly the same entries.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import record
from bench.flow_install_app import bench_flows
from controller import pipeline
from mininet_topos import harness

BRIDGE = "sdnbenchfi"


def run(*args, **kwargs):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs).stdout


def entries():
    """The bridge's l2_dst entries without counters, as a set of strings."""
    out = run("ovs-ofctl", "-O", "OpenFlow13", "dump-flows", BRIDGE,
              f"table={pipeline.table_id('l2_dst')}")
    return {re.sub(r"(duration|n_packets|n_bytes)=[^,]+, ", "", line.strip())
            for line in out.splitlines() if "cookie=" in line}  # not the reply headers


def ofctl_line(spec):
    port = spec.actions[0].port
    return (f"table={pipeline.table_id(spec.table)},priority={spec.priority},"
            f"cookie={pipeline.cookie(spec.owner):#x},vlan_tci=0x0000/0x1fff,"
            f"dl_dst={spec.match.get('eth_dst')},actions=output:{port}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=10000)
    args = parser.parse_args(argv)
    started = record.now()
    harness.ensure_ovs()
    run("ovs-vsctl", "--if-exists", "del-br", BRIDGE)
    run("ovs-vsctl", "add-br", BRIDGE, "--", "set", "bridge", BRIDGE, "datapath_type=netdev",
        "protocols=OpenFlow13", "fail_mode=secure")
    controller = harness.Controller(("bench/flow_install_app.py",))
    try:
        os.environ["SDN_BENCH_FLOWS"] = str(args.flows)  # read by the app
        controller.start(probe_rest=False)
        run("ovs-vsctl", "set-controller", BRIDGE, f"tcp:127.0.0.1:{controller.of_port}")
        found = None
        deadline = time.monotonic() + 180
        while found is None and time.monotonic() < deadline:
            found = re.search(r"FLOW_INSTALL flows=(\d+) seconds=([\d.]+)", controller.log_text())
            time.sleep(0.2)
        if found is None:
            sys.exit("bench: the app did not report:\n" + controller.log_tail())
        ours_s = float(found.group(2))
        ours = entries()
    finally:
        run("ovs-vsctl", "del-controller", BRIDGE)
        controller.stop()
    run("ovs-ofctl", "-O", "OpenFlow13", "del-flows", BRIDGE)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "flows.txt"
        path.write_text("\n".join(ofctl_line(s) for s in bench_flows(args.flows)) + "\n")
        start = time.monotonic()
        run("ovs-ofctl", "-O", "OpenFlow13", "add-flows", BRIDGE, str(path))
        ofctl_s = time.monotonic() - start
    theirs = entries()
    run("ovs-vsctl", "--if-exists", "del-br", BRIDGE)
    same = ours == theirs and len(ours) == args.flows
    print(f"bench: install {args.flows} flows into one netdev bridge, confirmed by the switch")
    rec = record.Run("flow_install", "Flow programming", started=started)
    table = rec.table(f"{args.flows} entries into one netdev bridge, until the switch "
                      f"confirms (barrier reply)", [
                          record.Column("installer"), record.Column("time", "s"),
                          record.Column("rate", "flows/s"), record.Column("x ovs-ofctl")])
    table.add("controller (flows/ -> one batched push)", round(ours_s, 3),
              round(args.flows / ours_s), round(ours_s / ofctl_s, 2))
    table.add("ovs-ofctl add-flows (file)", round(ofctl_s, 3), round(args.flows / ofctl_s),
              1.0, peer=True)
    print(f"\n{'installer':<40}{'seconds':>9}{'flows/s':>10}{'x ovs-ofctl':>13}")
    for label, seconds, rate, ratio in table.rows:
        print(f"{label:<40}{seconds:>9.3f}{rate:>10.0f}{ratio:>13.2f}")
    compared = rec.table("both tables afterwards", [
        record.Column("entries, controller"), record.Column("entries, ovs-ofctl"),
        record.Column("the same entries")])
    compared.add(len(ours), len(theirs), same)
    print(f"same entries in both tables: {'yes' if same else 'NO'} ({len(ours)} / {len(theirs)})")
    rec.write()
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
