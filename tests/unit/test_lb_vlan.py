"""The load balancer together with the VLAN and learning apps' entries on one simulated
switch: inside the pipeline every frame carries a VLAN tag (VLAN 0 for untagged frames
of ports without settings), so what the LB sends out of a port itself (ARP answers,
the rewrite to a backend) must pop it where the VLAN app says the port leaves that VLAN
untagged, and keep it on a tagged trunk; health-probe replies reach the controller
tagged and must still parse."""
import ipaddress

import pytest

from controller import pipeline
from flows import l2, lb, probes, vlan
from tests.support.ofsim import Switch, frame

SUBNETS = [ipaddress.IPv4Network("10.0.0.0/24")]
PROBE_IP = "10.0.0.254"
CLIENT_MAC, CLIENT_IP = "00:00:00:00:00:01", "10.0.0.1"
OTHER_MAC, OTHER_IP = "00:00:00:00:00:02", "10.0.0.2"
BACKENDS = [("10.0.0.11", "00:00:00:00:00:0b", 11), ("10.0.0.12", "00:00:00:00:00:0c", 12)]
PORTS = [1, 2, 11, 12]
VIP = lb.vip_from_dict(1, {"vip": "10.0.0.100", "port": 80, "mode": "nat",
                           "backends": [{"ip": ip, "port": 8080} for ip, _, _ in BACKENDS]},
                       SUBNETS)


def with_apps(configured, backend_vlan, backends=BACKENDS, mode="nat"):
    """A switch with the pipeline misses, the VLAN app's plan for `configured`
    (PortVlan by port), the learning app's datapath defaults and the LB's entries, its
    backends located on `backend_vlan`; and the untagged pairs the VLAN app declared."""
    vip = VIP
    if mode == "dsr":   # dsr does not rewrite ports: the VIP's port is the backends'
        body = {k: v for k, v in lb.vip_to_dict(VIP).items() if k != "id"}
        vip = lb.vip_from_dict(1, dict(body, mode="dsr", port=8080), SUBNETS)
    ports = vlan.effective_ports(configured, PORTS)
    untagged = vlan.untagged_egress_pairs(ports)
    located = [lb.Located(vip.backend(ip), mac, port, backend_vlan) for ip, mac, port in backends]
    switch = Switch(PORTS)
    switch.apply(pipeline.table_misses())
    switch.apply(vlan.switch_plan(ports, configured))
    switch.apply(l2.switch_defaults(l2.L2Settings(mode="datapath"), untagged))
    switch.apply(lb.probe_flows(PROBE_IP, untagged))
    switch.apply(lb.vip_flows(vip, located, False, located, untagged)
                 + lb.reply_flows([(vip, located)]))
    return switch


def access(port, tag):
    return vlan.PortVlan(port, tag=tag)


ACCESS_10 = {p: access(p, 10) for p in (1, 11, 12)}
ACCESS_10[2] = access(2, 20)


def arp_request(port, src_mac, src_ip, target, vid=None):
    return frame(port, src_mac, "ff:ff:ff:ff:ff:ff", vlan=vid, eth_type=0x0806, arp_op=1,
                 arp_sha=src_mac, arp_spa=src_ip, arp_tha="00:00:00:00:00:00", arp_tpa=target)


def syn(port=1, mac=CLIENT_MAC, ip=CLIENT_IP, sport=40000, vid=None):
    return frame(port, mac, lb.vip_mac(1), vlan=vid, ipv4_src=ip, ipv4_dst=VIP.ip, ip_proto=6,
                 tcp_src=sport, tcp_dst=80)


def arp_answers(result):
    return {port: pkts for port, pkts in result.outputs.items()
            if any(p.get("arp_op") == 2 for p in pkts)}


@pytest.mark.parametrize("configured, backend_vlan", [({}, 0), (ACCESS_10, 10)],
                         ids=["no-vlan-ports", "access-vlan-10"])
