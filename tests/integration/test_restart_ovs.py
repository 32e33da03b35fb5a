"""kill -9 and restart with the load-balancer, QoS and overlay apps on real Open vSwitch:
the restarted controller reads back what the switches hold and leaves it untouched
(flows, groups and meters identical; nothing added, nothing removed), and traffic
through a VIP never stops."""
import json
import re
import signal
import subprocess
import time

import pytest

from controller import pipeline
from flows import l2, overlay
from mininet_topos import harness
from mininet_topos.topos import (LB_LAB_SUBNETS, QOS_LAB_CONFIG, VLAN_TRUNK_PAIR_CONFIG, LbLab,
                                 QosLab)
from tests.support.lb_lab import vip_body, wait_healthy
from tests.support.overlay_lab import PAIRS, vm
from tests.support.overlay_lab import start as start_overlay
from tests.support.overlay_lab import wait_programmed
from tests.support.reliability_lab import flow_tables, iperf3_intervals

pytestmark = pytest.mark.integration
_RECONCILED = re.compile(r"reconciled switch \w+: (\d+) entries kept, (\d+) added or changed, "
                         r"(\d+) stale removed")
# groups' and meters' counters (flows are read with flowdump, which knows their counters)
_COUNTERS = re.compile(r"\b(duration|packet_count|byte_count|flow_count|ref_count)=[^,\s]+,?\s*")


def ofctl(*args):
    """A dump of groups or meters, without counters."""
    out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", *args], capture_output=True,
                         text=True, check=True).stdout
    return sorted(_COUNTERS.sub("", line.strip()) for line in out.splitlines()[1:]
                  if line.strip())


def tc_filters(device):
    """The u32 filters on a device's HTB root, as tc prints them."""
    return [line for line in subprocess.run(["tc", "filter", "show", "dev", device, "parent",
                                             "1:"], capture_output=True, text=True,
                                            check=True).stdout.splitlines() if "flowid" in line]


def reconciliations(log_text):
    """(kept, added, removed) per 'reconciled switch' log line."""
    return [tuple(map(int, m.groups())) for m in _RECONCILED.finditer(log_text)]


def restart(controller, expected_lines, timeout=20):
    """kill -9 the controller, start it again; the (added, removed) counts of the
    reconciliations it logged (at least `expected_lines`; an app may check twice)."""
    controller.kill()
    offset = len(controller.log_text())
    controller.start()
    assert harness.wait_until(
        lambda: len(reconciliations(controller.log_text()[offset:])) >= expected_lines,
        timeout), controller.log_tail()
    time.sleep(1)  # anything a late event would still send
    return [(added, removed) for _, added, removed in
            reconciliations(controller.log_text()[offset:])]


def test_lb_restart_keeps_connections_flowing_and_the_group_untouched(lab, tmp_path):
    # VIP 1: four backends (a select group of four); VIP 2: one backend, carrying iperf3
    # (its control and data connections must meet the same server)
    vips = [vip_body(), vip_body(vip="10.0.0.101", port=5201, backend_port=5201)]
    vips[1]["backends"] = vips[1]["backends"][:1]
    config = {"l2_switch": {"mode": "datapath"},
              "lb": {"subnets": LB_LAB_SUBNETS, "vips": vips}}
    controller, network = lab(LbLab(), config, apps=("apps/l2_switch.py", "apps/lb.py"))
    servers = [harness.start_http(network[f"b{n}"], f"b{n}") for n in (1, 2, 3, 4)]
    try:
        b1, c1 = network["b1"], network["c1"]
        b1.cmd("iperf3 -s -D -p 5201")
        assert harness.wait_until(lambda: ":5201 " in b1.cmd("ss -ltnH"), 5)
        wait_healthy(controller)
        wait_healthy(controller, vip_id=2, count=1)
        assert harness.http_requests(c1, "10.0.0.100", 80, 40)["failed"] == 0
        before = (flow_tables(network), ofctl("dump-groups", "s1"))
        assert len(before[1]) == 2 and before[1][0].count("bucket=") == 4

        report = tmp_path / "iperf3.json"
        c1.cmd(f"iperf3 -c 10.0.0.101 -p 5201 -t 8 -i 0.5 -J > {report} 2>&1 &")
        time.sleep(2)
        lines = restart(controller, expected_lines=2)  # two apps, one switch
        after = (flow_tables(network), ofctl("dump-groups", "s1"))
        assert harness.wait_until(lambda: c1.cmd("pgrep -f 'iperf3 -c'").strip() == "", 15)
        rates = iperf3_intervals(report)
        assert len(rates) >= 15 and min(rates) > 0, rates   # never stopped for 0.5 s
        assert set(lines) == {(0, 0)}, lines
        assert after == before
        body = controller.rest("GET", "/v1/lb/vips/1")[1]
        assert all(b["healthy"] for b in body["backends"])  # taken over, then re-checked
        assert harness.http_requests(c1, "10.0.0.100", 80, 40)["failed"] == 0
        print(f"observed: slowest 0.5 s interval {min(rates) / 1e6:.0f} Mbit/s through the "
              f"VIP; {sum(map(len, after[0].values()))} entries and 2 groups identical; "
              f"(added, removed) per reconciliation {lines}")
    finally:
        for proc in servers:
            proc.kill()
        network["b1"].cmd("pkill -f 'iperf3 -s -D -p 5201'")


