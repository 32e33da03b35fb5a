"""Security groups (flows/security.py, flows/security_model.py) on the table simulator,
as the cloud chapter's scenario: a web server reachable on TCP 80 only, its replies let
out, a ping refused, a removed rule cutting a live connection and a re-added one letting
it live again, egress rules, remote prefixes, IPv6 with neighbour discovery, spoofing.
The tracker is tests/support/conntrack.py (docs/conntrack-model.md)."""
import pytest
from hypothesis import given, settings, strategies as st

from controller import pipeline
from flows import diff, l2, security
from flows.security_model import SecuritySettings, acl_from_dict, binding_from_dict, \
    groups_from_dict, rule_from_dict
from tests.support.ofsim import Switch, frame

SERVER, CLIENT, OTHER = 1, 2, 3          # ports
MACS = {SERVER: "02:00:00:00:00:01", CLIENT: "02:00:00:00:00:02", OTHER: "02:00:00:00:00:03"}
IPS = {SERVER: "10.0.0.1", CLIENT: "10.0.0.2", OTHER: "192.0.2.9"}
IP6 = {SERVER: "2001:db8::1", CLIENT: "2001:db8::2"}
SYN, SYN_ACK, ACK = 0x02, 0x12, 0x10
WEB = {"web": [{"direction": "ingress", "protocol": "tcp", "ports": 80}]}


def plan(groups, bindings, trusted=()):
    return security.desired({port: binding_from_dict(body) for port, body in bindings.items()},
                            groups_from_dict(groups), trusted)


def network(groups=WEB, bindings=None, trusted=(), acls=()):
    """A switch with the server bound to `groups`' rules and every host's MAC known;
    `acls`: (ACL body, port number or None)."""
    bindings = bindings or {SERVER: {"addresses": [IPS[SERVER], IP6[SERVER]],
                                     "groups": list(groups)}}
    here = [(acl_from_dict(body, n), port) for n, (body, port) in enumerate(acls, 1)]
    sw = Switch(sorted(MACS))
    sw.apply(pipeline.table_misses() + security.desired(
        {port: binding_from_dict(body) for port, body in bindings.items()},
        groups_from_dict(groups), trusted, here))
    for port, mac in MACS.items():
        sw.apply(l2.learn_host(mac, port, None, 0))
    return sw


def tcp(src, dst, sport, dport, flags, six=False):
    ips = IP6 if six else IPS
    addresses = {f"ipv{6 if six else 4}_src": ips[src], f"ipv{6 if six else 4}_dst": ips[dst]}
    return frame(src, MACS[src], MACS[dst], eth_type=0x86DD if six else 0x0800, ip_proto=6,
                 tcp_src=sport, tcp_dst=dport, tcp_flags=flags, **addresses)


def ping(src, dst, kind=8):
    return frame(src, MACS[src], MACS[dst], ipv4_src=IPS[src], ipv4_dst=IPS[dst], ip_proto=1,
                 icmpv4_type=kind, icmpv4_code=0, icmp_id=7)


def reached(sw, pkt):
    """The ports a packet left from."""
    return set(sw.process(pkt).outputs)


def test_the_web_server_takes_tcp_80_answers_and_refuses_the_rest():
    sw = network()
    assert reached(sw, tcp(CLIENT, SERVER, 40000, 80, SYN)) == {SERVER}
    assert reached(sw, tcp(SERVER, CLIENT, 80, 40000, SYN_ACK)) == {CLIENT}   # its reply
    assert reached(sw, tcp(CLIENT, SERVER, 40000, 80, ACK)) == {SERVER}
    assert reached(sw, tcp(CLIENT, SERVER, 40001, 22, SYN)) == set()          # not port 22
    assert reached(sw, ping(CLIENT, SERVER)) == set()                         # no ping
    # the server's own connections out are open (no egress rule) and their replies in
    assert reached(sw, ping(SERVER, OTHER)) == {OTHER}
    assert reached(sw, ping(OTHER, SERVER, kind=0)) == {SERVER}
    # a reply nobody asked for is not a way in
    assert reached(sw, tcp(OTHER, SERVER, 80, 40005, SYN_ACK)) == set()
    # ARP is no business of the security stage
    arp = frame(CLIENT, MACS[CLIENT], MACS[SERVER], eth_type=0x0806, arp_op=1,
                arp_spa=IPS[CLIENT], arp_tpa=IPS[SERVER])
    assert reached(sw, arp) == {SERVER}


