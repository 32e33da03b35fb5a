"""The trace across the fabric (controller/trace.py) and the reading of ofproto/trace and
dpif/show (controller/ovs_trace.py), on the text OVS prints, with a fake ovs-appctl."""
import pytest

from controller import ovs_trace, pipeline, trace
from flows.spec import Owner

VLAN_COOKIE = pipeline.cookie(Owner("vlan", "default"))

# What OVS 3.1 printed for a frame from an access port of VLAN 10 out of a trunk.
ONE_PASS = f"""Flow: in_port=1,vlan_tci=0x0000,dl_src=00:00:00:00:00:01,dl_dst=00:00:00:00:00:02,dl

bridge("s1")
------------
 0. in_port=1, priority 100, cookie 0x{VLAN_COOKIE:x}
    push_vlan:0x8100
    set_field:4106->vlan_vid
    goto_table:1
 1. priority 0
    output:3
    pop_vlan
    output:2

Final flow: unchanged
Megaflow: recirc_id=0,eth,in_port=1,dl_type=0x0000
Datapath actions: push_vlan(vid=10,pcp=0),4,pop_vlan,3
"""

MISS = """Flow: in_port=2,vlan_tci=0x0000,dl_src=00:00:00:00:00:01,dl_dst=00:00:00:00:00:02,dl_type

bridge("s1")
------------
 0. No match.
    drop

Final flow: unchanged
Megaflow: recirc_id=0,eth,in_port=2,dl_type=0x0000
Datapath actions: drop
"""

RECIRCULATED = """Flow: tcp,in_port=1,vlan_tci=0x0000,dl_src=00:00:00:00:00:01,dl_dst=00:00:00:00:0

bridge("s1")
------------
 0. tcp,nw_dst=10.0.0.100, priority 200, cookie 0x5
    ct(table=1,zone=7,nat)
    nat
     -> A clone of the packet is forked to recirculate. (resumed at table 1)
     -> Sets the packet to an untracked state, and clears all the conntrack fields.

Final flow: unchanged
Megaflow: recirc_id=0,eth,tcp,in_port=1,nw_dst=10.0.0.100,nw_frag=no
Datapath actions: ct(zone=7,nat),recirc(0x1)

===============================================================================
recirc(0x1) - resume conntrack with default ct_state=trk|new (use --ct-next to customize)
===============================================================================

Flow: recirc_id=0x1,ct_state=new|trk,ct_zone=7,eth,tcp,in_port=1,nw_dst=10.0.0.100,tp_dst=80

bridge("s1")
------------
    thaw
        Resuming from table 1
 1. ct_state=+new+trk, priority 100
    set_field:10.0.0.5->ip_dst
    set_field:00:00:00:00:00:05->eth_dst
    output:5

Final flow: unchanged
Megaflow: recirc_id=0x1,ct_state=+new+trk,eth,tcp,in_port=1,nw_frag=no
Datapath actions: set(eth(dst=00:00:00:00:00:05)),set(ipv4(dst=10.0.0.5)),set(tcp(dst=8080)),6
"""

DPIF = """netdev@ovs-netdev: hit:12 missed:4
  s1:
    s1 65534/1: (tap)
    s1-eth1 1/2: (system)
    s1-eth2 2/3: (system)
    s1-eth3 3/4: (system)
    patch-x 9/none: (patch: peer=patch-y)
  s2:
    s2 65534/5: (tap)
    s2-eth1 1/6: (system)
    s2-eth2 2/7: (system)
"""


def test_a_trace_reads_as_rules_named_by_their_app_and_its_datapath_actions():
    read = ovs_trace.parse_trace(ONE_PASS)
    first, second = read.rules
    assert (first.bridge, first.table, first.match, first.priority) == ("s1", 0, "in_port=1", 100)
    assert first.owner == "vlan/default" and first.actions[:2] == ["push_vlan:0x8100",
                                                                 "set_field:4106->vlan_vid"]
    assert (second.match, second.priority, second.owner) == ("", 0, pipeline.NOT_OURS)
    assert second.actions == ["output:3", "pop_vlan", "output:2"]
    assert read.datapath_actions == ["push_vlan(vid=10,pcp=0)", "4", "pop_vlan", "3"]
    assert read.passes == 1


