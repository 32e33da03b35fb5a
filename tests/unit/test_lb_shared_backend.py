"""Two nat VIPs that share one backend IP:port, on the table simulator: a reply of
each VIP's connection leaves from that VIP's address, a direct connection to the
backend keeps the backend's, and removing one VIP leaves the other's replies alone
(flows/lb_health.py desired(), and the app's own programming)."""
from controller import pipeline
from flows import diff, lb, lb_health, probes
from flows.spec import FlowSpec, Match, Output, Owner
from tests.support import ofsim
from tests.support.lb_app import answer_probes, arp_reply, connect, make_app, packet_in

CLIENT_MAC, CLIENT_IP = "00:00:00:00:00:01", "10.0.0.1"
BACKEND, BACKEND_MAC, BACKEND_PORT = "10.0.0.11", "02:00:00:00:00:01", 11
SHARED = [{"ip": BACKEND, "port": 8080}]
VIP_1 = {"vip": "10.0.0.100", "port": 80, "backends": SHARED}
VIP_2 = {"vip": "10.0.0.101", "port": 80, "backends": SHARED}
SECTION = {"subnets": ["10.0.0.0/24"], "vips": [VIP_1, VIP_2]}
TO_PORT_2 = FlowSpec("l2_dst", 1, Match(), Owner("l2_switch", "default"), actions=(Output(2),))


def syn(vip, sport):
    return ofsim.frame(1, CLIENT_MAC, "02:1b:00:00:00:01", ipv4_src=CLIENT_IP, ipv4_dst=vip,
                       ip_proto=6, tcp_src=sport, tcp_dst=80)


def reply_source(switch, dport):
    """Where a reply of the backend to the client's port `dport` says it comes from."""
    result = switch.process(ofsim.frame(BACKEND_PORT, BACKEND_MAC, CLIENT_MAC,
                                        ipv4_src=BACKEND, ipv4_dst=CLIENT_IP, ip_proto=6,
                                        tcp_src=8080, tcp_dst=dport))
    (out,) = result.outputs[2]
    return out["ipv4_src"], out["tcp_src"]


def connections_through_both(switch):
    for vip, sport in (("10.0.0.100", 40000), ("10.0.0.101", 40001)):
        (port, _), = switch.process(syn(vip, sport)).outputs.items()
        assert port == BACKEND_PORT


def test_each_vip_gets_its_own_replies_back_from_a_shared_backend():
    settings = lb.LbSettings(**SECTION)
    vips = lb.vips_from(settings, {})
    backends = {}
    for vip_id in vips:
        st = lb_health.state_of(backends, vip_id, BACKEND, 0.0)
        st.mac, st.dpid, st.port, st.healthy = BACKEND_MAC, 1, BACKEND_PORT, True
    switch = ofsim.Switch([1, 2, BACKEND_PORT])
    switch.apply(pipeline.table_misses() + [TO_PORT_2])
    switch.apply(lb_health.desired(settings, vips, backends, 1).items())
    connections_through_both(switch)
    assert reply_source(switch, 40000) == ("10.0.0.100", 80)
    assert reply_source(switch, 40001) == ("10.0.0.101", 80)
    assert reply_source(switch, 50000) == (BACKEND, 8080)   # the backend, spoken to directly
    # VIP 2 goes: VIP 1's replies do not depend on it
    del vips[2]
    old = lb_health.desired(settings, dict(lb.vips_from(settings, {})), backends, 1)
    new = lb_health.desired(settings, vips, backends, 1)
    switch.apply(lb.forget_vip(2) + diff.plan_changes(old.replies, new.replies))
    assert reply_source(switch, 40000) == ("10.0.0.100", 80)
    assert reply_source(switch, 40001) == (BACKEND, 8080)


def test_the_app_keeps_a_vips_replies_when_another_vip_of_its_backend_goes(
        monkeypatch, tmp_path):
    app = make_app(monkeypatch, tmp_path, SECTION)
    datapath = connect(app)
    app.probe_round()
    app._packet_in(packet_in(datapath, BACKEND_PORT, arp_reply(BACKEND, BACKEND_MAC)))
    for st in app.backends.values():
        st.last_probe = -10.0
    app.probe_round()
    answer_probes(app, datapath, probes.SYN | probes.ACK)
    assert all(st.healthy for st in app.backends.values()) and len(app.backends) == 2
    switch = datapath.sim
    switch.ports = [1, 2, BACKEND_PORT]
    switch.apply([TO_PORT_2])
    connections_through_both(switch)
    assert reply_source(switch, 40000) == ("10.0.0.100", 80)
    assert reply_source(switch, 40001) == ("10.0.0.101", 80)
    app.change(2, None)                        # what DELETE /v1/lb/vips/2 does
    assert reply_source(switch, 40000) == ("10.0.0.100", 80)
    app.change(1, None)
    assert not [f for f in switch.flows("vip") if f.owner == lb.REPLIES]