def test_traffic_between_unbound_ports_is_untouched_and_untracked():
    sw = network()
    assert reached(sw, tcp(CLIENT, OTHER, 40000, 22, SYN)) == {OTHER}
    assert sw.ct.entries() == []


def test_the_answer_to_a_health_probe_the_controller_sent_passes_to_the_controller():
    """The load balancer's probe SYN leaves the controller as a packet-out straight to the
    port: conntrack never sees it, so the SYN+ACK would be invalid, and is dropped unless
    the probe's source is one of the controller's own addresses."""
    answer = dict(tcp(SERVER, CLIENT, 80, 40000, SYN_ACK), ipv4_dst="10.0.0.254",
                  eth_dst="02:00:00:00:00:fe")
    assert "vip" not in network().process(answer).tables_visited
    assert "vip" in network(trusted=("10.0.0.254",)).process(answer).tables_visited


def test_a_spoofed_source_is_dropped():
    sw = network()
    spoofed = dict(tcp(SERVER, CLIENT, 80, 40000, SYN), ipv4_src="10.0.0.77")
    assert reached(sw, spoofed) == set()


def test_a_removed_rule_cuts_the_live_connection_and_adding_it_back_revives_it():
    sw = network()
    assert reached(sw, tcp(CLIENT, SERVER, 40000, 80, SYN)) == {SERVER}
    assert reached(sw, tcp(SERVER, CLIENT, 80, 40000, SYN_ACK)) == {CLIENT}
    before = plan(WEB, {SERVER: {"addresses": [IPS[SERVER]], "groups": ["web"]}})
    without = plan({"web": []}, {SERVER: {"addresses": [IPS[SERVER]], "groups": ["web"]}})
    sw = network(bindings={SERVER: {"addresses": [IPS[SERVER]], "groups": ["web"]}})
    assert reached(sw, tcp(CLIENT, SERVER, 40000, 80, SYN)) == {SERVER}
    assert reached(sw, tcp(SERVER, CLIENT, 80, 40000, SYN_ACK)) == {CLIENT}
    sw.apply(diff.plan_changes(before, without))
    assert reached(sw, tcp(CLIENT, SERVER, 40000, 80, ACK)) == set()      # cut: marked
    assert [e.mark for e in sw.ct.entries()] == [security.CUT_MARK]
    assert reached(sw, tcp(SERVER, CLIENT, 80, 40000, ACK)) == set()      # replies too
    sw.apply(diff.plan_changes(without, before))
    assert reached(sw, tcp(CLIENT, SERVER, 40000, 80, ACK)) == {SERVER}   # mark cleared
    assert [e.mark for e in sw.ct.entries()] == [0]
    assert reached(sw, tcp(SERVER, CLIENT, 80, 40000, ACK)) == {CLIENT}


def test_egress_rules_close_everything_else_on_the_way_out():
    groups = {"dns-only": [{"direction": "egress", "protocol": "udp", "ports": 53},
                           {"direction": "ingress", "protocol": "tcp", "ports": "8000-8080"}]}
    sw = network(groups)
    dns = frame(SERVER, MACS[SERVER], MACS[OTHER], ipv4_src=IPS[SERVER], ipv4_dst=IPS[OTHER],
                ip_proto=17, udp_src=40000, udp_dst=53)
    assert reached(sw, dns) == {OTHER}
    assert reached(sw, dict(dns, udp_dst=54)) == set()
    assert reached(sw, ping(SERVER, OTHER)) == set()
    # the replies of what it may take in still leave (replies need no egress rule)
    for port, seen in ((7999, set()), (8000, {SERVER}), (8080, {SERVER}), (8081, set())):
        assert reached(sw, tcp(CLIENT, SERVER, 41000 + port, port, SYN)) == seen, port
    assert reached(sw, tcp(SERVER, CLIENT, 8080, 49080, SYN_ACK)) == {CLIENT}


def test_a_remote_prefix_limits_who_may_connect():
    groups = {"ssh": [{"direction": "ingress", "protocol": "tcp", "ports": 22,
                       "remote": "10.0.0.0/24"}]}
    sw = network(groups)
    assert reached(sw, tcp(CLIENT, SERVER, 40000, 22, SYN)) == {SERVER}    # 10.0.0.2
    assert reached(sw, tcp(OTHER, SERVER, 40000, 22, SYN)) == set()       # 192.0.2.9


