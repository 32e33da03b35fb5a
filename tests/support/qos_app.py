"""The QoS app under test: a fake OVSDB, the lab's config and port names, built and
brought up on a fake switch."""
from ryu.controller import ofp_event

from apps import qos as qos_app
from controller import config, ovsdb, rest, tc
from mininet_topos.topos import QOS_LAB_CONFIG  # noqa: F401 (other tests take it from here)
from flows import qos
from tests.support.fakeswitch import FakeSwitch
from tests.support.l2_app import Features, call
from tests.support.vlan_app import port_desc


NAMES = {1: "s1-eth1", 2: "s1-eth2", 3: "s1-eth3", 4: "s1-eth4"}

LAB_CLASSES = {"1:fffe": (10_000_000, 10_000_000), "1:1": (3_000_000, 10_000_000),
               "1:2": (1_000_000, 10_000_000), "1:3": (6_000_000, 10_000_000)}


class FakeOvsdb:
    """OVSDB as the QoS app sees it: port QoS rows, policers, the datapath type."""

    def __init__(self, kind="netdev"):
        self.kind, self.qos, self.policing, self.calls = kind, {}, {}, []
        self.foreign, self.down = set(), False

    def _check(self, *call):
        if self.down:
            raise ovsdb.OvsdbError("cannot reach OVSDB at tcp:127.0.0.1:6640")
        self.calls.append(call)

    def datapath_type(self, dpid):
        self._check("datapath_type")
        return self.kind

    def destroy_orphans(self, owner):
        self._check("destroy_orphans")

    def ports_with_qos(self, owner):
        return [p for p, row in self.qos.items() if row[0] == owner]

    def policed_interfaces(self, owner):
        return [i for i, (rate, _) in self.policing.items() if rate]

    def read_port_qos(self, port):
        return self.qos.get(port)

    def set_port_qos(self, port, max_rate, queues, owner):
        self._check("set_port_qos", port)
        if port in self.foreign:
            raise ovsdb.OvsdbConflict(f"port {port} has a QoS set by someone else")
        self.qos[port] = (owner, {"max-rate": str(max_rate)}, dict(queues))

    def clear_port_qos(self, port, owner):
        self._check("clear_port_qos", port)
        self.qos.pop(port, None)

    def read_ingress_policing(self, interface):
        return self.policing.get(interface, (0, 0))

    def set_ingress_policing(self, interface, rate, burst, owner):
        self._check("set_ingress_policing", interface, rate, burst)
        self.policing[interface] = (rate, burst)


class FakeTc:
    """Devices with OVS's tree as OVSDB describes it (unless told otherwise)."""

    def __init__(self):
        self.applied, self.root, self.filters, self.leaves = [], ("htb", "1:"), frozenset(), {}
        self.classes = dict(LAB_CLASSES)

    def is_local(self, device):
        return True

    def socket_buffer_bytes(self):
        return 212992

    def read_tree(self, device):
        return tc.TcTree(self.root, self.classes, self.leaves, self.filters)

    def apply(self, lines):
        """Keep what a batch leaves on the device: its filters (pref, flowid) and leaves."""
        self.applied.append(lines)
        filters, leaves = set(), dict(self.leaves)
        for line in lines:
            words = line.split()
            if line.startswith("filter add"):
                selectors = ["match " + m.strip() for m in
                             line.split(" u32 ")[1].rsplit(" flowid ", 1)[0].split("match ")
                             if m.strip()]
                filters.add(qos.TcFilter(int(words[words.index("prio") + 1]),
                                         words[words.index("protocol") + 1], tuple(selectors),
                                         words[-1]).identity())
            elif line.startswith("qdisc replace"):
                leaves[words[words.index("parent") + 1]] = (words[-3], int(words[-1]))
        self.filters, self.leaves = frozenset(filters), leaves


def inline(func, *args):
    """hub.spawn for tests: run at once, except the endless watcher."""
    if func.__name__ != "_watch":
        func(*args)


def make_app(monkeypatch, tmp_path, section=None, kind="netdev"):
    monkeypatch.setenv("SDN_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(config, "load_file", lambda path=None: {"qos": section or {}})
    wsgi = rest.WSGIApplication()
    app = qos_app.Qos(wsgi=wsgi)
    app.wsgi, app.ovsdb, app.tc, app.spawn = wsgi, FakeOvsdb(kind), FakeTc(), inline
    return app


def bring_up(app, dpid=1, answer=None):
    datapath = FakeSwitch(dpid, app, answer)
    app._switch_connected(ofp_event.EventOFPSwitchFeatures(Features(datapath)))
    app._port_desc(port_desc(datapath, NAMES, "s1"))
    return datapath
