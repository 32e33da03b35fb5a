"""The learning app on real Open vSwitch in Mininet, both learning modes."""
import re
import subprocess
import time

import pytest

from controller import pipeline
from flows import l2
from mininet_topos import harness
from mininet_topos.topos import Linear, Single, Tree
from tests.support.scrape import scrape

pytestmark = pytest.mark.integration
MODES = pytest.mark.parametrize("mode", ["reactive", "datapath"])
LEARNED_BY = {"reactive": l2.HOSTS, "datapath": l2.LEARNED}   # who writes the host entries


def learned_flows(network, switch, mode):
    """The l2_dst entries of learned hosts (flowdump.Flow values)."""
    owner = pipeline.cookie(LEARNED_BY[mode]) >> 48
    return [f for f in network.flows(switch, table=pipeline.table_id("l2_dst"))
            if f.cookie >> 48 == owner]


def for_host(host, flows):
    """The entries among `flows` that forward to `host`'s MAC."""
    return [f for f in flows if f"dl_dst={host.MAC()}" in f.match_text]


wait_for = harness.wait_until


@MODES
@pytest.mark.parametrize("topo", [lambda: Single(3), lambda: Linear(4), lambda: Tree(2, 2)],
                         ids=["single3", "linear4", "tree2x2"])
def test_pingall_has_no_loss(lab, mode, topo):
    controller, network = lab(topo(), {"l2_switch": {"mode": mode}})
    assert network.pingall() == 0
    assert network.pingall() == 0  # and again, now from learned entries


@MODES
def test_learned_flows_appear_stay_while_talking_and_expire_when_silent(lab, mode):
    controller, network = lab(Single(2), {"l2_switch": {"mode": mode, "idle_timeout": 3}})
    h1, h2 = network["h1"], network["h2"]
    assert harness.ping(h1, h2)  # answered by flooding at first; the entries follow
    assert wait_for(lambda: {(h.name, port) for h, port in ((h1, 1), (h2, 2))
                             for f in for_host(h, learned_flows(network, "s1", mode))
                             if port in f.outputs()} == {("h1", 1), ("h2", 2)}, timeout=2), \
        learned_flows(network, "s1", mode)
    # 5 s of steady traffic: longer than the timeout, yet nothing is forgotten
    h1.cmd(f"ping -c 25 -i 0.2 {h2.IP()}")
    flows = learned_flows(network, "s1", mode)
    assert for_host(h1, flows) and for_host(h2, flows), flows
    # then silence: both expire (the switch checks timeouts about once a second)
    assert wait_for(lambda: not any(for_host(h, learned_flows(network, "s1", mode))
                                    for h in (h1, h2)), timeout=10)
    if mode == "reactive":  # the controller heard the flow-removed and forgot them too
        assert wait_for(lambda: not any(m["mac"] in (h1.MAC(), h2.MAC()) for m in
                                        controller.rest("GET", "/v1/switches/1/macs")[1]), 5)
    assert harness.ping(h1, h2)  # and they are learned again


@MODES
def test_a_host_that_moves_is_relearned_at_once(lab, mode):
    controller, network = lab(Single(3), {"l2_switch": {"mode": mode}})
    h1, h2, h3 = network["h1"], network["h2"], network["h3"]
    mac, ip = h1.MAC(), h1.IP()
    assert harness.ping(h2, h1)
    # h1 "moves" to port 3: its MAC and IP now live on h3's interface
    h1.cmd("ip link set h1-eth0 down")
    h3.cmd(f"ip link set h3-eth0 address {mac}; ip addr flush dev h3-eth0; "
           f"ip addr add {ip}/8 dev h3-eth0")
    moved_at = time.monotonic()
    h3.cmd(f"ping -c 1 -W 1 {h2.IP()}")  # the moved host speaks once
    assert h2.cmd(f"ping -c 1 -W 1 {ip}").count(" 0% packet loss") == 1
    relearn_s = time.monotonic() - moved_at
    assert relearn_s < 2.0
    status, macs = controller.rest("GET", "/v1/switches/1/macs")
    assert status == 200 and {"mac": mac, "port": 3} in [
        {"mac": m["mac"], "port": m["port"]} for m in macs]


