"""`make lab-security`: the cloud chapter's scenario on real OVS, checked step by step.

Two tenants behind one router on one switch (mininet_topos/security_topo.py), with the
learning, VLAN, security and router apps in one ryu-manager: a web server reachable on
TCP 80 only (its replies let out, a ping from outside refused), both tenants reaching
the outside through SNAT (the outside's tcpdump sees only the public address), a
floating IP serving the web server to the outside, another tenant's VM kept out (and
let in once bound to the tenant's group: a remote group's members follow), and a rule
removed cutting a live connection through the floating IP. Writes
reports/security-lab.md with a picture: the network and who reached what
(reports/security-lab.png).
"""
import json
import re
import sys
import time
from pathlib import Path

from mininet_topos import harness
from mininet_topos.labkit import tcpecho
from mininet_topos.labs import LabRun, command_line, pyplot
from mininet_topos.security_topo import (EXTERNAL, FLOATING, HOSTS, SECURITY_LAB_CONFIG,
                                         SecurityLab, address)

APPS = ("apps/l2_switch.py", "apps/vlan.py", "apps/security.py", "apps/router.py")
TCPECHO = Path(tcpecho.__file__)
# what each source tries, as (label, kind, target): the web VM is reached by the
# outside through its floating IP, by the VMs at its own address
TARGETS = (("web :80", "http", "web", 80), ("web :8080", "http", "web", 8080),
           ("web ping", "ping", "web", None), ("app :8080", "http", "app", 8080),
           ("app ping", "ping", "app", None), ("outside ping", "ping", "outside", None))
EXPECTED = {   # source: the targets it reaches (any other it tries is refused)
    "web": {"app :8080", "app ping", "outside ping"},
    "app": {"web :80", "web :8080", "web ping", "outside ping"},
    "b1": {"web :80", "outside ping"},
    "outside": {"web :80"},
}
TENANT_COLORS = {"A": "tab:blue", "B": "tab:orange", None: "tab:green"}


def target_ip(source, name):
    return FLOATING if source == "outside" and name == "web" else address(name)


def pings(src, ip, count=1):
    found = re.search(r"(\d+) received", src.cmd(f"ping -c {count} -W 1 -i 0.2 {ip}"))
    return int(found.group(1)) if found else 0


def tries(network, source, kind, name, port, patience):
    """Whether `source` reached the target within `patience` seconds of tries (a first
    try may wait for the router's ARP)."""
    src, ip = network[source], target_ip(source, name)
    if kind == "ping":
        return harness.wait_until(lambda: pings(src, ip) == 1, patience, step=0.1)
    return harness.wait_until(
        lambda: sum(harness.http_requests(src, ip, port, 1)["served"].values()) == 1,
        patience)


def sources_seen(capture, intf):
    return {m.group(1) for line in capture.lines[intf]
            for m in [re.search(r": (\d+\.\d+\.\d+\.\d+) > \d+\.\d+\.\d+\.\d+", line)] if m}


def snat_step(lab, network):
    lab.step("the tenants ping the outside: answered, and the outside's tcpdump sees "
             f"only the public address {EXTERNAL}")
    outside = network["outside"]
    with harness.Capture([(outside, "outside-eth0")], bpf="icmp") as capture:
        for vm in ("web", "app", "b1"):
            answered = harness.wait_until(
                lambda vm=vm: pings(network[vm], address("outside")) == 1, 5, step=0.1)
            lab.check(f"{vm} ({address(vm)}) pings the outside", "replies",
                      "replies" if answered else "no reply", answered)
    seen = sorted(sources_seen(capture, "outside-eth0"))
    lab.check("sources the outside saw", EXTERNAL, ",".join(seen) or "-", seen == [EXTERNAL])


def matrix_step(lab, network):
    """Every source against every target; returns {(source, label): reached}."""
    lab.step("who reaches what: the web server on TCP 80 only from other networks, the "
             "tenants kept apart, the outside in only through the floating IP")
    results = {}
    for source, allowed in EXPECTED.items():
        for label, kind, name, port in TARGETS:
            if name == source:
                continue
            expected = label in allowed
            # what should get through gets a few seconds of tries; a refusal one try
            # (anything let through is seen at the first: every host is known by now)
            reached = tries(network, source, kind, name, port, 4 if expected else 0)
            results[source, label] = reached
            lab.check(f"{source} -> {label} ({target_ip(source, name)})",
                      "reached" if expected else "refused",
                      "reached" if reached else "refused", reached == expected)
    return results


def join_step(lab, controller, network):
    lab.step("b1 bound to tenant-a's group over REST: a member now, it reaches app; "
             "bound back to tenant-b, it is out again")
    path = f"/v1/switches/s1/ports/{HOSTS['b1'][0]}/security"
    for groups, expected in ((["tenant-a"], True), (["tenant-b"], False)):
        status, _ = controller.rest("PUT", path, {"addresses": [address("b1")],
                                                  "groups": groups})
        reached = tries(network, "b1", "ping", "app", None, 4 if expected else 0.5)
        lab.check(f"PUT b1 groups {groups[0]}; b1 -> app ping",
                  f"200, {'reached' if expected else 'refused'}",
                  f"{status}, {'reached' if reached else 'refused'}",
                  (status, reached) == (200, expected))