def test_the_vip_is_answered_and_served_untagged_on_untagged_ports(configured, backend_vlan):
    switch = with_apps(configured, backend_vlan)
    answer = switch.process(arp_request(1, CLIENT_MAC, CLIENT_IP, VIP.ip))
    assert list(answer.outputs) == [1]
    (reply,) = answer.outputs[1]
    assert (reply["vlan_vid"], reply["arp_op"], reply["arp_sha"]) == (None, 2, lb.vip_mac(1))
    for sport in range(40000, 40020):
        (port, (pkt,)), = switch.process(syn(sport=sport)).outputs.items()
        ip, mac, _ = next(b for b in BACKENDS if b[2] == port)
        assert (pkt["vlan_vid"], pkt["eth_dst"], pkt["ipv4_dst"], pkt["tcp_dst"]) == \
            (None, mac, ip, 8080)
    # the backend's reply goes through the VLAN app's egress: untagged, from the VIP
    ip, mac, port = BACKENDS[0]
    back = switch.process(frame(port, mac, CLIENT_MAC, ipv4_src=ip, ipv4_dst=CLIENT_IP,
                                ip_proto=6, tcp_src=8080, tcp_dst=40000))
    at_client = back.outputs.get(1, [])
    assert at_client and all(p["vlan_vid"] is None and p["ipv4_src"] == VIP.ip
                             for p in at_client), back.outputs


@pytest.mark.parametrize("configured, backend_vlan", [({}, 0), (ACCESS_10, 10)],
                         ids=["no-vlan-ports", "access-vlan-10"])
def test_health_probe_replies_reach_the_controller_tagged_and_parse(configured, backend_vlan):
    switch = with_apps(configured, backend_vlan)
    ip, mac, port = BACKENDS[0]
    # the backend asks for the probe IP: answered untagged out of its port
    answer = switch.process(arp_request(port, mac, ip, PROBE_IP))
    assert list(answer.outputs) == [port] and answer.outputs[port][0]["vlan_vid"] is None
    assert answer.outputs[port][0]["arp_sha"] == lb.PROBE_MAC
    # its ARP reply to the probe MAC: to the controller, carrying the pipeline's tag
    reply = frame(port, mac, lb.PROBE_MAC, eth_type=0x0806, arp_op=2, arp_spa=ip)
    (sent,) = switch.process(reply).packet_ins
    assert sent["vlan_vid"] == backend_vlan
    # ... which the parser reads past (the bytes OVS sends: an 802.1Q tag, that VLAN)
    raw = tagged(arp_reply_bytes(ip, mac), backend_vlan)
    assert probes.parse_reply(raw) == probes.ArpReply(ip, mac, backend_vlan)


def test_a_client_of_another_vlan_gets_neither_the_vips_arp_nor_a_backend():
    switch = with_apps(ACCESS_10, 10)
    assert arp_answers(switch.process(arp_request(2, OTHER_MAC, OTHER_IP, VIP.ip))) == {}
    outs = switch.process(syn(port=2, mac=OTHER_MAC, ip=OTHER_IP)).outputs
    assert not any(port in outs for _, _, port in BACKENDS), outs


def test_a_backend_behind_a_tagged_trunk_gets_its_frames_tagged():
    configured = {1: access(1, 10), 2: access(2, 20), 11: vlan.PortVlan(11, trunks=(10,)),
                  12: vlan.PortVlan(12, trunks=(10,))}
    switch = with_apps(configured, 10)
    (port, (pkt,)), = switch.process(syn()).outputs.items()
    assert port in (11, 12) and pkt["vlan_vid"] == 10
    # a client on that trunk asks for the VIP tagged: answered tagged, out of the trunk
    answer = switch.process(arp_request(11, OTHER_MAC, OTHER_IP, VIP.ip, vid=10))
    assert list(answer.outputs) == [11] and answer.outputs[11][0]["vlan_vid"] == 10


def test_dsr_pops_the_tag_too():
    switch = with_apps({}, 0, mode="dsr")
    (port, (pkt,)), = switch.process(syn(sport=41000) | {"tcp_dst": 8080}).outputs.items()
    assert port in (11, 12) and pkt["vlan_vid"] is None and pkt["ipv4_dst"] == VIP.ip


def test_without_the_vlan_app_nothing_changes():
    """LB alone: frames are untagged in the pipeline; no pop entries, one ARP answer."""
    located = [lb.Located(VIP.backend(ip), mac, port) for ip, mac, port in BACKENDS]
    flows = lb.vip_flows(VIP, located, False, located)
    arp = [f for f in flows if getattr(f, "match", None) and f.match.get("arp_tpa") == VIP.ip]
    assert len(arp) == 1 and arp[0].match.get("vlan_vid") is None
    assert len([f for f in lb.probe_flows(PROBE_IP) if f.match.get("arp_tpa")]) == 1
    switch = Switch(PORTS).apply(pipeline.table_misses()).apply(flows)
    (port, (pkt,)), = switch.process(syn()).outputs.items()
    assert pkt["vlan_vid"] is None


