"""`make lab-qos`: the HTB lab, run by the controller and measured.

s1-eth4 (towards the receiver h4) gets max-rate 10 Mbit/s and queues 0/1/2 with
min-rates 3/1/6 Mbit/s; h1/h2/h3 are classified into them by source IP. Every
sender offers 20 Mbit/s of UDP; iperf3 measures what arrives at h4. Prints
configured vs measured with PASS/FAIL and writes reports/qos-lab.md and a plot
of each sender's rate over time (reports/qos-lab.png). Then loss, which rates hide:
numbered datagrams per queue, a slow stream next to a flood from the same sender,
TCP goodput and ping loss through the shaped port.
"""
import argparse
import subprocess
import sys
import threading
import time

from mininet_topos import harness
from mininet_topos.labs import LabRun, pyplot
from mininet_topos.topos import QOS_LAB_CONFIG, QosLab
from mininet_topos.labkit.udpcount import ALL_QUEUES_LENGTH, numbered, ping_received

MBIT = 1e6
CONFIG = dict(QOS_LAB_CONFIG, l2_switch={"mode": "datapath"})


class Lab(LabRun):
    def __init__(self, controller, network, seconds, reports):
        super().__init__("HTB QoS lab", "qos-lab", reports)
        self.controller, self.network, self.seconds = controller, network, seconds
        self.timelines = {}
        self.h4 = network["h4"]
        self.senders = [network[f"h{i}"] for i in (1, 2, 3)]

    def rate(self, what, expected, tolerance, measured):
        ok = abs(measured - expected) <= tolerance * expected
        return self.check(what, f"{expected / MBIT:.1f} Mbit/s ±{tolerance:.0%}",
                          f"{measured / MBIT:.2f} Mbit/s", ok)

    def at_least(self, what, floor, measured):
        return self.check(what, f">= {floor / MBIT:.1f} Mbit/s", f"{measured / MBIT:.2f} Mbit/s",
                          measured >= floor)

    def run(self):
        n = self.seconds
        self.step(f"each sender alone for {n} s (borrows up to the port's 10 Mbit/s)")
        for queue, sender in enumerate(self.senders):
            (alone,) = harness.udp_streams(self.h4, [(sender, 0, n)])
            self.rate(f"{sender.name} alone (queue {queue})", 10 * MBIT, 0.10,
                       harness.mean_rate(alone))
        self.step(f"staircase: h1 from 0 s, h2 from {n} s, h3 from {2 * n} s (all to {3 * n} s)")
        stairs = harness.udp_streams(self.h4, [(s, i * n, (3 - i) * n)
                                               for i, s in enumerate(self.senders)])
        self.timelines = {s.name: samples for s, samples in zip(self.senders, stairs)}
        together = [[x for x in samples if x[0] > 2 * n] for samples in stairs]
        rates = [harness.mean_rate(samples) for samples in together]
        for sender, minimum, rate in zip(self.senders, (3, 1, 6), rates):
            self.rate(f"{sender.name} with all three (min-rate)", minimum * MBIT, 0.15, rate)
        self.rate("sum of all three (port max-rate)", 10 * MBIT, 0.10, sum(rates))
        joined = [rate for t, rate in stairs[2] if t <= 2 * n + 3]
        self.at_least("h3 within 3 s of joining (reclaim)", 5 * MBIT, max(joined, default=0))
        # what the switch itself counted, through OpenFlow queue stats: every queue carried
        # at least one step's worth of its min-rate (1 Mbit/s for n s is n/8 MB)
        _, stats = self.rest("GET", "/v1/qos/1/s1-eth4/stats")
        for queue in ("0", "1", "2"):
            sent = stats.get("queues", {}).get(queue, {}).get("tx_bytes", 0)
            self.check(f"queue {queue} tx_bytes (OpenFlow queue stats)",
                       f">= {n / 8:.1f} MB", f"{sent / 1e6:.1f} MB", sent >= n * 1e6 / 8)
        self.step("ingress policing of h1's port at 5 Mbit/s (PUT /v1/qos/1/s1-eth1)")
        self.rest("PUT", "/v1/qos/1/s1-eth1", {"ingress_policing": {"rate": "5M"}})
        (policed,) = harness.udp_streams(self.h4, [(self.senders[0], 0, n)])
        self.rate("h1 policed", 5 * MBIT, 0.15, harness.mean_rate(policed))
        self.rest("DELETE", "/v1/qos/1/s1-eth1")
        self.step("a meter rule at 2 Mbit/s on h2's traffic (POST /v1/qos/1/rules)")
        _, rule = self.rest("POST", "/v1/qos/1/rules", {
            "match": {"ipv4_src": QosLab.SENDERS[1]}, "priority": 200,
            "meter": {"rate": "2M"}})
        (metered,) = harness.udp_streams(self.h4, [(self.senders[1], 0, n)])
        self.rate("h2 metered", 2 * MBIT, 0.15, harness.mean_rate(metered))
        self.rest("DELETE", f"/v1/qos/1/rules/{rule['id']}")
        self.loss()
        return self.passed

    def arrived(self, what, count, seen):
        return self.check(what, f">= {0.95 * count:.0f} of {count}", f"{len(seen)}",
                          len(seen) >= 0.95 * count)

    def flood(self, sender, seconds):
        """h4 receives a 20 Mbit/s UDP stream from `sender` in the background."""
        thread = threading.Thread(target=harness.udp_streams,
                                  args=(self.h4, [(sender, 0, seconds)]), daemon=True)
        thread.start()
        time.sleep(1.2)   # past iperf3's start: its queue is full from here on
        return thread

    def loss(self):
        self.step(f"loss: 100 numbered {ALL_QUEUES_LENGTH}-byte datagrams per queue, all "
                  f"three at once")
        for per_second in (20, 100, 2000):
            results = numbered(self.h4, [(s, 100, per_second) for s in self.senders],
                               length=ALL_QUEUES_LENGTH)
            for queue, (sender, (seen, _)) in enumerate(zip(self.senders, results)):
                self.arrived(f"{sender.name} at {per_second}/s (queue {queue})", 100, seen)
        self.step("loss: h1's datagrams to UDP 5999 in queue 2 while h1 floods queue 0")
        _, rule = self.rest("POST", "/v1/qos/1/rules", {
            "match": {"ipv4_src": QosLab.SENDERS[0], "udp_dst": 5999}, "queue": 2,
            "priority": 300, "port": "s1-eth4"})
        if not harness.wait_until(lambda: "0000176f/0000ffff at 20" in subprocess.run(
                ["tc", "filter", "show", "dev", "s1-eth4"], capture_output=True,
                text=True).stdout, 10):
            raise RuntimeError("the tc filter for UDP 5999 did not appear on s1-eth4")
        h1, h2 = self.senders[0], self.senders[1]
        for per_second, count in ((20, 60), (100, 200), (2000, 2000)):
            flood = self.flood(h1, 3 + count / per_second)
            ((seen, _),) = numbered(self.h4, [(h1, count, per_second)], base_port=5999)
            flood.join()
            self.arrived(f"slow stream at {per_second}/s next to the flood", count, seen)
        self.rest("DELETE", f"/v1/qos/1/rules/{rule['id']}")
        self.step("TCP goodput h1 -> h4 and ping h2 -> h4 through the shaped port")
        goodput = harness.iperf3(h1, self.h4, seconds=self.seconds)
        self.check("TCP goodput (iperf3, 1 stream)", "8.5-10.5 Mbit/s",
                   f"{goodput / MBIT:.2f} Mbit/s", 8.5 * MBIT <= goodput <= 10.5 * MBIT)
        answered = ping_received(h2, self.h4)
        self.check("ping h2 -> h4 alone", ">= 49 of 50", str(answered), answered >= 49)
        flood = self.flood(h1, 4)
        answered = ping_received(h2, self.h4)
        flood.join()
        self.check("ping h2 -> h4 while h1 floods queue 0", ">= 48 of 50", str(answered),
                   answered >= 48)

    def rest(self, method, path, body=None):
        status, reply = self.controller.rest(method, path, body)
        if status >= 300:
            raise RuntimeError(f"{method} {path}: {status} {reply}")
        return status, reply