def test_a_table_miss_is_a_rule_of_its_own_and_drop_is_no_action():
    read = ovs_trace.parse_trace(MISS)
    assert [(r.table, r.match, r.owner) for r in read.rules] == [(0, None, "table miss")]
    assert read.datapath_actions == []


def test_every_pass_after_a_recirculation_counts_without_the_conntrack_steps():
    read = ovs_trace.parse_trace(RECIRCULATED)
    assert read.passes == 2
    assert [r.table for r in read.rules] == [0, 1]
    assert read.datapath_actions == ["set(eth(dst=00:00:00:00:00:05))", "set(ipv4(dst=10.0.0.5))",
                                     "set(tcp(dst=8080))", "6"]
    # the actions under a rule are kept with it (OVS's "->" comments on them are not
    # actions), the thaw lines are not a rule
    assert read.rules[0].actions == ["ct(table=1,zone=7,nat)", "nat"]


def test_the_fate_carries_each_rewrite_to_the_outputs_after_it():
    packet = {"dl_src": "00:00:00:00:00:01", "dl_dst": "00:00:00:00:00:02", "proto": "tcp",
              "nw_dst": "10.0.0.100", "tp_dst": 80}
    fate = ovs_trace.fate(["push_vlan(tpid=0x8100,vid=10,pcp=0)", "4", "pop_vlan",
                           "set(eth(dst=00:00:00:00:00:05))", "set(ipv4(dst=10.0.0.5))",
                           "set(tcp(dst=8080))", "3"], packet)
    tagged, rewritten = fate.outputs
    assert (tagged.dp_port, tagged.fields["dl_vlan"], tagged.fields["nw_dst"]) == (4, 10,
                                                                                   "10.0.0.100")
    assert rewritten.dp_port == 3 and "dl_vlan" not in rewritten.fields
    assert (rewritten.fields["dl_dst"], rewritten.fields["nw_dst"], rewritten.fields["tp_dst"]) \
        == ("00:00:00:00:00:05", "10.0.0.5", 8080)
    assert packet["nw_dst"] == "10.0.0.100"   # the caller's packet is left as it was


def test_what_the_fate_does_not_follow_is_listed_not_guessed():
    fate = ovs_trace.fate(["set(ipv4(src=10.0.0.0/255.255.255.0))", "tnl_push(tnl_port(4))",
                           "userspace(pid=0,controller(reason=1,dont_send=0))", "\u0663"],
                          {"dl_src": "a", "dl_dst": "b"})
    assert fate.outputs == [] and fate.to_controller
    assert fate.others == ["set(ipv4(src=10.0.0.0/255.255.255.0))", "tnl_push(tnl_port(4))",
                           "\u0663"]


def test_actions_split_on_top_level_commas_only():
    assert ovs_trace.split_actions("a,b(c,d(e,f)),g") == ["a", "b(c,d(e,f))", "g"]
    assert ovs_trace.split_actions("") == []


def test_dpif_show_maps_datapath_ports_back_to_bridge_and_openflow_port():
    ports = ovs_trace.datapath_ports(DPIF)
    assert ports[4] == ovs_trace.DpPort("s1", 3, "s1-eth3")
    assert ports[6] == ovs_trace.DpPort("s2", 1, "s2-eth1")
    assert all(p.name != "patch-x" for p in ports.values())   # no datapath port of its own


# --- requests ---------------------------------------------------------------------

GOOD = {"switch": "s1", "in_port": 1, "dl_src": "00:00:00:00:00:01",
        "dl_dst": "00:00:00:00:00:02"}


def test_a_request_is_a_packet_in_ofproto_trace_syntax_with_the_protocol_first():
    request = trace.request_from(dict(GOOD, proto="tcp", nw_src="10.0.0.1", nw_dst="10.0.0.2",
                                      tp_dst=80, dl_vlan=10, in_port="2"))
    assert request.in_port == 2
    assert trace.flow_text(2, dict(request.fields)) == (
        "tcp,in_port=2,dl_src=00:00:00:00:00:01,dl_dst=00:00:00:00:00:02,dl_vlan=10,"
        "nw_src=10.0.0.1,nw_dst=10.0.0.2,nw_ttl=64,tcp_dst=80")
    arp = trace.request_from(dict(GOOD, proto="arp", nw_src="10.0.0.1", nw_dst="10.0.0.2"))
    assert trace.flow_text(1, dict(arp.fields)).endswith(
        "arp_sha=00:00:00:00:00:01,arp_op=1,arp_spa=10.0.0.1,arp_tpa=10.0.0.2")
    icmp = trace.request_from(dict(GOOD, proto="icmp"))
    assert trace.flow_text(1, dict(icmp.fields)).endswith("icmp_type=8,icmp_code=0")
    assert trace.request_from(dict(GOOD, in_port="s1-eth1")).in_port == "s1-eth1"


