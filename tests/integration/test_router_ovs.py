"""The router on real Open vSwitch, with the learning and VLAN apps in one ryu-manager:
the cloud chapter's network on one switch. h1 (VLAN 10) and h2 (VLAN 20) are tenant VMs
behind their gateways, h3 is the upstream router on the external VLAN 100, h4 sits in
VLAN 30, which has no gateway.

- the gateways answer ping; h1 and h2 reach each other routed (TTL less one);
- h1 reaches the outside through SNAT: h3's capture sees only the external address;
- the outside reaches no private address, and no floating IP before it is made;
- a floating IP made over REST serves h2's web server to the outside, and h2's own
  traffic out leaves as it; removed, it serves no more;
- a static route made over REST reaches an address behind h2; the longest prefix wins;
- h4 gets nowhere; bad REST bodies are 400s that change nothing."""
import re
import subprocess

import pytest

from mininet_topos import harness
from mininet_topos.topos import Ring, Single

pytestmark = pytest.mark.integration
APPS = ("apps/l2_switch.py", "apps/vlan.py", "apps/router.py")
HOSTS = {  # name: (VLAN, address/prefix, gateway)
    "h1": (10, "10.0.10.2/24", "10.0.10.1"),
    "h2": (20, "10.0.20.2/24", "10.0.20.1"),
    "h3": (100, "203.0.113.254/24", None),
    "h4": (30, "10.0.30.2/24", "10.0.30.1"),
}
CONFIG = {
    "l2_switch": {"mode": "reactive"},
    "vlan": {"ports": [{"switch": "s1", "port": f"s1-eth{n}", "tag": HOSTS[f"h{n}"][0]}
                       for n in range(1, 5)]},
    "router": {"interfaces": [{"vlan": 10, "address": "10.0.10.1/24"},
                              {"vlan": 20, "address": "10.0.20.1/24"},
                              {"vlan": 100, "address": "203.0.113.1/24", "external": True}],
               "routes": [{"prefix": "0.0.0.0/0", "next_hop": "203.0.113.254"}],
               "snat": [10, 20]},
}


def pings(src, address, count=1):
    """How many of `count` pings to `address` were answered, and their TTLs."""
    out = src.cmd(f"ping -c {count} -W 1 -i 0.2 {address}")
    found = re.search(r"(\d+) received", out)
    return (int(found.group(1)) if found else 0), [int(t) for t in re.findall(r"ttl=(\d+)", out)]


def reaches(src, address):
    """Answered within a few tries (the first frame to a host the router does not know
    yet waits for its ARP answer)."""
    return harness.wait_until(lambda: pings(src, address)[0] == 1, 5, step=0.1)


def sources_seen(capture, intf):
    """The IPv4 sources of what reached `intf` (tcpdump -e: "...: 10.0.0.1 > 10.0.0.2: ")."""
    return {m.group(1) for line in capture.lines[intf]
            for m in [re.search(r": (\d+\.\d+\.\d+\.\d+) > \d+\.\d+\.\d+\.\d+", line)] if m}


def served(client, address, port=80):
    return sum(harness.http_requests(client, address, port, 2)["served"].values())


