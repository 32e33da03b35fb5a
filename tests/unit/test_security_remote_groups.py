"""Remote groups (a rule whose far end is any address of a port bound to a group) on the
table simulator: Neutron's default group ("anything from my own group"), members kept
current as ports join and leave, a leaving member's live connection cut, egress rules
towards a group, and entries that grow as n + m (conjunctive matches), not n x m."""
import pytest

from controller import pipeline
from flows import diff, l2, security
from flows.security_model import (SecuritySettings, binding_from_dict, groups_from_dict)
from flows.spec import Conjunction
from tests.support.ofsim import Switch, frame

WEB, APP, DB, STRANGER = 1, 2, 3, 4
MACS = {p: f"02:00:00:00:00:0{p}" for p in (WEB, APP, DB, STRANGER)}
IPS = {WEB: "10.0.0.1", APP: "10.0.0.2", DB: "10.0.0.3", STRANGER: "10.0.0.4"}
SYN, SYN_ACK, ACK = 0x02, 0x12, 0x10
GROUPS = {"tenant": [{"direction": "ingress", "remote_group": "tenant"}],
          "db": [{"direction": "ingress", "protocol": "tcp", "ports": "5432-5433",
                  "remote_group": "app"}],
          "app": [{"direction": "egress", "protocol": "tcp", "ports": 5432,
                   "remote_group": "db"},
                  {"direction": "egress", "protocol": "udp", "ports": 53}]}
BINDINGS = {WEB: {"addresses": [IPS[WEB]], "groups": ["tenant"]},
            APP: {"addresses": [IPS[APP]], "groups": ["tenant", "app"]},
            DB: {"addresses": [IPS[DB]], "groups": ["db"]}}


def plan(bindings=BINDINGS, groups=GROUPS):
    return security.desired({p: binding_from_dict(b) for p, b in bindings.items()},
                            groups_from_dict(groups))


def network(bindings=BINDINGS, groups=GROUPS):
    sw = Switch(sorted(MACS))
    sw.apply(pipeline.table_misses() + plan(bindings, groups))
    for port, mac in MACS.items():
        sw.apply(l2.learn_host(mac, port, None, 0))
    return sw


def tcp(src, dst, sport, dport, flags):
    return frame(src, MACS[src], MACS[dst], ipv4_src=IPS[src], ipv4_dst=IPS[dst], ip_proto=6,
                 tcp_src=sport, tcp_dst=dport, tcp_flags=flags)


def ping(src, dst):
    return frame(src, MACS[src], MACS[dst], ipv4_src=IPS[src], ipv4_dst=IPS[dst], ip_proto=1,
                 icmpv4_type=8, icmpv4_code=0, icmp_id=7)


def reached(sw, pkt):
    return set(sw.process(pkt).outputs)


def test_the_members_of_a_group_reach_each_other_and_nobody_else_does():
    sw = network()
    assert reached(sw, ping(WEB, APP)) == {APP}          # both in "tenant"
    assert reached(sw, tcp(WEB, APP, 40000, 22, SYN)) == {APP}
    assert reached(sw, ping(APP, WEB)) == set()          # the app's egress rules: not ICMP
    assert reached(sw, ping(STRANGER, WEB)) == set()     # bound to nothing
    assert reached(sw, ping(DB, WEB)) == set()           # bound, but to "db" only


def test_a_port_range_from_a_group_and_an_egress_rule_towards_one():
    sw = network()
    assert reached(sw, tcp(APP, DB, 40000, 5432, SYN)) == {DB}      # app -> db: allowed
    assert reached(sw, tcp(DB, APP, 5432, 40000, SYN_ACK)) == {APP}
    assert reached(sw, tcp(APP, DB, 40001, 5433, SYN)) == set()     # app's egress: 5432
    assert reached(sw, tcp(WEB, DB, 40002, 5432, SYN)) == set()     # web is not in "app"
    assert reached(sw, tcp(APP, STRANGER, 40003, 5432, SYN)) == set()   # not a db member
    # the app's other egress rule still works beside the group's
    dns = frame(APP, MACS[APP], MACS[STRANGER], ipv4_src=IPS[APP], ipv4_dst=IPS[STRANGER],
                ip_proto=17, udp_src=5000, udp_dst=53)
    assert reached(sw, dns) == {STRANGER}


