"""controller/runtime.py: one runtime per ryu-manager, the one sender and its write
check, readiness per switch, and the import order of controller/ (no cycles)."""
import ast
from pathlib import Path

import networkx
import pytest
from ryu.controller import handler, ofp_event
from ryu.controller.handler import DEAD_DISPATCHER
from ryu.ofproto import ofproto_v1_3_parser as parser

from apps import topology as topology_app
from apps import vlan as vlan_app
from controller import config, port_plans, rest, runtime, state
from tests.support.app_scenarios import SCENARIOS, WRITES, run_scenario
from tests.support.fakeswitch import FakeSwitch, run_inline
from tests.support import l2_app as l2_tests
from tests.support import overlay_app as overlay_tests
from tests.support import vlan_app as vlan_tests

REPO = Path(__file__).resolve().parents[2]


def controller_imports():
    """controller module -> the controller modules it imports (anywhere in it, also
    inside functions: a deferred import is still a cycle)."""
    graph = networkx.DiGraph()
    for path in (REPO / "controller").glob("*.py"):
        graph.add_node(path.stem)
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module == "controller":
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "controller."):
                names = [node.module.split(".")[1]]
            elif isinstance(node, ast.Import):
                names = [a.name.split(".")[1] for a in node.names
                         if a.name.startswith("controller.")]
            graph.add_edges_from((path.stem, name) for name in names)
    return graph


def test_controller_modules_import_each_other_without_cycles():
    graph = controller_imports()
    assert {"rest", "runtime", "reload", "runtime_api", "southbound"} <= set(graph)
    assert list(networkx.simple_cycles(graph)) == []
    # rest is a leaf of the runtime: nothing it imports builds on it
    assert not {"reload", "runtime_api", "runtime", "southbound"} & networkx.descendants(
        graph, "rest")


def test_the_cycle_check_sees_deferred_imports(tmp_path, monkeypatch):
    """The check above can fail: an import inside a function (how rest.py once reached
    runtime_api) is an edge too."""
    (tmp_path / "controller").mkdir()
    (tmp_path / "controller" / "a.py").write_text("from controller import b\n")
    (tmp_path / "controller" / "b.py").write_text("def f():\n    from controller import a\n")
    monkeypatch.setitem(globals(), "REPO", tmp_path)
    assert list(networkx.simple_cycles(controller_imports())) in (
        [["a", "b"]], [["b", "a"]])


def test_only_the_runtime_writes_to_a_datapath():
    """Every message leaves through Runtime.send (controller/channel.py's echo requests
    are the connection's own keep-alive, not a change to the switch)."""
    offenders = []
    for folder in ("controller", "apps", "bench"):
        for path in (REPO / folder).glob("*.py"):
            if path.relative_to(REPO).as_posix() in ("controller/runtime.py",
                                                      "controller/channel.py"):
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and (
                        node.func.attr == "send_msg" or (
                            node.func.attr == "send" and "datapath" in ast.unparse(
                                node.func.value))):
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == []


# --- every app, every kind of message, through the one sender --------------------

@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_a_refusing_runtime_stops_every_message_that_changes_a_switch(
        name, monkeypatch, tmp_path):
    """Allowed, each app sends its writes (so the check below can fail); refused, the
    same events send nothing but requests for what the switch holds."""
    with monkeypatch.context() as allowed:
        _, kinds, _ = run_scenario(name, allowed, tmp_path / "allowed", may_write=True)
    assert kinds & WRITES, kinds
    app, kinds, reads = run_scenario(name, monkeypatch, tmp_path / "refused", may_write=False)
    assert reads, kinds
    assert sum(app.runtime.refused.values()) > 0


def test_every_kind_of_write_is_covered_by_the_scenarios(monkeypatch, tmp_path):
    seen = set()
    for name in SCENARIOS:
        with monkeypatch.context() as patch:
            seen |= run_scenario(name, patch, tmp_path / name, may_write=True)[1]
    assert WRITES <= seen, WRITES - seen


# --- one runtime per ryu-manager -------------------------------------------------

def test_every_app_asks_ryu_for_the_one_runtime_and_the_rest_server():
    from apps import bond, l2_switch, lb, overlay, qos, vlan
    for cls in (bond.Bond, l2_switch.L2Switch, lb.Lb, overlay.Overlay, qos.Qos, vlan.Vlan,
                topology_app.Topology):
        assert dict(cls.context_iteritems()) == {"wsgi": rest.WSGIApplication,
                                                 "runtime": runtime.Runtime}, cls