def test_an_ipv6_request_is_traced_in_ovs_ipv6_words():
    tcp6 = trace.request_from(dict(GOOD, proto="tcp", nw_src="fd00:10::2",
                                   nw_dst="FD00:20:0::2", tp_dst=80))
    assert trace.flow_text(1, dict(tcp6.fields)) == (
        "tcp6,in_port=1,dl_src=00:00:00:00:00:01,dl_dst=00:00:00:00:00:02,"
        "ipv6_src=fd00:10::2,ipv6_dst=fd00:20::2,nw_ttl=64,tcp_dst=80")
    ping6 = trace.request_from(dict(GOOD, proto="icmp", nw_dst="fd00:20::2"))
    assert trace.flow_text(1, dict(ping6.fields)).startswith("icmp6,") and \
        trace.flow_text(1, dict(ping6.fields)).endswith("icmpv6_type=128,icmpv6_code=0")
    for bad in ({"proto": "ip", "nw_src": "10.0.0.1", "nw_dst": "fd00::1"},
                {"proto": "arp", "nw_dst": "fd00::1"}):
        with pytest.raises(trace.TraceError) as raised:
            trace.request_from(dict(GOOD, **bad))
        assert raised.value.status == 400
    # a routed hop's datapath set(ipv6(...)) carries on to the next switch's trace
    fields = {"dl_src": "00:00:00:00:00:01", "dl_dst": "02:00:00:00:fe:01",
              "nw_src": "fd00:10::2", "nw_dst": "fd00:20::2"}
    hop = ovs_trace.fate(["set(ipv6(src=fd00:99::1,hlimit=63))", "2"], fields).outputs[0]
    assert (hop.fields["nw_src"], hop.fields["nw_ttl"]) == ("fd00:99::1", 63)
    assert "nw_ttl=63" in trace.flow_text(2, dict(hop.fields, proto="udp"))


@pytest.mark.parametrize("change", [
    {"in_port": 0}, {"in_port": True}, {"in_port": "\u0663"}, {"in_port": "9" * 400},
    {"in_port": "a b"}, {"in_port": 1.5}, {"in_port": None}, {"dl_src": "0x:00:00:00:00:01"},
    {"dl_src": "00_00_00_00_00_01"}, {"dl_dst": 5}, {"dl_vlan": 4096}, {"dl_vlan": "10"},
    {"proto": "sctp"}, {"nw_dst": "10.0.0.1"}, {"proto": "ip", "nw_dst": 167772161},
    {"proto": "ip", "nw_dst": True}, {"proto": "ip", "nw_dst": "10.0.0.256"},
    {"proto": "icmp", "tp_dst": 80}, {"proto": "tcp", "tp_dst": 70000},
    {"proto": "tcp", "tp_dst": False}, {"switch": True}, {"switch": [1]}, {"extra": 1},
])
def test_a_bad_request_is_a_400_that_says_which_field(change):
    body = {k: v for k, v in dict(GOOD, **change).items()}
    with pytest.raises(trace.TraceError) as raised:
        trace.request_from(body)
    assert raised.value.status == 400
    named = [k for k in change if k != "proto"] or list(change)
    assert any(k in raised.value.message for k in named), raised.value.message


def test_a_body_that_is_not_an_object_is_a_400():
    for body in ([], "x", 1, None):
        with pytest.raises(trace.TraceError):
            trace.request_from(body)


# --- following a packet across switches, with a fake ovs-appctl -------------------

def _fields(flow):
    parts = flow.split(",")
    fields = dict(p.split("=", 1) for p in parts if "=" in p)
    return fields


class FakeOvs:
    """Two switches, s1 port 3 linked to s2 port 1. `forwarding` decides each
    switch's datapath actions from the flow ofproto/trace gets."""

    def __init__(self, forwarding, dpif=DPIF):
        self.forwarding, self.dpif, self.calls = forwarding, dpif, []

    def __call__(self, args):
        self.calls.append(args)
        if args == ["dpif/show"]:
            return 0, self.dpif
        _, bridge, flow = args
        actions = self.forwarding(bridge, _fields(flow))
        if actions is None:
            return 2, f'no bridge named {bridge}'
        return 0, (f'Flow: {flow}\n\nbridge("{bridge}")\n----\n 0. priority 1, cookie 0x'
                   f'{VLAN_COOKIE:x}\n    NORMAL\n\nFinal flow: unchanged\n'
                   f'Datapath actions: {actions}\n')


