"""controller/southbound.py SdnApp.converge: the one connect -> reconcile path. No app
reads back or reconciles on its own, and a switch that does not answer the read-back
gets the app's fallback (forget + desired) and counts as reconciled."""
import ast
import functools
from pathlib import Path

import pytest
from ryu.controller import handler, ofp_event
from ryu.lib import hub
from ryu.ofproto import ofproto_v1_3 as ofp, ofproto_v1_3_parser as parser

from controller import desired_state, pipeline, southbound
from flows import l2, lb, lb_health, learning
from flows.spec import Owner
from tests.support import l2_app as l2_tests
from tests.support import lb_app as lb_tests
from tests.support.fakeswitch import FakeSwitch

REPO = Path(__file__).resolve().parents[2]
OWN_PATHS = {"reconcile", "read_entries"}   # converge's parts: no app calls them itself
SWITCH_SIDE = {"southbound", "switch_sync"}  # where they are (switch_sync) and re-exported


def own_paths(source):
    """Where `source` reaches southbound.reconcile/read_entries itself: attribute uses
    (southbound.reconcile) and imports of the names (from controller.southbound import ...)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in OWN_PATHS and \
                isinstance(node.value, ast.Name) and node.value.id in SWITCH_SIDE:
            found.append(f"line {node.lineno}: southbound.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module in (
                "controller.southbound", "controller.switch_sync"):
            found += [f"line {node.lineno}: imports {a.name}" for a in node.names
                      if a.name in OWN_PATHS]
    return found


def test_the_scan_sees_an_app_that_reconciles_by_itself():
    assert own_paths("southbound.reconcile(self, dp, [], [])\n")
    assert own_paths("x = southbound.read_entries(self, dp, owners)\n")
    assert own_paths("from controller.southbound import reconcile as r\n")
    assert own_paths("switch_sync.reconcile(self, dp, [], [])\n")
    assert own_paths("from controller.switch_sync import read_entries\n")
    assert not own_paths("self.converge(dp, owners, desired)\nsouthbound.push(s, dp, [])\n")


@pytest.mark.parametrize("path", sorted((REPO / "apps").glob("*.py")), ids=lambda p: p.name)
def test_no_app_reads_back_or_reconciles_outside_converge(path):
    assert own_paths(path.read_text()) == [], \
        f"{path.name}: go through SdnApp.converge (one reconcile path)"


# --- a switch that does not answer the read-back ---------------------------------------

def silent_switch(app, monkeypatch):
    """A switch that takes what it is sent but answers nothing (no stats, no barriers),
    known to the app's readiness like a new connection; reads give up quickly."""
    switch = FakeSwitch(1, None)
    handler.register_instance(app)
    assert app.get_handlers(ofp_event.EventOFPSwitchFeatures(l2_tests.Features(switch)))
    monkeypatch.setattr(app, "request",
                        functools.partial(southbound.SdnApp.request, app, timeout=0.05))
    return switch


def readiness(app):
    return app.runtime.readiness.describe()[0]["apps"]


def flow_mods_after_reads(switch):
    """The flow-mods sent once the reads had failed (the fallback push)."""
    last_read = max(i for i, m in enumerate(switch.sent)
                    if isinstance(m, parser.OFPMultipartRequest))
    return [m for m in switch.sent[last_read:] if isinstance(m, parser.OFPFlowMod)]


def held(switch):
    return sorted((s.table_id, s.priority, s.cookie) for s in switch.flows.values())


def wanted(datapath, specs):
    return sorted((pipeline.table_id(s.table), s.priority, pipeline.cookie(s.owner))
                  for s in specs if hasattr(s, "table"))


@pytest.mark.parametrize("mode", ["reactive", "datapath"])
def test_l2_replaces_a_silent_switchs_entries_and_counts_it_reconciled(monkeypatch, mode):
    app = l2_tests.make_app(monkeypatch, mode=mode)
    switch = silent_switch(app, monkeypatch)
    app._switch_connected(ofp_event.EventOFPSwitchFeatures(l2_tests.Features(switch)))
    assert readiness(app) == {"L2Switch": "pending"}
    app._reconcile(app.switches[1])
    mods = flow_mods_after_reads(switch)
    assert mods[0].command == ofp.OFPFC_DELETE and mods[0].cookie == pipeline.cookie(
        l2.forget_everything()[0].owner)     # forget first: everything of ours goes
    assert held(switch) == wanted(switch, desired_state.framed(l2.APP, learning.desired(app.settings)))
    assert app.switches[1].reconciled
    assert readiness(app) == {"L2Switch": "reconciled"}


def test_lb_replaces_a_silent_switchs_entries_takes_it_over_and_counts_it_reconciled(
        monkeypatch, tmp_path):
    app = lb_tests.make_app(monkeypatch, tmp_path)
    switch = silent_switch(app, monkeypatch)
    lb_tests.connect(app, switch)
    mods = flow_mods_after_reads(switch)
    assert mods[0].command == ofp.OFPFC_DELETE and \
        mods[0].cookie == pipeline.cookie(Owner(lb.APP))   # forget first
    assert held(switch) == wanted(switch, desired_state.framed(lb.APP, lb_health.desired(
        app.settings, app.vips, app.backends, 1, frozenset()).items()))
    groups = [m for m in switch.sent if isinstance(m, parser.OFPGroupMod)]
    assert [g.command for g in groups][-1] == ofp.OFPGC_ADD and groups[0].command == \
        ofp.OFPGC_DELETE                         # the VIP's group: removed, then built anew
    assert app.switches[1].ready                 # probes may start
    assert readiness(app) == {"Lb": "reconciled"}


# --- a switch that answers reads but is slow to confirm -----------------------------------

def test_a_switch_that_reads_back_but_does_not_confirm_keeps_its_entries(monkeypatch, tmp_path,
                                                                         caplog):
    """The LB's entries carry pinned connections: a late barrier reply after a good
    read-back must not turn into forget + push (which would cut them). The switch is
    repaired RECHECK_S later (the app's own path, outside any lock of its caller), and
    counts as reconciled once that read-back shows it holds it all."""
    app = lb_tests.make_app(monkeypatch, tmp_path)
    switch = FakeSwitch(1, app)
    handler.register_instance(app)
    assert app.get_handlers(ofp_event.EventOFPSwitchFeatures(l2_tests.Features(switch)))
    lb_tests.connect(app, switch)                  # a normal first take-over
    assert readiness(app) == {"Lb": "reconciled"}
    before, sent = held(switch), len(switch.sent)
    monkeypatch.setattr(switch, "_on_OFPBarrierRequest", lambda req: None)   # no confirms
    monkeypatch.setattr(app, "confirm",
                        functools.partial(southbound.SdnApp.confirm, app, timeout=0.01))
    monkeypatch.setattr(app, "RECHECK_S", 0.0)
    app.runtime.readiness.connected(switch)        # as after a reconnect: pending again
    switch.flows.pop(next(iter(switch.flows)))     # one entry lost: something to add
    app.switches[1].ready = False
    app.program_switch(app.switches[1])
    hub.sleep(0.1)                                 # the recheck's greenlet: repair again
    later = switch.sent[sent:]
    assert not [m for m in later if isinstance(m, parser.OFPFlowMod)
                and m.command == ofp.OFPFC_DELETE]  # no forget
    assert held(switch) == before                  # the lost entry is back, nothing went
    assert len([r for r in caplog.messages if "checked again" in r]) == 1
    assert readiness(app) == {"Lb": "reconciled"}  # the second read-back: all in place
