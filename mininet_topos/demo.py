"""`make demo`: the learning switch on a real OVS network, end to end.

Starts ryu-manager with the learning app and its REST API, builds a Mininet
topology (default tree depth 2, fanout 2), runs pingall and iperf3 between
the two hosts farthest apart, prints a short report, and tears it all down.
"""
import argparse
import os
import sys
import time

from mininet_topos import harness
from mininet_topos.topos import topos


def parse_topo(text):
    """'tree,2,2' -> Tree(2, 2), as mn's --topo does."""
    name, *params = text.split(",")
    if name not in topos:
        raise argparse.ArgumentTypeError(f"unknown topology {name!r}; have {', '.join(topos)}")
    try:
        return topos[name](*[int(p) for p in params])
    except ValueError:
        raise argparse.ArgumentTypeError(f"topology parameters must be integers: {text!r}")


def report(controller, network, loss, ping_s, bits):
    print("\n=== demo report ===")
    print(f"datapath           : {network.topo.datapath}")
    print(f"hosts / switches   : {len(network.hosts)} / {len(network.switches)}")
    print(f"pingall            : {100 - loss:.0f}% reachable ({loss:.0f}% loss) in {ping_s:.2f} s")
    first, last = network.hosts[0], network.hosts[-1]
    print(f"{'iperf3 ' + first.name + '->' + last.name:<19}: {bits / 1e6:.0f} Mbit/s")
    _, switches = controller.rest("GET", "/v1/switches")
    print(f"{'switch':<8}{'dpid':<18}{'flows':>6}{'macs':>6}{'packet-ins':>12}")
    for switch in network.switches:
        info = next((s for s in switches if int(s["dpid"], 16) == int(switch.dpid, 16)), {})
        print(f"{switch.name:<8}{switch.dpid:<18}{len(network.dump_flows(switch.name)):>6}"
              f"{info.get('macs', '?'):>6}{info.get('packet_ins', '?'):>12}")
    problems = controller.problems()
    print(f"controller problems: {len(problems) or 'none'}")
    for line in problems:
        print("  " + line)
    return loss == 0 and bits > 0 and not problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topo", type=parse_topo, default="tree,2,2")
    parser.add_argument("--mode", choices=("reactive", "datapath"), default="reactive")
    parser.add_argument("--seconds", type=int, default=3, help="iperf3 duration")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("demo: Mininet needs root (run: sudo make demo)")
    harness.ensure_ovs()
    config = {"l2_switch": {"mode": args.mode}}
    print(f"demo: ryu-manager apps/l2_switch.py ({args.mode} learning), "
          f"topology {type(args.topo).__name__.lower()} on the {args.topo.datapath} datapath")
    with harness.running(args.topo, config=config) as (controller, network):
        print(f"demo: {len(network.switches)} switches connected; REST on "
              f"http://127.0.0.1:{controller.rest_port}/v1/switches")
        start = time.monotonic()
        loss = network.pingall()
        ping_s = time.monotonic() - start
        bits = harness.iperf3(network.hosts[0], network.hosts[-1], seconds=args.seconds)
        ok = report(controller, network, loss, ping_s, bits)
    print("demo: torn down (controller stopped, bridges and hosts removed)")
    print("demo: PASS" if ok else "demo: FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
