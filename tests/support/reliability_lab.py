"""Restart helpers for integration tests: flow tables without counters, iperf3 rates."""
import json


def flow_tables(network):
    """Every switch's entries without counters, as sorted lists (duplicates would show)."""
    return {switch.name: sorted(flow.key for flow in network.flows(switch.name))
            for switch in network.switches}


def iperf3_intervals(path):
    report = json.loads(open(path).read())
    return [i["sum"]["bits_per_second"] for i in report["intervals"]]
