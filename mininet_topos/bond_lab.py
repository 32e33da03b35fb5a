"""`make lab-bond`: two bridges joined by two links, bonded on both sides by the
controller through OVSDB (PUT /v1/bonds/...), forwarded by OVS's NORMAL switching.

Two pings run (h1 -> h3, h2 -> h4) while the lab reads each link's transmit counter:
active-backup sends everything over one link; taking that link down moves the
traffic to the other with at most a few lost pings; balance-slb with LACP active
(negotiated on both sides) spreads the two flows (two source MACs) over both links.
Back-to-back OVS bonds need a shared primary in active-backup and LACP in
balance-slb: without, each side drops what arrives on a member it does not use.
Writes reports/bond-lab.md with a chart of each link's share per phase
(reports/bond-lab.png).
"""
import re
import subprocess
import sys
import time

from mininet_topos import harness
from mininet_topos.labs import LabRun, command_line, pyplot
from mininet_topos.topos import BondLab

LINKS = ("s1-eth3", "s1-eth4")


def tx_packets(intf):
    return int(open(f"/sys/class/net/{intf}/statistics/tx_packets").read())


def appctl(*args):
    return subprocess.run(["ovs-appctl", *args], capture_output=True, text=True).stdout


def put_bonds(controller, body):
    """The same bond settings on both sides (OVS port names are unique per OVS)."""
    statuses = []
    for dpid in (1, 2):
        bond = dict(body, members=[f"s{dpid}-eth3", f"s{dpid}-eth4"])
        if bond.get("mode") == "active-backup":
            bond["primary"] = f"s{dpid}-eth3"
        statuses.append(controller.rest("PUT", f"/v1/bonds/{dpid}/{bond_name(dpid)}", bond)[0])
    return statuses


def bond_name(dpid):
    return f"s{dpid}-bond"


def both_pings(network, seconds):
    """Two pings at 20/s for `seconds`: (share of s1's transmitted packets per link,
    (sent, received) of each ping)."""
    before = {intf: tx_packets(intf) for intf in LINKS}
    procs = [network[src].popen(["ping", "-q", "-i", "0.05", "-w", str(seconds),
                                 network[dst].IP()], stdout=subprocess.PIPE, text=True)
             for src, dst in (("h1", "h3"), ("h2", "h4"))]
    replies = [tuple(map(int, re.search(r"(\d+) packets transmitted, (\d+) received",
                                        proc.communicate()[0]).groups())) for proc in procs]
    sent = {intf: tx_packets(intf) - before[intf] for intf in LINKS}
    total = sum(sent.values()) or 1
    return {intf: count / total for intf, count in sent.items()}, replies


def answered(replies):
    return all(received >= 0.95 * sent for sent, received in replies)


def check_replies(lab, replies):
    lab.check("replies to both pings", ">= 95% each",
              " / ".join(f"{received} of {sent}" for sent, received in replies),
              answered(replies))


def share_text(shares):
    return " ".join(f"{intf} {share:.0%}" for intf, share in shares.items())


def draw(phases, path):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    labels = [label for label, _ in phases]
    bottom = [0.0] * len(phases)
    for intf in LINKS:
        values = [shares[intf] * 100 for _, shares in phases]
        ax.bar(labels, values, bottom=bottom, label=intf)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_ylabel("% of s1's packets towards s2")
    ax.set_title("Two pings over a bond of two links")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(lab, controller, network, seconds):
    phases = []
    lab.step("PUT /v1/bonds/1/s1-bond and /v1/bonds/2/s2-bond: ports 3 and 4 bonded, "
             "active-backup (primary: port 3 on both sides)")
    statuses = put_bonds(controller, {"mode": "active-backup"})
    lab.check("PUT on s1 and s2", "200 200", " ".join(map(str, statuses)),
              statuses == [200, 200])
    reached = harness.wait_until(lambda: harness.ping(network["h1"], network["h3"]), 10)
    lab.check("h1 reaches h3 over the bond", "replies", "replies" if reached else "no reply",
              reached)
    members = controller.rest("GET", "/v1/bonds")[1][0]["ovsdb"]["members"]
    lab.check("s1-bond's members in OVSDB", "s1-eth3,s1-eth4", ",".join(members),
              members == list(LINKS))

    lab.step(f"active-backup: two pings (20/s) for {seconds} s")
    shares, replies = both_pings(network, seconds)
    phases.append(("active-backup", shares))
    check_replies(lab, replies)
    lab.check("one link carries everything", ">= 95% on s1-eth3", share_text(shares),
              shares["s1-eth3"] >= 0.95)

    lab.step("s1-eth3 goes down while a ping runs (20/s)")
    ping = network["h1"].popen(["ping", "-i", "0.05", "-c", "100", network["h3"].IP()],
                               stdout=subprocess.PIPE, text=True)
    time.sleep(1.5)
    subprocess.run(["ip", "link", "set", "s1-eth3", "down"], check=True)
    out, _ = ping.communicate()
    received = int(re.search(r"(\d+) received", out).group(1))
    lab.check("pings lost when the active link died", "<= 5 of 100", 100 - received,
              100 - received <= 5)
    shares, replies = both_pings(network, seconds)
    phases.append(("s1-eth3 down", shares))
    lab.check("traffic on the other link", ">= 95% on s1-eth4", share_text(shares),
              shares["s1-eth4"] >= 0.95 and answered(replies))
    subprocess.run(["ip", "link", "set", "s1-eth3", "up"], check=True)

    lab.step("balance-slb with LACP active on both sides: the two pings' source MACs "
             "spread over both links")
    put_bonds(controller, {"mode": "balance-slb", "lacp": "active"})
    negotiated = harness.wait_until(lambda: all(
        "negotiated" in appctl("lacp/show", bond_name(dpid)) for dpid in (1, 2)), 10)
    statuses = [re.search(r"status: (.*)", appctl("lacp/show", bond_name(dpid)))
                for dpid in (1, 2)]
    lab.check("LACP status (s1, s2)", "active negotiated (both)",
              " / ".join(m.group(1).strip() if m else "-" for m in statuses), negotiated)
    harness.wait_until(lambda: harness.ping(network["h2"], network["h4"]), 5)
    for _ in range(4):
        shares, replies = both_pings(network, seconds)
        if min(shares.values()) >= 0.2:
            break   # balanced; else OVS moves a hash at its next rebalance (every second)
    phases.append(("balance-slb + LACP", shares))
    check_replies(lab, replies)
    lab.check("both links carry traffic", ">= 20% on each", share_text(shares),
              min(shares.values()) >= 0.2)
    return phases


def main(argv=None):
    parser = command_line(__doc__)
    parser.add_argument("--seconds", type=int, default=3, help="length of each ping phase")
    args = parser.parse_args(argv)
    lab = LabRun("Bonding lab", "bond-lab", args.reports)
    lab.note("s1 and s2 joined by two links; the bond app alone, bonds made over REST "
             "(it writes OVSDB: one Port with both Interfaces, bond_mode, lacp) and OVS's "
             "NORMAL switching on the bonded bridges. Shares are of the packets s1 "
             "transmitted on each link (kernel counters) while h1 -> h3 and h2 -> h4 ping.")
    lab.step("starting the controller (bond) and Mininet (no bonds yet: nothing forwards)")
    with harness.running(BondLab(), apps=("apps/bond.py",)) as (controller, network):
        phases = run(lab, controller, network, args.seconds)
        problems = controller.problems()
    draw(phases, lab.picture("bond-lab.png", "each link's share of the traffic, per phase"))
    return lab.finish(problems)


if __name__ == "__main__":
    sys.exit(main())
