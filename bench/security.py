"""`make bench` (security and router lines), each next to its peer in the same run:

- remote-group entries as a group grows from 10 to 100 members: ours (conjunctive
  matches) against the same rule written as one /32 rule per member;
- 1000 rules bound to one port over REST: how many entries and how long until the
  switch holds them all, against `ovs-ofctl add-flows` of the same entries;
- iperf3 between two VMs routed between their VLANs through both security groups,
  against the same hosts in one subnet on OVS's NORMAL (no controller);
- new TCP connections per second out through SNAT, against the same hosts on NORMAL.

The network is the security lab's (mininet_topos/security_topo.py): app (VLAN 10), b1
(VLAN 20) and outside (VLAN 100) on one switch.
"""
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import record
from controller import ofctl_text
from flows import security
from flows.security_model import binding_from_dict, groups_from_dict
from mininet_topos import harness
from mininet_topos.labkit import traffic
from mininet_topos.security_topo import SECURITY_LAB_CONFIG, SecurityLab, address

HTTPLOAD = Path(traffic.__file__).with_name("httpload.py")
APPS = ("apps/l2_switch.py", "apps/vlan.py", "apps/security.py", "apps/router.py")
OPEN = {"open": [{"direction": "ingress"}]}


def remote_group_entries(members):
    """(ours, one rule per member) entries of an ingress rule 'tcp 8000-8080 from the
    group' on every member port."""
    bindings = {n: binding_from_dict({"addresses": [f"10.1.{n // 250}.{n % 250 + 1}"],
                                      "groups": ["tenant"]}) for n in range(1, members + 1)}
    rule = {"direction": "ingress", "protocol": "tcp", "ports": "8000-8080"}
    ours = security.desired(bindings, groups_from_dict(
        {"tenant": [dict(rule, remote_group="tenant")]}))
    each = [dict(rule, remote=f"{b.addresses[0]}/32") for b in bindings.values()]
    theirs = security.desired(bindings, groups_from_dict({"tenant": each}))
    return len(ours), len(theirs)


def flows_in(bridge):
    out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", bridge],
                         capture_output=True, text=True, check=True).stdout
    return len([line for line in out.splitlines()   # ours: a bridge's NORMAL has cookie 0
                if "cookie=" in line and "cookie=0x0," not in line])


def install_1000(rows):
    """1000 ingress rules (one TCP port each) bound to app's port over REST."""
    groups = {"many": [{"direction": "ingress", "protocol": "tcp", "ports": 10000 + i}
                       for i in range(1000)]}
    config = dict(SECURITY_LAB_CONFIG, security={"groups": groups, "ports": []})
    with harness.running(SecurityLab(), apps=APPS, config=config) as (controller, network):
        harness.wait_vlans_programmed(controller, network)
        before = flows_in("s1")
        started = time.monotonic()
        status, _ = controller.rest("PUT", "/v1/switches/s1/ports/2/security",
                                    {"addresses": [address("app")], "groups": ["many"]})
        assert status == 200, status
        binding = binding_from_dict({"addresses": [address("app")], "groups": ["many"]})
        wanted = security.desired({2: binding}, groups_from_dict(groups))
        done = harness.wait_until(lambda: flows_in("s1") >= before + len(wanted), 60,
                                  step=0.05)
        ours = time.monotonic() - started
        assert done, f"only {flows_in('s1') - before} of {len(wanted)} entries arrived"
        problems = controller.problems()
    subprocess.run(["ovs-vsctl", "--may-exist", "add-br", "sdnbench0", "--", "set", "bridge",
                    "sdnbench0", "datapath_type=netdev", "protocols=OpenFlow13"], check=True)
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".flows") as file:
            file.write("\n".join(ofctl_text.flow_line(s) for s in wanted) + "\n")
            file.flush()
            started = time.monotonic()
            subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "add-flows", "sdnbench0",
                            file.name], check=True)
            theirs = time.monotonic() - started
        assert flows_in("sdnbench0") == len(wanted)
    finally:
        subprocess.run(["ovs-vsctl", "--if-exists", "del-br", "sdnbench0"], check=True)
    rows.append((len(wanted), ours, theirs))
    return problems


