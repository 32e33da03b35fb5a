"""Every app driven through its connect and a few events against the fake switch
(tests/unit/test_runtime_object.py: the one sender; tests/unit/test_mastership.py:
a cluster node's take-over)."""
from ryu.controller import ofp_event

from apps import topology as topology_app
from controller import config, rest, runtime
from mininet_topos.topos import QOS_LAB_CONFIG
from tests.support.fakeswitch import FakeSwitch, run_inline
from tests.support import bond_app as bond_tests
from tests.support import l2_app as l2_tests
from tests.support import lb_app as lb_tests
from tests.support import overlay_app as overlay_tests
from tests.support import qos_app as qos_tests
from tests.support import topology_app as topology_tests
from tests.support import vlan_app as vlan_tests

WRITES = {"OFPFlowMod", "OFPGroupMod", "OFPMeterMod", "OFPBarrierRequest", "OFPPacketOut",
          "OFPSetConfig"}


def _spawn_inline(run, *args):
    if run.__name__ not in ("_discover", "canary_loop", "_probe_loop", "_watch", "_poll_state"):
        run(*args)


def _l2(monkeypatch, tmp_path):
    app = l2_tests.make_app(monkeypatch)
    switch = FakeSwitch(1, app)
    app._switch_connected(ofp_event.EventOFPSwitchFeatures(l2_tests.Features(switch)))
    app._reconcile(app.switches[1])
    app._packet_in(l2_tests.packet_in(switch, 1, l2_tests.eth(l2_tests.H2, l2_tests.H1)))
    return app, [switch]


def _lb(monkeypatch, tmp_path):
    app = lb_tests.make_app(monkeypatch, tmp_path)
    switch = lb_tests.connect(app)
    app.probe_round()   # ARP requests: packet-outs
    return app, [switch]


def _qos(monkeypatch, tmp_path):
    app = qos_tests.make_app(monkeypatch, tmp_path, QOS_LAB_CONFIG["qos"])
    return app, [qos_tests.bring_up(app)]


def _vlan(monkeypatch, tmp_path):
    app = vlan_tests.make_vlan_app(monkeypatch, tmp_path, vlan_tests.SECTION)
    return app, [vlan_tests.bring_up(app)]


def _overlay(monkeypatch, tmp_path):
    app = overlay_tests.make_app(monkeypatch, tmp_path, overlay_tests.SECTION)
    return app, list(overlay_tests.bring_up(app, 1))


def _bond(monkeypatch, tmp_path):
    app = bond_tests.make_app(monkeypatch, tmp_path, {"bonds": [
        dict(bond_tests.BODY, switch="s1", name="s1-bond")]})
    return app, [bond_tests.bring_up(app)]


def _topology(monkeypatch, tmp_path):
    monkeypatch.setattr(config, "load_file", lambda path=None: {})
    app = topology_app.Topology(wsgi=rest.WSGIApplication())
    monkeypatch.setattr(app, "send_event_to_observers", lambda ev: None)
    return app, [topology_tests.bring_up(app, 1)]


SCENARIOS = {"l2_switch": _l2, "lb": _lb, "qos": _qos, "vlan": _vlan, "overlay": _overlay,
             "bond": _bond, "topology": _topology}


def run_scenario(name, monkeypatch, tmp_path, may_write):
    monkeypatch.setattr(runtime.Runtime, "may_write", lambda self, dpid: may_write)
    run_inline(monkeypatch, topology_app.hub)     # every app's hub.spawn: ryu.lib.hub
    app, switches = SCENARIOS[name](monkeypatch, tmp_path)
    app.spawn = _spawn_inline
    kinds = {type(m).__name__ for switch in switches for m in switch.sent}
    reads = all(isinstance(m, runtime.READS) for switch in switches for m in switch.sent)
    return app, kinds, reads
