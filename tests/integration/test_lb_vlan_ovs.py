"""The load balancer together with the learning and VLAN apps in one ryu-manager, on
real Open vSwitch: (a) no VLAN ports configured (the VLAN app still tags every frame
with VLAN 0 inside the pipeline), (b) clients and backends on access VLAN 10, with a
client on VLAN 20 that must not reach the VIP."""
import pytest

from mininet_topos import harness
from mininet_topos.topos import LB_LAB_SUBNETS, LbLab

pytestmark = pytest.mark.integration
APPS = ("apps/l2_switch.py", "apps/vlan.py", "apps/lb.py")
VIP = "10.0.0.100"
BACKEND_IPS = [f"10.0.0.{10 + n}" for n in (1, 2, 3, 4)]
REQUESTS = 20


def vip_body():
    return {"vip": VIP, "protocol": "tcp", "port": 80, "mode": "nat",
            "backends": [{"ip": ip, "port": 8080} for ip in BACKEND_IPS],
            "health": {"interval_s": 0.5, "timeout_s": 0.5}}


def access(port, tag):
    return {"switch": "s1", "port": port, "tag": tag}


def run(lab, mode, vlan_ports, also=None):
    """Start the three apps, serve HTTP on b1..b4, wait (bounded) for health; the
    VIP's backends as REST shows them, and c1's requests (then `also(network)` while
    the servers still run)."""
    config = {"l2_switch": {"mode": mode}, "vlan": {"ports": vlan_ports},
              "lb": {"subnets": LB_LAB_SUBNETS, "vips": [vip_body()]}}
    controller, network = lab(LbLab(), config, apps=APPS)
    harness.wait_vlans_programmed(controller, network)
    servers = [harness.start_http(network[f"b{n}"], f"b{n}", 8080) for n in (1, 2, 3, 4)]
    try:
        def healthy():
            body = controller.rest("GET", "/v1/lb/vips/1")[1]
            return sum(b["healthy"] for b in body["backends"]) == 4
        harness.wait_until(healthy, 10)   # not asserted here: the counts below say it all
        backends = controller.rest("GET", "/v1/lb/vips/1")[1]["backends"]
        result = harness.http_requests(network["c1"], VIP, 80, REQUESTS)
        print(f"\nobserved: lb+vlan ({mode}, vlan ports {len(vlan_ports)}): backends located "
              f"{sum(b['mac'] is not None for b in backends)}/4, healthy "
              f"{sum(b['healthy'] for b in backends)}/4, served "
              f"{sum(result['served'].values())}/{REQUESTS}, failed {result['failed']}")
        return backends, result, also(network) if also else None
    finally:
        for proc in servers:
            proc.kill()


def check_served(backends, result):
    assert [b["mac"] is not None and b["healthy"] for b in backends] == [True] * 4, backends
    assert result["failed"] == 0 and sum(result["served"].values()) == REQUESTS, result
    assert len(result["served"]) >= 2, result          # spread, not one backend by luck


@pytest.mark.parametrize("mode", ["datapath", "reactive"])
def test_lb_with_the_vlan_app_and_no_vlan_ports(lab, mode):
    backends, result, _ = run(lab, mode, [])
    check_served(backends, result)


def test_lb_on_an_access_vlan(lab):
    ports = [access(1, 10), access(2, 20)] + [access(10 + n, 10) for n in (1, 2, 3, 4, 5)]
    # c2 is on VLAN 20: the VIP (its backends are on VLAN 10) does not answer there
    backends, result, other = run(lab, "datapath", ports,
                                  also=lambda network: harness.http_requests(network["c2"], VIP,
                                                                             80, 3))
    print(f"lb+vlan: VLAN 20 client served {sum(other['served'].values())}/3")
    check_served(backends, result)
    assert {b.get("vlan") for b in backends} == {10}, backends
    assert other == {"served": {}, "failed": 3}, other