def iperf(client, server_ip, seconds):
    out = client.cmd(f"iperf3 -c {server_ip} -t {seconds} -J")
    return float(json.loads(out)["end"]["sum_received"]["bits_per_second"]) / 1e6


def connections_per_s(client, server_ip, count):
    started = time.monotonic()
    out = client.cmd(f"python3 {HTTPLOAD} get {server_ip} 80 {count}")
    elapsed = time.monotonic() - started
    served = sum(json.loads(out.strip().splitlines()[-1])["served"].values())
    return served / elapsed, served


def traffic_rows(network, b1_ip, outside_ip, seconds, count):
    app, b1, outside = network["app"], network["b1"], network["outside"]
    b1.cmd("iperf3 -s -D")
    web = harness.start_http(outside, "outside", 80)
    try:
        assert harness.wait_until(lambda: harness.ping(app, b1) or
                                  "1 received" in app.cmd(f"ping -c1 -W1 {b1_ip}"), 10)
        assert harness.wait_until(
            lambda: "1 received" in app.cmd(f"ping -c1 -W1 {outside_ip}"), 10)
        rate = iperf(app, b1_ip, seconds)
        per_s, served = connections_per_s(app, outside_ip, count)
    finally:
        web.kill()
        b1.cmd("pkill -f 'iperf3 -s'")
    return rate, per_s, served


def readdress_one_subnet(network):
    """The peer: the same hosts in one subnet on OVS's NORMAL."""
    for name, ip in (("app", "10.0.10.3"), ("b1", "10.0.10.20"), ("outside", "10.0.10.254")):
        host = network[name]
        host.cmd(f"ip addr flush dev {name}-eth0 && ip addr add {ip}/24 dev {name}-eth0")


def main(seconds=5, count=300):
    run = record.Run("security", "Security groups and the router")
    harness.ensure_ovs()
    table = run.table("remote-group entries (ingress tcp 8000-8080 from the group, on every "
                      "member)", [record.Column("members"), record.Column("entries"),
                                  record.Column("one /32 rule per member"),
                                  record.Column("x fewer")])
    for members in (10, 25, 50, 100):
        ours, theirs = remote_group_entries(members)
        table.add(members, ours, theirs, round(theirs / ours, 1))
    installs = []
    problems = install_1000(installs)
    entries, ours, theirs = installs[0]
    table2 = run.table("1000 rules bound to a port over REST, until the switch holds every "
                       "entry", [record.Column("setup"), record.Column("entries"),
                                 record.Column("time", "s")])
    table2.add("ovs-ofctl add-flows (the same entries)", entries, round(theirs, 2), peer=True)
    table2.add("security app (REST PUT to installed)", entries, round(ours, 2))
    with harness.Network(SecurityLab(), controller=None) as network:
        readdress_one_subnet(network)
        time.sleep(0.5)
        normal = traffic_rows(network, "10.0.10.20", "10.0.10.254", seconds, count)
    config = dict(SECURITY_LAB_CONFIG, security={
        "groups": OPEN, "ports": [{"switch": "s1", "port": port, "addresses": [address(n)],
                                   "groups": ["open"]}
                                  for n, port in (("app", 2), ("b1", 3))]})
    with harness.running(SecurityLab(), apps=APPS, config=config) as (controller, network):
        harness.wait_vlans_programmed(controller, network)
        SecurityLab.configure(network)
        routed = traffic_rows(network, address("b1"), address("outside"), seconds, count)
        problems += controller.problems()
    table3 = run.table(f"app -> b1 iperf3 ({seconds} s), {count} HTTP GETs app -> outside, "
                       "each on a new connection", [
                           record.Column("setup"), record.Column("iperf3", "Mbit/s"),
                           record.Column("new connections", "/s"), record.Column("served")])
    table3.add("one subnet, OVS NORMAL (no controller)", round(normal[0]), round(normal[1]),
               normal[2], peer=True)
    table3.add("routed between VLANs + security groups; out through SNAT", round(routed[0]),
               round(routed[1]), routed[2])
    for t in (table, table2, table3):
        print(f"\n{t.title}")
        print("  ".join(c.name for c in t.columns))
        for row in t.rows:
            print("  ".join(str(v) for v in row))
    run.write()
    if problems:
        sys.exit("controller problems:\n" + "\n".join(problems))
    return 0


if __name__ == "__main__":
    sys.exit(main())
