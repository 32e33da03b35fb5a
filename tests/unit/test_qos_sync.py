"""flows/qos_sync.py: which OVSDB writes apps/qos.py makes, given what OVSDB holds."""
from flows import qos, qos_sync

TREE = qos.port_qos_from_dict({"max_rate": "10M", "queues": {"0": {"min_rate": "3M"},
                                                             "1": {"min_rate": "5M"}}})
POLICED = qos.port_qos_from_dict({"ingress_policing": {"rate": "5M", "burst": "500k"}})
NAMES = {1: "s1-eth1", 2: "s1-eth2", 3: "s1-eth3"}
QUEUES = qos.ovsdb_queue_configs(TREE)
ROW = (qos.APP, {"max-rate": "10000000"}, QUEUES)


class Reads:
    """What OVSDB holds, and which ports were asked about."""

    def __init__(self, rows=None, policers=None):
        self.rows, self.policers, self.asked = rows or {}, policers or {}, []

    def qos(self, name):
        self.asked.append(("qos", name))
        return self.rows.get(name)

    def policing(self, name):
        self.asked.append(("policing", name))
        return self.policers.get(name, (0, 0))


def changes(ports, reads, ours=(), policed=(), **more):
    return qos_sync.ovsdb_changes(ports, NAMES, set(ours), set(policed), reads.qos,
                                  reads.policing, **more)


def test_a_fresh_switch_gets_its_trees_and_policers_in_port_order():
    assert qos_sync.fresh_ovsdb({2: POLICED, 1: TREE}, NAMES) == [
        qos_sync.SetQos("s1-eth1", 10_000_000, QUEUES), qos_sync.SetPolicing("s1-eth2", 5000, 500)]


def test_rows_already_right_are_left_alone():
    reads = Reads({"s1-eth1": ROW}, {"s1-eth2": (5000, 500)})
    assert changes({1: TREE, 2: POLICED}, reads, ours={"s1-eth1"}, policed={"s1-eth2"}) == []
    # a port without policing of ours is not even asked about its policer
    assert ("policing", "s1-eth1") not in reads.asked and ("policing", "s1-eth3") not in reads.asked


def test_a_different_tree_is_rewritten_and_a_tree_no_longer_wanted_is_cleared():
    other = (qos.APP, {"max-rate": "20000000"}, QUEUES)
    reads = Reads({"s1-eth1": other, "s1-eth3": ROW})
    assert changes({1: TREE}, reads, ours={"s1-eth1", "s1-eth3"}) == [
        qos_sync.SetQos("s1-eth1", 10_000_000, QUEUES), qos_sync.SetQos("s1-eth3")]


def test_a_policer_no_longer_wanted_is_switched_off():
    reads = Reads(policers={"s1-eth2": (5000, 500)})
    assert changes({}, reads, policed={"s1-eth2"}) == [qos_sync.SetPolicing("s1-eth2", 0, 0)]


def test_rebuild_clears_and_recreates_without_reading_and_only_limits_the_ports():
    reads = Reads({"s1-eth1": ROW})
    assert changes({1: TREE, 2: POLICED}, reads, ours={"s1-eth1"}, only=1, rebuild=[1]) == [
        qos_sync.SetQos("s1-eth1"), qos_sync.SetQos("s1-eth1", 10_000_000, QUEUES)]
    assert reads.asked == []


def test_the_plan_lines_say_what_the_writes_do():
    lines = [qos_sync.describe(c) for c in qos_sync.fresh_ovsdb({1: TREE, 2: POLICED}, NAMES)]
    assert lines[0].startswith("Port s1-eth1: QoS linux-htb max-rate=10000000, queues {0: ")
    assert lines[1] == "Interface s1-eth2: ingress_policing_rate=5000 burst=500"
    assert qos_sync.describe(qos_sync.SetQos("s1-eth3")) == "Port s1-eth3: no QoS"