def test_a_port_joining_gets_in_and_leaving_cuts_its_live_connection():
    sw = network()
    joined = {**BINDINGS, STRANGER: {"addresses": [IPS[STRANGER]], "groups": ["tenant"]}}
    sw.apply(diff.plan_changes(plan(), plan(joined)))
    assert reached(sw, tcp(STRANGER, WEB, 40000, 22, SYN)) == {WEB}
    assert reached(sw, tcp(WEB, STRANGER, 22, 40000, SYN_ACK)) == {STRANGER}
    sw.apply(diff.plan_changes(plan(joined), plan()))           # it leaves the group
    assert reached(sw, tcp(STRANGER, WEB, 40000, 22, ACK)) == set()   # cut on WEB's side
    assert reached(sw, tcp(STRANGER, WEB, 40001, 22, SYN)) == set()


def test_entries_grow_as_members_plus_ports_not_their_product():
    def sg_in_entries(members):
        bindings = {n: {"addresses": [f"10.1.{n // 250}.{n % 250 + 1}"], "groups": ["tenant"]}
                    for n in range(1, members + 1)}
        return [s for s in plan(bindings, {"tenant": GROUPS["tenant"]}) if s.table == "sg_in"]
    small, large = len(sg_in_entries(10)), len(sg_in_entries(100))
    # per member port: a clause-1 entry, a clause-2 entry (its address), the conj_id entry
    # is shared; plus its cut and deny entries: about 4 per member, so linear
    assert large - small == 90 * 4, (small, large)
    member_entries = [s for s in sg_in_entries(100) if s.owner == security.MEMBERS]
    assert len(member_entries) == 100


def test_a_member_of_two_rules_groups_is_one_entry_with_both_conjunctions():
    groups = {"tenant": GROUPS["tenant"],
              "ssh": [{"direction": "ingress", "protocol": "tcp", "ports": 22,
                       "remote_group": "tenant"}]}
    bindings = {WEB: {"addresses": [IPS[WEB]], "groups": ["tenant", "ssh"]},
                APP: {"addresses": [IPS[APP]], "groups": ["tenant"]}}
    specs = plan(bindings, groups)
    app_member = [s for s in specs if s.table == "sg_in" and s.match.get("ipv4_src") == IPS[APP]]
    assert len(app_member) == 1
    assert {a.conj_id for a in app_member[0].actions} == {1 << 12, 2 << 12}
    assert all(isinstance(a, Conjunction) for a in app_member[0].actions)
    sw = network(bindings, groups)
    assert reached(sw, tcp(APP, WEB, 40000, 22, SYN)) == {WEB}
    assert reached(sw, ping(STRANGER, WEB)) == set()


def test_ipv6_members_are_kept_to_ipv6_rules():
    groups = {"v6": [{"direction": "ingress", "ethertype": "IPv6", "remote_group": "v6"}]}
    bindings = {WEB: {"addresses": [IPS[WEB], "2001:db8::1"], "groups": ["v6"]},
                APP: {"addresses": [IPS[APP], "2001:db8::2"], "groups": ["v6"]}}
    specs = plan(bindings, groups)
    members = [s for s in specs if s.owner == security.MEMBERS]
    assert sorted(s.match.get("ipv6_src") for s in members) == ["2001:db8::1", "2001:db8::2"]
    assert not any(s.match.get("ipv4_src") for s in members)
    for spec in specs:
        pipeline.validate(spec)


@pytest.mark.parametrize("section, message", [
    ({"groups": {"a": [{"direction": "ingress", "remote_group": "nobody"}]}},
     "unknown remote group"),
    ({"groups": {"a": [{"direction": "ingress", "remote_group": "a",
                        "remote": "10.0.0.0/8"}]}}, "not both"),
    ({"groups": {"a": [{"direction": "ingress", "remote_group": "bad name"}]}}, "group name"),
])
def test_a_bad_remote_group_is_refused(section, message):
    with pytest.raises(ValueError, match=message):
        SecuritySettings(**section)


def test_a_group_named_as_a_remote_group_stays_when_its_last_rule_goes():
    from flows.security_model import effective_groups
    stored = {"1": {"group": "db", "direction": "ingress", "protocol": "tcp", "ports": 5432},
              "2": {"group": "web", "direction": "ingress", "remote_group": "db"}}
    assert set(effective_groups({}, stored)) == {"db", "web"}
    stored["1"] = None                                  # db's last rule deleted over REST
    groups = effective_groups({}, stored)
    assert groups["db"] == () and groups["web"][0].remote_group == "db"
