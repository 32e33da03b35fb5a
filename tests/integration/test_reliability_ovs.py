"""Restarts on real Open vSwitch: a controller killed with -9 while traffic runs, and
what the switches do meanwhile (fail_mode secure) and afterwards (reconciliation)."""
import os
import random
import subprocess
import threading
import time

import pytest

from controller import pipeline
from flows.spec import Owner
from mininet_topos import harness
from mininet_topos.topos import Single, VlanTrunkPair
from tests.support.reliability_lab import flow_tables, iperf3_intervals

pytestmark = pytest.mark.integration
MODES = pytest.mark.parametrize("mode", ["reactive", "datapath"])


@MODES
def test_kill_9_and_restart_keep_traffic_flowing_and_tables_identical(vlan_pair, mode,
                                                                        tmp_path):
    # 4 "reconciled switch" lines per start: two apps, two switches
    controller, network = vlan_pair(mode)
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
    print(f"observed: slowest 0.5 s interval {min(rates) / 1e6:.0f} Mbit/s; "
          f"{sum(map(len, after.values()))} entries identical before and after")


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
    print(f"observed: killed after {max(acked.values()) - 99} acknowledged writes; "
          f"each port kept its last one")
    for port in (1, 2):
        tag = controller.rest("GET", f"/v1/switches/1/ports/{port}/vlan")[1]["tag"]
        assert tag in (acked[port], in_flight[port]), (port, tag, acked, in_flight)
        assert harness.wait_until(lambda: any(
            f"in_port={port}" in line and f"set_field:{4096 + tag}->vlan_vid" in line
            for line in flow_tables(network)["s1"]), 10), flow_tables(network)["s1"]


def _cpu_and_rss(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rss = next(int(line.split()[1]) for line in open(f"/proc/{pid}/status")
               if line.startswith("VmRSS:")) / 1024
    return cpu, rss


def test_a_flood_of_10k_source_macs_is_banned_and_learning_recovers(lab):
    ban_s = 10  # longer than the flood takes to send (about 5 s here)
    controller, network = lab(Single(3), {"l2_switch": {  # flood MACs idle out in 3 s
        "mode": "reactive", "max_macs_per_port": 50, "ban_s": ban_s, "idle_timeout": 3}})
    h1, h2, h3 = network["h1"], network["h2"], network["h3"]
    assert harness.ping(h1, h2) and harness.ping(h2, h3)
    cpu_before, rss_before = _cpu_and_rss(controller.process.pid)
    rng = random.Random(9)
    flood = [harness.ethernet_frame("02:%02x:%02x:%02x:%02x:%02x" % tuple(
        rng.randrange(256) for _ in range(5)), "ff:ff:ff:ff:ff:ff") for _ in range(10000)]
    started = time.monotonic()
    for first in range(0, len(flood), 2500):
        harness.send_frames(h1, flood[first:first + 2500])
    flood_s = time.monotonic() - started
    cpu_after, rss_after = _cpu_and_rss(controller.process.pid)
    switch = controller.rest("GET", "/v1/switches")[1][0]
    assert [ban["port"] for ban in switch["bans"]] == [1], switch
    on_port_1 = [m for m in controller.rest("GET", "/v1/switches/1/macs")[1] if m["port"] == 1]
    assert len(on_port_1) <= 50
    bans = pipeline.cookie(Owner("l2_switch", "ban")) >> 48     # app and purpose
    dropped = [f for f in network.flows("s1") if f.cookie >> 48 == bans]
    drops = dropped[0].n_packets if dropped else 0
    assert drops > 0, dropped  # the switch drops (and counts) the rest itself
    assert harness.ping(h1, h2) and harness.ping(h2, h3)  # the legitimate hosts still work
    assert cpu_after - cpu_before < 10 and rss_after - rss_before < 20, \
        (cpu_after - cpu_before, rss_after - rss_before)
    # the ban ends by itself; a new source on port 1 is learned again
    assert harness.wait_until(lambda: not controller.rest("GET", "/v1/switches")[1][0]["bans"],
                              ban_s + 3)
    assert harness.wait_until(lambda: not [f for f in network.flows("s1")
                                           if f.cookie >> 48 == bans], 3)
    newcomer = "02:aa:00:00:00:01"

    def learned_again():  # once the silent flood MACs have idled out, there is room
        harness.send_frames(h1, [harness.ethernet_frame(newcomer, "ff:ff:ff:ff:ff:ff")])
        return newcomer in {m["mac"] for m in controller.rest("GET", "/v1/switches/1/macs")[1]}
    assert harness.wait_until(learned_again, 15, step=0.5)
    print(f"observed: 10k MACs in {flood_s:.1f} s: {switch['packet_ins']} packet-ins, {drops} dropped by "
          f"the ban, controller CPU +{cpu_after - cpu_before:.2f} s, RSS "
          f"+{rss_after - rss_before:.1f} MiB, {len(on_port_1)} MACs kept on port 1")


def test_packet_ins_are_rate_limited_by_the_switch(lab):
    rate = 100
    controller, network = lab(Single(2), {"l2_switch": {
        "mode": "reactive", "packet_in_rate": rate, "max_macs_per_port": 0}})
    h1 = network["h1"]
    meters = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-meters", "s1"],
                            capture_output=True, text=True, check=True).stdout
    assert "meter=controller pktps" in meters and f"rate={rate}" in meters, meters
    rng = random.Random(3)
    before = controller.rest("GET", "/v1/switches")[1][0]["packet_ins"]
    started = time.monotonic()
    for _ in range(10):  # 3000 new sources over about 3 s: 1000/s offered
        harness.send_frames(h1, [harness.ethernet_frame("02:%02x:%02x:%02x:%02x:%02x" % tuple(
            rng.randrange(256) for _ in range(5)), "ff:ff:ff:ff:ff:ff") for _ in range(300)])
        time.sleep(0.3)
    seconds = time.monotonic() - started
    time.sleep(0.5)
    received = controller.rest("GET", "/v1/switches")[1][0]["packet_ins"] - before
    allowed = rate * seconds + rate / 4  # the rate, plus its burst
    assert 0.3 * rate * seconds <= received <= 1.2 * allowed, (received, seconds)
    stats = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "meter-stats", "s1"],
                           capture_output=True, text=True, check=True).stdout
    print(f"observed: offered ~{3000 / seconds:.0f}/s for {seconds:.1f} s, limit {rate}/s: the "
          f"controller got {received} ({received / seconds:.0f}/s)\n{stats}")


def _without_hosts(tables):
    """Flow tables minus learned hosts (they come back with traffic, not at once)."""
    return {name: [line for line in lines if not line.startswith(("cookie=0x1003",
                                                                   "cookie=0x1004"))]
            for name, lines in tables.items()}


def test_entries_wiped_under_a_live_connection_are_back_within_5_s(vlan_pair):
    controller, network = vlan_pair()
    h1, h3 = network["h1"], network["h3"]
    assert harness.ping(h1, h3)
    before = _without_hosts(flow_tables(network))
    subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "del-flows", "s1"], check=True)
    wiped = time.monotonic()
    assert harness.wait_until(lambda: harness.ping(h1, h3, timeout=0.5), 10)
    back_s = time.monotonic() - wiped
    assert back_s <= 5, back_s
    assert harness.wait_until(lambda: _without_hosts(flow_tables(network)) == before, 5)
    assert "canary gone" in controller.log_text()
    print(f"observed: pings again {back_s:.1f} s after del-flows, tables as before")

