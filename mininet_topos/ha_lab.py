"""`make lab-ha`: the controller as a highly available cluster, on this machine.

Three etcd members and three ryu-manager nodes (the learning app in reactive mode, the
VLAN app and the load balancer; each node with its own OpenFlow and REST ports and
state directory, reaching etcd through relays of its own) and three switches in a
line, each listing all three nodes as controller targets. The lab kills, pauses and
cuts off nodes and etcd members and checks, as expected vs observed: exactly one
master per switch; established traffic losing nothing and a new host pair pinging
within the failover time when a master is killed; a REST write sent to a slave
reaching the switch; a paused master stepping down, never two masters; the etcd
leader killed; a restarted node rejoining as slave; a node cut off from etcd
stopping its writes. Writes reports/ha-lab.md with a timeline of who was master of
each switch (reports/ha-lab.png).
"""
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mininet.topo import Topo

from mininet_topos import harness, ha_cluster
from mininet_topos.labs import LabRun, command_line, pyplot
from mininet_topos.topos import DatapathAware

APPS = ("apps/l2_switch.py", "apps/vlan.py", "apps/lb.py")
VIP, SUBNETS = "10.0.0.100", ["10.0.0.0/24"]
APPS_CONFIG = {"l2_switch": {"mode": "reactive"}, "lb": {"subnets": SUBNETS}}
# host -> (switch, address); the last four stay silent until a step needs a new pair
HOSTS = {"c1": ("s1", 1), "b1": ("s1", 11), "b2": ("s1", 12), "h3": ("s2", 3),
         "h4": ("s2", 4), "h5": ("s3", 5), "h6": ("s3", 6), "n1a": ("s1", 21),
         "n1b": ("s3", 22), "n2a": ("s2", 23), "n2b": ("s3", 24), "n3a": ("s1", 25),
         "n3b": ("s2", 26), "n4a": ("s2", 27), "n4b": ("s3", 28)}
LEASE_S = 2
FAILOVER_TARGET_S = 5.0


class HaLab(DatapathAware, Topo):
    """s1 - s2 - s3 in a line; hosts as HOSTS says (10.0.0.x/24)."""

    def build(self):
        for index in (1, 2, 3):
            self.addSwitch(f"s{index}", dpid="%016x" % index)
        self.addLink("s1", "s2")
        self.addLink("s2", "s3")
        for name, (switch, address) in HOSTS.items():
            self.addLink(self.addHost(name, ip=f"10.0.0.{address}/24"), switch)


def vip_body():
    return {"vip": VIP, "protocol": "tcp", "port": 80, "mode": "nat",
            "health": {"interval_s": 0.5, "timeout_s": 0.5},
            "backends": [{"ip": "10.0.0.11", "port": 8080}, {"ip": "10.0.0.12", "port": 8080}]}


def first_ping(network, a, b, limit=10.0):
    """Seconds until `a` first gets an answer from `b` (one ping every 0.1 s), or None."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if harness.ping(network[a], network[b], timeout=0.2):
            return time.monotonic() - started
    return None


def dpids(network):
    return [s.dpid for s in network.switches]


def vlan_path(network, host):
    """The VLAN app's REST path of the switch port `host` is plugged into."""
    port = ha_cluster.switch_side(network, host)
    return f"/v1/switches/{port.node.dpid}/ports/{port.name}/vlan"


def ping_loss(output):
    found = re.search(r"(\d+) packets transmitted, (\d+) received", output)
    return (int(found.group(1)), int(found.group(2))) if found else (0, 0)


