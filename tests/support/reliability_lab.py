"""Restart helpers for integration tests: flow tables without counters, iperf3 rates."""
import json
import re
import subprocess


_COUNTERS = re.compile(r"\b(duration|n_packets|n_bytes|idle_age|hard_age)=[^,\s]+,?\s*")


def flow_tables(network):
    """Every switch's entries without counters, as sorted lists (duplicates would show)."""
    tables = {}
    for switch in network.switches:
        out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", switch.name],
                             capture_output=True, text=True, check=True).stdout
        tables[switch.name] = sorted(_COUNTERS.sub("", line.strip())
                                     for line in out.splitlines() if "cookie=" in line)
    return tables


def iperf3_intervals(path):
    report = json.loads(open(path).read())
    return [i["sum"]["bits_per_second"] for i in report["intervals"]]
