"""`make bench` (cluster line): packet-in throughput of one controller against a
three-node cluster, in the same run, with the fake switches of bench/fake_switches.py.

Sixteen fake switches load the learning app (reactive) with packet-ins from new
source MACs. Against one node, each switch has one connection. Against the cluster
(three etcd members, three nodes), each switch connects to all three nodes, as OVS
does with three controller targets: it answers ROLE_REQUEST as OVS would (a new
master demotes the old one) and sends its packet-ins to its master only, as OVS
sends none to a slave. The election spreads the masters over the nodes.

On this 2-core machine three nodes share the same two cores one node has, and etcd
and the generator take their share too: a cluster cannot be faster here. On three
machines each node has its own cores: up to about three times one node's rate, since
the cluster costs nothing per packet-in (the election is per switch, not per packet).
"""
import argparse
import socket
import struct
import sys
import tempfile
from pathlib import Path

from bench import record
from bench.fake_switches import FakeSwitches, message
from mininet_topos import harness, ha_cluster
from mininet_topos.labkit import etcd

ROLE_REQUEST, ROLE_REPLY = 24, 25
EQUAL, MASTER, SLAVE = 1, 2, 3
APPS = ("apps/l2_switch.py",)
# every fake packet-in comes from port 1 with a new MAC: port security off, as in
# bench/controller_load.py
CONFIG = {"l2_switch": {"mode": "reactive", "max_macs": 1_000_000, "max_macs_per_port": 0}}


class ClusterFakeSwitches(FakeSwitches):
    """Each dpid connected to every port of `ports`; packet-ins only on the connection
    of its master."""

    def __init__(self, ports, count):
        self.role = {}   # id(connection) -> the role it was given
        super().__init__(ports[0], count)
        for port in ports[1:]:
            for dpid in range(1, count + 1):
                self.add(socket.create_connection(("127.0.0.1", port)), dpid)

    def control(self, switch, kind, xid, body):
        if kind != ROLE_REQUEST:
            return super().control(switch, kind, xid, body)
        role, generation = struct.unpack_from("!I4xQ", body)
        if role == MASTER:   # as OVS: a new master demotes the old one
            for other in self.switches:
                if other.dpid == switch.dpid and self.role.get(id(other)) == MASTER:
                    self.role[id(other)] = SLAVE
        if role in (MASTER, SLAVE):
            self.role[id(switch)] = role
        switch.outbox += message(ROLE_REPLY, xid, struct.pack(
            "!I4xQ", self.role.get(id(switch), EQUAL), generation))
        return None

    def masters(self):
        return {s.dpid for s in self.switches if self.role.get(id(s)) == MASTER}

    def loaded(self, switch):
        return self.role.get(id(switch)) == MASTER


def load(fakes, seconds, window):
    """(answered/s, p50 ms, p99 ms, generator CPU share)."""
    throughput = fakes.run(seconds, window)
    latency = fakes.run(seconds, 1)
    return (throughput.per_second, latency.percentile(0.5), latency.percentile(0.99),
            throughput.generator_cpu_s / throughput.seconds)


def one_node(switches, seconds, window):
    controller = harness.Controller(APPS, CONFIG)
    controller.start()
    try:
        fakes = FakeSwitches(controller.of_port, switches)
        try:
            if not fakes.connect():
                raise RuntimeError("fake switches did not connect:\n" + controller.log_tail())
            return load(fakes, seconds, window)
        finally:
            fakes.close()
    finally:
        controller.stop()


def three_nodes(switches, seconds, window, directory):
    """(load(), {node: switches it masters})."""
    with etcd.running_cluster(directory / "etcd", 3) as members:
        nodes = [ha_cluster.Node(f"n{i}", APPS, CONFIG, members, directory / f"n{i}")
                 for i in (1, 2, 3)]
        try:
            for node in nodes:
                node.start()
            fakes = ClusterFakeSwitches([n.of_port for n in nodes], switches)
            try:
                if not fakes.connect():
                    raise RuntimeError("fake switches did not connect")

                def all_mastered():
                    fakes.pump(0.05)
                    return len(fakes.masters()) == switches
                if not harness.wait_until(all_mastered, 20, step=0):
                    raise RuntimeError(f"a master for {len(fakes.masters())} of {switches}")
                fakes.connect(timeout=5)   # let the new masters' converge go by
                held = {n.name: sum(r == "master" for r in n.roles().values()) for n in nodes}
                return load(fakes, seconds, window), held
            finally:
                fakes.close()
        finally:
            for node in nodes:
                node.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--switches", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--window", type=int, default=50)
    args = parser.parse_args(argv)
    rec = record.Run("cluster_load", "Cluster packet-ins")
    single = one_node(args.switches, args.seconds, args.window)
    cluster, held = three_nodes(args.switches, args.seconds, args.window,
                                Path(tempfile.mkdtemp(prefix="sdn-bench-cluster-")))
    spread = " ".join(f"{name}:{count}" for name, count in sorted(held.items()))
    table = rec.table(f"packet-ins, {args.switches} fake switches, l2_switch reactive, "
                      f"{args.seconds:g} s per mode, window {args.window} (throughput), "
                      f"1 (latency)", [
                          record.Column("setup"), record.Column("rate", "answered/s"),
                          record.Column("p50", "ms"), record.Column("p99", "ms"),
                          record.Column("generator CPU", "%")])
    for label, (rate, p50, p99, gen) in (("one node", single),
                                          (f"three nodes on etcd ({spread})", cluster)):
        table.add(label, round(rate), round(p50, 2), round(p99, 2), round(gen * 100),
                  peer=label == "one node")
    print(f"\npacket-ins, {args.switches} fake switches, l2_switch reactive, "
          f"{args.seconds:g} s per mode, window {args.window} (throughput), 1 (latency)")
    print(f"{'setup':<46}{'answered/s':>11}{'p50 ms':>8}{'p99 ms':>8}{'gen CPU':>9}")
    for label, rate, p50, p99, gen in table.rows:
        print(f"{label:<46}{rate:>11.0f}{p50:>8.2f}{p99:>8.2f}{gen:>8}%")
    print(f"three nodes / one node: {table.rows[1][1] / table.rows[0][1]:.2f} (one 2-core "
          f"machine: the nodes share its cores)")
    rec.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