def test_ipv6_rules_and_neighbour_discovery():
    groups = {"web6": [{"direction": "ingress", "protocol": "tcp", "ports": 80,
                        "ethertype": "IPv6"}]}
    sw = network(groups)
    assert reached(sw, tcp(CLIENT, SERVER, 40000, 80, SYN, six=True)) == {SERVER}
    assert reached(sw, tcp(SERVER, CLIENT, 80, 40000, SYN_ACK, six=True)) == {CLIENT}
    assert reached(sw, tcp(CLIENT, SERVER, 40000, 80, SYN)) == set()     # IPv4: no rule
    for kind in (135, 136):   # neighbour solicitation and advertisement, both ways
        for src, dst in ((CLIENT, SERVER), (SERVER, CLIENT)):
            nd = frame(src, MACS[src], MACS[dst], eth_type=0x86DD, ipv6_src=IP6[src],
                       ipv6_dst=IP6[dst], ip_proto=58, icmpv6_type=kind, icmpv6_code=0)
            assert reached(sw, nd) == {dst}, (kind, src)
    link_local = frame(SERVER, MACS[SERVER], MACS[CLIENT], eth_type=0x86DD,
                       ipv6_src="fe80::1", ipv6_dst="fe80::2", ip_proto=17, udp_src=1,
                       udp_dst=2)
    assert reached(sw, link_local) == {CLIENT}      # its link-local address is its own


def test_two_servers_on_one_switch_each_keep_their_rules():
    groups = {"web": WEB["web"], "ssh": [{"direction": "ingress", "protocol": "tcp",
                                          "ports": 22}]}
    sw = network(groups, {SERVER: {"addresses": [IPS[SERVER]], "groups": ["web"]},
                          CLIENT: {"addresses": [IPS[CLIENT]], "groups": ["ssh"]}})
    assert reached(sw, tcp(CLIENT, SERVER, 40000, 80, SYN)) == {SERVER}
    assert reached(sw, tcp(SERVER, CLIENT, 40000, 22, SYN)) == {CLIENT}
    assert reached(sw, tcp(SERVER, CLIENT, 40000, 80, SYN)) == set()
    assert reached(sw, tcp(CLIENT, SERVER, 40001, 22, SYN)) == set()


def test_a_drop_acl_on_a_port_drops_what_it_matches_and_nothing_else():
    sw = network(acls=[({"switch": "s1", "port": CLIENT, "match": {"tcp_dst": 80},
                         "action": "drop"}, CLIENT)])
    assert reached(sw, tcp(CLIENT, SERVER, 40000, 80, SYN)) == set()     # the ACL
    assert reached(sw, tcp(OTHER, SERVER, 40000, 80, SYN)) == {SERVER}   # another port
    assert reached(sw, tcp(CLIENT, OTHER, 40000, 81, SYN)) == {OTHER}    # another port no.


def test_an_allow_acl_goes_past_the_groups_untracked_and_the_higher_priority_wins():
    allow_ssh = {"match": {"tcp_dst": 22}, "action": "allow", "priority": 200}
    drop_tcp = {"match": {"ip_proto": 6}, "action": "drop", "priority": 100}
    sw = network(acls=[(allow_ssh, None), (drop_tcp, None)])
    assert reached(sw, tcp(CLIENT, SERVER, 40000, 22, SYN)) == {SERVER}  # no rule for 22
    assert sw.ct.entries() == []                                          # untracked
    assert reached(sw, tcp(CLIENT, SERVER, 40000, 80, SYN)) == set()     # the drop first
    assert reached(sw, ping(CLIENT, SERVER)) == set()                    # the group's


def test_a_vlan_acl_sees_the_pipelines_tag():
    sw = network(acls=[({"vlan": 10, "match": {"udp_dst": 9}, "action": "drop"}, None)])
    discard = frame(CLIENT, MACS[CLIENT], MACS[OTHER], vlan=10, ipv4_src=IPS[CLIENT],
                    ipv4_dst=IPS[OTHER], ip_proto=17, udp_src=1, udp_dst=9)
    assert sw.process(discard).tables_visited[-1] == "sg"       # dropped in the ACL stage
    assert "vip" in sw.process(dict(discard, vlan_vid=20)).tables_visited