def cut_step(lab, controller, network):
    lab.step("a live connection from the outside through the floating IP; the web "
             "rule removed over REST cuts it, and added back lets it go on")
    web, outside = network["web"], network["outside"]
    rule = controller.rest("GET", "/v1/security")[1]["groups"]["web"][0]
    server = web.popen(["python3", str(TCPECHO), "serve", "80"])
    try:
        harness.wait_until(lambda: ":80 " in web.cmd("ss -ltn"), 5, step=0.1)
        talker = outside.popen(["python3", str(TCPECHO), "talk", FLOATING, "80", "8", "0.1"],
                               stdout=-1, text=True)
        started = time.time()
        time.sleep(2)
        deleted = controller.rest("DELETE", f"/v1/security/rules/{rule['id']}")[0]
        cut_at = time.time()
        time.sleep(2.5)
        body = {k: v for k, v in rule.items() if k in ("direction", "protocol", "ports",
                                                       "remote", "ethertype")}
        added = controller.rest("POST", "/v1/security/groups/web/rules", body)[0]
        back_at = time.time()
        out, _ = talker.communicate(timeout=20)
        echoes = json.loads(out.strip().splitlines()[-1])["echoes"]
    finally:
        server.kill()
    lab.check("DELETE the web rule, then POST it again", "200, 201",
              f"{deleted}, {added}", (deleted, added) == (200, 201))
    before = [t for t in echoes if started < t < cut_at]
    during = [t for t in echoes if cut_at + 0.5 < t < back_at]
    after = [t for t in echoes if t > back_at]
    lab.check("echoes before the rule went (2 s)", ">= 10", len(before), len(before) >= 10)
    lab.check("echoes while it was gone", 0, len(during), not during)
    lab.check("echoes once it was back, on the same connection", "> 0", len(after),
              bool(after))


def draw(path, results):
    plt = pyplot()
    fig, (net, grid) = plt.subplots(1, 2, figsize=(12, 5),
                                    gridspec_kw={"width_ratios": [1, 1.3]})
    spots = {"web": (-1.2, 1), "app": (-1.2, -1), "b1": (1.2, -1), "outside": (1.2, 1)}
    net.add_patch(plt.Rectangle((-0.45, -0.3), 0.9, 0.6, color="lightgrey", zorder=2))
    net.text(0, 0, "s1\nrouter", ha="center", va="center", weight="bold", zorder=3)
    for name, (x, y) in spots.items():
        _, vlan, cidr, _, tenant, groups = HOSTS[name]
        color = TENANT_COLORS[tenant]
        net.plot([0, x * 0.8], [0, y * 0.8], color=color, linewidth=2, zorder=1)
        extra = f"\nfloating {FLOATING}" if name == "web" else ""
        who = f"tenant {tenant}" if tenant else "the Internet"
        net.text(x, y, f"{name} {cidr}\n{who}, VLAN {vlan}\n"
                 f"{', '.join(groups or ['(no group)'])}{extra}", ha="center", va="center",
                 fontsize=8, color=color, backgroundcolor="white")
    net.set_xlim(-2.2, 2.2)
    net.set_ylim(-1.7, 1.7)
    net.axis("off")
    net.set_title(f"two tenants, one router; SNAT to {EXTERNAL}")
    sources, labels = list(EXPECTED), [t[0] for t in TARGETS]
    for row, source in enumerate(sources):
        for col, label in enumerate(labels):
            if (source, label) not in results:
                grid.add_patch(plt.Rectangle((col, row), 1, 1, color="whitesmoke"))
                continue
            reached = results[source, label]
            expected = label in EXPECTED[source]
            grid.add_patch(plt.Rectangle((col, row), 1, 1, edgecolor="white",
                                         facecolor="#9be29b" if reached else "#f4a3a3"))
            grid.text(col + 0.5, row + 0.5, ("reached" if reached else "refused")
                      + ("" if reached == expected else "\n(unexpected)"),
                      ha="center", va="center", fontsize=8)
    grid.set_xlim(0, len(labels))
    grid.set_ylim(len(sources), 0)
    grid.set_xticks([i + 0.5 for i in range(len(labels))], labels, rotation=30, fontsize=8)
    grid.set_yticks([i + 0.5 for i in range(len(sources))], sources)
    grid.set_title("who reached what (observed)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(lab, controller, network):
    SecurityLab.configure(network)
    snat_step(lab, network)
    lab.step(f"a floating IP {FLOATING} for web, over REST")
    status, _ = controller.rest("POST", "/v1/router/floating_ips",
                                {"external": FLOATING, "internal": address("web")})
    lab.check("POST /v1/router/floating_ips", 201, status, status == 201)
    servers = [harness.start_http(network["web"], "web", 80),
               harness.start_http(network["web"], "web-admin", 8080),
               harness.start_http(network["app"], "app", 8080)]
    try:
        results = matrix_step(lab, network)
    finally:
        for server in servers:
            server.kill()
    join_step(lab, controller, network)
    cut_step(lab, controller, network)
    return results


def main(argv=None):
    args = command_line(__doc__).parse_args(argv)
    lab = LabRun("Security lab", "security-lab", args.reports)
    lab.note("One switch s1 with the learning, VLAN, security and router apps "
             "(`SECURITY_LAB_CONFIG` in mininet_topos/security_topo.py): tenant A (VLAN 10: "
             "web, app), tenant B (VLAN 20: b1), the outside on the external VLAN 100. "
             "Groups: web lets in TCP 80 from anywhere, tenant-a and tenant-b anything from "
             "their own members (a remote group each).")
    lab.step("starting the controller (l2_switch + vlan + security + router) and Mininet")
    results = {}
    with harness.running(SecurityLab(), apps=APPS, config=SECURITY_LAB_CONFIG) as (
            controller, network):
        harness.wait_vlans_programmed(controller, network)
        results = run(lab, controller, network)
        problems = controller.problems()
    draw(lab.picture("security-lab.png", "the security lab: the network and who reached "
                     "what"), results)
    return lab.finish(problems)


if __name__ == "__main__":
    sys.exit(main())
