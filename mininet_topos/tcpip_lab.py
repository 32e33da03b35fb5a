"""`make lab-tcpip`: the TCP/IP Illustrated network (mininet_topos/tcpip_topo.py).

Two Ethernets (OVS bridges driven by the learning app), two point-to-point links,
static routes, proxy ARP on netb and NAT on the gateway. Checks that every node
reaches every other, that the outside host sees only the gateway's address, and that
traceroute from slip to the outside shows the expected hops. Writes
reports/tcpip-lab.md with a drawing of the network (reports/tcpip-lab.png).
"""
import argparse
import re
import sys

from mininet_topos import harness
from mininet_topos.labs import LabRun, pyplot, save_diagram
from mininet_topos.tcpip_topo import NODES, TcpIpLab, address_of

OUTSIDE = "203.0.113.2"
HOPS = ["140.252.13.66", "140.252.13.33", "140.252.1.183", "140.252.1.4", OUTSIDE]
HOP_NAMES = ["bsdi", "sun", "netb", "gateway", "outside"]
LOWER_HOSTS = {"sun": 0.5, "svr4": 2.0, "bsdi": 3.5}
UPPER_HOSTS = {"gateway": 0.0, "gemini": 1.3, "solaris": 2.6, "aix": 3.9, "netb": 5.2}
CONFIG = {"l2_switch": {"mode": "reactive"}}   # etc/learning.yaml says the same


def draw(path):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 6))
    ax.plot([-0.5, 6], [3, 3], color="black", linewidth=4)
    ax.text(6.1, 3, "140.252.1.0/24\n(s2, upper Ethernet)", va="center", fontsize=8)
    ax.plot([0, 4.2], [0, 0], color="black", linewidth=4)
    ax.text(4.3, 0, "140.252.13.32/27\n(s1, lower Ethernet)", va="center", fontsize=8)
    for host, x in UPPER_HOSTS.items():
        ax.plot([x, x], [3, 3.6], color="black")
        ax.text(x, 3.8, f"{host}\n.{address_of(host).split('.')[-1]}", ha="center",
                fontsize=9)
    for host, x in LOWER_HOSTS.items():
        ax.plot([x, x], [0, 0.6], color="black")
        ax.text(x, 0.8, f"{host}\n.{address_of(host).split('.')[-1]}", ha="center",
                fontsize=9)
    ax.plot([0.5, 5.2], [1.4, 3.0], color="tab:orange", linestyle="--")
    ax.text(2.9, 2.05, "sun .29 -- netb .183 (point-to-point;\nnetb proxy-ARPs for .29)",
            ha="center", fontsize=8, color="tab:orange", backgroundcolor="white")
    ax.plot([3.5, 3.5], [0, -1.2], color="tab:orange", linestyle="--")
    ax.text(3.5, -1.6, "slip .65\n(bsdi .66, 140.252.13.64/27)", ha="center", fontsize=8)
    ax.plot([-0.3, -1.2], [3.3, 4.8], color="tab:green", linestyle="--")
    ax.text(-1.2, 5.0, f"outside {OUTSIDE}\n(gateway's NAT: it sees only 203.0.113.1)",
            ha="center", fontsize=8, color="tab:green")
    save_diagram(fig, ax, path, "The TCP/IP Illustrated network", (-2.6, 7.5), (-2.2, 5.8))


def ping_matrix(network):
    """[(src, dst)] pairs of nodes that do not reach each other."""
    failed = []
    for src in NODES:
        for dst in NODES:
            if src != dst and not re.search(r"\b1 received", network[src].cmd(
                    f"ping -c1 -W1 {address_of(dst)}")):
                failed.append((src, dst))
    return failed


def run(lab, network):
    lab.step("addresses, routes, forwarding, proxy ARP on netb, NAT on the gateway")
    TcpIpLab.configure(network.net)
    proxy = network["netb"].cmd("sysctl -n net.ipv4.conf.netb-eth0.proxy_arp").strip()
    lab.check("netb proxy ARP on the upper Ethernet", "1", proxy, proxy == "1")

    lab.step(f"every node pings every other ({len(NODES) * (len(NODES) - 1)} pings)")
    failed = ping_matrix(network)
    lab.check("pairs that do not reach each other", 0,
              len(failed) if not failed else f"{len(failed)}: {failed[:4]}", not failed)
    entry = re.search(r"lladdr (\S+)", network["aix"].cmd("ip neigh show 140.252.1.29"))
    netb_mac = network["netb"].intf("netb-eth0").MAC()
    lab.check("aix's ARP entry for sun (.29)", f"netb's MAC {netb_mac}",
              entry.group(1) if entry else "-", bool(entry) and entry.group(1) == netb_mac)

    lab.step("every node pings the outside; tcpdump there lists the sources it sees")
    outside = network["outside"]
    with harness.Capture([(outside, "outside-eth0")], bpf="icmp") as capture:
        reached = [bool(re.search(r"\b1 received", network[n].cmd(f"ping -c1 -W1 {OUTSIDE}")))
                   for n in NODES]
    sources = sorted({m.group(1) for line in capture.lines["outside-eth0"]
                      for m in [re.search(r" (\d+\.\d+\.\d+\.\d+) > [\d.]+: ICMP", line)]
                      if m}
                     - {OUTSIDE})
    lab.check("nodes that reach the outside", len(NODES), sum(reached), all(reached))
    lab.check("sources the outside host sees", "203.0.113.1", ",".join(sources) or "-",
              sources == ["203.0.113.1"])

    lab.step("traceroute from slip to the outside")
    out = network["slip"].cmd(f"traceroute -n -q 1 -w 1 -m 8 {OUTSIDE}")
    hops = [m.group(1) for line in out.splitlines()[1:]
            for m in [re.match(r"\s*\d+\s+(\d+\.\d+\.\d+\.\d+)", line)] if m]
    lab.check("hops slip -> outside", " ".join(HOP_NAMES),
              " ".join(HOP_NAMES[HOPS.index(h)] if h in HOPS else h for h in hops) or "-",
              hops == HOPS)
    lab.note("traceroute -n from slip to the outside:")
    lab.note("```\n" + out.strip() + "\n```")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", default="reports")
    args = parser.parse_args(argv)
    lab = LabRun("TCP/IP Illustrated network", "tcpip-lab", args.reports)
    lab.note("Nine nodes as in TCP/IP Illustrated, Vol. 1; the two Ethernets are OVS "
             "bridges driven by the learning app (reactive), everything else is Linux "
             "in namespaces: static routes, proxy ARP (netb), NAT (gateway).")
    lab.step("starting the controller (l2_switch) and Mininet")
    with harness.running(TcpIpLab(), config=CONFIG) as (controller, network):
        run(lab, network)
        problems = controller.problems()
    draw(lab.picture("tcpip-lab.png", "the network"))
    return lab.finish(problems)


if __name__ == "__main__":
    sys.exit(main())
