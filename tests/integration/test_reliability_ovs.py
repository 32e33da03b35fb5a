"""Restarts on real Open vSwitch: a controller killed with -9 while traffic runs, and
what the switches do meanwhile (fail_mode secure) and afterwards (reconciliation)."""
import json
import re
import subprocess
import threading
import time

import pytest

from mininet_topos import harness
from mininet_topos.topos import VLAN_TRUNK_PAIR_CONFIG, VlanTrunkPair

pytestmark = pytest.mark.integration
MODES = pytest.mark.parametrize("mode", ["reactive", "datapath"])
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


@MODES
def test_kill_9_and_restart_keep_traffic_flowing_and_tables_identical(lab, mode, tmp_path):
    config = dict(VLAN_TRUNK_PAIR_CONFIG, l2_switch={"mode": mode})
    # 4 "reconciled switch" lines per start: two apps, two switches
    controller, network = lab(VlanTrunkPair(), config, apps=("apps/l2_switch.py",
                                                             "apps/vlan.py"))
    harness.wait_vlans_programmed(controller, network)
    h1, h2, h3, h4 = (network[f"h{i}"] for i in range(1, 5))
    for switch in network.switches:
        assert switch.cmd(f"ovs-vsctl get-fail-mode {switch.name}").strip() == "secure"
    assert harness.ping(h1, h3) and harness.ping(h2, h4)  # both VLANs learned
    assert not harness.ping(h1, h4)
    time.sleep(1.5)
    before = flow_tables(network)

    report = tmp_path / "iperf3.json"
    h3.cmd("iperf3 -s -1 -D -p 5299")
    assert harness.wait_until(lambda: ":5299 " in h3.cmd("ss -ltnH"), 5)
    h1.cmd(f"iperf3 -c {h3.IP()} -p 5299 -t 9 -i 0.5 -J > {report} 2>&1 &")
    time.sleep(2)
    controller.kill()
    time.sleep(0.5)
    # dead controller: the switches keep forwarding on what is installed, and with
    # fail_mode secure they do not turn into flat learning switches: VLANs still hold
    assert harness.ping(h2, h4)
    assert not harness.ping(h1, h4)
    assert not harness.ping(h2, h3)
    controller.start()
    reconciled = lambda: controller.log_text().count("reconciled switch")  # noqa: E731
    assert harness.wait_until(lambda: reconciled() >= 8, 15), \
        controller.log_tail()
    time.sleep(1)
    after = flow_tables(network)
    assert harness.wait_until(lambda: h1.cmd("pgrep -f 'iperf3 -c'").strip() == "", 15)
    rates = iperf3_intervals(report)
    assert len(rates) >= 17 and min(rates) > 0, rates  # never stopped, not even for 0.5 s
    assert after == before


def test_kill_9_during_a_burst_of_rest_writes_loses_no_acknowledged_write(lab):
    """1000 PUTs of port VLAN tags; the controller is killed in the middle of them. After
    a restart each port holds its last acknowledged tag (or the one in flight at the
    kill), and the switch is programmed with it."""
    controller, network = lab(VlanTrunkPair(), {"l2_switch": {"mode": "reactive"}},
                              apps=("apps/l2_switch.py", "apps/vlan.py"))
    harness.wait_vlans_programmed(controller, network)
    acked, in_flight, stop = {}, {}, threading.Event()

    def writer():
        for n in range(1000):
            port, tag = 1 + n % 2, 100 + n
            in_flight[port] = tag
            try:
                status, _ = controller.rest("PUT", f"/v1/switches/1/ports/{port}/vlan",
                                            {"tag": tag}, timeout=2)
            except OSError:
                return  # the controller is gone
            if status != 200:
                return
            acked[port] = tag
            if stop.is_set():
                return

    thread = threading.Thread(target=writer)
    thread.start()
    assert harness.wait_until(lambda: len(acked) == 2 and max(acked.values()) > 400, 60)
    controller.kill()
    stop.set()
    thread.join(timeout=10)
    controller.start()
    harness.wait_vlans_programmed(controller, network)
    for port in (1, 2):
        tag = controller.rest("GET", f"/v1/switches/1/ports/{port}/vlan")[1]["tag"]
        assert tag in (acked[port], in_flight[port]), (port, tag, acked, in_flight)
        assert harness.wait_until(lambda: any(
            f"in_port={port}" in line and f"set_field:{4096 + tag}->vlan_vid" in line
            for line in flow_tables(network)["s1"]), 10), flow_tables(network)["s1"]
