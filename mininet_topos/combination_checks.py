"""Each app's part in the combination matrix: its config section for a layout and its
basic check (learning pings, VLAN isolation, a QoS queue counting its traffic with
nothing lost, a VIP serving, a bond failing over, no storm). A check raises
AssertionError with what it saw; `Storm` says a loop is flooding.

Apart from mininet_topos/combinations.py (which apps combine, and the runner that
merges these sections and calls these checks) because a check is about one app on a
running network, whatever else is loaded.
"""
import subprocess
import time

from mininet_topos import harness
from mininet_topos.combination_layouts import IPS, VIP, VLAN_OF


# --- config sections ------------------------------------------------------------------

def vlan_section(layout):
    return {"ports": [{"switch": layout.hosts[h][0], "port": layout.hosts[h][1], "tag": tag}
                      for h, tag in VLAN_OF.items()]}


def qos_section(layout):
    switch, port = layout.hosts["h4"]
    name = f"{switch}-eth{port}"
    return {"ports": [{"switch": switch, "port": name, "max_rate": "10M",
                       "queues": {"0": {"min_rate": "3M"}, "1": {"min_rate": "1M"}}}],
            "rules": [{"switch": switch, "id": 1, "queue": 1, "port": name,
                       "match": {"ipv4_src": IPS["h1"], "ipv4_dst": IPS["h4"]}}],
            "check_interval": 1}


def lb_section(layout):
    return {"subnets": ["10.0.0.0/24"],
            "vips": [{"vip": VIP, "protocol": "tcp", "port": 80, "mode": "nat",
                      "backends": [{"ip": IPS[b], "port": 8080} for b in ("b1", "b2")],
                      "health": {"interval_s": 0.5, "timeout_s": 0.5}}]}


def bond_section(layout):
    return {"bonds": [{"switch": switch, "name": f"{switch}-bond",
                       "members": [f"{switch}-eth{p}" for p in ports], "mode": "active-backup",
                       "primary": f"{switch}-eth{ports[0]}"}
                      for switch, ports in layout.bonds().items()]}


def security_section(layout):
    """h2 is a web server on 8081 behind a security group that also lets pings in (the
    learning and VLAN checks ping it). Not a VIP's backend: the load balancer's table
    sends to backends past the security stage (docs/limitations.md)."""
    switch, port = layout.hosts["h2"]
    return {"groups": {"web": [{"direction": "ingress", "protocol": "tcp", "ports": 8081},
                               {"direction": "ingress", "protocol": "icmp"}]},
            "ports": [{"switch": switch, "port": f"{switch}-eth{port}",
                       "addresses": [IPS["h2"]], "groups": ["web"]}]}


# --- basic checks (each raises AssertionError with what it saw) -----------------------

def check_learning(ctx):
    pairs = [("h1", "h2"), ("h1", "h4"), ("h2", "h4")]
    bad = [p for p in pairs if not harness.wait_until(
        lambda p=p: harness.ping(ctx.host(p[0]), ctx.host(p[1]), timeout=1), 8)]
    assert not bad, f"no ping between {bad}"


def check_vlan(ctx):
    assert harness.wait_until(lambda: harness.ping(ctx.host("h1"), ctx.host("h2")), 8), \
        "h1 -> h2 (both VLAN 10) fails"
    leaks = [(a, b) for a, b in (("h1", "h3"), ("h3", "h2"), ("h3", "h4"))
             if harness.ping(ctx.host(a), ctx.host(b))]
    assert not leaks, f"VLAN 10 and 20 reach each other: {leaks}"


def _icmp_in_echos(host):
    text = host.cmd("cat /proc/net/snmp")
    names, values = [line.split()[1:] for line in text.splitlines() if line.startswith("Icmp:")]
    return int(values[names.index("InEchos")])


def check_qos(ctx):
    switch, port = ctx.layout.hosts["h4"]
    path = f"/v1/qos/{int(switch[1:])}/{switch}-eth{port}"

    def ready():
        status, body = ctx.controller.rest("GET", path)
        return status == 200 and body.get("tc_problems") == [] and body.get("queues")
    assert harness.wait_until(ready, 15), f"QoS never ready: {ctx.controller.rest('GET', path)}"
    h1, h4 = ctx.host("h1"), ctx.host("h4")
    harness.wait_until(lambda: harness.ping(h1, h4), 8)   # ARP settled

    def queue_packets():
        stats = ctx.controller.rest("GET", path + "/stats")[1]
        return stats["queues"]["1"]["tx_packets"]
    before_q, before_rx = queue_packets(), _icmp_in_echos(h4)
    h1.cmd(f"ping -q -c 50 -i 0.02 -W 1 {h4.IP()}")
    arrived = _icmp_in_echos(h4) - before_rx
    assert arrived == 50, f"h4 got {arrived} of 50 echo requests (lost through queue 1)"
    counted = 0
    for _ in range(10):   # OVS refreshes queue counters about once a second
        counted = queue_packets() - before_q
        if counted >= 50:
            break
        time.sleep(0.5)
    assert counted >= 50, f"queue 1 counted {counted} packets of h1's 50"