@pytest.mark.parametrize("body, message", [
    ({"action": "reject"}, "allow or drop"),
    ({"action": "drop", "switch": "s1"}, "both switch and port"),
    ({"action": "drop", "switch": "s1", "port": 1, "vlan": 10}, "not both"),
    ({"action": "drop", "vlan": 0}, "acl vlan"),
    ({"action": "drop", "priority": 1000}, "acl priority"),
    ({"action": "drop", "match": {"in_port": 1}}, "switch and port, not in_port"),
    ({"action": "drop", "match": {"colour": 1}}, "unknown key"),
    ({"action": "drop", "match": "all"}, "an object of fields"),
    ({"action": "drop", "id": 3}, "unknown key"),
])
def test_a_bad_acl_is_refused_naming_what_is_wrong(body, message):
    with pytest.raises(ValueError, match=message):
        acl_from_dict(body, 1)


@pytest.mark.parametrize("low, high", [(1, 1), (80, 80), (8000, 8080), (1, 65535),
                                       (1023, 1025), (0x7FFF, 0x8001), (65535, 65535)])
def test_a_port_range_is_covered_exactly_by_its_masks(low, high):
    masks = security.port_range_masks(low, high)
    covered = {p for p in range(0, 65536) if any(p & m == v for v, m in masks)}
    assert covered == set(range(low, high + 1))
    assert all(v & ~m & 0xFFFF == 0 for v, m in masks)


def test_every_entry_stays_inside_the_pipeline_declaration():
    groups = {"all": [{"direction": "ingress"}, {"direction": "egress", "protocol": "icmp"},
                      {"direction": "ingress", "protocol": "icmpv6"},
                      {"direction": "egress", "protocol": "udp", "ports": "1000-2000",
                       "remote": "2001:db8::/32"}]}
    specs = plan(groups, {SERVER: {"addresses": [IPS[SERVER], IP6[SERVER]], "groups": ["all"],
                                   "network": 7}})
    for spec in specs:
        pipeline.validate(spec)
    assert {s.table for s in specs} == {"sg", "sg_out", "sg_in"}
    zones = {a.zone for s in specs for a in s.actions if hasattr(a, "zone")}
    assert zones == {security.ZONE_BASE + 7}
    assert plan(groups, {}) == []


@pytest.mark.parametrize("body, message", [
    ({"direction": "in"}, "direction must be ingress or egress"),
    ({"direction": "ingress", "protocol": "sctp"}, "protocol must be one of"),
    ({"direction": "ingress", "ports": 80}, "ports need protocol tcp or udp"),
    ({"direction": "ingress", "protocol": "tcp", "ports": "90-80"}, "runs backwards"),
    ({"direction": "ingress", "protocol": "tcp", "ports": 0}, "1..65535"),
    ({"direction": "ingress", "protocol": "tcp", "ports": "a-b"}, "1..65535"),
    ({"direction": "ingress", "remote": "10.0.0.300/24"}, "remote must be"),
    ({"direction": "ingress", "remote": 167772160}, "remote must be"),
    ({"direction": "ingress", "remote": "10.0.0.0/8", "ethertype": "IPv6"}, "not an IPv6"),
    ({"direction": "ingress", "protocol": "icmp", "ethertype": "IPv6"}, "does not go with"),
    ({"direction": "ingress", "colour": "red"}, "unknown key(s) colour"),
    ("ingress", "must be a JSON object"),
])
def test_a_bad_rule_is_refused_naming_what_is_wrong(body, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        rule_from_dict(body, "web", 1)


@pytest.mark.parametrize("section, message", [
    ({"groups": {"web": "tcp 80"}}, "must be a list of rules"),
    ({"groups": {"bad name!": []}}, "a group name is"),
    ({"groups": {"a": [{"id": 3, "direction": "ingress"}, {"id": 3, "direction": "egress"}]}},
     "unique"),
    ({"groups": {}, "ports": [{"switch": "s1", "port": 1, "addresses": ["10.0.0.1"],
                               "groups": ["nope"]}]}, "unknown group"),
    ({"ports": [{"switch": "s1", "port": 1, "groups": []}]}, "needs addresses"),
    ({"ports": [{"switch": "s1", "port": 1, "addresses": ["x"]}]}, "IPv4 or IPv6 addresses"),
    ({"ports": [{"switch": "s1", "port": 1, "addresses": [167772161]}]}, "IPv4 or IPv6"),
    ({"ports": [{"switch": "s1", "port": 1, "addresses": ["10.0.0.1"], "network": 5000}]},
     "network must be"),
    ({"ports": [{"port": 1}]}, "needs switch and port"),
    ({"ports": [{"switch": "s1", "port": 1, "addresses": ["224.0.0.1"]}]}, "unicast"),
    ({"ports": [{"switch": "s1", "port": 1, "addresses": ["0.0.0.0"]}]}, "unicast"),
    ({"ports": [{"switch": "s1", "port": 1, "addresses": ["255.255.255.255"]}]}, "unicast"),
    ({"ports": [{"switch": "s1", "port": 1, "addresses": ["::1"]}]}, "unicast"),
    ({"ports": [{"switch": "s1", "port": 1,
                 "addresses": [f"10.0.{i // 250}.{i % 250 + 1}" for i in range(65)]}]}, "1-64"),
])
def test_a_bad_section_is_refused_naming_the_entry(section, message):
    with pytest.raises(ValueError, match=message):
        SecuritySettings(**section)


def test_config_rules_are_numbered_in_order_around_given_ids():
    groups = groups_from_dict({"a": [{"direction": "ingress"}, {"id": 2, "direction": "egress"},
                                     {"direction": "ingress", "protocol": "icmp"}]})
    assert [r.rule_id for r in groups["a"]] == [1, 2, 3]
    assert groups["a"][2].to_dict() == {"id": 3, "group": "a", "direction": "ingress",
                                        "ethertype": "IPv4", "protocol": "icmp", "ports": None,
                                        "remote": None, "remote_group": None}


# --- whatever a config file or a REST client sends -----------------------------------

JSONISH = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() |
                       st.text(max_size=20), lambda inner: st.lists(inner, max_size=3) |
                       st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)
