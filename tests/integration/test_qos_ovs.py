"""The HTB lab on real Open vSwitch: the QoS app builds the tree through OVSDB, classifies
by source IP, and iperf3 UDP streams measured at the receiver show borrowing, min-rates,
reclaim, ingress policing and a meter. Plus REST, restart and OVSDB cleanliness."""
import subprocess
import threading
import time

import pytest

from mininet_topos import harness
from mininet_topos.topos import QOS_LAB_CONFIG, QosLab
from mininet_topos.labkit.udpcount import ALL_QUEUES_LENGTH, numbered, ping_received

pytestmark = pytest.mark.integration
APPS = ("apps/l2_switch.py", "apps/qos.py")
CONFIG = dict(QOS_LAB_CONFIG, l2_switch={"mode": "datapath"})
MBIT = 1e6
MIN_RATES = (3, 1, 6)


def start_lab(lab, topo=None):
    controller, network = lab(topo or QosLab(), CONFIG, apps=APPS)
    harness.wait_qos_ready(controller)
    assert network.pingall() == 0
    return controller, network


def senders(network):
    return [network[f"h{i}"] for i in (1, 2, 3)]


def ovsdb_rows(table):
    out = subprocess.run(["ovs-vsctl", "--bare", "--columns=_uuid", "find", table,
                          "external_ids:sdn-owner=qos"], capture_output=True, text=True,
                         check=True).stdout
    return out.split()


def within(value, target, tolerance):
    return abs(value - target) <= tolerance * target


def test_the_htb_lab(lab):
    controller, network = start_lab(lab)
    h4 = network["h4"]
    # each sender alone borrows up to the port's max-rate
    for sender in senders(network):
        (alone,) = harness.udp_streams(h4, [(sender, 0, 4)])
        assert within(harness.mean_rate(alone), 10 * MBIT, 0.10), (sender.name, alone)
    # all three at once: each gets its min-rate
    together = harness.udp_streams(h4, [(s, 0, 6) for s in senders(network)])
    rates = [harness.mean_rate(r) for r in together]
    for rate, minimum in zip(rates, MIN_RATES):
        assert within(rate, minimum * MBIT, 0.15), (rates, together)
    assert within(sum(rates), 10 * MBIT, 0.10), rates
    # reclaim: sender 0 alone, then sender 2 starts and gets its share within 3 s
    first, third = senders(network)[0], senders(network)[2]
    alone, joined = harness.udp_streams(h4, [(first, 0, 8), (third, 3, 5)])
    assert harness.mean_rate([s for s in alone if s[0] <= 3]) > 9 * MBIT, alone
    assert any(rate >= 5 * MBIT for t, rate in joined if t <= 3 + 3), joined
    # the queue counters saw it, through OpenFlow queue stats
    status, stats = controller.rest("GET", "/v1/qos/1/s1-eth4/stats")
    assert status == 200
    assert all(stats["queues"][q]["tx_bytes"] > 4_000_000 for q in ("0", "1", "2")), stats


def flooding(receiver, sender, seconds):
    """A 20 Mbit/s iperf3 UDP stream from `sender`, in the background; join() it."""
    thread = threading.Thread(target=harness.udp_streams, args=(receiver, [(sender, 0, seconds)]),
                              daemon=True)
    thread.start()
    time.sleep(1.2)   # past iperf3's start: the leaf is full from here on
    return thread


def test_loss_through_the_shaped_port(lab):
    """iperf3 rates cannot show lost datagrams of slow streams: count them. Each queue
    at a low rate (all three at once), a slow stream whose sender also floods another
    queue (a full tail-drop leaf made OVS drop the rest of each send batch: 43-90 of
    100 arrived), TCP goodput, and ping loss next to a flood."""
    controller, network = start_lab(lab)
    h4 = network["h4"]
    for per_second in (20, 100, 2000):
        results = numbered(h4, [(s, 100, per_second) for s in senders(network)],
                           length=ALL_QUEUES_LENGTH)
        for sender, (seen, report) in zip(senders(network), results):
            assert report["errors"] == 0 and len(seen) >= 95, (sender.name, per_second, seen)
    # h1's datagrams to UDP port 5999 go to queue 2 while the rest of h1's traffic
    # floods queue 0: both share OVS's send batches
    status, rule = controller.rest("POST", "/v1/qos/1/rules", {
        "match": {"ipv4_src": QosLab.SENDERS[0], "udp_dst": 5999}, "queue": 2,
        "priority": 300, "port": "s1-eth4"})
    assert status == 201, rule
    assert harness.wait_until(lambda: "0000176f/0000ffff at 20" in subprocess.run(
        ["tc", "filter", "show", "dev", "s1-eth4"], capture_output=True, text=True).stdout, 10)
    h1 = senders(network)[0]
    for per_second, count in ((20, 60), (100, 200), (2000, 2000)):
        flood = flooding(h4, h1, 3 + count / per_second)
        ((seen, _),) = numbered(h4, [(h1, count, per_second)], base_port=5999)
        flood.join()
        assert len(seen) >= 0.95 * count, (per_second, len(seen), count)
    assert controller.rest("DELETE", f"/v1/qos/1/rules/{rule['id']}")[0] == 200
    # TCP: goodput close to the port's max-rate, and not above it
    goodput = harness.iperf3(h1, h4, seconds=4)
    assert 8.5 * MBIT <= goodput <= 10.5 * MBIT, goodput
    # ping through the shaped port: alone, and from h2 (queue 1) while h1 floods queue 0
    h2 = senders(network)[1]
    assert ping_received(h2, h4) >= 49
    flood = flooding(h4, h1, 4)
    answered = ping_received(h2, h4)
    flood.join()
    assert answered >= 48, answered


