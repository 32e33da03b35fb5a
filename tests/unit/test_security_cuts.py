"""The cut preview (flows/security_cuts.py): conntrack's text read as OVS prints it, and
which connections a change would cut, decided as the flows decide them."""
from hypothesis import given, settings, strategies as st

from flows import security, security_cuts
from flows.security_model import binding_from_dict, groups_from_dict

DUMP = """\
tcp,orig=(src=10.0.0.2,dst=10.0.0.1,sport=40000,dport=80),reply=(src=10.0.0.1,dst=10.0.0.2,sport=80,dport=40000),zone=16385,mark=0x1,protoinfo=(state=ESTABLISHED)
tcp,orig=(src=2001:db8::2,dst=2001:db8::1,sport=40000,dport=22),reply=(src=2001:db8::1,dst=2001:db8::2,sport=22,dport=40000),zone=16385,protoinfo=(state=TIME_WAIT)
icmp,orig=(src=10.0.0.2,dst=10.0.0.1,id=9,type=8,code=0),reply=(src=10.0.0.1,dst=10.0.0.2,id=9,type=0,code=0),zone=16385
udp,orig=(src=10.0.0.2,dst=10.0.0.1,sport=1,dport=2),reply=(src=10.0.0.1,dst=10.0.0.2,sport=2,dport=1)
garbage line
tcp,orig=(src=nope,dst=10.0.0.1,sport=1,dport=2),zone=16385
"""


def test_the_dump_reads_as_ovs_prints_it_in_the_groups_zones_only():
    conns = security_cuts.parse_conntrack(DUMP)
    assert [(c.protocol, c.src, c.dport, c.zone, c.mark, c.state) for c in conns] == [
        ("tcp", "10.0.0.2", 80, 16385, 1, "ESTABLISHED"),
        ("tcp", "2001:db8::2", 22, 16385, 0, "TIME_WAIT"),
        ("icmp", "10.0.0.2", None, 16385, 0, None)]     # zone 0 and bad lines left out
    assert security_cuts.network_of(conns[0]) == 1


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_any_text_reads_without_raising(text):
    for conn in security_cuts.parse_conntrack(text):
        assert security_cuts.network_of(conn) is not None


def test_a_change_cuts_what_it_allowed_before_and_not_after():
    groups = {"ssh": [{"direction": "ingress", "protocol": "tcp", "ports": 22,
                       "ethertype": "IPv6", "remote_group": "admins"}],
              "admins": [], "icmp": [{"direction": "ingress", "protocol": "icmp"}]}
    server = binding_from_dict({"addresses": ["10.0.0.1", "2001:db8::1"],
                                "groups": ["ssh", "icmp"], "network": 1})
    admin = binding_from_dict({"addresses": ["2001:db8::2"], "groups": ["admins"],
                               "network": 1})
    bindings = [server, admin]
    before = groups_from_dict(groups)
    after = groups_from_dict(dict(groups, ssh=[]))
    members = security.group_members(bindings)
    conns = security_cuts.parse_conntrack(DUMP)
    result = security_cuts.preview(conns, bindings, before, after, members, members)
    assert [(c["protocol"], c["dport"]) for c in result["cut"]] == [("tcp", 22)]
    assert (result["already_cut"], result["kept"], result["read"]) == (1, 1, 3)
    # the admin leaving the group cuts the same connection
    gone = security.group_members([server])
    result = security_cuts.preview(conns, bindings, before, before, members, gone)
    assert [(c["protocol"], c["dport"]) for c in result["cut"]] == [("tcp", 22)]
