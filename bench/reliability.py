"""`make reliability`: the restart, flood and failure scenarios on real OVS, as a table.

Runs the reliability integration tests (pytest, one after the other) and prints, per
scenario, what is expected, what was observed (the line each test prints) and
whether it passed.
"""
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from bench import record

REPO = Path(__file__).resolve().parents[1]
R, T = "tests/integration/test_reliability_ovs.py", "tests/integration/test_topology_ovs.py"
S, X = "tests/integration/test_restart_ovs.py", "tests/integration/test_tls_ovs.py"
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
    (f"{T}::test_vlans_on_a_ring_stay_isolated_and_loop_free",
     "VLANs on ring(4) (long: not in make test)", "isolated, loop-free, pings"),
    ("tests/integration/test_router_ovs.py::"
     "test_routing_on_a_looped_fabric_with_the_topology_app",
     "router on ring(3) with the topology app (long)", "gateways answer; routed 5 of 5"),
    (f"{T}::test_fat_tree_pingall_without_loss_or_storm[datapath]",
     "fat-tree(4) pingall, datapath (long)", "0 % loss, no storm"),
    (f"{S}::test_lb_restart_keeps_connections_flowing_and_the_group_untouched",
     "kill -9 + restart: LB (iperf3 via a VIP)", "iperf3 never stops; flows+groups untouched"),
    (f"{S}::test_qos_restart_leaves_flows_and_meters_untouched",
     "kill -9 + restart: QoS", "flows and meters untouched (0 added, 0 removed)"),
    (f"{S}::test_overlay_restart_keeps_learned_entries_and_changes_nothing",
     "kill -9 + restart: overlay (6 bridges)", "untouched, learn() entries kept"),
    (f"{S}::test_del_flows_under_a_live_connection_brings_every_app_back",
     "del-flows: learning + LB + QoS apps", "each app's canary; all back within 5 s"),
    (f"{S}::test_a_bridge_deleted_and_added_back_is_programmed_again_within_5_s",
     "bridge deleted and added back empty", "re-programmed, pings within 5 s"),
    (f"{S}::test_a_crashed_ovs_vswitchd_is_programmed_again_within_5_s[reactive]",
     "ovs-vswitchd kill -9 + start (reactive)", "re-programmed, pings within 5 s"),
    (f"{S}::test_a_crashed_ovs_vswitchd_is_programmed_again_within_5_s[datapath]",
     "ovs-vswitchd kill -9 + start (datapath)", "re-programmed, pings within 5 s"),
    (f"{S}::test_a_crashed_hypervisor_ovs_vswitchd_is_programmed_again_within_5_s",
     "ovs-vswitchd kill -9 + start (overlay hv1)", "re-programmed, pings within 5 s"),
    (f"{S}::test_config_reload_keeps_the_old_config_when_the_new_one_is_bad",
     "config reload: bad file, then good", "bad: refused, nothing changes; good: applied"),
    (f"{S}::test_a_bad_config_at_start_is_a_clear_error_and_a_non_zero_exit",
     "bad config at start", "clear error, non-zero exit"),
    (f"{X}::test_tls_with_mutual_verification_and_no_datapath_takeover",
     "OpenFlow over TLS, intruders", "no cert/other CA refused; no dpid takeover"),
    ("tests/integration/test_channel.py::"
     "test_a_live_holder_keeps_its_id_and_a_silent_one_gives_it_up",
     "second claim of a datapath id", "refused if the holder answers; else it goes"),
    ("tests/integration/test_ofguard_ovs.py::"
     "test_a_fuzzing_switch_cannot_hang_the_controller_or_stop_learning",
     "OpenFlow fuzzer (3 min) + abusive peers", "up, RSS bounded, bad lengths closed, learns"),
    ("tests/integration/test_openapi.py::"
     "test_every_operation_keeps_to_the_document_and_never_fails_on_the_server",
     "schemathesis on the whole REST API", "0 server errors, 0 schema violations"),
    ("tests/integration/test_openapi.py::"
     "test_abusive_bodies_on_every_write_get_a_json_4xx_and_change_nothing",
     "abusive REST bodies (deep, huge, NaN, ...)", "JSON 4xx each; no state changed"),
    ("tests/integration/test_vlan_differential.py::test_same_frames_as_ovs_port_vlans"
     "[datapath-vlan0]", "differential vs OVS, priority tags (VID 0)",
     "identical frames, VLAN id and PCP"),
    ("tests/integration/test_lb_vlan_ovs.py::test_lb_on_an_access_vlan",
     "LB with the VLAN app, access VLAN 10", "20 of 20 served; a VLAN 20 client none"),
    ("tests/integration/test_qos_egress_ovs.py::test_a_rule_with_a_port_keeps_vlan_egress",
     "QoS port rule with the VLAN app", "same VLAN 20 of 20 untagged; other VLAN 0"),
    ("tests/integration/test_bond_fabric_ovs.py::"
     "test_a_bond_in_a_ring_floods_loop_free_and_fails_over",
     "bond in a ring, all apps", "no storm, 0 % pingall loss, failover"),
    ("tests/integration/test_labs.py::test_a_lab_passes_and_writes_its_report"
     "[mininet_topos.qos_lab-qos-lab-options6]",
     "the QoS lab: shares and loss through a shaped port",
     "shares +-10 %; >= 95 of 100 per queue; TCP goodput; ping"),
    ("tests/integration/test_labs.py::test_a_lab_passes_and_writes_its_report"
     "[mininet_topos.ha_lab-ha-lab-options5]",
     "the cluster lab (long): kill, pause, cut off", "one master per switch; traffic goes on"),
    ("tests/integration/test_cluster_roles_ovs.py::"
     "test_only_the_master_writes_and_mastership_moves_without_touching_entries",
     "two nodes, one switch: roles (long)", "slave lands nothing; hand-over keeps entries"),
    ("tests/integration/test_capture_ovs.py::test_a_capture_of_1500_frames_keeps_them_all",
     "the harness's capture, 1500 frames", "every frame delivered is captured"),
]


def main():
    rec = record.Run("reliability", "Reliability")
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.xml"
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        f"--junitxml={report}", "-o", "junit_logging=system-out",
                        *[node for node, _, _ in SCENARIOS]], cwd=REPO,
                       env=dict(os.environ, SDN_RELIABILITY="1"))  # the long runs too
        cases = {}
        for case in ET.parse(report).iter("testcase"):
            failed = case.find("failure") is not None or case.find("error") is not None
            out = case.findtext("system-out") or ""
            observed = next((line[len("observed: "):] for line in out.splitlines()
                             if line.startswith("observed: ")), "")
            cases[case.get("name")] = ("FAIL" if failed else "pass", observed)
    table = rec.table("scenarios on real OVS", [
        record.Column("scenario"), record.Column("expected"), record.Column("result"),
        record.Column("observed")])
    for node, scenario, expected in SCENARIOS:
        table.add(scenario, expected, *cases.get(node.split("::")[1], ("FAIL", "did not run")))
    print(f"\n{'scenario':<44}{'expected':<66}{'result':<7}observed")
    failures = 0
    for scenario, expected, result, observed in table.rows:
        failures += result != "pass"
        print(f"{scenario:<44}{expected:<66}{result:<7}{observed}")
    rec.write()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