def test_ingress_policing_and_a_meter_rule(lab):
    controller, network = start_lab(lab)
    h1, h2, _ = senders(network)
    status, body = controller.rest("PUT", "/v1/qos/1/s1-eth1",
                                   {"ingress_policing": {"rate": "5M", "burst": "500k"}})
    assert status == 200, body
    rate = subprocess.run(["ovs-vsctl", "get", "interface", "s1-eth1", "ingress_policing_rate"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert rate == "5000"
    (policed,) = harness.udp_streams(network["h4"], [(h1, 0, 5)])
    assert within(harness.mean_rate(policed), 5 * MBIT, 0.15), policed
    status, rule = controller.rest("POST", "/v1/qos/1/rules", {
        "match": {"ipv4_src": QosLab.SENDERS[1]}, "priority": 200,
        "meter": {"rate": "2M", "burst": "200k"}})
    assert status == 201, rule
    (metered,) = harness.udp_streams(network["h4"], [(h2, 0, 5)])
    assert within(harness.mean_rate(metered), 2 * MBIT, 0.15), metered
    # h3 is neither policed nor metered
    (free,) = harness.udp_streams(network["h4"], [(senders(network)[2], 0, 3)])
    assert harness.mean_rate(free) > 9 * MBIT, free


def test_rest_restart_bad_input_and_no_orphaned_rows(lab):
    controller, network = start_lab(lab)
    qos_rows, queue_rows = ovsdb_rows("qos"), ovsdb_rows("queue")
    assert len(qos_rows) == 1 and len(queue_rows) == 3
    for body in ({"max_rate": "10M", "queues": {"0": {"min_rate": "20M"}}},
                 {"max_rate": "10M", "queues": {"0": {"min_rate": "6M"}, "1": {"min_rate": "6M"}}},
                 {"max_rate": "-1", "queues": {"0": {"min_rate": "1M"}}},
                 {"max_rate": "fast", "queues": {"0": {"min_rate": "1M"}}}):
        status, reply = controller.rest("PUT", "/v1/qos/1/s1-eth4", body)
        assert status == 400 and reply["error"], reply
    status, reply = controller.rest("POST", "/v1/qos/1/rules", {"match": {}, "queue": 7})
    assert status == 400 and "queue 7" in reply["error"]
    assert (ovsdb_rows("qos"), ovsdb_rows("queue")) == (qos_rows, queue_rows)
    status, rule = controller.rest("POST", "/v1/qos/1/rules",
                                   {"match": {"udp_dst": 5001}, "queue": 2, "priority": 300})
    assert status == 201
    controller.stop()
    controller.start()
    assert network.net.waitConnected(timeout=20)
    harness.wait_qos_ready(controller)
    status, rules = controller.rest("GET", "/v1/qos/1/rules")
    assert [r["id"] for r in rules] == [1, 2, 3, 4]
    assert any(f.match_text == "udp,tp_dst=5001" and f.action("set_queue") == 2
               for f in network.flows("s1", table=3))
    # no rewrite on reconnect: the same rows
    assert (ovsdb_rows("qos"), ovsdb_rows("queue")) == (qos_rows, queue_rows)
    assert controller.rest("DELETE", "/v1/qos/1/s1-eth4")[0] == 409  # rules use its queues
    assert controller.rest("DELETE", "/v1/qos/1/rules")[1] == {"deleted": [1, 2, 3, 4]}
    status, body = controller.rest("DELETE", "/v1/qos/1/s1-eth4")
    assert status == 200 and not body["configured"]
    assert ovsdb_rows("qos") == [] and ovsdb_rows("queue") == []
    assert harness.wait_until(lambda: "htb" not in subprocess.run(
        ["tc", "qdisc", "show", "dev", "s1-eth4"], capture_output=True, text=True).stdout, 5)


def test_a_tclink_that_replaces_the_tree_is_reported_and_a_put_rebuilds_it(lab):
    controller, network = start_lab(lab, QosLab(receiver_bw=5))
    network["s1"].intf("s1-eth4").config(bw=5)   # what TCLink does to a live link

    def problems():
        return controller.rest("GET", "/v1/qos/1/s1-eth4")[1]["tc_problems"]
    assert harness.wait_until(lambda: problems(), 10)
    assert "TCLink" in problems()[0]
    body = {k: v for k, v in QOS_LAB_CONFIG["qos"]["ports"][0].items()
            if k not in ("switch", "port")}
    assert controller.rest("PUT", "/v1/qos/1/s1-eth4", body)[0] == 200
    assert harness.wait_until(lambda: problems() == [], 10), problems()
    together = harness.udp_streams(network["h4"], [(s, 0, 4) for s in senders(network)])
    rates = [harness.mean_rate(r) for r in together]
    for rate, minimum in zip(rates, MIN_RATES):
        assert within(rate, minimum * MBIT, 0.15), rates
