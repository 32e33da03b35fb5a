"""Mastership per switch on real Open vSwitch: one bridge, TWO ryu-managers as its
controller targets (own OpenFlow/REST ports and state dirs), each deciding who is
master from a file the test writes (tests/support/file_elector.py, test-only).

Seen from OVS (`ovs-vsctl list Controller`: each target's role; `ovs-ofctl
dump-flows`) and from the controllers (GET /v1/runtime/switches, their logs): a slave
alone lands nothing; the master's flows land; handing mastership over keeps every
entry in place (none re-added, none deleted); a master whose elector has not heard
of the new master is told by OVS (ONF role status) and steps down; an old node that
comes back with a stale generation is refused by OVS and stays a slave; nobody logs
an OpenFlow error."""
import json
import re
import subprocess

import pytest

from mininet_topos import harness
from mininet_topos.labkit import flowdump
from tests.support import file_elector

pytestmark = pytest.mark.integration
BRIDGE, DPID = "sdnroles0", "00000000000000e1"


def vsctl(*args):
    return subprocess.run(["ovs-vsctl", *args], capture_output=True, text=True,
                          check=True).stdout


def flows():
    """{flow without its counters: its duration} as OVS holds them."""
    out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", BRIDGE],
                         capture_output=True, text=True, check=True).stdout
    return {flow.key: flow.duration for flow in flowdump.parse(out)}


def ovs_roles(nodes):
    """node name -> the role OVS gives its controller connection."""
    rows = json.loads(vsctl("--format=json", "--columns=target,role", "list", "Controller"))
    by_target = {row[0]: row[1] for row in rows["data"] if isinstance(row[1], str)}
    return {name: by_target.get(f"tcp:127.0.0.1:{node.of_port}") for name, node in nodes.items()}


class Node(harness.Controller):
    """A cluster node whose elector reads `self.masters_file`."""

    def __init__(self, name, log_dir):
        super().__init__(("apps/l2_switch.py",), log_dir=log_dir)
        self.name, self.masters_file = name, log_dir / "masters.json"

    def decide(self, master, generation):
        self.masters_file.write_text(json.dumps({DPID: [master, generation]}))

    def environment(self):
        return file_elector.environment(super().environment(), self.name, self.masters_file)

    def switch(self):
        status, switches = self.rest("GET", "/v1/runtime/switches", timeout=2)
        assert status == 200, switches
        return next((s for s in switches if s["dpid"] == DPID), None)

    def is_(self, role, switch_role=None):
        entry = self.switch()
        return entry is not None and entry["role"] == role and (
            switch_role is None or entry["switch_role"] == switch_role)


@pytest.fixture
def cluster(tmp_path):
    nodes = {}
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        nodes[name] = Node(name, tmp_path / name)
        nodes[name].decide("a", 1)
    vsctl("--if-exists", "del-br", BRIDGE)   # ours, left by an interrupted run
    vsctl("add-br", BRIDGE, "--", "set", "Bridge", BRIDGE, "datapath_type=netdev",
          "fail_mode=secure", "protocols=OpenFlow13", f"other_config:datapath-id={DPID}")
    try:
        vsctl("set-controller", BRIDGE, *[f"tcp:127.0.0.1:{n.of_port}" for n in nodes.values()])
        yield nodes
    finally:
        for node in nodes.values():
            node.stop()
        vsctl("--if-exists", "del-br", BRIDGE)
    problems = [f"{name}: {line}" for name, node in nodes.items() for line in node.problems()]
    assert not problems, "controllers logged problems:\n" + "\n".join(problems)


@pytest.mark.long   # 31 s: make reliability (the budget of make test); the etcd elector's
# takeover on OVS stays in make test (test_etcd_elector_ovs.py)
def test_only_the_master_writes_and_mastership_moves_without_touching_entries(cluster):
    a, b = cluster["a"], cluster["b"]
    wait = harness.wait_until

    # b alone, a slave (a is master in the files, not running): nothing lands
    b.start()
    assert wait(lambda: b.is_("slave", "slave"), 10), b.log_tail()
    assert wait(lambda: b.switch()["refused"] > 0, 10)   # it tried, the sender stopped it
    # OVS writes the Controller table's role column every few seconds
    assert wait(lambda: ovs_roles(cluster)["b"] == "slave", 12)
    assert flows() == {}

    # a starts, wins: master, its flows land, every app reconciled
    a.start()
    assert wait(lambda: a.is_("master", "master") and a.switch()["reconciled"], 15), \
        a.log_tail()
    assert wait(lambda: ovs_roles(cluster) == {"a": "master", "b": "slave"}, 12)
    before = flows()
    assert before and b.is_("slave")

    # hand over to b at generation 2: a steps down, b converges by diff
    offset = len(b.log_text())
    b.decide("b", 2)   # a's elector has not heard yet (a paused master): OVS tells it
    assert wait(lambda: b.is_("master", "master") and a.is_("slave"), 10), b.log_tail()
    assert "the switch made it a slave" in a.log_text(), a.log_tail()
    a.decide("b", 2)
    assert wait(lambda: ovs_roles(cluster) == {"a": "slave", "b": "master"}, 12)
    assert wait(lambda: "reconciled switch" in b.log_text()[offset:], 10), b.log_tail()
    took_over = b.log_text()[offset:]
    assert re.search(r"reconciled switch \w+: \d+ entries kept, 0 added or changed, "
                     r"0 stale removed", took_over), took_over
    after = flows()
    assert after.keys() == before.keys()                      # nothing deleted or changed
    assert all(after[f] >= before[f] for f in before)         # nothing re-added

    # a (told by OVS above, it will not retry generation 1) restarts with an old view,
    # master at generation 1: OVS refuses it STALE, it stays a slave
    a.stop()
    offset = len(a.log_text())
    a.decide("a", 1)
    a.start()
    assert wait(lambda: "STALE" in a.log_text()[offset:] and a.is_("slave"), 20), a.log_tail()
    assert a.is_("slave") and b.is_("master", "master")
    # a's SLAVE request carried its old generation too, and OVS refuses a stale
    # generation for SLAVE as for MASTER: its new connection stays EQUAL ("other") in
    # OVS. It writes nothing all the same (its own role is slave: the sender stops
    # every write). The etcd elector knows the newest generation from etcd at join, so
    # a real node's SLAVE request lands (tests/integration/test_etcd_elector_ovs.py).
    assert wait(lambda: ovs_roles(cluster)["b"] == "master", 12), ovs_roles(cluster)
    assert ovs_roles(cluster)["a"] in ("slave", "other", None), ovs_roles(cluster)
    assert a.switch()["may_write"] is False
    assert flows().keys() == before.keys()