def plot(timelines, seconds, path):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    for (name, samples), queue, minimum in zip(sorted(timelines.items()), (0, 1, 2), (3, 1, 6)):
        line, = ax.plot([t for t, _ in samples], [r / MBIT for _, r in samples],
                        label=f"{name}: queue {queue}, min {minimum} Mbit/s")
        ax.axhline(minimum, color=line.get_color(), linestyle=":", linewidth=1)
    ax.axhline(10, color="grey", linestyle="--", linewidth=1, label="port max-rate 10 Mbit/s")
    for t in (seconds, 2 * seconds):
        ax.axvline(t, color="lightgrey", linewidth=1)
    ax.set_xlabel("seconds")
    ax.set_ylabel("Mbit/s at the receiver")
    ax.set_ylim(0, 11)
    ax.set_title("HTB lab: borrowing, then each queue's min-rate as senders join")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8, help="length of each step")
    parser.add_argument("--reports", default="reports", help="where the report goes")
    args = parser.parse_args(argv)
    print("starting the controller (l2_switch + qos) and Mininet", flush=True)
    with harness.running(QosLab(), apps=("apps/l2_switch.py", "apps/qos.py"),
                         config=CONFIG) as (controller, network):
        lab = Lab(controller, network, args.seconds, args.reports)
        info = harness.wait_qos_ready(controller)
        lab.note(f"Datapath `{info['datapath']}`; queues chosen by: {info['queue_mechanism']}.")
        lab.note(f"Policing by: {info['policing_mechanism']}. Rates are UDP payload measured "
                 f"by iperf3 at the receiver.")
        lab.run()
        problems = controller.problems()
    plot(lab.timelines, args.seconds, lab.picture("qos-lab.png", "each sender's rate over time"))
    return lab.finish(problems)


if __name__ == "__main__":
    sys.exit(main())
