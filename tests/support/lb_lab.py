"""Load-balancer lab helpers for integration tests: a VIP body, waiting for health."""
from mininet_topos import harness


VIP = "10.0.0.100"

BACKEND_IPS = [f"10.0.0.{10 + n}" for n in (1, 2, 3, 4)]


def vip_body(vip=VIP, port=80, backend_port=8080, mode="nat", weights=(1, 1, 1, 1), **more):
    return dict({"vip": vip, "protocol": "tcp", "port": port, "mode": mode,
                 "backends": [{"ip": ip, "port": backend_port, "weight": w}
                              for ip, w in zip(BACKEND_IPS, weights)],
                 "health": {"interval_s": 0.5, "timeout_s": 0.5}}, **more)


def wait_healthy(controller, vip_id=1, count=4, timeout=10):
    def healthy():
        body = controller.rest("GET", f"/v1/lb/vips/{vip_id}")[1]
        return sum(b["healthy"] for b in body["backends"]) == count
    assert harness.wait_until(healthy, timeout), controller.rest("GET", f"/v1/lb/vips/{vip_id}")
