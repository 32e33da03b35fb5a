"""`make bench` (VLAN line): iperf3 within VLAN 10 across the trunk of two switches.

Same topology, same run: OVS's own port VLANs (tag/trunks + NORMAL, no controller)
against apps/l2_switch.py + apps/vlan.py in both learning modes.
"""
import statistics
import sys
import time

from bench import record
from mininet_topos import harness
from mininet_topos.topos import VLAN_TRUNK_PAIR_CONFIG, VlanTrunkPair


def rate(network, seconds, runs):
    h1, h3 = network["h1"], network["h3"]
    assert harness.ping(h1, h3, count=2), "h1 cannot reach h3 in VLAN 10"
    return statistics.median(harness.iperf3(h1, h3, seconds=seconds) for _ in range(runs)) / 1e6


def main(seconds=5, runs=3):
    run = record.Run("vlan_throughput", "VLANs")
    harness.ensure_ovs()
    rows = []
    with harness.Network(VlanTrunkPair(), controller=None) as network:
        harness.apply_ovs_port_vlans(network, VLAN_TRUNK_PAIR_CONFIG)
        time.sleep(0.5)
        rows.append(("OVS NORMAL + port tags", rate(network, seconds, runs)))
    for mode in ("reactive", "datapath"):
        config = dict(VLAN_TRUNK_PAIR_CONFIG, l2_switch={"mode": mode})
        with harness.running(VlanTrunkPair(), apps=("apps/l2_switch.py", "apps/vlan.py"),
                             config=config) as (controller, network):
            harness.wait_vlans_programmed(controller, network)
            rows.append((f"l2_switch {mode} + vlan", rate(network, seconds, runs)))
            problems = controller.problems()
            if problems:
                sys.exit("controller problems:\n" + "\n".join(problems))
    table = run.table(f"VLAN 10 across a trunk (two switches), iperf3 h1 -> h3, median of "
                      f"{runs} x {seconds} s", [record.Column("setup"),
                                                record.Column("rate", "Mbit/s"),
                                                record.Column("x OVS port tags")])
    for index, (label, mbps) in enumerate(rows):
        table.add(label, round(mbps), round(mbps / rows[0][1], 2), peer=index == 0)
    print(f"\nVLAN 10 across a trunk (two switches), iperf3 {runs} x {seconds} s, median")
    print(f"{'setup':<28}{'Mbit/s':>9}{'x OVS tags':>12}")
    for label, mbps, ratio in table.rows:
        print(f"{label:<28}{mbps:>9.0f}{ratio:>12.2f}")
    run.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