@MODES
def test_rest_api_on_a_live_network(lab, mode):
    controller, network = lab(Linear(2), {"l2_switch": {"mode": mode}})
    assert network.pingall() == 0
    status, switches = controller.rest("GET", "/v1/switches")
    assert status == 200
    assert sorted(s["dpid"] for s in switches) == ["0000000000000001", "0000000000000002"]
    status, macs = controller.rest("GET", "/v1/switches/0000000000000001/macs")
    hosts = {h.MAC() for h in network.hosts}
    assert status == 200 and hosts <= {m["mac"] for m in macs}
    time.sleep(2)  # so that every entry learned so far is at least 2 s old
    status, body = controller.rest("DELETE", "/v1/switches/1/macs")
    assert status == 200 and body["flushed"] >= len(hosts)
    after = controller.rest("GET", "/v1/switches/1/macs")[1]
    if mode == "reactive":
        assert not hosts & {m["mac"] for m in after}
    else:  # the switch re-learns on the next frame (ND, ARP): only fresh entries may be there
        assert all(m["age_s"] < 2 for m in after), after
    assert network.pingall() == 0  # flushing only costs a re-learn
    assert controller.rest("GET", "/v1/switches/42/macs")[0] == 404
    assert controller.rest("GET", "/v1/switches/0xyz/macs")[0] == 400   # no spelling of one
    assert controller.rest("GET", "/v1/switches/xyz/macs")[0] == 404    # a name, of none
    assert controller.rest("PUT", "/v1/switches")[0] == 405


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast_path", "ryu_path"])
def test_reactive_learning_takes_the_fast_path_unless_it_is_off(lab, fast_path):
    """OVS's packet-ins of the learning table are handled in the receive loop
    (controller/fastpath.py), and the network works the same with it off."""
    controller, network = lab(Linear(2), {"l2_switch": {"mode": "reactive"},
                                          "openflow": {"fast_path": fast_path}})
    assert network.pingall() == 0
    assert network.pingall() == 0
    counts = scrape(controller)
    packet_ins = sum(v for (name, _), v in counts.items() if name == "sdn_packet_ins_total")
    fast = sum(v for (name, _), v in counts.items() if name == "sdn_fast_path_packet_ins_total")
    hosts = {h.MAC() for h in network.hosts}
    for dpid in ("1", "2"):
        assert hosts <= {m["mac"] for m in controller.rest("GET", f"/v1/switches/{dpid}/macs")[1]}
    assert packet_ins >= len(hosts)
    assert fast == (packet_ins if fast_path else 0), counts


def test_metrics_name_the_switch_and_count_its_connection_and_packet_in_latency(lab):
    """The runtime asks every connection for its ports once (l2_switch alone asks for
    none), so the bridge's name labels the per-switch metrics; the packet-ins of a ping are in the latency
    histogram of the fast path."""
    controller, network = lab(Single(2), {"l2_switch": {"mode": "reactive"}})
    assert harness.ping(network["h1"], network["h2"])
    counts = scrape(controller)
    s1 = (("dp_name", "s1"), ("dpid", "0000000000000001"))
    assert counts[("sdn_switch_connections_total", s1)] - \
        counts.get(("sdn_switch_disconnections_total", s1), 0) == 1, counts
    assert counts[("sdn_packet_ins_total", s1)] > 0
    assert counts[("sdn_packet_in_handling_seconds_count", (("path", "fast_path"),))] > 0
    assert counts[("sdn_config_reloads_total", (("outcome", "refused"),))] == 0


def test_datapath_mode_needs_no_packet_ins_in_steady_state(lab):
    controller, network = lab(Tree(2, 2), {"l2_switch": {"mode": "datapath"}})
    assert network.pingall() == 0
    before = sum(s["packet_ins"] for s in controller.rest("GET", "/v1/switches")[1])
    assert network.pingall() == 0
    after = sum(s["packet_ins"] for s in controller.rest("GET", "/v1/switches")[1])
    assert before == after == 0