def test_the_course_router_gateways_routing_snat_floating_ips_and_routes(lab):
    controller, network = lab(Single(k=4), CONFIG, apps=APPS)
    harness.wait_vlans_programmed(controller, network)
    hosts = {name: network[name] for name in HOSTS}
    for name, (_, address, gateway) in HOSTS.items():
        host = hosts[name]
        host.cmd(f"ip addr flush dev {name}-eth0 && ip addr add {address} dev {name}-eth0")
        if gateway:
            host.cmd(f"ip route add default via {gateway}")
    h1, h2, h3, h4 = (hosts[n] for n in ("h1", "h2", "h3", "h4"))

    # the gateways answer, and routing between the tenants decrements the TTL once
    assert reaches(h1, "10.0.10.1") and reaches(h2, "10.0.20.1")
    assert reaches(h1, "10.0.20.1")                 # the other gateway, through the router
    assert reaches(h1, "10.0.20.2")
    received, ttls = pings(h1, "10.0.20.2", 5)
    print(f"observed: h1 -> h2 routed, {received} of 5 answered, TTLs {ttls}")
    assert received == 5 and set(ttls) == {63}
    known = {n["ip"] for n in controller.rest("GET", "/v1/router")[1]["neighbours"]}
    assert {"10.0.10.2", "10.0.20.2"} <= known, known
    # the trace follows a routed packet to h2's port (it starts at TTL 64: at 0 the
    # router's dec_ttl would send it to the controller)
    status, answer = controller.rest("POST", "/v1/trace", {
        "switch": "s1", "in_port": "s1-eth1", "dl_src": h1.MAC(), "dl_dst": "02:00:00:00:fe:01",
        "proto": "udp", "nw_src": "10.0.10.2", "nw_dst": "10.0.20.2", "tp_dst": 53})
    assert status == 200 and [d["port"] for d in answer["delivered"]] == [2], answer
    # a TTL that runs out at the router: the gateway says so (ping -t 1, traceroute)
    expired = h1.cmd("ping -c 1 -W 2 -t 1 10.0.20.2")
    print(f"observed: ping -t 1 through the router: {expired.splitlines()[1:2]}")
    assert "From 10.0.10.1" in expired and "Time to live exceeded" in expired, expired

    # to the outside through SNAT: h3 sees the external address only
    with harness.Capture([(h3, "h3-eth0")], bpf="icmp") as capture:
        assert reaches(h1, "203.0.113.254")
        assert pings(h1, "203.0.113.254", 3)[0] == 3
        assert pings(h2, "203.0.113.254", 3)[0] == 3
    seen = sources_seen(capture, "h3-eth0")
    print(f"observed: sources h3 saw from the tenants: {sorted(seen)}")
    assert seen == {"203.0.113.1"}

    # the outside gets in nowhere by itself
    h3.cmd("ip route add 10.0.0.0/8 via 203.0.113.1")
    assert pings(h3, "10.0.10.2", 2)[0] == 0 and pings(h3, "10.0.20.2", 2)[0] == 0
    web = harness.start_http(h2, "vm2", 80)
    try:
        assert served(h3, "203.0.113.10") == 0
        # a floating IP for h2: its web server is served to the outside, its own
        # traffic leaves as the floating IP
        fip = {"external": "203.0.113.10", "internal": "10.0.20.2"}
        assert controller.rest("POST", "/v1/router/floating_ips", fip)[0] == 201
        assert harness.wait_until(lambda: served(h3, "203.0.113.10") == 2, 5)
        assert reaches(h3, "203.0.113.10")
        with harness.Capture([(h3, "h3-eth0")], bpf="icmp") as capture:
            assert pings(h2, "203.0.113.254", 2)[0] == 2
        assert sources_seen(capture, "h3-eth0") == {"203.0.113.10"}
        assert pings(h3, "10.0.20.2", 1)[0] == 0     # the private address stays closed
        assert controller.rest("DELETE", "/v1/router/floating_ips/203.0.113.10")[0] == 200
        assert harness.wait_until(lambda: served(h3, "203.0.113.10") == 0, 5)
    finally:
        web.kill()

    # a static route over REST: 192.0.2.0/24 lives behind h2; the longest prefix wins
    h2.cmd("ip addr add 192.0.2.1/32 dev lo")
    assert pings(h1, "192.0.2.1", 1)[0] == 0            # the default route: outside
    route = {"prefix": "192.0.2.0/24", "next_hop": "10.0.20.2"}
    assert controller.rest("POST", "/v1/router/routes", route)[0] == 201
    assert reaches(h1, "192.0.2.1")

    # VLAN 30 has no gateway: h4 gets nowhere, even sending to the gateway MAC itself
    h4.cmd("ip neigh replace 10.0.30.1 lladdr 02:00:00:00:fe:01 dev h4-eth0")
    assert pings(h4, "10.0.10.2", 2)[0] == 0 and pings(h4, "10.0.30.1", 1)[0] == 0

    # bad bodies change nothing
    before = controller.rest("GET", "/v1/router")[1]
    for path, body in (("/v1/router/routes", {"prefix": "10.9.0.0/16", "next_hop": "192.0.2.9"}),
                       ("/v1/router/routes", {"prefix": "bad"}),
                       ("/v1/router/floating_ips", {"external": "10.0.10.9",
                                                    "internal": "10.0.20.2"})):
        status, answer = controller.rest("POST", path, body)
        assert status == 400 and "error" in answer, (body, status, answer)
    after = controller.rest("GET", "/v1/router")[1]
    assert {k: v for k, v in after.items() if k != "neighbours"} == \
        {k: v for k, v in before.items() if k != "neighbours"}