def test_apps_built_apart_share_nothing(monkeypatch):
    """No module-level registry: two runtimes (two tests, two ryu-managers) keep their
    claims and reload participants apart."""
    first, second = runtime.Runtime(), runtime.Runtime()
    first.claims.claim("Overlay", [1])
    assert first.claims.owner(1) == "Overlay" and second.claims.owner(1) is None
    l2 = l2_tests.make_app(monkeypatch)
    other = l2_tests.make_app(monkeypatch)
    assert l2.runtime is not other.runtime
    assert l2_tests.make_app(monkeypatch, l2.runtime).runtime is l2.runtime


def test_the_runtime_routes_are_served_once_per_rest_server(monkeypatch):
    app = l2_tests.make_app(monkeypatch)
    app.runtime.register(app.wsgi, l2_tests.l2_switch.L2Rest, app)   # a second app, same server
    routes = [r.name for r in app.wsgi.mapper.matchlist if r.name == "runtime_switches"]
    assert routes == ["runtime_switches"]
    assert l2_tests.call(app, "GET", "/v1/runtime/switches")[:2] == (200, [])


# --- readiness: asked over REST, not grepped from logs -----------------------------

def features(switch):
    return ofp_event.EventOFPSwitchFeatures(l2_tests.Features(switch))


def test_readiness_says_which_apps_have_reconciled_each_switch(monkeypatch, tmp_path):
    vlan = vlan_tests.make_vlan_app(monkeypatch, tmp_path, vlan_tests.SECTION)
    l2 = l2_tests.make_app(monkeypatch, vlan.runtime)
    for app in (vlan, l2):
        handler.register_instance(app)
    switch = FakeSwitch(1, l2)
    for app in (vlan, l2):        # what Ryu does with the features of a new connection
        assert app.get_handlers(features(switch))
    status, body, _ = l2_tests.call(l2, "GET", "/v1/runtime/switches")
    assert status == 200 and body == [{"dpid": "0000000000000001", "reconciled": False, "name": None,
                                       "apps": {"L2Switch": "pending", "Vlan": "pending"}}]
    l2._switch_connected(features(switch))
    l2._reconcile(l2.switches[1])
    assert l2_tests.call(l2, "GET", "/v1/runtime/switches")[1][0]["apps"] == {
        "L2Switch": "reconciled", "Vlan": "pending"}
    switch.app = vlan                # the fake answers one app at a time
    vlan._switch_connected(features(switch))
    vlan._port_desc(vlan_tests.port_desc(switch))
    (entry,) = l2_tests.call(l2, "GET", "/v1/runtime/switches")[1]
    assert entry["reconciled"] and set(entry["apps"].values()) == {"reconciled"}

    again = FakeSwitch(1, l2)        # a new connection: pending again, for every app
    assert vlan.get_handlers(features(again))
    switch.app = l2
    l2._reconcile(l2.switches[1])    # the old connection's news do not count
    (entry,) = l2_tests.call(l2, "GET", "/v1/runtime/switches")[1]
    assert not entry["reconciled"] and set(entry["apps"].values()) == {"pending"}
    gone = ofp_event.EventOFPStateChange(again)
    gone.state = DEAD_DISPATCHER
    l2.get_handlers(gone, DEAD_DISPATCHER)
    assert l2_tests.call(l2, "GET", "/v1/runtime/switches")[1] == []


def test_a_switch_another_app_owns_counts_as_left_alone(monkeypatch, tmp_path):
    overlay = overlay_tests.make_app(monkeypatch, tmp_path, overlay_tests.SECTION)
    l2 = l2_tests.make_app(monkeypatch, overlay.runtime)
    for app in (overlay, l2):
        handler.register_instance(app)
    bridge = FakeSwitch(0x1001, overlay)          # hv1's br-int: the overlay's
    assert l2.get_handlers(features(bridge)) == []
    assert overlay.runtime.readiness.describe()[0]["apps"] == {"L2Switch": "left alone",
                                                              "Overlay": "pending"}
    plain = FakeSwitch(7, overlay)                # no hypervisor's: the overlay leaves it
    assert overlay.get_handlers(features(plain))
    overlay._switch_connected(features(plain))
    overlay._port_desc(vlan_tests.port_desc(plain))
    apps = {e["dpid"]: e["apps"] for e in overlay.runtime.readiness.describe()}
    assert apps["0000000000000007"] == {"L2Switch": "pending", "Overlay": "left alone"}