def test_qos_restart_leaves_flows_and_meters_untouched(lab):
    controller, network = lab(QosLab(), QOS_LAB_CONFIG, apps=("apps/l2_switch.py", "apps/qos.py"))
    assert harness.wait_until(
        lambda: controller.rest("GET", "/v1/qos/0000000000000001/rules")[0] == 200, 15)
    status, body = controller.rest("POST", "/v1/qos/0000000000000001/rules", {
        "match": {"udp_dst": 5001}, "queue": 2, "meter": {"rate": "2M"}})
    assert status == 201, body
    time.sleep(1)
    before = (flow_tables(network), ofctl("dump-meters", "s1"))
    assert any("meter_id=" in line or "meter=" in line for line in before[1]), before[1]
    filters = tc_filters("s1-eth4")
    # three rules to queues, one more to 2; each for untagged and for 802.1Q-tagged frames
    assert len(filters) == 8, filters
    lines = restart(controller, expected_lines=2)
    assert set(lines) == {(0, 0)}, lines
    assert (flow_tables(network), ofctl("dump-meters", "s1")) == before
    time.sleep(1)                                   # past the tc check after the push
    assert controller.rest("GET", "/v1/qos")[1][0]["tc_applied"] == 0   # left as it was
    assert tc_filters("s1-eth4") == filters
    print(f"observed: {sum(map(len, before[0].values()))} entries and "
          f"{len(before[1])} meter lines identical; the {len(filters)} tc filters untouched; "
          f"(added, removed) per reconciliation {lines}")


def test_overlay_restart_keeps_learned_entries_and_changes_nothing(lab, tmp_path):
    controller, network = start_overlay(lab, tmp_path)
    for a, b in PAIRS:
        assert harness.ping(vm(network, a, "a"), vm(network, b, "a"), count=2, timeout=2)
    hypervisors = [network[f"hv{n}"] for n in (1, 2, 3)]

    def tables():
        return {(hv.name, bridge): sorted(flow.key for flow in hv.flows(bridge))
                for hv in hypervisors for bridge in ("br-int", "br-tun")}
    before = tables()
    assert any("learned" in k or "learn(" in line for k, lines in before.items()
               for line in lines)
    lines = restart(controller, expected_lines=6)  # two bridges on each of three
    wait_programmed(controller)
    assert set(lines) == {(0, 0)}, lines
    assert tables() == before
    for a, b in PAIRS:
        assert harness.ping(vm(network, a, "a"), vm(network, b, "a"), count=1, timeout=2)
    print(f"observed: {sum(map(len, before.values()))} entries on 6 bridges identical "
          f"(learned ones included); (added, removed) per reconciliation {lines}")


def test_a_bridge_deleted_and_added_back_is_programmed_again_within_5_s(vlan_pair):
    """The switch comes back empty (as after an OVS restart that lost its datapath): the
    apps see a new connection, find nothing of theirs and push everything again."""
    controller, network = vlan_pair()
    h1, h2, h3, h4 = (network[f"h{i}"] for i in range(1, 5))
    assert harness.ping(h1, h3) and harness.ping(h2, h4)

    def fixed():  # all but the host entries (re-learned as traffic comes)
        return {name: [line for line in lines if "cookie=0x1003" not in line]
                for name, lines in flow_tables(network).items()}
    before = fixed()
    harness.recreate_bridge("s1")
    started = time.monotonic()
    assert harness.wait_until(lambda: harness.ping(h1, h3, timeout=0.3), 10, step=0.05)
    took = time.monotonic() - started
    assert harness.ping(h2, h4) and not harness.ping(h1, h4)  # VLANs as before
    assert took < 5, took
    assert harness.wait_until(lambda: fixed() == before, 5), (fixed(), before)
    print(f"observed: pings again {took:.2f} s after the bridge came back empty; "
          f"{sum(map(len, before.values()))} fixed entries as before")


