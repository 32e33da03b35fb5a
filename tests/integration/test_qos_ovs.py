"""The QoS app on real Open vSwitch: ingress policing and a meter measured with iperf3, REST,
restart, OVSDB cleanliness and a replaced tree. The HTB lab itself (borrowing, min-rates,
reclaim, queue counters, loss, TCP goodput, ping next to a flood) runs end to end in
tests/integration/test_labs.py, whose checks are the lab's."""
import subprocess

import pytest

from controller import pipeline
from mininet_topos import harness
from mininet_topos.topos import QOS_LAB_CONFIG, QosLab

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
               for f in network.flows("s1", table=pipeline.table_id("qos")))
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
