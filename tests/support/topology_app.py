"""The topology app under test: a clock to pass in and switches brought up."""
import pytest
from ryu.controller import ofp_event

from apps import topology as topology_app
from controller import config, rest
from tests.support.l2_app import FakeDatapath, Features, switch_holding
from tests.support.vlan_app import port_desc
from tests.support.fakeswitch import run_inline


class Clock:
    now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def app(monkeypatch, clock):
    monkeypatch.setattr(config, "load_file", lambda path=None: {})
    run_inline(monkeypatch, topology_app.hub)
    wsgi = rest.WSGIApplication()
    app = topology_app.Topology(wsgi=wsgi)
    app.wsgi = wsgi
    app.sent_events = []
    monkeypatch.setattr(app, "send_event_to_observers", app.sent_events.append)
    return app


def bring_up(app, dpid, holding=()):
    datapath = FakeDatapath(dpid, answer=switch_holding(app, list(holding)))
    app._switch_connected(ofp_event.EventOFPSwitchFeatures(Features(datapath)))
    app._port_desc(port_desc(datapath, {1: f"s{dpid}-eth1", 2: f"s{dpid}-eth2"}, f"s{dpid}"))
    return datapath