RULE_VALUES = {"direction": st.sampled_from(["ingress", "egress", "in", ""]) | JSONISH,
               "protocol": st.sampled_from(["tcp", "udp", "icmp", "icmpv6", "any"]) | JSONISH,
               "ports": st.integers(-1, 70000) | st.from_regex(r"\A\d{1,6}(-\d{0,6})?\Z") |
               JSONISH,
               "remote": st.sampled_from(["10.0.0.0/8", "2001:db8::/32", "::/0", "1.2.3.4"]) |
               JSONISH,
               "remote_group": st.sampled_from(["g", "web", "bad name", ""]) | JSONISH,
               "ethertype": st.sampled_from(["IPv4", "IPv6"]) | JSONISH}


@given(st.fixed_dictionaries({}, optional=RULE_VALUES) | JSONISH)
@settings(max_examples=300, deadline=None)
def test_any_rule_body_is_a_rule_or_a_value_error_and_a_rule_makes_valid_entries(body):
    try:
        rule = rule_from_dict(body, "g", 1)
    except ValueError:
        return
    binding = binding_from_dict({"addresses": ["10.0.0.1", "2001:db8::1"], "groups": ["g"]})
    for spec in security.desired({1: binding}, {"g": (rule,)}):
        pipeline.validate(spec)
    assert rule_from_dict({k: v for k, v in rule.to_dict().items()
                           if k not in ("id", "group") and v is not None}, "g", 1) == rule


BINDING_VALUES = {"addresses": st.lists(st.sampled_from(["10.0.0.1", "fe80::1", "224.0.0.1"]) |
                                        JSONISH, max_size=3) | JSONISH,
                  "groups": st.lists(st.sampled_from(["g", "bad name"]) | JSONISH,
                                     max_size=3) | JSONISH,
                  "network": st.integers(-1, 5000) | JSONISH}


@given(st.fixed_dictionaries({}, optional=BINDING_VALUES) | JSONISH,
       st.dictionaries(st.sampled_from(["g", "h", "x y"]) | st.text(max_size=4),
                       st.lists(st.fixed_dictionaries({}, optional=dict(
                           RULE_VALUES, id=st.integers(-1, 70000) | JSONISH)) | JSONISH,
                           max_size=3) | JSONISH, max_size=3) | JSONISH)
@settings(max_examples=300, deadline=None)
def test_any_binding_and_groups_are_accepted_whole_or_refused_with_a_value_error(body, groups):
    try:
        binding = binding_from_dict(body)
        parsed = groups_from_dict(groups)
    except ValueError:
        return
    for spec in security.desired({1: binding}, parsed):
        pipeline.validate(spec)