def check_lb(ctx):
    servers = [harness.start_http(ctx.host(b), b, 8080) for b in ("b1", "b2")]
    ctx.cleanups += [s.kill for s in servers]

    def healthy():
        body = ctx.controller.rest("GET", "/v1/lb/vips/1")[1]
        return sum(b["healthy"] for b in body["backends"]) == 2
    assert harness.wait_until(healthy, 10), \
        f"backends never healthy: {ctx.controller.rest('GET', '/v1/lb/vips/1')[1]}"
    result = harness.http_requests(ctx.host("h1"), VIP, 80, 20)
    assert result["failed"] == 0 and set(result["served"]) <= {"b1", "b2"} and \
        sum(result["served"].values()) == 20, f"VIP served {result}"


def check_security(ctx):
    h1, h2 = ctx.host("h1"), ctx.host("h2")
    servers = [harness.start_http(h2, "h2", port) for port in (8081, 8082)]
    ctx.cleanups += [s.kill for s in servers]

    def served(port):
        return sum(harness.http_requests(h1, IPS["h2"], port, 1)["served"].values())
    assert harness.wait_until(lambda: served(8081) == 1, 10), \
        "h1 cannot reach h2's allowed TCP 8081"
    assert served(8082) == 0, "h1 reached h2's TCP 8082: no rule allows it"
    assert harness.wait_until(lambda: harness.ping(h2, h1, timeout=1), 8), \
        "h2's own ping to h1 is not answered (egress or its replies blocked)"


def check_bond(ctx):
    hb1, hb2 = ctx.host("hb1"), ctx.host("hb2")
    assert harness.wait_until(lambda: harness.ping(hb1, hb2, timeout=0.5), 15), \
        "no ping across the bond"
    a, pa, b, pb = ctx.layout.bond_links[0]            # the primary members' link
    for name in (f"{a}-eth{pa}", f"{b}-eth{pb}"):
        subprocess.run(["ip", "link", "set", name, "down"], check=True)
    try:
        assert harness.wait_until(lambda: harness.ping(hb1, hb2, timeout=0.5), 10), \
            "no failover: the bond's primary link down and hb1 cannot reach hb2"
    finally:
        for name in (f"{a}-eth{pa}", f"{b}-eth{pb}"):
            subprocess.run(["ip", "link", "set", name, "up"], check=True)
    assert_no_storm(ctx.network, 2)


def check_topology(ctx):
    # with the topology app loaded the bond app claims nothing: bonded bridges stay
    # in the fabric (apps/bond.py), so the fabric has every switch
    want = len(ctx.network.switches)

    def converged():
        view = ctx.controller.rest("GET", "/v1/topology")[1]
        return len(view["switches"]) == want and view["pending_ports"] == 0
    assert_no_storm(ctx.network, 1)      # already looping: nothing else is worth a wait
    assert harness.wait_until(converged, 20), ctx.controller.rest("GET", "/v1/topology")[1]
    ctx.network.pingall(timeout="0.5")   # broadcasts everywhere: a loop would storm now
    assert_no_storm(ctx.network, 3)


def link_tx_packets(network):
    """{interface: tx packets} of every switch-to-switch interface."""
    return {intf.name: int(open(f"/sys/class/net/{intf.name}/statistics/tx_packets").read())
            for _, intf in harness.inter_switch_interfaces(network)}


class Storm(AssertionError):
    """A loop is flooding: every other check would only wait out its timeouts (and the
    storm takes the machine's cores meanwhile), so the run stops at once."""


def assert_no_storm(network, seconds):
    before = link_tx_packets(network)
    if not before:
        return
    time.sleep(seconds)
    after = link_tx_packets(network)
    rates = {n: (after[n] - before[n]) / seconds for n in before}
    if max(rates.values()) >= 300:
        raise Storm(f"storm: frames/s per link {rates}")
