"""`make bench` (load-balancer line): HTTP requests per second through a VIP (NAT, new
connection per request) against the same client talking to one backend directly, in
the same run; how long the switch takes to reflect a change of the backend set; and
the spread mode's split (mininet_topos/lb_spread_lab.py): flows to 192.168.2.0/24 per
port of its select group (dp_hash).
"""
import statistics
import subprocess
import sys
import time

from bench import record
from mininet_topos import harness, lb_spread_lab
from mininet_topos.topos import LB_LAB_SUBNETS, LbLab

VIP = "10.0.0.100"
BACKENDS = [f"10.0.0.{10 + n}" for n in (1, 2, 3, 4)]
BACKEND_NAMES = ("b1", "b2", "b3", "b4")


def requests_per_second(client, ip, port, count, runs):
    rates = []
    for _ in range(runs):
        started = time.monotonic()
        result = harness.http_requests(client, ip, port, count)
        elapsed = time.monotonic() - started
        if result["failed"]:
            sys.exit(f"{result['failed']} requests to {ip}:{port} failed")
        rates.append(count / elapsed)
    return statistics.median(rates)


def group_buckets(switch="s1"):
    out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-groups", switch],
                         capture_output=True, text=True, check=True).stdout
    return out.count("bucket=")


def until(predicate, timeout=10):
    started = time.monotonic()
    if not harness.wait_until(predicate, timeout, step=0.01):
        sys.exit("timed out waiting for the switch")
    return time.monotonic() - started


def spread_split(controller, client):
    """Flows per port of the spread's group: 250 addresses x 4 destination ports, then
    8 addresses x 125 (few addresses, many flows each), one datagram per flow."""
    status, body = controller.rest("POST", "/v1/lb/spreads", lb_spread_lab.SPREAD)
    if status != 201:
        sys.exit(f"spread refused: {body}")
    lb_spread_lab.route_through_gateway(client, "c1-eth0")
    rounds, before = [], dict.fromkeys(lb_spread_lab.PORTS, 0)
    for hosts, each in ((250, 4), (8, 125)):
        lb_spread_lab.send_udp(client, hosts, each, port=20000 if hosts == 8 else 9000)
        time.sleep(1.5)    # OVS updates group counters about once a second
        now = {b["port"]: b["packets"]
               for b in controller.rest("GET", "/v1/lb/spreads/1/stats")[1]["buckets"]}
        rounds.append((hosts, each, {port: now[port] - before[port] for port in now}))
        before = now
    hashes = lb_spread_lab.datapath_hashes()
    return rounds, (hashes[0] if hashes else "none")