NAMES = {1: "s1", 2: "s2"}
LINKS = {(1, 3): (2, 1), (2, 1): (1, 3)}


def _tracer(fake, links=LINKS, names=NAMES):
    by_name = {v: k for k, v in names.items()}
    return trace.Tracer(names.get, by_name.get, links, appctl=fake)


def test_a_tagged_frame_crosses_the_link_and_arrives_tagged_at_the_far_switch():
    def forwarding(bridge, fields):
        if bridge == "s1":
            return "push_vlan(vid=10,pcp=0),4"           # s1-eth3, the trunk
        return "pop_vlan,7" if fields.get("dl_vlan") == "10" else "drop"   # s2-eth2
    fake = FakeOvs(forwarding)
    result = _tracer(fake).run(1, trace.request_from(GOOD))
    first, second = result["hops"]
    assert (first["name"], first["in_port"], first["rules"][0]["owner"]) == ("s1", 1,
                                                                           "vlan/default")
    assert first["rules"][0]["table_name"] == "ingress"
    assert first["outputs"] == [{"dpid": "0000000000000001", "bridge": "s1", "port": 3,
                                 "name": "s1-eth3", "vlan": 10,
                                 "to": {"dpid": "0000000000000002", "port": 1}}]
    assert (second["name"], second["in_port"]) == ("s2", 1) and "dl_vlan=10" in second["flow"]
    assert [(d["bridge"], d["port"], d["vlan"]) for d in result["delivered"]] == [("s2", 2, None)]
    assert result["packet"].startswith("in_port=1,") and not result["truncated"]


def test_a_flood_that_comes_back_ends_and_says_the_switch_was_reached_again():
    fake = FakeOvs(lambda bridge, fields: "2,3,4" if bridge == "s1" else "6,7")
    result = _tracer(fake).run(1, trace.request_from(GOOD))
    assert [(h["name"], h["in_port"], h["revisit"]) for h in result["hops"]] == [
        ("s1", 1, False), ("s2", 1, False), ("s1", 3, True)]
    assert len(fake.calls) == 4   # dpif/show and three traces: each state once
    # the fake floods out of the in-port too; each pass over s1 delivers at its ports 1, 2
    assert sorted((d["bridge"], d["port"]) for d in result["delivered"]) == [
        ("s1", 1), ("s1", 1), ("s1", 2), ("s1", 2), ("s2", 2)]


def test_a_long_chain_stops_at_max_hops_and_says_so():
    # a line of 100 switches, each forwarding out of its port 2 to the next one's port 1
    count = 100
    names = {n: f"b{n}" for n in range(1, count + 1)}
    dpif = "netdev@ovs-netdev: hit:0 missed:0\n" + "".join(
        f"  b{n}:\n    b{n}-eth1 1/{2 * n}: (system)\n    b{n}-eth2 2/{2 * n + 1}: (system)\n"
        for n in names)
    links = {}
    for n in range(1, count):
        links[(n, 2)], links[(n + 1, 1)] = (n + 1, 1), (n, 2)
    fake = FakeOvs(lambda bridge, fields: str(2 * int(bridge[1:]) + 1), dpif)
    result = _tracer(fake, links, names).run(1, trace.request_from(dict(GOOD, switch="b1")))
    assert len(result["hops"]) == trace.MAX_HOPS and result["truncated"]


def test_a_port_is_found_by_name_and_a_missing_one_is_a_404():
    fake = FakeOvs(lambda bridge, fields: "drop")
    result = _tracer(fake).run(1, trace.request_from(dict(GOOD, in_port="s1-eth2")))
    assert result["in_port"] == 2 and result["hops"][0]["dropped"]
    for port in (7, "s2-eth1"):   # s2's port, not s1's
        with pytest.raises(trace.TraceError) as raised:
            _tracer(fake).run(1, trace.request_from(dict(GOOD, in_port=port)))
        assert raised.value.status == 404


