"""apps/lb.py with the VLAN app's view of the switch (EventPortVlans) and health-probe
replies that arrive tagged, as they do when the VLAN app runs in the same controller."""

from ryu.ofproto import ofproto_v1_3_parser as parser

from controller import events, ofcompile
from flows import lb, probes
from flows.spec import PopVlan
from tests.support.lb_app import BACKENDS, arp_reply, buckets, connect, make_app, packet_in

VLAN_0_UNTAGGED = frozenset({(1, 0), (2, 0), (11, 0), (12, 0)})   # no VLAN ports configured


def tagged(raw, vid):
    return raw[:12] + bytes.fromhex("8100") + vid.to_bytes(2, "big") + raw[12:]


def packet_outs(datapath):
    return [m for m in datapath.sent if isinstance(m, parser.OFPPacketOut)]


def installed(datapath):
    return [ofcompile.decode_flow(stats) for stats in datapath.flows.values()]


def locate(app, datapath, vid):
    app.probe_round()
    for n, ip in enumerate(BACKENDS, start=1):
        app._packet_in(packet_in(datapath, 10 + n,
                                 tagged(arp_reply(ip, f"02:00:00:00:00:0{n}"), vid)))
    for st in app.backends.values():
        st.last_probe = -10.0
    datapath.sent.clear()
    app.probe_round()                                   # located: SYNs to their ports


def answer_tagged(app, datapath, vid):
    for (_, probe_port), (_, ip, _) in list(app.pending.items()):
        answer = probes.tcp_segment("02:00:00:00:00:0%s" % ip[-1], lb.PROBE_MAC, ip,
                                    "10.0.0.254", 8080, probe_port,
                                    probes.SYN | probes.ACK, seq=1, ack=2)
        app._packet_in(packet_in(datapath, 10 + int(ip[-1]), tagged(answer, vid)))


def test_tagged_replies_locate_backends_and_the_vlan_apps_pops_are_installed(monkeypatch,
                                                                              tmp_path):
    app = make_app(monkeypatch, tmp_path)
    app._port_vlans(events.EventPortVlans(1, VLAN_0_UNTAGGED))   # before the switch
    datapath = connect(app)
    pops = [s for s in installed(datapath) if PopVlan() in s.actions]
    # the VIP's and the probe IP's ARP answers pop VLAN 0 on every port
    assert sorted((s.match.get("in_port"), s.match.get("arp_tpa")) for s in pops) == sorted(
        (port, ip) for port, _ in VLAN_0_UNTAGGED for ip in ("10.0.0.100", "10.0.0.254"))
    locate(app, datapath, 0)
    backends = app.describe(app.vips[1])["backends"]
    assert [(b["mac"], b["switch_port"], b["vlan"]) for b in backends] == \
        [(f"02:00:00:00:00:0{n}", 10 + n, 0) for n in (1, 2)]
    syns = packet_outs(datapath)
    # VLAN 0 leaves these ports untagged: the SYNs are sent untagged
    assert len(syns) == 2 and all(m.data[12:14] == b"\x08\x00" for m in syns)
    answer_tagged(app, datapath, 0)
    assert buckets(datapath) == 2
    rewrites = [s for s in installed(datapath) if s.priority in (lb.PRIO_COMMIT, lb.PRIO_PINNED)]
    assert len(rewrites) == 4 and all(PopVlan() in s.actions for s in rewrites)


def test_a_backend_behind_a_tagged_trunk_is_probed_tagged(monkeypatch, tmp_path):
    app = make_app(monkeypatch, tmp_path)
    app._port_vlans(events.EventPortVlans(1, frozenset({(1, 10)})))  # 11, 12 tag VLAN 10
    datapath = connect(app)
    locate(app, datapath, 10)
    syns = packet_outs(datapath)
    assert len(syns) == 2 and all(m.data[12:16] == bytes.fromhex("8100000a") for m in syns)
    assert {probes.parse_reply(m.data).vlan for m in syns} == {10}
    datapath.sent.clear()
    answer_tagged(app, datapath, 10)
    resets = [probes.parse_reply(m.data) for m in packet_outs(datapath)]
    assert len(resets) == 2 and all(r.flags == probes.RST and r.vlan == 10 for r in resets)
    rewrites = [s for s in installed(datapath) if s.priority in (lb.PRIO_COMMIT, lb.PRIO_PINNED)]
    assert rewrites and not any(PopVlan() in s.actions for s in rewrites)
    tracked = [s for s in installed(datapath) if s.priority == lb.PRIO_TRACK]
    assert [s.match.get("vlan_vid") for s in tracked] == [10]    # VLAN 10 clients only


def test_the_vlan_app_changing_its_ports_moves_the_pops(monkeypatch, tmp_path):
    app = make_app(monkeypatch, tmp_path)
    datapath = connect(app)                          # no VLAN app heard of yet
    assert not any(PopVlan() in s.actions for s in installed(datapath))
    datapath.sent.clear()
    app._port_vlans(events.EventPortVlans(1, VLAN_0_UNTAGGED))
    assert [s.match.get("in_port") for s in installed(datapath)
            if PopVlan() in s.actions and s.match.get("arp_tpa") == "10.0.0.254"] == [1, 2, 11, 12]
    datapath.sent.clear()
    app._port_vlans(events.EventPortVlans(1, VLAN_0_UNTAGGED))   # the same again: nothing
    assert datapath.sent == []
    app._port_vlans(events.EventPortVlans(1, frozenset({(1, 0)})))
    assert [s.match.get("in_port") for s in installed(datapath)
            if PopVlan() in s.actions and s.match.get("arp_tpa") == "10.0.0.254"] == [1]