def main(count=300, runs=3):
    run = record.Run("lb", "The load balancer")
    harness.ensure_ovs()
    config = {"l2_switch": {"mode": "datapath"}, "lb": {"subnets": LB_LAB_SUBNETS, "vips": [
        {"vip": VIP, "port": 80, "health": {"interval_s": 0.5, "timeout_s": 0.5},
         "backends": [{"ip": ip, "port": 8080} for ip in BACKENDS]}]}}
    with harness.running(LbLab(), apps=("apps/l2_switch.py", "apps/lb.py"),
                         config=config) as (controller, network):
        servers = [harness.start_http(network[f"b{n}"], f"b{n}") for n in (1, 2, 3, 4, 5)]
        # the direct path uses another port of the same server host: with the same port,
        # a client port reused for a VIP connection that lands on b1 meets b1's
        # TIME_WAIT of the direct one (as with any NAT load balancer)
        servers.append(harness.start_http(network["b1"], "b1", 8081))
        try:
            if not harness.wait_until(lambda: all(
                    b["healthy"] for b in controller.rest("GET", "/v1/lb/vips/1")[1]["backends"]),
                    10):
                sys.exit("backends did not become healthy")
            client = network["c1"]
            direct = requests_per_second(client, BACKENDS[0], 8081, count, runs)
            through = requests_per_second(client, VIP, 80, count, runs)
            spread = harness.http_requests(client, VIP, 80, 400)["served"]
            controller.rest("PATCH", "/v1/lb/vips/1", {"backends": [
                {"ip": ip, "port": 8080, "weight": w} for ip, w in zip(BACKENDS, (3, 1, 1, 1))]})
            time.sleep(0.2)
            weighted = harness.http_requests(client, VIP, 80, 400)["served"]
            controller.rest("POST", "/v1/lb/vips/1/backends/10.0.0.15", {"port": 8080})
            added = until(lambda: group_buckets() == 5)
            controller.rest("PATCH", "/v1/lb/vips/1", {"backends": [
                {"ip": ip, "port": 8080, "weight": 2} for ip in BACKENDS + ["10.0.0.15"]]})
            reweighted = until(lambda: "weight:2" in subprocess.run(
                ["ovs-ofctl", "-O", "OpenFlow13", "dump-groups", "s1"], capture_output=True,
                text=True).stdout)
            split = spread_split(controller, client)
            problems = controller.problems()
        finally:
            for server in servers:
                server.kill()
    if problems:
        sys.exit("controller problems:\n" + "\n".join(problems))
    rps = run.table(f"HTTP GETs, a new connection each, median of {runs} x {count}", [
        record.Column("path"), record.Column("rate", "requests/s"), record.Column("x direct")])
    rps.add("c1 -> one backend directly", round(direct), 1.0, peer=True)
    rps.add("c1 -> VIP (nat, 4 backends)", round(through), round(through / direct, 2))
    print(f"\nHTTP GETs, a new connection each, {runs} x {count}, median")
    print(f"{'path':<34}{'requests/s':>12}{'x direct':>10}")
    for label, rate, ratio in rps.rows:
        print(f"{label:<34}{rate:>12.0f}{ratio:>10.2f}")
    shares = run.table("400 new connections, share per backend", [
        record.Column("weights"), *(record.Column(name, "%") for name in BACKEND_NAMES)])
    for label, served in (("1:1:1:1", spread), ("3:1:1:1", weighted)):
        shares.add(label, *(round(served.get(name, 0) / 4) for name in BACKEND_NAMES))
    for label, *percent in shares.rows:
        print(f"400 new connections, weights {label}: " + "  ".join(
            f"{name} {p}%" for name, p in zip(BACKEND_NAMES, percent)))
    changes = run.table("a change over REST until the switch's group shows it", [
        record.Column("change"), record.Column("time", "ms")])
    changes.add("backend added (includes its first health check)", round(added * 1000))
    changes.add("weights changed", round(reweighted * 1000))
    print()
    for label, ms in changes.rows:
        print(f"{label + ' -> group updated:':<58}{ms:>6} ms")
    rounds, hashing = split
    ports = sorted(lb_spread_lab.PORTS)
    spreads = run.table(f"spread {lb_spread_lab.SUBNET} over ports {lb_spread_lab.PORTS} "
                        f"(select group, dp_hash), UDP flows of one datagram each", [
                            record.Column("addresses"), record.Column("ports each"),
                            record.Column("flows"),
                            *(record.Column(f"port {port}", "packets") for port in ports)])
    for hosts, each, counts in rounds:
        spreads.add(hosts, each, hosts * each, *(counts.get(port, 0) for port in ports))
    print(f"\nspread {lb_spread_lab.SUBNET} over ports {lb_spread_lab.PORTS} (select group, "
          f"dp_hash), UDP flows of one datagram each, packets per port:")
    for hosts, each, flows, *counts in spreads.rows:
        total = sum(counts) or 1
        print(f"  {hosts:>3} addresses x {each:>3} ports, {flows} sent: " + "  ".join(
            f"port {port} {n} ({n / total:.0%})" for port, n in zip(ports, counts)))
    print(f"  a datapath flow into the group: actions:{hashing}")
    run.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