def test_adopt_reads_back_each_backends_vlan():
    located = [lb.Located(VIP.backend(ip), mac, port, 10) for ip, mac, port in BACKENDS]
    flows = lb.vip_flows(VIP, located, False, located, frozenset({(11, 10), (12, 10)}))
    where, live = lb.adopt(flows)
    assert where == {(1, ip): (mac, port, 10) for ip, mac, port in BACKENDS}
    assert live == {(1, ip) for ip, _, _ in BACKENDS}
    untagged_where, _ = lb.adopt(lb.vip_flows(
        VIP, [], False, [lb.Located(VIP.backend(BACKENDS[0][0]), BACKENDS[0][1], 11)]))
    assert untagged_where == {(1, BACKENDS[0][0]): (BACKENDS[0][1], 11, None)}


def test_served_vlans():
    b = VIP.backends[0]
    assert lb.served_vlans([]) == (None,)
    assert lb.served_vlans([lb.Located(b, "m", 1)]) == (None,)
    assert lb.served_vlans([lb.Located(b, "m", 1, 10), lb.Located(b, "m", 2, 0)]) == (0, 10)


# --- the parser ------------------------------------------------------------------------

def tagged(raw: bytes, vid, tpid=0x8100) -> bytes:
    return raw[:12] + tpid.to_bytes(2, "big") + (0x2000 | vid).to_bytes(2, "big") + raw[12:]


def arp_reply_bytes(ip, mac):
    raw = bytearray(probes.arp_request(mac, ip, PROBE_IP))
    raw[0:6] = bytes.fromhex(lb.PROBE_MAC.replace(":", ""))
    raw[20:22] = b"\x00\x02"
    return bytes(raw)


def syn_ack_bytes(vlan=None):
    return probes.tcp_segment("00:00:00:00:00:0b", lb.PROBE_MAC, "10.0.0.11", PROBE_IP, 8080,
                              33000, probes.SYN | probes.ACK, seq=5, ack=9, vlan=vlan)


@pytest.mark.parametrize("vid", [0, 10, 4094])
def test_tagged_probe_replies_parse_with_their_vlan(vid):
    tcp = probes.parse_reply(tagged(syn_ack_bytes(), vid))
    assert tcp == probes.TcpReply("10.0.0.11", 8080, 33000, probes.SYN | probes.ACK, 5, 9, vid)
    assert tcp.accepted
    assert probes.parse_reply(syn_ack_bytes(vlan=vid)) == tcp   # built tagged: the same
    arp = probes.parse_reply(tagged(arp_reply_bytes("10.0.0.11", "00:00:00:00:00:0b"), vid))
    assert arp == probes.ArpReply("10.0.0.11", "00:00:00:00:00:0b", vid)


def test_qinq_replies_report_the_outer_vlan_and_untagged_ones_none():
    double = tagged(tagged(syn_ack_bytes(), 10), 300, tpid=0x88A8)
    assert probes.parse_reply(double).vlan == 300
    assert probes.parse_reply(syn_ack_bytes()).vlan is None
    assert probes.parse_reply(tagged(tagged(tagged(syn_ack_bytes(), 1), 2), 3)) is None


def test_truncated_or_odd_tagged_frames_are_ignored():
    raw = tagged(syn_ack_bytes(), 10)
    for junk in (raw[:14], raw[:16], raw[:17], raw[:40], raw[:57],
                 tagged(arp_reply_bytes("10.0.0.11", "00:00:00:00:00:0b"), 10)[:45]):
        assert probes.parse_reply(junk) is None, len(junk)
    assert probes.parse_reply(raw[:58]) is not None   # 18 + 20 + 20: complete


def test_probe_frames_are_built_tagged_only_when_asked():
    assert probes.arp_request(lb.PROBE_MAC, PROBE_IP, "10.0.0.11")[12:14] == b"\x08\x06"
    request = probes.arp_request(lb.PROBE_MAC, PROBE_IP, "10.0.0.11", vlan=10)
    assert request[12:18] == bytes.fromhex("8100000a0806") and len(request) == 46
    for bad in (-1, 4095, "10", True):
        with pytest.raises(ValueError):
            probes.tcp_segment(lb.PROBE_MAC, "00:00:00:00:00:0b", PROBE_IP, "10.0.0.11", 1, 2,
                               probes.SYN, vlan=bad)