class Steps:
    def __init__(self, lab, cluster, sampler):
        self.lab, self.cluster, self.sampler = lab, cluster, sampler
        self.network = cluster.network
        self.failovers = {}

    def one_master_each(self):
        self.lab.step("every switch has exactly one master")
        ok = self.cluster.wait_masters(dpids(self.network), 10)
        masters = self.cluster.masters()
        self.lab.check("masters per switch", "1 each",
                       " ".join(f"s{int(d, 16)}:{'+'.join(masters.get(d, [])) or '-'}"
                                for d in dpids(self.network)), ok)
        spread = {name for names in masters.values() for name in names}
        self.lab.note(f"Masters at the start: {masters} ({len(spread)} nodes hold one).")
        for a, b in (("c1", "h3"), ("h3", "h5"), ("h4", "h6"), ("c1", "h6")):
            answered = first_ping(self.network, a, b, limit=5) is not None
            self.lab.check(f"{a} pings {b}", "answers", "answers" if answered else "no answer",
                           answered)

    def kill_master(self):
        s2 = "%016x" % 2
        victim = self.cluster.master_of(s2)
        self.lab.step(f"kill -9 {victim.name}, master of s2, during iperf3 h3->h5 and "
                      f"ping -i 0.01 h4->h6")
        h3, h4, h5, h6 = (self.network[n] for n in ("h3", "h4", "h5", "h6"))
        h5.cmd("iperf3 -s -1 -D -p 5201")
        harness.wait_until(lambda: ":5201 " in h5.cmd("ss -ltnH"), 5, step=0.1)
        # at a set rate: a saturated path (userspace datapath, two cores shared with
        # three controllers and etcd) drops pings for congestion, not for the failover
        iperf = h3.popen(["iperf3", "-c", h5.IP(), "-b", "50M", "-t", "8", "-i", "1", "-J"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # a count, not a deadline (-w): ping stopped by a deadline counts the packet it
        # had just sent as lost
        pinger = h4.popen(["ping", "-i", "0.01", "-c", "700", "-W", "1", h6.IP()],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ha_cluster.new_hosts(self.network, ("n2a", "n2b"), 2)
        time.sleep(2)
        self.sampler.mark(f"kill -9 {victim.name}")
        killed = time.monotonic()
        victim.kill()
        ha_cluster.bring_up(self.network, ("n2a", "n2b"))
        others = [n for n in self.cluster.nodes if n is not victim]
        took_over = harness.wait_until(
            lambda: any(n.roles().get(s2) == "master" for n in others), 10, step=0.02)
        master_s = time.monotonic() - killed
        pair = first_ping(self.network, "n2a", "n2b")
        both = harness.wait_until(lambda: all(ha_cluster.learned(self.network, h)
                                              for h in ("n2a", "n2b")), 10, step=0.05)
        pair_s = time.monotonic() - killed if both else None
        sent, received = ping_loss(pinger.communicate(timeout=20)[0])
        report = iperf.communicate(timeout=20)[0]
        try:
            intervals = [i["sum"]["bits_per_second"] for i in json.loads(report)["intervals"]]
        except (ValueError, KeyError):
            intervals = []
        self.failovers["master"] = master_s if took_over else None
        self.failovers["new pair"] = pair_s
        self.lab.check("a new master of s2", f"<= {FAILOVER_TARGET_S:g} s",
                       f"{master_s:.2f} s" if took_over else "none",
                       took_over and master_s <= FAILOVER_TARGET_S)
        self.lab.check("ping -i 0.01 h4->h6 across the kill", "0 lost",
                       f"{sent - received} of {sent} lost", sent == 700 and received == sent)
        self.lab.check("iperf3 h3->h5 at 50 Mbit/s: every second carried data", "8 of 8 > 0",
                       f"{sum(r > 0 for r in intervals)} of {len(intervals)} > 0, min "
                       f"{min(intervals, default=0) / 1e6:.0f} Mbit/s",
                       len(intervals) >= 7 and all(r > 0 for r in intervals))
        self.lab.check("new pair n2a (s2) -> n2b (s3) pings", "answers",
                       "never" if pair is None else "answers", pair is not None)
        self.lab.check("the pair learned (its MACs in s2's and s3's entries)",
                       f"<= {FAILOVER_TARGET_S:g} s after the kill",
                       "never" if pair_s is None else f"{pair_s:.2f} s",
                       pair_s is not None and pair_s <= FAILOVER_TARGET_S)
        return victim

    def write_to_a_slave(self):
        s1 = "%016x" % 1
        master = self.cluster.master_of(s1)
        slave = next(n for n in self.cluster.nodes
                     if n is not master and n.roles().get(s1) == "slave")
        self.lab.step(f"POST a VIP to {slave.name}, a slave of s1 (master {master.name})")
        servers = [harness.start_http(self.network[b], b) for b in ("b1", "b2")]
        try:
            started = time.monotonic()
            status, body = slave.rest("POST", "/v1/lb/vips", vip_body())
            self.lab.check("POST on the slave", "201", status, status in (200, 201))
            group = harness.wait_until(lambda: any(flow.has_action("group") for flow in
                                                   self.network.flows("s1")), 10)
            landed_s = time.monotonic() - started
            self.lab.check("the VIP's flows on s1 (written by the master)", "present",
                           f"after {landed_s:.2f} s" if group else "absent", group)
            healthy = harness.wait_until(lambda: sum(
                b["healthy"] for b in master.rest("GET", "/v1/lb/vips/1")[1]["backends"]) == 2,
                10)
            served = harness.http_requests(self.network["c1"], VIP, 80, 40)
            self.lab.check("40 requests to the VIP", "0 failed, both backends",
                           f"{served['failed']} failed, {sorted(served['served'])}",
                           healthy and served["failed"] == 0 and len(served["served"]) == 2)
        finally:
            for server in servers:
                server.kill()

    def pause_master(self):
        s1 = "%016x" % 1
        victim = self.cluster.master_of(s1)
        self.lab.step(f"SIGSTOP {victim.name} (master of s1) for {LEASE_S + 3} s, then SIGCONT")
        ha_cluster.new_hosts(self.network, ("n3a", "n3b"), 3)
        self.sampler.mark(f"SIGSTOP {victim.name}")
        victim.pause()
        ha_cluster.bring_up(self.network, ("n3a", "n3b"))
        others = [n for n in self.cluster.nodes if n is not victim]
        moved = harness.wait_until(
            lambda: any(n.roles().get(s1) == "master" for n in others), LEASE_S + 3)
        pair = first_ping(self.network, "n3a", "n3b", limit=5)
        time.sleep(max(0.0, LEASE_S + 3 - 1))
        self.sampler.mark(f"SIGCONT {victim.name}")
        woke = time.monotonic()
        victim.resume()
        stepped = harness.wait_until(lambda: victim.roles().get(s1) == "slave", 5, step=0.02)
        took = time.monotonic() - woke
        self.lab.check("another node took s1 while it was stopped", "yes",
                       "yes" if moved else "no", moved)
        self.lab.check("a new pair n3a (s1) -> n3b (s2) while it was stopped", "pings",
                       "never" if pair is None else f"after {pair:.2f} s", pair is not None)
        self.lab.check("the woken node says slave of s1", "within 2 s",
                       f"{took:.2f} s" if stepped else "no", stepped and took <= 2.0)
        # a write made on the woken node: the master applies it; the woken node's own
        # writes to s1 are refused by its sender (counted), none reaches the switch
        refused = (victim.switches() or {}).get(s1, {}).get("refused", 0)
        before = {flow.key for flow in self.network.flows("s1")}
        status, _ = victim.rest("PUT", vlan_path(self.network, "c1"), {"tag": 30})
        landed = harness.wait_until(
            lambda: {flow.key for flow in self.network.flows("s1")} != before, 5)
        now_refused = (victim.switches() or {}).get(s1, {}).get("refused", 0)
        self.lab.check("a VLAN PUT on the woken node", "200, on s1 via the master",
                       f"{status}, {'on s1' if landed else 'not on s1'}",
                       status == 200 and landed)
        self.lab.check("its own writes to s1", "refused by its sender",
                       f"{now_refused - refused} refused", now_refused > refused)

    def kill_etcd_leader(self):
        leader = self.cluster.etcd_leader()
        self.lab.step(f"kill -9 the etcd leader ({leader.name if leader else '?'})")
        self.sampler.mark(f"kill -9 etcd {leader.name if leader else '?'}")
        killed = self.sampler.now()
        ha_cluster.new_hosts(self.network, ("n4a", "n4b"), 4)
        leader.kill()
        ha_cluster.bring_up(self.network, ("n4a", "n4b"))
        time.sleep(6)   # etcd elects a new leader in 2-3.4 s (measured): watch it all
        gaps = self.sampler.longest_gaps(dpids(self.network), killed, killed + 6)
        worst = max(gaps.values())
        self.lab.check("longest time a switch had no master", "<= 5 s",
                       f"{worst:.2f} s", worst <= 5.0)
        settled = self.cluster.wait_masters(dpids(self.network), 5)
        self.lab.check("one master per switch after it", "1 each",
                       "1 each" if settled else str(self.cluster.masters()), settled)
        pair = first_ping(self.network, "n4a", "n4b")
        self.lab.check("a new pair n4a (s2) -> n4b (s3)", "pings",
                       "never" if pair is None else f"after {pair:.2f} s", pair is not None)
        node = next(n for n in self.cluster.nodes if n.process.poll() is None)
        status, body = node.rest("PUT", vlan_path(self.network, "h6"), {"tag": 30})
        self.lab.check(f"a REST write on {node.name}", "200", status, status == 200)

    def rejoin(self, victim):
        self.lab.step(f"restart {victim.name} (killed above): it rejoins as a slave")
        before = self.cluster.masters()
        victim.start()
        joined = harness.wait_until(lambda: set(victim.roles().values()) == {"slave"}
                                    and len(victim.roles()) == 3, 15)
        self.lab.check(f"{victim.name} slave of every switch", "3 of 3 slave",
                       f"{sorted(victim.roles().items())}", joined)
        self.lab.check("no master moved", "same masters", "same" if
                       self.cluster.masters() == before else str(self.cluster.masters()),
                       self.cluster.masters() == before)

    def cut_off(self):
        masters = self.cluster.masters()
        victim = max(self.cluster.nodes,
                     key=lambda n: sum(n.name in names for names in masters.values()))
        held = [d for d, names in masters.items() if victim.name in names]
        self.lab.step(f"cut {victim.name} (master of {len(held)}) off from etcd")
        self.sampler.mark(f"cut {victim.name} off")
        cut = time.monotonic()
        victim.cut_off()
        stopped = harness.wait_until(lambda: "master" not in victim.roles().values(),
                                     LEASE_S + 2, step=0.02)
        self.lab.check(f"{victim.name} stops writing", f"<= {LEASE_S} s",
                       f"{time.monotonic() - cut:.2f} s" if stopped else "no",
                       stopped and time.monotonic() - cut <= LEASE_S + 0.5)
        others = [n for n in self.cluster.nodes if n is not victim]
        moved = harness.wait_until(lambda: all(
            any(n.roles().get(d) == "master" for n in others) for d in held), 10)
        self.lab.check("its switches taken by the others", "all", "all" if moved else
                       str(self.cluster.masters()), moved)
        status, body = victim.rest("PUT", vlan_path(self.network, "h5"), {"tag": 30})
        self.lab.check(f"a REST write on {victim.name}", "refused with the reason",
                       f"{status} {str(body)[:60]}", status >= 500 and "etcd" in str(body))
        victim.reconnect()


def draw(sampler, nodes, path):
    plt = pyplot()
    colours = {node.name: f"C{index}" for index, node in enumerate(nodes)}
    fig, ax = plt.subplots(figsize=(9, 3.2))
    switches = sorted({d for _, claims in sampler.samples for d in claims})
    for row, dpid in enumerate(switches):
        previous = None
        for (t, claims), following in zip(sampler.samples, sampler.samples[1:] + [None]):
            names = claims.get(dpid, [])
            end = following[0] if following else t + ha_cluster.SAMPLE_S
            colour = "red" if len(names) > 1 else colours.get(names[0]) if names else None
            if colour:
                ax.barh(row, end - t, left=t, color=colour, height=0.6,
                        label=names[0] if names and names[0] != previous else None)
            previous = names[0] if names else None
    for index, (t, label) in enumerate(sampler.events):
        ax.axvline(t, color="grey", linestyle=":")
        ax.text(t, len(switches) - 0.45 - 0.5 * (index % 2), label, fontsize=7, va="top",
                ha="left", bbox={"facecolor": "white", "alpha": 0.7, "linewidth": 0})
    ax.set_yticks(range(len(switches)), [f"s{int(d, 16)}" for d in switches])
    ax.set_xlabel("seconds")
    ax.set_title("master of each switch, as the nodes say (no colour: none)")
    handles = {h.get_label(): h for h in ax.get_legend_handles_labels()[0]}
    ax.legend(handles.values(), handles.keys(), fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    args = command_line(__doc__).parse_args(argv)
    lab = LabRun("High-availability lab: a three-node controller cluster on etcd", "ha-lab",
                 args.reports)
    lab.note(f"Three etcd members and three ryu-manager nodes on this machine ({', '.join(APPS)}; "
             f"l2_switch reactive, so a new host pair needs a working master); lease "
             f"{LEASE_S} s. Switches s1 - s2 - s3, each with all three nodes as controller "
             f"targets. Who is master comes from the nodes' GET /v1/runtime/switches, "
             f"sampled every {ha_cluster.SAMPLE_S} s.")
    lab.step("starting etcd (3 members), three nodes and Mininet")
    directory = Path(tempfile.mkdtemp(prefix="sdn-ha-lab-"))
    with ha_cluster.running(HaLab(), APPS, APPS_CONFIG, directory, lease_s=LEASE_S) as cluster:
        sampler = ha_cluster.Sampler(cluster.nodes)
        try:
            steps = Steps(lab, cluster, sampler)
            steps.one_master_each()
            victim = steps.kill_master()
            steps.write_to_a_slave()
            steps.pause_master()
            steps.kill_etcd_leader()
            steps.rejoin(victim)
            steps.cut_off()
        finally:
            sampler.stop()
        doubles = sampler.double_masters()
        lab.check("samples with two nodes claiming one switch", 0,
                  f"{len(doubles)} of {len(sampler.samples)}", not doubles)
        polls = len(sampler.samples) * len(cluster.nodes)
        lab.check("polls of a running node left unanswered (a blind spot)", "<= 5 %",
                  f"{sampler.unanswered} of {polls}", sampler.unanswered <= 0.05 * polls)
        problems = cluster.problems()
    draw(sampler, cluster.nodes, lab.picture("ha-lab.png", "master of each switch over the run"))
    lab.note(f"Logs and state: {directory}")
    return lab.finish(problems)


if __name__ == "__main__":
    sys.exit(main())
