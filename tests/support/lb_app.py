"""The load-balancer app under test: its section, VIP and backends, built and
connected, ARP replies and packet-ins, and the health rounds that make backends healthy."""
import ipaddress

from ryu.controller import ofp_event
from ryu.ofproto import ofproto_v1_3 as ofp, ofproto_v1_3_parser as parser

from apps import lb as lb_app
from controller import config, pipeline, rest
from flows import lb, probes
from tests.support.fakeswitch import FakeSwitch
from tests.support.l2_app import Features


BACKENDS = ["10.0.0.11", "10.0.0.12"]

VIP_BODY = {"vip": "10.0.0.100", "port": 80,
            "backends": [{"ip": ip, "port": 8080} for ip in BACKENDS]}

SECTION = {"subnets": ["10.0.0.0/24"], "vips": [VIP_BODY]}


def make_app(monkeypatch, tmp_path, section=SECTION):
    monkeypatch.setenv("SDN_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(config, "load_file", lambda path=None: {"lb": section})
    wsgi = rest.WSGIApplication()
    app = lb_app.Lb(wsgi=wsgi)
    app.wsgi, app.spawn = wsgi, lambda f, *a: None
    return app


def connect(app, datapath=None):
    datapath = datapath or FakeSwitch(1, app)
    app._switch_connected(ofp_event.EventOFPSwitchFeatures(Features(datapath)))
    app.program_switch(app.switches[datapath.id])  # what the handler spawns
    return datapath


def packet_in(datapath, port, data):
    msg = parser.OFPPacketIn(datapath, buffer_id=ofp.OFP_NO_BUFFER, total_len=len(data),
                             reason=ofp.OFPR_ACTION, table_id=pipeline.table_id("vip"),
                             cookie=0, match=parser.OFPMatch(in_port=port), data=data)
    return ofp_event.EventOFPPacketIn(msg)


def arp_reply(ip, mac):
    frame = bytearray(probes.arp_request(lb.PROBE_MAC, "10.0.0.254", ip))
    frame[0:6] = bytes.fromhex(lb.PROBE_MAC.replace(":", ""))
    frame[20:22] = b"\x00\x02"
    frame[22:28] = bytes.fromhex(mac.replace(":", ""))
    frame[28:32] = ipaddress.IPv4Address(ip).packed
    return bytes(frame)


def buckets(datapath):
    mods = [m for m in datapath.sent if isinstance(m, parser.OFPGroupMod)
            and m.command != ofp.OFPGC_DELETE]
    return len(mods[-1].buckets)


def answer_probes(app, datapath, flags):
    """Every pending TCP probe gets an answer with `flags` from its backend."""
    for (_, probe_port), (_, ip, _) in list(app.pending.items()):
        mac = "02:00:00:00:00:0%s" % ip[-1]
        answer = probes.tcp_segment(mac, lb.PROBE_MAC, ip, "10.0.0.254", 8080, probe_port,
                                    flags, seq=0 if flags & probes.RST else 1, ack=2)
        app._packet_in(packet_in(datapath, 10 + int(ip[-1]), answer))


def healthy_backends(app, datapath):
    app.probe_round()
    for n, ip in enumerate(BACKENDS, start=1):
        app._packet_in(packet_in(datapath, 10 + n, arp_reply(ip, f"02:00:00:00:00:0{n}")))
    for st in app.backends.values():
        st.last_probe = -10.0
    app.probe_round()
    answer_probes(app, datapath, probes.SYN | probes.ACK)
    assert buckets(datapath) == 2