RING_HOSTS = {"h1": (10, "10.0.10.2/24", "10.0.10.1"), "h2": (20, "10.0.20.2/24", "10.0.20.1"),
              "h3": (10, "10.0.10.3/24", "10.0.10.1")}   # on s1, s2, s3


@pytest.mark.long   # make reliability (the budget of make test)
def test_routing_on_a_looped_fabric_with_the_topology_app(lab):
    """A ring of three switches (a loop) with the topology app: each switch answers for
    the gateways and routes what its own hosts send; the routed frames cross the fabric
    on the learning app's paths, and nothing storms."""
    config = {"l2_switch": {"mode": "reactive"},
              "vlan": {"ports": [{"switch": n, "port": 3, "tag": RING_HOSTS[f"h{n}"][0]}
                                 for n in (1, 2, 3)]},
              "router": {"interfaces": CONFIG["router"]["interfaces"][:2]}}
    controller, network = lab(Ring(3), config, apps=("apps/topology.py",) + APPS)

    def converged():
        view = controller.rest("GET", "/v1/topology")[1]
        return len(view["links"]) == 3 and view["pending_ports"] == 0
    assert harness.wait_until(converged, 30), controller.rest("GET", "/v1/topology")[1]
    harness.wait_vlans_programmed(controller, network)
    for name, (_, address, gateway) in RING_HOSTS.items():
        host = network[name]
        host.cmd(f"ip addr flush dev {name}-eth0 && ip addr add {address} dev {name}-eth0")
        host.cmd(f"ip route add default via {gateway}")
    h1, h2, h3 = (network[n] for n in RING_HOSTS)
    assert reaches(h1, "10.0.10.1") and reaches(h2, "10.0.20.1") and reaches(h3, "10.0.10.1")
    assert reaches(h1, "10.0.20.2") and reaches(h3, "10.0.20.2")
    assert pings(h3, "10.0.10.2", 3)[0] == 3          # same VLAN across the ring: bridged
    received, ttls = pings(h2, "10.0.10.3", 5)
    print(f"observed: h2 (s2) -> h3 (s3) routed across the ring: {received} of 5, TTLs {ttls}")
    assert received == 5 and set(ttls) == {63}


SIX_HOSTS = {"h1": (10, "fd00:10::2/64"), "h2": (20, "fd00:20::2/64"), "h3": (10, None)}
GW_LINK_LOCAL = "fe80::ff:fe00:fe01"        # the router MAC's EUI-64


def pings6(src, address, count=1):
    out = src.cmd(f"ping -6 -c {count} -W 1 -i 0.2 {address}")
    found = re.search(r"(\d+) received", out)
    return (int(found.group(1)) if found else 0), [int(t) for t in re.findall(r"ttl=(\d+)", out)]