def test_a_refused_reconciliation_is_not_ready(monkeypatch):
    monkeypatch.setattr(runtime.Runtime, "may_write", lambda self, dpid: False)
    app = l2_tests.make_app(monkeypatch)
    handler.register_instance(app)
    switch = FakeSwitch(1, app)
    app.get_handlers(features(switch))
    app._switch_connected(features(switch))
    app._reconcile(app.switches[1])
    assert app.runtime.readiness.describe()[0]["apps"] == {"L2Switch": "pending"}
    assert all(isinstance(m, parser.OFPMultipartRequest) for m in switch.sent)


# --- the state store behind the runtime -------------------------------------------

class MemoryStore(state.StateStore):
    """A backend of the interface's own (what a cluster store plugs in like)."""
    documents = {}

    def load(self):
        return self.documents.get(self.app, ({}, state.NO_REVISION))

    def save(self, document, expected_revision):
        current = self.load()[1]
        if current != expected_revision:
            raise state.StateConflict(f"{self.app} moved to revision {current}")
        self.documents[self.app] = (document, current + 1)
        return current + 1


def test_apps_keep_their_state_where_the_runtime_says(monkeypatch, tmp_path):
    monkeypatch.setenv("SDN_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(MemoryStore, "documents", {})
    monkeypatch.setattr(config, "load_file", lambda path=None: {"vlan": vlan_tests.SECTION})
    run_inline(monkeypatch, port_plans.hub)
    wsgi = rest.WSGIApplication()
    app = vlan_app.Vlan(wsgi=wsgi, runtime=runtime.Runtime(MemoryStore))
    app.wsgi = wsgi
    monkeypatch.setattr(app, "send_event_to_observers", lambda ev: None)
    vlan_tests.bring_up(app)
    status, _, _ = l2_tests.call(app, "PUT", "/v1/switches/1/ports/uplink/vlan",
                                 b'{"trunks": [30]}')
    assert status == 200 and not (tmp_path / state.DB_NAME).exists()
    assert MemoryStore.documents["vlan"] == ({"0000000000000001": {"3": {"trunks": [30]}}}, 1)


def test_a_rest_change_over_another_writers_save_is_a_409_then_the_retry_lands_on_top(
        monkeypatch, tmp_path):
    app = vlan_tests.make_vlan_app(monkeypatch, tmp_path, vlan_tests.SECTION)
    vlan_tests.bring_up(app)
    other = state.SqliteStateStore("vlan", tmp_path)          # another writer of the store
    other.save({"0000000000000001": {"1": {"tag": 40}}}, other.load()[1])
    status, body, _ = l2_tests.call(app, "PUT", "/v1/switches/1/ports/uplink/vlan",
                                    b'{"trunks": [30]}')
    assert status == 409 and "changed by another writer" in body["error"]
    assert other.load()[0] == {"0000000000000001": {"1": {"tag": 40}}}   # nothing saved
    # the app took the other writer's state (no stale revision kept): port 1 follows it
    assert app.overrides == {1: {"1": {"tag": 40}}}
    assert l2_tests.call(app, "GET", "/v1/switches/1/ports/1/vlan")[1]["tag"] == 40
    status, _, _ = l2_tests.call(app, "PUT", "/v1/switches/1/ports/uplink/vlan",
                                 b'{"trunks": [30]}')
    assert status == 200
    assert other.load()[0] == {"0000000000000001": {"1": {"tag": 40},
                                                    "3": {"trunks": [30]}}}


def test_another_writers_change_seen_by_polling_is_applied(monkeypatch, tmp_path):
    app = vlan_tests.make_vlan_app(monkeypatch, tmp_path, vlan_tests.SECTION)
    vlan_tests.bring_up(app)
    assert l2_tests.call(app, "GET", "/v1/switches/1/ports/1/vlan")[1]["tag"] != 41
    other = state.SqliteStateStore("vlan", tmp_path)
    other.save({"0000000000000001": {"1": {"tag": 41}}}, other.load()[1])
    assert app.store.poll() is True and app.store.poll() is False
    assert l2_tests.call(app, "GET", "/v1/switches/1/ports/1/vlan")[1]["tag"] == 41
    status, _, _ = l2_tests.call(app, "PUT", "/v1/switches/1/ports/1/vlan", b'{"tag": 42}')
    assert status == 200 and other.load()[0]["0000000000000001"]["1"] == {"tag": 42}