@pytest.mark.parametrize("mode", ["reactive", "datapath"])
def test_a_crashed_ovs_vswitchd_is_programmed_again_within_5_s(vlan_pair, mode):
    """kill -9 the host's ovs-vswitchd and start it again under the learning and VLAN
    apps: both bridges come back from OVSDB empty and reconnect; the apps push them
    again, pings work, the VLANs stay apart and the fixed entries are as before."""
    controller, network = vlan_pair(mode)
    h1, h2, h3, h4 = (network[f"h{i}"] for i in range(1, 5))
    assert harness.ping(h1, h3) and harness.ping(h2, h4)
    # flow keys read "cookie=0x... table=... ": the space ends the cookie
    hosts = tuple("cookie=%#x " % pipeline.cookie(o) for o in (l2.HOSTS, l2.LEARNED))

    def fixed():  # all but the host entries (learned again as traffic comes)
        return {name: [line for line in lines if not line.startswith(hosts)]
                for name, lines in flow_tables(network).items()}
    before = fixed()
    offset = len(controller.log_text())
    started = time.monotonic()
    try:
        harness.restart_vswitchd()
        restarted = time.monotonic() - started
        assert harness.wait_until(lambda: harness.ping(h1, h3, timeout=0.3), 10, step=0.05)
        took = time.monotonic() - started
    finally:
        harness.ensure_vswitchd()
    assert harness.ping(h2, h4) and not harness.ping(h1, h4) and not harness.ping(h2, h3)
    assert took < 5, took
    assert harness.wait_until(lambda: fixed() == before, 5), (fixed(), before)
    # each app found each switch without its entries and pushed them again (one app's
    # readback may already see the pipeline's table misses the other just wrote)
    fresh = [added for kept, added, _ in reconciliations(controller.log_text()[offset:])
             if added > 0]
    assert len(fresh) >= 4, controller.log_tail()
    print(f"observed: pings {took:.2f} s after kill -9 of ovs-vswitchd (it was running "
          f"again after {restarted:.2f} s); VLANs apart; "
          f"{sum(map(len, before.values()))} fixed entries as before")


def test_a_crashed_hypervisor_ovs_vswitchd_is_programmed_again_within_5_s(lab, tmp_path):
    """kill -9 one hypervisor's ovs-vswitchd and start it again: its bridges come back
    from OVSDB with empty tables, reconnect, and the overlay app (VLAN translation,
    tunnels, learning) programs them again; the other hypervisors keep theirs."""
    controller, network = start_overlay(lab, tmp_path)
    for a, b in PAIRS:
        assert harness.ping(vm(network, a, "a"), vm(network, b, "a"), count=2, timeout=2)
    hypervisors = {n: network[f"hv{n}"] for n in (1, 2, 3)}
    learned = {pipeline.cookie(owner)
               for owner in (overlay.LEARNED, overlay.INTEGRATION_BRIDGE_LEARNED)}

    def fixed(hv):   # learned entries come back with traffic, not from the controller
        return {bridge: sorted(flow.key for flow in hv.flows(bridge)
                               if flow.cookie not in learned)
                for bridge in ("br-int", "br-tun")}
    before = {n: fixed(hv) for n, hv in hypervisors.items()}
    offset = len(controller.log_text())
    started = time.monotonic()
    hypervisors[1].restart_vswitchd()
    assert harness.wait_until(lambda: harness.ping(vm(network, 1, "a"), vm(network, 2, "a"),
                                                   count=1, timeout=0.3), 10, step=0.05)
    took = time.monotonic() - started
    assert took < 5, took
    assert harness.wait_until(lambda: fixed(hypervisors[1]) == before[1], 5)
    pushed = reconciliations(controller.log_text()[offset:])
    assert len(pushed) >= 2 and all(kept == 0 and added > 0 for kept, added, _ in pushed), \
        pushed    # both bridges came back empty and were programmed from scratch
    for a, b in PAIRS:
        for tenant in "ab":
            assert harness.ping(vm(network, a, tenant), vm(network, b, tenant), count=1,
                                timeout=2)
    assert all(fixed(hypervisors[n]) == before[n] for n in (2, 3))
    print(f"observed: pings across the tunnels {took:.2f} s after kill -9 of ovs-vswitchd; "
          f"both bridges came back empty, {sum(a for _, a, _ in pushed)} entries pushed, "
          f"{sum(map(len, before[1].values()))} fixed entries on hv1 as before")