def test_ipv6_between_connected_networks_with_neighbour_and_router_discovery(lab):
    """IPv6 gateways on VLANs 10 and 20: h1 and h2 (static addresses, the gateway as
    their default route) resolve the gateway by neighbour discovery, ping it and reach
    each other routed (hop limit less one); h3 configures itself from the router's
    advertisement (SLAAC, a default route via the gateway's link-local address) and
    reaches h2 too. IPv4 keeps working beside it."""
    config = {"l2_switch": {"mode": "reactive"},
              "vlan": {"ports": [{"switch": "s1", "port": f"s1-eth{n}",
                                  "tag": SIX_HOSTS[f"h{n}"][0]} for n in (1, 2, 3)]},
              "router": {"interfaces": [
                  {"vlan": 10, "address": "10.0.10.1/24", "address6": "fd00:10::1/64"},
                  {"vlan": 20, "address": "10.0.20.1/24", "address6": "fd00:20::1/64"}]}}
    controller, network = lab(Single(k=3), config, apps=APPS)
    harness.wait_vlans_programmed(controller, network)
    # what OVS reports of the IPv6 entries reads back as what the router wants: a
    # restarted controller keeps them all (a difference would replace them each pass)
    controller.kill()
    offset = len(controller.log_text())
    controller.start()
    router_line = re.compile(r"(?i)router: reconciled switch \w+: (\d+) entries kept, (\d+) added "
                             r"or changed, (\d+) stale removed")
    assert harness.wait_until(lambda: router_line.search(controller.log_text()[offset:]), 20)
    kept, added, removed = map(int, router_line.search(controller.log_text()[offset:]).groups())
    print(f"observed: after a restart the router kept {kept} entries, changed {added}, "
          f"removed {removed}")
    assert (added, removed) == (0, 0) and kept > 20
    h1, h2, h3 = (network[n] for n in SIX_HOSTS)
    for host, (vlan, address6) in zip((h1, h2), (SIX_HOSTS["h1"], SIX_HOSTS["h2"])):
        intf = f"{host.name}-eth0"
        host.cmd(f"ip addr flush dev {intf} && ip addr add 10.0.{vlan}.2/24 dev {intf} && "
                 f"ip route add default via 10.0.{vlan}.1")
        host.cmd(f"ip -6 addr add {address6} dev {intf} nodad && "
                 f"ip -6 route add default via fd00:{vlan}::1")

    assert harness.wait_until(lambda: pings6(h1, "fd00:10::1")[0] == 1, 5, step=0.2)
    neighbour = h1.cmd("ip -6 neigh show fd00:10::1")
    print(f"observed: h1's neighbour entry for its gateway: {neighbour.strip()}")
    assert "02:00:00:00:fe:01" in neighbour and "router" in neighbour
    assert pings6(h1, GW_LINK_LOCAL + "%h1-eth0")[0] == 1
    assert pings6(h1, "fd00:20::1")[0] == 1          # the other gateway, through the router
    assert harness.wait_until(lambda: pings6(h1, "fd00:20::2")[0] == 1, 5, step=0.2)
    received, hops = pings6(h1, "fd00:20::2", 5)
    print(f"observed: h1 -> h2 routed over IPv6, {received} of 5 answered, hop limits {hops}")
    assert received == 5 and set(hops) == {63}
    known = {n["ip"] for n in controller.rest("GET", "/v1/router")[1]["neighbours"]}
    assert {"fd00:10::2", "fd00:20::2"} <= known, known
    assert pings(h1, "10.0.20.2", 3)[0] == 3 or reaches(h1, "10.0.20.2")   # IPv4 beside it
    # the trace follows an IPv6 packet through the router to h2's port
    status, answer = controller.rest("POST", "/v1/trace", {
        "switch": "s1", "in_port": "s1-eth1", "dl_src": h1.MAC(), "dl_dst": "02:00:00:00:fe:01",
        "proto": "udp", "nw_src": "fd00:10::2", "nw_dst": "fd00:20::2", "tp_dst": 53})
    assert status == 200, answer
    assert [(d["port"], d["vlan"]) for d in answer["delivered"]] == [(2, None)], \
        answer["hops"][0]["datapath_actions"]
    owners = {rule["owner"] for hop in answer["hops"] for rule in hop["rules"]}
    assert {"router/gateway", "router/neighbour"} <= owners, owners
    expired = h1.cmd("ping -6 -c 1 -W 2 -t 1 fd00:20::2")
    print(f"observed: ping -6 -t 1 through the router: {expired.splitlines()[1:2]}")
    assert "From fd00:10::1" in expired and "Time exceeded" in expired, expired

    # h3 comes up: its router solicitation is answered, it configures itself
    h3.cmd("sysctl -qw net.ipv6.conf.h3-eth0.accept_ra=1 "
           "net.ipv6.conf.h3-eth0.disable_ipv6=1 && "
           "sysctl -qw net.ipv6.conf.h3-eth0.disable_ipv6=0")

    def configured():
        return "fd00:10::" in h3.cmd("ip -6 addr show dev h3-eth0 scope global") and \
            GW_LINK_LOCAL in h3.cmd("ip -6 route show default")
    assert harness.wait_until(configured, 10, step=0.3), \
        h3.cmd("ip -6 addr; ip -6 route")
    print(f"observed: h3 from the advertisement: {h3.cmd('ip -6 route show default').strip()}")
    assert harness.wait_until(lambda: pings6(h3, "fd00:20::2")[0] == 1, 5, step=0.2)
    # the outside and VLANs without an IPv6 gateway get no IPv6 routing: a frame to
    # the gateway MAC for a network the router has not is dropped
    assert pings6(h1, "2001:db8::1")[0] == 0


