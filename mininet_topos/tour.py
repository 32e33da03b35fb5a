"""`make demo`: a tour of every lab, one after the other, each as `make lab-*` runs it
alone: the learning switch (mininet_topos/demo.py), then the VLAN, HTB QoS, load
balancer, overlay, bonding, TCP/IP Illustrated, security and cluster labs. Ends with
one line per lab and its report under reports/;
the exit status is 0 only when every lab passed.

    make demo                               # the whole tour (about 4 minutes)
    make demo DEMO_ARGS="--labs vlan,lb"    # some of it
    make demo DEMO_ARGS="--mode datapath --topo linear,4"   # options of the first step
"""
import argparse
import os
import sys
import time

from mininet_topos import (bond_lab, demo, ha_lab, lb_lab, overlay_lab, qos_lab, security_lab,
                           tcpip_lab, vlan_lab)

LABS = {"learning": ("learning switch (tree, pingall, iperf3)", demo.main, None),
        "vlan": ("VLAN lab", vlan_lab.main, "reports/vlan-lab.md"),
        "qos": ("HTB QoS lab", qos_lab.main, "reports/qos-lab.md"),
        "lb": ("load-balancer lab", lb_lab.main, "reports/lb-lab.md"),
        "overlay": ("overlay lab", overlay_lab.main, "reports/overlay-lab.md"),
        "bond": ("bonding lab", bond_lab.main, "reports/bond-lab.md"),
        "tcpip": ("TCP/IP Illustrated network", tcpip_lab.main, "reports/tcpip-lab.md"),
        "security": ("security groups and router", security_lab.main,
                     "reports/security-lab.md"),
        "ha": ("controller cluster", ha_lab.main, "reports/ha-lab.md")}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labs", default=",".join(LABS),
                        help=f"comma-separated, of {', '.join(LABS)}")
    args, learning_args = parser.parse_known_args(argv)
    chosen = [name.strip() for name in args.labs.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in LABS]
    if unknown:
        parser.error(f"unknown lab(s) {', '.join(unknown)}; have {', '.join(LABS)}")
    if os.geteuid() != 0:
        sys.exit("demo: Mininet needs root (run: sudo make demo)")
    results = []
    for number, name in enumerate(chosen, start=1):
        title, run, report = LABS[name]
        print(f"\n##### {number}/{len(chosen)}: {title} #####", flush=True)
        started = time.monotonic()
        code = run(learning_args if name == "learning" else [])
        results.append((title, code, time.monotonic() - started, report))
    print("\n##### the tour #####")
    for title, code, seconds, report in results:
        print(f"{title:<42} {'PASS' if code == 0 else 'FAIL'}  {seconds:5.0f} s"
              f"{'  ' + report if report else ''}")
    return 0 if all(code == 0 for _, code, _, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