def test_config_reload_keeps_the_old_config_when_the_new_one_is_bad(vlan_pair):
    """SIGHUP with a broken file: error logged and shown, nothing changes; with a good
    one: applied (h2, port 2 of s1, moves from VLAN 20 to VLAN 10)."""
    controller, network = vlan_pair()
    h1, h2, h3, h4 = (network[f"h{i}"] for i in range(1, 5))
    assert harness.ping(h1, h3) and harness.ping(h2, h4) and not harness.ping(h2, h3)
    before = flow_tables(network)
    for broken in ("vlan: {ports: [", {"vlan": {"ports": [{"switch": 1, "port": 2,
                                                            "tag": 4097}]}}):
        if isinstance(broken, str):
            controller.config_path.write_text(broken)
        else:
            controller.set_config(broken)
        controller.process.send_signal(signal.SIGHUP)
        assert harness.wait_until(
            lambda: controller.rest("GET", "/v1/config")[1]["last_error"], 5)
        status, body = controller.rest("GET", "/v1/config")
        assert body["ok"] is False and ("YAML" in body["last_error"]
                                        or "vlan" in body["last_error"]), body
        controller.rest("POST", "/v1/config/reload")  # the same through REST: refused
        time.sleep(0.5)
        assert flow_tables(network) == before
        assert harness.ping(h2, h4) and not harness.ping(h2, h3)
    assert "config reload refused" in controller.log_text()
    moved = dict(VLAN_TRUNK_PAIR_CONFIG, l2_switch={"mode": "reactive"})
    moved = json.loads(json.dumps(moved))
    for entry in moved["vlan"]["ports"]:
        if (entry["switch"], entry["port"]) == (1, 2):
            entry["tag"] = 10
    controller.set_config(moved)
    controller.process.send_signal(signal.SIGHUP)
    assert harness.wait_until(lambda: controller.rest("GET", "/v1/config")[1]["ok"], 5)
    assert harness.wait_until(lambda: harness.ping(h2, h3), 5)   # now both in VLAN 10
    assert not harness.ping(h2, h4)
    print("observed: two bad files refused with the tables unchanged; a good one applied")


def test_a_bad_config_at_start_is_a_clear_error_and_a_non_zero_exit(tmp_path):
    controller = harness.Controller(("apps/vlan.py",), {"vlan": {"ports": [
        {"switch": 1, "port": 1, "tag": 9999}]}}, log_dir=tmp_path)
    with pytest.raises(RuntimeError, match=r"(?s)exited with [1-9].*vlan: .*ports\[0\]") as err:
        controller.start(timeout=20)
    print(f"observed: {str(err.value).splitlines()[0]}; "
          f"{str(err.value).splitlines()[-1].strip()}")


def test_del_flows_under_a_live_connection_brings_every_app_back(lab):
    """An admin's del-flows (the connection stays up): the learning, load-balancer and
    QoS apps each notice their own canary gone and put their entries back."""
    config = {"l2_switch": {"mode": "datapath"},
              "lb": {"subnets": LB_LAB_SUBNETS, "vips": [vip_body()]},
              "qos": {"ports": [{"switch": "s1", "port": "s1-eth1",
                                 "ingress_policing": {"rate": "500M", "burst": "5M"}}]}}
    controller, network = lab(LbLab(), config,
                              apps=("apps/l2_switch.py", "apps/lb.py", "apps/qos.py"))
    servers = [harness.start_http(network[f"b{n}"], f"b{n}") for n in (1, 2, 3, 4)]
    try:
        wait_healthy(controller)
        c1 = network["c1"]
        assert harness.http_requests(c1, "10.0.0.100", 80, 20)["failed"] == 0
        fixed = lambda: {name: [line for line in lines if "cookie=0x1004" not in line]  # noqa
                         for name, lines in flow_tables(network).items()}  # learn()'s own
        before = fixed()
        subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "del-flows", "s1"], check=True)
        wiped = time.monotonic()
        assert harness.wait_until(lambda: fixed() == before, 10), (fixed(), before)
        back_s = time.monotonic() - wiped
        log = controller.log_text()
        assert all(f"{app}: switch 0000000000000001 lost its entries" in log
                   for app in ("l2_switch", "lb", "qos")), controller.log_tail()
        assert harness.http_requests(c1, "10.0.0.100", 80, 20)["failed"] == 0
        assert back_s <= 5, back_s
        print(f"observed: every app's entries back {back_s:.1f} s after del-flows "
              f"({len(before['s1'])} entries); the VIP serves again")
    finally:
        for proc in servers:
            proc.kill()
