"""The VLAN app under test: its config section and ports, built and brought up on a
fake switch, and port-description replies."""
from ryu.controller import ofp_event
from ryu.ofproto import ofproto_v1_3 as ofp, ofproto_v1_3_parser as parser

from apps import vlan as vlan_app
from controller import config, port_plans, rest
from tests.support.l2_app import FakeDatapath, Features, switch_holding
from tests.support.fakeswitch import run_inline


PORTS = {1: "vm1", 2: "vm2", 3: "uplink"}


def port_desc(datapath, names=PORTS, bridge="br0"):
    body = [parser.OFPPort(port_no=no, hw_addr="00:00:00:00:00:%02x" % no, name=name.encode(),
                           config=0, state=0, curr=0, advertised=0, supported=0, peer=0,
                           curr_speed=0, max_speed=0)
            for no, name in list(names.items()) + [(ofp.OFPP_LOCAL, bridge)]]
    reply = parser.OFPPortDescStatsReply(datapath, body=body)
    reply.flags = 0
    return ofp_event.EventOFPPortDescStatsReply(reply)


def make_vlan_app(monkeypatch, tmp_path, section=None, api=None):
    """The VLAN app with its REST routes (and the runtime's) on `app.wsgi`; `api`: the
    config file's api section (token, body limit)."""
    monkeypatch.setenv("SDN_STATE_DIR", str(tmp_path))
    data = {"vlan": section or {}, **({"api": api} if api is not None else {})}
    monkeypatch.setattr(config, "load_file", lambda path=None: data)
    wsgi = rest.WSGIApplication()
    app = vlan_app.Vlan(wsgi=wsgi)
    app.wsgi = wsgi
    app.sent_events = []
    monkeypatch.setattr(app, "send_event_to_observers", app.sent_events.append)
    run_inline(monkeypatch, port_plans.hub)
    return app


def bring_up(app, dpid=1, holding=()):
    """Connect a switch that holds `holding` (specs a previous controller left)."""
    datapath = FakeDatapath(dpid, answer=switch_holding(app, list(holding)))
    app._switch_connected(ofp_event.EventOFPSwitchFeatures(Features(datapath)))
    app._port_desc(port_desc(datapath))
    return datapath

SECTION = {"ports": [{"switch": "br0", "port": "vm1", "tag": 10},
                     {"switch": 1, "port": 2, "tag": 20},
                     {"switch": "br0", "port": "uplink", "trunks": [10, 20]}]}