def test_no_ovs_to_ask_is_a_503_and_a_switch_ovs_does_not_know_is_a_hop_error():
    def broken(args):
        return 1, "ovs-vswitchd: no such file"
    with pytest.raises(trace.TraceError) as raised:
        _tracer(broken).run(1, trace.request_from(GOOD))
    assert raised.value.status == 503
    fake = FakeOvs(lambda bridge, fields: "4" if bridge == "s1" else None)
    result = _tracer(fake).run(1, trace.request_from(GOOD))
    assert "no bridge named s2" in result["hops"][1]["error"]
    with pytest.raises(trace.TraceError) as raised:
        _tracer(fake).run(9, trace.request_from(GOOD))
    assert raised.value.status == 404


def test_link_ends_know_both_directions():
    class Link:
        def __init__(self, a, b):
            self.a, self.b = a, b
    assert trace.link_ends([Link((1, 3), (2, 1))]) == LINKS


def test_a_bridge_name_that_could_be_an_option_is_not_passed_to_ovs_appctl():
    fake = FakeOvs(lambda bridge, fields: "4")
    names = {1: "s1", 2: "--help"}
    result = _tracer(fake, names=names).run(1, trace.request_from(GOOD))
    assert "not a plain name" in result["hops"][1]["error"]
    assert all("--help" not in call for call in fake.calls)


def test_a_live_connection_in_a_zone_on_the_path_is_shown_with_its_mark():
    dump = ("tcp,orig=(src=10.0.0.1,dst=10.0.0.2,sport=40000,dport=80),reply=(src=10.0.0.2,"
            "dst=10.0.0.1,sport=80,dport=40000),zone=16384,mark=1,protoinfo=(state=ESTABLISHED)\n"
            "tcp,orig=(src=10.0.0.1,dst=10.0.0.2,sport=40000,dport=80),reply=(src=10.0.0.2,"
            "dst=10.0.0.1,sport=80,dport=40000),zone=9\n"            # a zone not on the path
            "udp,orig=(src=10.0.0.1,dst=10.0.0.2,sport=40000,dport=80),zone=16384\n")

    class WithConntrack(FakeOvs):
        def __call__(self, args):
            if args == ["dpctl/dump-conntrack"]:
                self.calls.append(args)
                return 0, dump
            if args[0] == "ofproto/trace":
                self.calls.append(args)
                return 0, (f'Flow: {args[2]}\n\nbridge("s1")\n----\n 0. priority 1, '
                           f'cookie 0x{VLAN_COOKIE:x}\n    ct(table=3,zone=16384)\n\n'
                           f'Final flow: unchanged\nDatapath actions: 3\n')
            return super().__call__(args)
    request = trace.request_from(dict(GOOD, proto="tcp", nw_src="10.0.0.1", nw_dst="10.0.0.2",
                                      tp_src=40000, tp_dst=80))
    result = _tracer(WithConntrack(lambda b, f: "3")).run(1, request)
    assert [(c["zone"], c["mark"], c["state"], c["direction"]) for c in result["conntrack"]] \
        == [(16384, 1, "ESTABLISHED", "original")]
    assert result["conntrack_error"] is None
    # the other way round is the reply direction of the same entry
    back = trace.request_from(dict(GOOD, proto="tcp", nw_src="10.0.0.2", nw_dst="10.0.0.1",
                                   tp_src=80, tp_dst=40000))
    assert [c["direction"] for c in _tracer(WithConntrack(lambda b, f: "3")).run(
        1, back)["conntrack"]] == ["reply"]
    # IPv6: conntrack names ICMPv6 "icmpv6"; the addresses compare as addresses
    dump = ("icmpv6,orig=(src=fd00:10::2,dst=fd00:20::2,id=7,type=128,code=0),reply=("
            "src=fd00:20::2,dst=fd00:10::2,id=7,type=129,code=0),zone=16384\n")
    ping6 = trace.request_from(dict(GOOD, proto="icmp", nw_src="fd00:10::2",
                                    nw_dst="fd00:20::2"))
    assert [c["protocol"] for c in _tracer(WithConntrack(lambda b, f: "3")).run(
        1, ping6)["conntrack"]] == ["icmpv6"]
    # no zone on the path or no addresses: conntrack is not asked
    fake = FakeOvs(lambda b, f: "3")
    assert _tracer(fake).run(1, request)["conntrack"] == []
    assert ["dpctl/dump-conntrack"] not in fake.calls
