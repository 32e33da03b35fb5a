"""The topology app under test: a clock to pass in and switches brought up."""
import pytest
from ryu.controller import ofp_event
from ryu.ofproto import ofproto_v1_3 as ofp, ofproto_v1_3_parser as parser

from apps import topology as topology_app
from controller import config, pipeline, rest
from flows import topology
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


def lldp_in(app, datapath, in_port, data):
    msg = parser.OFPPacketIn(datapath, buffer_id=ofp.OFP_NO_BUFFER, total_len=len(data),
                             reason=ofp.OFPR_ACTION, table_id=0,
                             cookie=pipeline.cookie(topology.DISCOVERY),
                             match=parser.OFPMatch(in_port=in_port), data=data)
    app._packet_in(ofp_event.EventOFPPacketIn(msg))


def port_down(app, datapath, port):
    desc = parser.OFPPort(port_no=port, hw_addr="00:00:00:00:00:01", name=b"x", config=0,
                          state=ofp.OFPPS_LINK_DOWN, curr=0, advertised=0, supported=0,
                          peer=0, curr_speed=0, max_speed=0)
    app._port_status(ofp_event.EventOFPPortStatus(
        parser.OFPPortStatus(datapath, ofp.OFPPR_MODIFY, desc)))
