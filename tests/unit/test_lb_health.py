"""flows/lb_health.py: the health state machine apps/lb.py runs, without a switch."""
from flows import lb, lb_health, probes
from flows.spec import GroupSpec

SETTINGS = lb.LbSettings(subnets=["10.0.0.0/24"], vips=[
    {"vip": "10.0.0.100", "port": 80, "backends": [{"ip": "10.0.0.11", "port": 8080}],
     "health": {"interval_s": 1, "timeout_s": 1, "misses": 2}},
    {"vip": "10.0.0.101", "protocol": "udp", "port": 53, "backends": [{"ip": "10.0.0.11"}]}])
VIPS = lb.vips_from(SETTINGS, {})
IP, MAC = "10.0.0.11", "02:00:00:00:00:11"


def syn_ack(probe_port, flags=probes.SYN | probes.ACK):
    return probes.TcpReply(IP, 8080, probe_port, flags, 1, 2)


def test_an_arp_answer_locates_the_backend_and_makes_only_udp_vips_healthy():
    backends = {}
    out = lb_health.on_arp_reply(VIPS, backends, 1, 11, probes.ArpReply(IP, MAC), now=5)
    assert out.reprogram == [1, 2] and out.changed == [(2, IP, True)]
    assert (backends[(1, IP)].port, backends[(1, IP)].healthy) == (11, False)
    assert backends[(2, IP)].healthy
    again = lb_health.on_arp_reply(VIPS, backends, 1, 11, probes.ArpReply(IP, MAC), now=6)
    assert again.reprogram == [] and again.changed == []     # nothing moved


def test_probes_are_due_every_interval_and_arp_until_located():
    backends = {}
    due = lb_health.probes_due(VIPS, backends, now=10)
    assert [(vip.vip_id, b.ip) for vip, b, _ in due] == [(1, IP), (2, IP)]
    assert lb_health.probes_due(VIPS, backends, now=10.5) == []
    vip, _, st = due[0]
    assert lb_health.probe_by_arp(vip, st, connected={1})
    st.mac, st.dpid = MAC, 1
    assert not lb_health.probe_by_arp(vip, st, connected={1})
    assert lb_health.probe_by_arp(vip, st, connected={2})         # its switch is gone
    assert lb_health.probe_by_arp(VIPS[2], st, connected={1})     # UDP: always ARP


def test_misses_in_a_row_take_a_backend_out_and_an_answer_resets_them():
    backends, pending = {}, {}
    st = lb_health.state_of(backends, 1, IP, now=0)
    st.mac, st.dpid, st.port, st.healthy = MAC, 1, 11, True
    pending[(1, 33000)] = (1, IP, 0.0)
    assert lb_health.expired(pending, VIPS, now=0.5) == [] and pending
    assert lb_health.expired(pending, VIPS, now=1.0) == [(1, IP)] and not pending
    first = lb_health.miss(VIPS[1], backends, IP, now=1.0)
    assert first.reprogram == [] and st.healthy and st.misses == 1
    pending[(1, 33001)] = (1, IP, 1.0)
    answered = lb_health.on_tcp_reply(backends, pending, 1, syn_ack(33001), now=1.2)
    assert st.misses == 0 and answered.reset is st and answered.reprogram == []
    for now in (3.0, 4.0):
        out = lb_health.miss(VIPS[1], backends, IP, now)
    assert out.reprogram == [1] and out.changed == [(1, IP, False)] and not st.healthy
    assert st.last_change == 4.0


def test_a_refusal_is_down_at_once_and_a_stray_answer_changes_nothing():
    backends = {}
    st = lb_health.state_of(backends, 1, IP, now=0)
    st.mac, st.healthy = MAC, True
    pending = {(1, 33000): (1, IP, 0.0)}
    stray = lb_health.on_tcp_reply(backends, pending, 1, syn_ack(34000), now=0.1)
    assert stray.reprogram == [] and stray.reset is None and st.healthy
    refused = lb_health.on_tcp_reply(backends, pending, 1, syn_ack(33000, probes.RST | probes.ACK),
                                     now=0.2)
    assert refused.reset is None and refused.reprogram == [1] and not st.healthy
    assert pending == {}


def test_expired_drops_probes_of_deleted_vips_without_a_miss():
    pending = {(1, 33000): (9, IP, 0.0)}
    assert lb_health.expired(pending, VIPS, now=0.0) == [] and pending == {}


def test_a_take_over_keeps_a_fresher_location_and_the_previous_verdict():
    backends = {}
    lb_health.on_arp_reply(VIPS, backends, 1, 12, probes.ArpReply(IP, MAC), now=0)
    decided = lb_health.take_over(VIPS, backends, 1, {(1, IP): ("02:00:00:00:00:99", 11, None),
                                                      (7, IP): (MAC, 11, None)},
                                  live={(1, IP)}, now=1)
    st = backends[(1, IP)]
    assert decided == [(1, IP, st)] and st.healthy and st.port == 12
    assert lb_health.take_over(VIPS, backends, 1, {(1, IP): (MAC, 12, None)}, set(), 2) == []
    assert st.healthy                                      # decided once: not undone


def test_desired_has_a_bucket_per_healthy_backend_on_that_switch_only():
    backends = {}
    lb_health.on_arp_reply(VIPS, backends, 1, 11, probes.ArpReply(IP, MAC), now=0)
    here = lb_health.desired(SETTINGS, VIPS, backends, 1)
    groups = {i.ref.number: len(i.buckets) for i in here.items() if isinstance(i, GroupSpec)}
    assert groups == {1: 0, 2: 1} and here.vips[2].buckets == [IP]
    assert here.probes == lb.probe_flows(SETTINGS.probe_ip)
    elsewhere = lb_health.desired(SETTINGS, VIPS, backends, 2)
    assert [len(i.buckets) for i in elsewhere.items() if isinstance(i, GroupSpec)] == [0, 0]
    assert lb_health.desired(SETTINGS, VIPS, {}, 1).items() == elsewhere.items()