@MODES
def test_tcp_flows_through_the_pipeline(lab, mode):
    controller, network = lab(Linear(2), {"l2_switch": {"mode": mode}})
    bits = harness.iperf3(network["h1"], network["h2"], seconds=1)
    assert bits > 50e6, f"{bits / 1e6:.1f} Mbit/s"


def test_harness_cleans_up_even_when_the_test_fails():
    topo = Single(2)
    with pytest.raises(RuntimeError, match="boom"):
        with harness.running(topo) as (controller, network):
            pids = [h.pid for h in network.hosts]
            raise RuntimeError("boom")
    bridges = subprocess.run(["ovs-vsctl", "list-br"], capture_output=True, text=True).stdout
    assert "s1" not in bridges.split()
    assert controller.process.poll() is not None
    for pid in pids:
        assert subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode != 0
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert not re.search(r"\bs1-eth\d", links)


def test_bad_config_stops_the_controller_with_a_clear_message(tmp_path):
    controller = harness.Controller(config={"l2_switch": {"mode": "turbo"}}, log_dir=tmp_path)
    with pytest.raises(RuntimeError, match="exited"):
        controller.start(timeout=20)
    assert "l2_switch: config section 'l2_switch': mode must be one of" in controller.log_text()


def test_datapath_mode_mac_cap_is_enforced_by_the_switch(lab):
    controller, network = lab(Single(4), {"l2_switch": {"mode": "datapath", "max_macs": 2}})
    assert wait_for(lambda: controller.rest("GET", "/v1/switches")[1][0]["mac_cap"] != "pending",
                    timeout=10)
    switch = controller.rest("GET", "/v1/switches")[1][0]
    assert switch["mac_cap"] == "switch (OVSDB Flow_Table flow_limit=4)", switch
    rows = subprocess.run(["ovs-vsctl", "--format=csv", "--columns=flow_limit,external_ids",
                           "list", "Flow_Table"], capture_output=True, text=True).stdout
    assert '4,{sdn-owner=l2_switch}' in rows, rows

    def cap_in_force():   # ovs-vswitchd applies the OVSDB row a moment after it is written
        features = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-table-features",
                                   "s1"], capture_output=True, text=True).stdout
        return re.search(rf'table {pipeline.table_id("l2_dst")} \("l2_dst"\):\s+.*?max_entries=4',
                         features, re.S)
    assert wait_for(cap_in_force, timeout=5)
    assert network.pingall() == 0  # hosts beyond the cap are flooded to, not cut off
    learned = learned_flows(network, "s1", "datapath")
    assert len(learned) == 2, learned


def test_rest_api_binds_to_localhost_by_default(tmp_path):
    with harness.Controller(log_dir=tmp_path, rest_host=None) as controller:
        listening = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
        ours = [line for line in listening.splitlines() if f":{controller.rest_port} " in line]
        assert ours and all(f"127.0.0.1:{controller.rest_port}" in line for line in ours), ours


@MODES
def test_tagged_traffic_is_learned_per_vlan(lab, mode):
    """The same MAC in VLANs 10 and 20 on different ports: learned twice, kept apart."""
    controller, network = lab(Single(3), {"l2_switch": {"mode": mode}})
    h1, h2 = network["h1"], network["h2"]
    mac = "02:00:00:00:0a:0a"
    harness.send_frames(h1, [harness.ethernet_frame(mac, "ff:ff:ff:ff:ff:ff", vlan=10)] * 3)
    harness.send_frames(h2, [harness.ethernet_frame(mac, "ff:ff:ff:ff:ff:ff", vlan=20)] * 3)

    def learned():
        return {(m["vlan"], m["port"]) for m in controller.rest("GET", "/v1/switches/1/macs")[1]
                if m["mac"] == mac}
    assert wait_for(lambda: learned() == {(10, 1), (20, 2)}, timeout=3), learned()
