"""flows/probes.py frames, and apps/lb.py driven by synthetic events: how health checks
locate backends and move them in and out of the group, and the REST API."""
import ipaddress
import json
import struct

import pytest
from ryu.controller import ofp_event
from ryu.ofproto import ofproto_v1_3 as ofp, ofproto_v1_3_parser as parser

from controller import pipeline
from controller.state import SqliteStateStore
from flows import lb, probes
from tests.support.l2_app import Features, call
from tests.support.lb_app import (BACKENDS, SECTION, VIP_BODY, answer_probes, arp_reply, buckets,
                                  connect, healthy_backends, make_app, packet_in)


def test_probe_frames_have_valid_checksums_and_parse_back():
    syn = probes.tcp_segment("02:00:00:00:00:01", "02:00:00:00:00:02", "10.0.0.254",
                             "10.0.0.11", 33000, 8080, probes.SYN, seq=7)
    ip_header, tcp = syn[14:34], syn[34:]
    assert probes.checksum(ip_header) == 0
    pseudo = (ipaddress.IPv4Address("10.0.0.254").packed + ipaddress.IPv4Address("10.0.0.11").packed
              + struct.pack("!BBH", 0, 6, len(tcp)))
    assert probes.checksum(pseudo + tcp) == 0
    reply = probes.parse_reply(probes.tcp_segment("02:00:00:00:00:02", "02:00:00:00:00:01",
                                                  "10.0.0.11", "10.0.0.254", 8080, 33000,
                                                  probes.SYN | probes.ACK, seq=99, ack=8))
    assert reply == probes.TcpReply("10.0.0.11", 8080, 33000, probes.SYN | probes.ACK, 99, 8)
    assert reply.accepted
    rst = probes.parse_reply(probes.reset_for(reply, "02:00:00:00:00:01", "02:00:00:00:00:02",
                                              "10.0.0.254"))
    assert rst.flags == probes.RST and rst.seq == 8
    request = probes.arp_request("02:00:00:00:00:01", "10.0.0.254", "10.0.0.11")
    assert len(request) == 42 and request[:6] == b"\xff" * 6
    answer = bytearray(request)
    answer[20:22] = b"\x00\x02"
    answer[22:28] = bytes.fromhex("020000000002")
    answer[28:32] = ipaddress.IPv4Address("10.0.0.11").packed
    assert probes.parse_reply(bytes(answer)) == probes.ArpReply("10.0.0.11", "02:00:00:00:00:02")
    for junk in (b"", b"\x00" * 13, request[:30], syn[:40], bytes(60)):
        assert probes.parse_reply(junk) is None


def test_health_checks_locate_backends_and_move_them_in_and_out(monkeypatch, tmp_path):
    app = make_app(monkeypatch, tmp_path)
    now = [100.0]
    app.clock = lambda: now[0]
    datapath = connect(app)
    assert buckets(datapath) == 0                      # nothing checked yet
    app.probe_round()                                  # unknown MACs: ARP, flooded
    outs = [m for m in datapath.sent if isinstance(m, parser.OFPPacketOut)]
    assert len(outs) == 2 and outs[0].actions[0].port == ofp.OFPP_FLOOD
    for n, ip in enumerate(BACKENDS, start=1):
        app._packet_in(packet_in(datapath, 10 + n, arp_reply(ip, f"02:00:00:00:00:0{n}")))
    now[0] += 1.0
    app.probe_round()                                  # located: TCP SYNs on their ports
    syns = [m for m in datapath.sent if isinstance(m, parser.OFPPacketOut)][2:]
    assert sorted(m.actions[0].port for m in syns) == [11, 12]
    answer_probes(app, datapath, probes.SYN | probes.ACK)
    assert buckets(datapath) == 2
    assert all(b["healthy"] for b in call(app, "GET", "/v1/lb/vips/1")[1]["backends"])
    now[0] += 1.01
    app.probe_round()                                  # probes sent, never answered
    for missed in (1, 2, 3):
        now[0] += 1.01
        app.probe_round()
        assert buckets(datapath) == (2 if missed < 3 else 0), missed  # out at the third
    assert not any(b["healthy"] for b in call(app, "GET", "/v1/lb/vips/1")[1]["backends"])
    answer_probes(app, datapath, probes.SYN | probes.ACK)
    assert buckets(datapath) == 2                      # answered again: back in
    now[0] += 1.01
    app.probe_round()
    answer_probes(app, datapath, probes.RST | probes.ACK)  # a refusal: out at once
    assert buckets(datapath) == 0


