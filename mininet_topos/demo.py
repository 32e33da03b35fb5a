"""`make demo`: the learning switch on a real OVS network, end to end.

Starts ryu-manager with the learning app and its REST API, builds a Mininet
topology (default tree depth 2, fanout 2), runs pingall and iperf3 between
the two hosts farthest apart, prints a short report, and tears it all down.
"""
import argparse
import os
import sys
import time

from mininet.util import buildTopo

from mininet_topos import harness
from mininet_topos.topos import topos


def parse_topo(text):
    """--topo as `mn --topo` reads it, with Mininet's own parser (buildTopo and its
    splitArgs): a name and its arguments, positional or by keyword, numbers as
    numbers: "tree,2,2", "tree,depth=2,fanout=2", "linear,3", "single,4", or one of
    this project's topologies ("ring,n=6")."""
    name = text.split(",", 1)[0]
    if name not in topos:   # buildTopo says only "Invalid topo name"
        raise argparse.ArgumentTypeError(f"unknown topology {name!r}; have "
                                         f"{', '.join(sorted(topos))}")
    try:
        return buildTopo(topos, text)
    except (TypeError, ValueError) as err:   # arguments its constructor does not take
        raise argparse.ArgumentTypeError(f"topology {text!r}: {err}") from None


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


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topo", type=parse_topo, default="tree,2,2",
                        help="as mn --topo takes it, e.g. tree,depth=2,fanout=2 or linear,3")
    parser.add_argument("--mode", choices=("reactive", "datapath"), default="reactive")
    parser.add_argument("--seconds", type=int, default=3, help="iperf3 duration")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
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
