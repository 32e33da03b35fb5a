"""Load balancing on real Open vSwitch: a VIP served by an OpenFlow select group, four
backends answering HTTP with their names, clients on the same switch."""
import json
import re
import subprocess
import time

import pytest

from mininet_topos import harness
from mininet_topos.topos import LB_LAB_SUBNETS, LbLab
from tests.support.lb_lab import BACKEND_IPS, VIP, vip_body, wait_healthy

pytestmark = pytest.mark.integration
APPS = ("apps/l2_switch.py", "apps/lb.py")


def start(lab, vips=()):
    config = {"l2_switch": {"mode": "datapath"},
              "lb": {"subnets": LB_LAB_SUBNETS, "vips": list(vips)}}
    return lab(LbLab(), config, apps=APPS)


@pytest.fixture
def servers():
    started = []

    def serve(network, port=8080, numbers=(1, 2, 3, 4)):
        for n in numbers:
            started.append((n, port, harness.start_http(network[f"b{n}"], f"b{n}", port)))
        return started
    yield serve
    for _, _, proc in started:
        proc.kill()


def shares(result):
    total = sum(result["served"].values())
    return {name: count / total for name, count in result["served"].items()}


def test_nat_spreads_requests_over_the_backends_by_weight(lab, servers):
    controller, network = start(lab, [vip_body()])
    servers(network)
    wait_healthy(controller)
    c1 = network["c1"]
    with harness.Capture([(c1, "c1-eth0")], bpf="tcp") as capture:
        result = harness.http_requests(c1, VIP, 80, 400)
    assert result["failed"] == 0
    assert set(result["served"]) == {"b1", "b2", "b3", "b4"}
    assert all(0.15 <= share <= 0.35 for share in shares(result).values()), result
    sources = {m.group(1) for line in capture.lines["c1-eth0"]
               for m in [re.search(r" (\d+\.\d+\.\d+\.\d+)\.\d+ > 10\.0\.0\.1\.", line)] if m}
    assert sources == {VIP}                      # the client sees the VIP, never a backend
    # a client may still talk to a backend directly (c2: c1 reusing a source port of a
    # VIP connection to b1 would meet that connection's TIME_WAIT, as with any NAT LB)
    direct = harness.http_requests(network["c2"], BACKEND_IPS[0], 8080, 20)
    assert direct == {"served": {"b1": 20}, "failed": 0}
    time.sleep(1.5)                              # OVS updates flow and group counters ~1/s
    stats = controller.rest("GET", "/v1/lb/vips/1/stats")[1]
    assert sum(b["packets"] for b in stats["backends"]) >= 400
    assert all(b["packets"] > 0 and b["healthy"] for b in stats["backends"])
    status, body = controller.rest("PATCH", "/v1/lb/vips/1",
                                   {"backends": vip_body(weights=(3, 1, 1, 1))["backends"]})
    assert status == 200, body
    wait_healthy(controller)
    weighted = harness.http_requests(c1, VIP, 80, 400)
    assert weighted["failed"] == 0 and 0.40 <= shares(weighted)["b1"] <= 0.60, weighted


def test_two_nat_vips_sharing_their_backends_each_answer_from_their_own_address(lab, servers):
    second = "10.0.0.101"
    controller, network = start(lab, [vip_body(), vip_body(vip=second)])
    servers(network)
    wait_healthy(controller, vip_id=1)
    wait_healthy(controller, vip_id=2)
    c1 = network["c1"]
    for vip in (VIP, second):
        with harness.Capture([(c1, "c1-eth0")], bpf="tcp") as capture:
            result = harness.http_requests(c1, vip, 80, 40)
        assert result["failed"] == 0 and len(result["served"]) >= 3, (vip, result)
        sources = {m.group(1) for line in capture.lines["c1-eth0"]
                   for m in [re.search(r" (\d+\.\d+\.\d+\.\d+)\.\d+ > 10\.0\.0\.1\.", line)]
                   if m}
        assert sources == {vip}, (vip, sources)


