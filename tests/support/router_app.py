"""The router app under test: built from a config section with its REST routes, and the
packet-ins its tables send it."""
from ryu.controller import ofp_event
from ryu.ofproto import ofproto_v1_3 as ofp, ofproto_v1_3_parser as parser

from apps import router as router_app
from controller import config, pipeline, rest
from tests.support.fakeswitch import run_inline

GW_MAC = "02:00:00:00:fe:01"
SECTION = {"interfaces": [{"vlan": 10, "address": "10.0.10.1/24"},
                          {"vlan": 20, "address": "10.0.20.1/24"},
                          {"vlan": 100, "address": "203.0.113.1/24", "external": True}],
           "routes": [{"prefix": "0.0.0.0/0", "next_hop": "203.0.113.254"}],
           "snat": [10]}


def make_app(monkeypatch, tmp_path, section=SECTION):
    monkeypatch.setenv("SDN_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(config, "load_file", lambda path=None: {"router": section})
    wsgi = rest.WSGIApplication()
    app = router_app.Router(wsgi=wsgi)
    app.wsgi = wsgi
    run_inline(monkeypatch, router_app.hub)
    return app


def packet_in(datapath, in_port, data, table, owner):
    msg = parser.OFPPacketIn(datapath, buffer_id=ofp.OFP_NO_BUFFER, total_len=len(data),
                             reason=ofp.OFPR_ACTION, table_id=pipeline.table_id(table),
                             cookie=pipeline.cookie(owner), match=parser.OFPMatch(in_port=in_port),
                             data=data)
    return ofp_event.EventOFPPacketIn(msg)


def packet_outs(datapath):
    return [m for m in datapath.sent if isinstance(m, parser.OFPPacketOut)]