def test_a_restarted_controller_takes_over_the_vips_without_touching_them(monkeypatch,
                                                                            tmp_path):
    first = make_app(monkeypatch, tmp_path)
    switch = connect(first)
    healthy_backends(first, switch)
    before = switch.table()
    assert len(before[1]) == 1 and before[0]               # a group and its entries
    switch.sent.clear()
    second = make_app(monkeypatch, tmp_path)                 # kill -9, start again
    switch.app = second
    connect(second, switch)
    changes = [m for m in switch.sent if isinstance(m, (parser.OFPFlowMod, parser.OFPGroupMod))]
    assert changes == [] and switch.table() == before
    backends = call(second, "GET", "/v1/lb/vips/1")[1]["backends"]
    assert all(b["healthy"] and b["port"] for b in backends)
    # a VIP deleted meanwhile (here: no VIPs in the config any more) is removed, and only it
    third = make_app(monkeypatch, tmp_path, dict(SECTION, vips=[]))
    switch.app = third
    connect(third, switch)
    vip_entries = [s for s in switch.flows.values()
                   if s.cookie >> 48 == pipeline.cookie(lb.vip_owner(1)) >> 48]
    assert switch.table()[1] == [] and vip_entries == []
    assert [m.command for m in switch.sent if isinstance(m, parser.OFPGroupMod)] == \
        [ofp.OFPGC_DELETE]


def test_answers_that_arrive_while_the_switch_is_being_taken_over_change_nothing(
        monkeypatch, tmp_path):
    """Seen on real OVS: a restart under load, the switch slow to answer the read-back,
    ARP answers to the new controller's probes located every backend first, and the
    take-over then thought them all unchecked: the group was emptied and refilled."""
    first = make_app(monkeypatch, tmp_path)
    switch = connect(first)
    healthy_backends(first, switch)
    before = switch.table()
    switch.sent.clear()
    second = make_app(monkeypatch, tmp_path)
    switch.app = second
    second._switch_connected(ofp_event.EventOFPSwitchFeatures(Features(switch)))
    second.probe_round()                       # the switch is not taken over yet
    assert [m for m in switch.sent if isinstance(m, parser.OFPPacketOut)] == []
    for n, ip in enumerate(BACKENDS, start=1):  # answers that were on their way anyway
        second._packet_in(packet_in(switch, 10 + n, arp_reply(ip, f"02:00:00:00:00:0{n}")))
    second.program_switch(second.switches[switch.id])
    changes = [m for m in switch.sent if isinstance(m, (parser.OFPFlowMod, parser.OFPGroupMod))]
    assert changes == [] and switch.table() == before
    assert all(b["healthy"] for b in call(second, "GET", "/v1/lb/vips/1")[1]["backends"])


@pytest.mark.parametrize("body, status, message", [
    ({"vip": "192.168.0.1", "port": 80, "backends": [{"ip": "10.0.0.11"}]}, 400,
     "inside no known subnet"),
    (dict(VIP_BODY, backends=[]), 400, "non-empty"),
    (dict(VIP_BODY, backends=[{"ip": "10.0.0.11", "weight": 0}]), 400, "weight"),
    (VIP_BODY, 409, "exists (id 1)"),
    ({"port": 80}, 400, "needs vip"),
])
def test_bad_vips_are_refused_and_change_nothing(monkeypatch, tmp_path, body, status, message):
    app = make_app(monkeypatch, tmp_path)
    connect(app)
    code, reply, _ = call(app, "POST", "/v1/lb/vips", json.dumps(body).encode())
    assert code == status and message in reply["error"], reply
    assert [v["id"] for v in call(app, "GET", "/v1/lb/vips")[1]] == [1]
    assert SqliteStateStore("lb", tmp_path).load()[0] == {}


def test_backend_and_vip_changes_persist(monkeypatch, tmp_path):
    app = make_app(monkeypatch, tmp_path)
    connect(app)
    assert call(app, "GET", "/v1/lb/vips/9")[0] == 404
    assert call(app, "GET", "/v1/lb/vips/x")[0] == 400
    assert call(app, "POST", "/v1/lb/vips/1/backends/10.0.0.11")[0] == 409
    assert call(app, "POST", "/v1/lb/vips/1/backends/10.0.0.13",
                b'{"port": 8080, "weight": 3}')[0] == 201
    assert call(app, "DELETE", "/v1/lb/vips/1/backends/10.0.0.99")[0] == 404
    status, body, _ = call(app, "PATCH", "/v1/lb/vips/1", b'{"mode": "dsr", "port": 8080}')
    assert status == 200 and body["mode"] == "dsr"
    again = make_app(monkeypatch, tmp_path)
    (vip,) = call(again, "GET", "/v1/lb/vips")[1]
    assert vip["mode"] == "dsr" and [b["weight"] for b in vip["backends"]] == [1, 1, 3]
    assert call(again, "DELETE", "/v1/lb/vips/1")[0] == 200
    assert call(again, "GET", "/v1/lb/vips")[1] == []