def test_dsr_backends_answer_from_the_vip_themselves(lab, servers):
    controller, network = start(lab, [vip_body(mode="dsr", backend_port=80)])
    for n in (1, 2, 3, 4):
        backend = network[f"b{n}"]
        backend.cmd(f"ip addr add {VIP}/32 dev lo; sysctl -qw net.ipv4.conf.all.arp_ignore=1 "
                    f"net.ipv4.conf.all.arp_announce=2")
    servers(network, port=80)
    wait_healthy(controller)
    c1 = network["c1"]
    with harness.Capture([(c1, "c1-eth0")], bpf="tcp src port 80") as capture:
        result = harness.http_requests(c1, VIP, 80, 100)
    assert result["failed"] == 0 and len(result["served"]) >= 3, result
    reply_macs = {line.split()[1] for line in capture.lines["c1-eth0"] if VIP in line}
    backend_macs = {network[f"b{n}"].MAC() for n in (1, 2, 3, 4)}
    assert reply_macs and reply_macs <= backend_macs   # straight from the backends


def test_a_dead_backend_leaves_and_comes_back(lab, servers):
    controller, network = start(lab, [vip_body()])
    started = servers(network)
    wait_healthy(controller)
    c1 = network["c1"]
    b1_server = next(proc for n, _, proc in started if n == 1)
    b1_server.kill()
    b1_server.wait()
    time.sleep(0.5 + 0.5 + 1)                    # interval + timeout + 1 s
    after = harness.http_requests(c1, VIP, 80, 200)
    assert after["failed"] == 0 and "b1" not in after["served"], after
    servers(network, numbers=(1,))
    wait_healthy(controller, timeout=0.5 + 0.5 + 1)
    back = harness.http_requests(c1, VIP, 80, 200)
    assert back["failed"] == 0 and back["served"].get("b1", 0) > 0, back


def test_long_streams_survive_a_fifth_backend(lab):
    controller, network = start(lab, [vip_body(port=9000, backend_port=9000)])
    servers = [network[f"b{n}"].popen(["python3", str(harness.HTTPLOAD), "stream-serve",
                                       "9000"]) for n in (1, 2, 3, 4, 5)]
    try:
        assert harness.wait_until(lambda: all(":9000 " in network[f"b{n}"].cmd("ss -ltn")
                                              for n in (1, 2, 3, 4, 5)), 5)
        wait_healthy(controller)
        # eight streams: without pinning, a fifth bucket would move some of them to a
        # backend that knows nothing of them (and reset them)
        client = network["c1"].popen(["python3", str(harness.HTTPLOAD), "stream-get", VIP,
                                      "9000", "8", "6"], stdout=subprocess.PIPE, text=True)
        time.sleep(2)
        status, body = controller.rest("POST", "/v1/lb/vips/1/backends/10.0.0.15",
                                       {"port": 9000})
        assert status == 201, body
        out, _ = client.communicate(timeout=30)
        result = json.loads(out)
        assert result["errors"] == [], result["errors"]
        assert all(min(per_second) > 0 for per_second in result["bytes"]), result["bytes"]
        wait_healthy(controller, count=5)
    finally:
        for server in servers:
            server.kill()


def test_rest_bad_input_and_a_restart(lab, servers):
    controller, network = start(lab)
    servers(network)
    bad = [({"vip": "192.168.1.1", "port": 80, "backends": [{"ip": "10.0.0.11"}]}, 400),
           (vip_body(backends=[]), 400),
           (vip_body(weights=(0, 1, 1, 1)), 400),
           (vip_body(vip="10.0.0.999"), 400),
           ({"port": 80, "backends": [{"ip": "10.0.0.11"}]}, 400)]
    for body, status in bad:
        code, reply = controller.rest("POST", "/v1/lb/vips", body)
        assert code == status and reply["error"], (body, reply)
    assert controller.rest("GET", "/v1/lb/vips")[1] == []
    assert controller.rest("POST", "/v1/lb/vips", vip_body())[0] == 201
    assert controller.rest("POST", "/v1/lb/vips", vip_body())[0] == 409
    assert controller.rest("GET", "/v1/lb/vips/7")[0] == 404
    assert controller.rest("POST", "/v1/lb/vips/1/backends/10.0.0.11")[0] == 409
    assert controller.rest("DELETE", "/v1/lb/vips/1/backends/10.0.0.99")[0] == 404
    wait_healthy(controller)
    controller.stop()
    controller.start()
    assert network.net.waitConnected(timeout=20)
    wait_healthy(controller)
    result = harness.http_requests(network["c2"], VIP, 80, 100)
    assert result["failed"] == 0 and len(result["served"]) == 4, result
