"""What the Mininet throughput benches (bench/l2_throughput.py, bench/topology.py) share:
their iperf3 command line, the check that they can run, and the packet-in counter."""
import argparse
import os
import sys

from mininet_topos import harness


def iperf3_parser(doc):
    """A bench's command line, described by its docstring's first line, with --seconds
    and --runs of iperf3 (the bench adds its own options)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="per iperf3 run")
    parser.add_argument("--runs", type=int, default=3, help="iperf3 runs (median)")
    return parser


def ready_to_measure():
    """Mininet needs root; OVS must run before a network starts."""
    if os.geteuid() != 0:
        sys.exit("bench: needs root (Mininet)")
    harness.ensure_ovs()


def packet_ins(controller, ours):
    """Packet-ins all switches sent so far (our REST API counts them); None for a setup
    without our controller."""
    if not ours:
        return None
    return sum(s["packet_ins"] for s in controller.rest("GET", "/v1/switches")[1])


def print_problems(per_setup):
    """Print the problems the controller logged in each setup; all of them, as a list
    (the exit status)."""
    problems = [p for problems in per_setup for p in problems]
    for line in problems:
        print("controller problem:", line)
    return problems