def connects6(client, address, port):
    """Whether a TCP connection from `client` to [address]:port opens within 2 s."""
    out = client.cmd(f"python3 -c \"import socket; socket.create_connection(('{address}', "
                     f"{port}), timeout=2).close(); print('open')\" 2>&1")
    return out.strip().endswith("open")


def test_routed_ipv6_meets_the_destinations_security_group(lab):
    """The security app with the router, IPv6: h2 (VLAN 20) lets in TCP 80 only, so h1
    (VLAN 10) reaches its web server routed and nothing else of it; h2's own pings to
    h1 are answered (replies let through); neighbour discovery goes on through the
    groups."""
    config = {"l2_switch": {"mode": "reactive"},
              "vlan": {"ports": [{"switch": "s1", "port": f"s1-eth{n}", "tag": tag}
                                 for n, tag in ((1, 10), (2, 20))]},
              "router": {"interfaces": [
                  {"vlan": 10, "address": "10.0.10.1/24", "address6": "fd00:10::1/64"},
                  {"vlan": 20, "address": "10.0.20.1/24", "address6": "fd00:20::1/64"}]},
              "security": {"groups": {"web6": [{"direction": "ingress", "protocol": "tcp",
                                                "ports": 80, "ethertype": "IPv6"}]},
                           "ports": [{"switch": "s1", "port": "s1-eth2",
                                      "addresses": ["10.0.20.2", "fd00:20::2"],
                                      "groups": ["web6"]}]}}
    controller, network = lab(Single(k=2), config, apps=APPS + ("apps/security.py",))
    harness.wait_vlans_programmed(controller, network)
    h1, h2 = network["h1"], network["h2"]
    for host, vlan in ((h1, 10), (h2, 20)):
        # the bound address only: an address the host made from the router's
        # advertisement (SLAAC) is not in the binding, and its packets are dropped as
        # spoofed, as they should be (the test would then depend on whether the
        # advertisement came before the pings)
        intf = f"{host.name}-eth0"
        host.cmd(f"sysctl -qw net.ipv6.conf.{intf}.accept_ra=0 && "
                 f"ip -6 addr flush dev {intf} scope global && "
                 f"ip -6 addr add fd00:{vlan}::2/64 dev {intf} nodad && "
                 f"ip -6 route replace default via fd00:{vlan}::1")
    servers = [h2.popen(["python3", "-m", "http.server", str(port), "--bind", "fd00:20::2"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for port in (80, 8080)]
    try:
        assert harness.wait_until(lambda: connects6(h1, "fd00:20::2", 80), 10, step=0.3)
        assert not connects6(h1, "fd00:20::2", 8080)          # no rule for 8080
        assert pings6(h1, "fd00:20::2", 2)[0] == 0            # nor for a ping
        received, hops = pings6(h2, "fd00:10::2", 3)          # its own: answered
        print(f"observed: h1 -> h2:80 over IPv6 routed through h2's group, 8080 and ping "
              f"refused; h2 -> h1 ping6 {received} of 3, hop limits {hops}")
        assert received == 3 and set(hops) == {63}
    finally:
        for server in servers:
            server.kill()
