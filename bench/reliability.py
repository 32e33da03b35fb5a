"""`make reliability`: the restart, flood and failure scenarios on real OVS, as a table.

Runs the reliability integration tests (pytest, one after the other) and prints, per
scenario, what is expected, what was observed (the line each test prints) and
whether it passed.
"""
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
R, T = "tests/integration/test_reliability_ovs.py", "tests/integration/test_topology_ovs.py"
SCENARIOS = [
    (f"{R}::test_kill_9_and_restart_keep_traffic_flowing_and_tables_identical[reactive]",
     "controller kill -9 + restart (reactive)",
     "iperf3 never stops; tables identical; VLANs isolated while dead"),
    (f"{R}::test_kill_9_and_restart_keep_traffic_flowing_and_tables_identical[datapath]",
     "controller kill -9 + restart (datapath)",
     "iperf3 never stops; tables identical; VLANs isolated while dead"),
    (f"{R}::test_kill_9_during_a_burst_of_rest_writes_loses_no_acknowledged_write",
     "kill -9 during 1000 REST writes", "every acknowledged write kept and programmed"),
    (f"{R}::test_entries_wiped_under_a_live_connection_are_back_within_5_s",
     "del-flows under a live connection", "canary notices; pings within 5 s"),
    (f"{R}::test_a_flood_of_10k_source_macs_is_banned_and_learning_recovers",
     "10k random source MACs on one port", "<= 50 learned, drops counted, hosts work"),
    (f"{R}::test_packet_ins_are_rate_limited_by_the_switch",
     "packet-in flood, limit 100/s", "controller gets <= the limit"),
    (f"{T}::test_ring_pingall_no_storm_and_link_failure_recovery",
     "ring(4): link down, link back", "pings within 5 s; no storm"),
]


def main():
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.xml"
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        f"--junitxml={report}", "-o", "junit_logging=system-out",
                        *[node for node, _, _ in SCENARIOS]], cwd=REPO)
        cases = {}
        for case in ET.parse(report).iter("testcase"):
            failed = case.find("failure") is not None or case.find("error") is not None
            out = case.findtext("system-out") or ""
            observed = next((line[len("observed: "):] for line in out.splitlines()
                             if line.startswith("observed: ")), "")
            cases[case.get("name")] = ("FAIL" if failed else "pass", observed)
    print(f"\n{'scenario':<40}{'expected':<66}{'result':<7}observed")
    failures = 0
    for node, scenario, expected in SCENARIOS:
        result, observed = cases.get(node.split("::")[1], ("FAIL", "did not run"))
        failures += result != "pass"
        print(f"{scenario:<40}{expected:<66}{result:<7}{observed}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
