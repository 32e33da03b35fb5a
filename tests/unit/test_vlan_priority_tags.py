"""Priority-tagged frames (802.1Q with VID 0 and a PCP) on every port kind, on the
table simulator, as OVS 3.1's own port VLANs handle them (ofproto/trace and the
differential test in tests/integration/test_vlan_differential.py):

- access and native ports: such a frame is untagged; it joins the port's VLAN and keeps
  its PCP, which it still has when it leaves a trunk tagged;
- trunks: it is in VLAN 0 (dropped where VLAN 0 is not trunked) and leaves another
  VLAN-0 trunk with its tag if the PCP is nonzero, untagged if it is 0;
- VLAN 0 never leaves a native port (untagged frames there are the native VLAN);
- a tagged frame's PCP crosses the switch unchanged.
"""
import pytest

from ryu.ofproto import ofproto_protocol, ofproto_v1_3 as ofp, ofproto_v1_3_parser as parser

from controller import ofcompile, pipeline
from flows import l2, vlan
from flows.spec import FlowSpec, Match
from flows.vlan import PortVlan
from tests.support.ofsim import Switch, frame, tag_of
from tests.support.l2_reactive import DatapathOnly, ReactiveController

A, B, C = "00:00:00:00:00:0a", "00:00:00:00:00:0b", "00:00:00:00:00:0c"
BCAST = "ff:ff:ff:ff:ff:ff"

ACCESS, TRUNK_ALL, TRUNK_LIST, NATIVE_UNTAGGED, NATIVE_TAGGED, TRUNK_0, NATIVE_ALL = range(1, 8)
PORTS = [
    PortVlan(ACCESS, tag=10),
    PortVlan(TRUNK_ALL),
    PortVlan(TRUNK_LIST, trunks=(10, 20)),
    PortVlan(NATIVE_UNTAGGED, tag=10, trunks=(20,), native_mode="native-untagged"),
    PortVlan(NATIVE_TAGGED, tag=20, trunks=(10,), native_mode="native-tagged"),
    PortVlan(TRUNK_0, trunks=(0, 10)),
    PortVlan(NATIVE_ALL, tag=10, native_mode="native-tagged"),   # trunks every VLAN
]
PCPS = (0, 3, 7)


def plan_switch(mode=None, ports=PORTS):
    """The VLAN app's whole plan (every port configured), with the learning app in
    `mode` or, for None, flooding only."""
    items = pipeline.table_misses() + vlan.switch_plan(ports, [p.port for p in ports])
    if mode is None:
        return Switch([p.port for p in ports]).apply(items)
    settings = l2.L2Settings(mode=mode)
    untagged = vlan.untagged_egress_pairs(ports)
    sw = Switch([p.port for p in ports]).apply(items + l2.switch_defaults(settings, untagged))
    return ReactiveController(sw, settings, untagged) if mode == "reactive" else DatapathOnly(sw)


def seen(sw, pkt):
    """{port: [(VID, PCP) or None as it leaves]}"""
    return {port: [tag_of(p) for p in pkts] for port, pkts in sw.process(pkt).outputs.items()}


def vlan_10_from(port, pcp):
    """Where a frame of VLAN 10 with `pcp` goes from `port` (which must carry it)."""
    everywhere = {ACCESS: [None], TRUNK_ALL: [(10, pcp)], TRUNK_LIST: [(10, pcp)],
                  NATIVE_UNTAGGED: [None], NATIVE_TAGGED: [(10, pcp)], TRUNK_0: [(10, pcp)],
                  NATIVE_ALL: [(10, pcp)]}
    return {p: tags for p, tags in everywhere.items() if p != port}


@pytest.mark.parametrize("pcp", PCPS)
@pytest.mark.parametrize("port", [ACCESS, NATIVE_UNTAGGED, NATIVE_ALL])
def test_priority_tagged_frame_joins_the_port_vlan_and_keeps_its_pcp(port, pcp):
    sw = plan_switch()
    assert seen(sw, frame(port, A, BCAST, vlan=0, pcp=pcp)) == vlan_10_from(port, pcp)


@pytest.mark.parametrize("port", [ACCESS, NATIVE_UNTAGGED, NATIVE_ALL])
def test_untagged_frame_leaves_trunks_with_pcp_0(port):
    assert seen(plan_switch(), frame(port, A, BCAST)) == vlan_10_from(port, 0)


@pytest.mark.parametrize("pcp", PCPS)
def test_priority_tagged_frame_on_native_tagged_port_joins_its_native_vlan(pcp):
    out = seen(plan_switch(), frame(NATIVE_TAGGED, A, BCAST, vlan=0, pcp=pcp))
    assert out == {TRUNK_ALL: [(20, pcp)], TRUNK_LIST: [(20, pcp)],
                   NATIVE_UNTAGGED: [(20, pcp)], NATIVE_ALL: [(20, pcp)]}


@pytest.mark.parametrize("pcp", PCPS)
def test_tagged_frames_keep_their_pcp_across_the_switch(pcp):
    out = seen(plan_switch(), frame(TRUNK_ALL, A, BCAST, vlan=10, pcp=pcp))
    assert out == vlan_10_from(TRUNK_ALL, pcp)


@pytest.mark.parametrize("pcp", PCPS)
@pytest.mark.parametrize("port, other", [(TRUNK_ALL, TRUNK_0), (TRUNK_0, TRUNK_ALL)])
def test_priority_tagged_frame_on_a_trunk_is_vlan_0_tag_kept_unless_pcp_0(port, other, pcp):
    out = seen(plan_switch(), frame(port, A, BCAST, vlan=0, pcp=pcp))
    assert out == {other: [(0, pcp) if pcp else None]}   # never to a native port


def test_untagged_frame_on_a_trunk_stays_untagged():
    assert seen(plan_switch(), frame(TRUNK_ALL, A, BCAST)) == {TRUNK_0: [None]}


@pytest.mark.parametrize("pcp", PCPS)
def test_priority_tagged_frame_on_a_trunk_without_vlan_0_is_dropped(pcp):
    sw = plan_switch()
    assert seen(sw, frame(TRUNK_LIST, A, BCAST, vlan=0, pcp=pcp)) == {}
    assert seen(sw, frame(TRUNK_LIST, A, BCAST)) == {}


@pytest.mark.parametrize("port", [ACCESS, NATIVE_UNTAGGED, NATIVE_TAGGED, NATIVE_ALL])
def test_nonzero_vid_still_dropped_where_it_was(port):
    sw = plan_switch()
    if port == ACCESS:
        assert seen(sw, frame(port, A, BCAST, vlan=10, pcp=3)) == {}
    assert seen(sw, frame(port, A, BCAST, vlan=30, pcp=3)) == ({} if port != NATIVE_ALL else
                                                               {TRUNK_ALL: [(30, 3)]})


def test_vlan_0_is_not_carried_by_native_ports_even_when_they_trunk_it():
    cfg = PortVlan(9, tag=10, trunks=(0, 20), native_mode="native-untagged")
    assert not cfg.carries(0) and not PortVlan(9, tag=10, native_mode="native-tagged").carries(0)
    assert PortVlan(9).carries(0) and PortVlan(9, trunks=(0,)).carries(0)
    assert not PortVlan(9, trunks=(10,)).carries(0)
    assert vlan.members(PORTS)[0] == [(TRUNK_ALL, False), (TRUNK_0, False)]


def test_priority_tag_entry_sets_the_vid_and_outranks_the_tagged_admit():
    entries = vlan.classify_port(PortVlan(NATIVE_ALL, tag=10, native_mode="native-tagged"))
    vid0 = [e for e in entries if e.match == Match.of(in_port=NATIVE_ALL, vlan_vid=0)]
    assert len(vid0) == 1 and [type(a).__name__ for a in vid0[0].actions] == ["SetField"]
    assert vid0[0].priority > max(e.priority for e in entries if e is not vid0[0])
    assert not [e for e in vlan.classify_port(PortVlan(TRUNK_ALL))
                if e.match.get("vlan_vid") == 0]   # a trunk keeps VID 0 as it is


def test_every_spec_fits_the_pipeline_and_pcp_needs_a_tagged_match():
    for spec in vlan.switch_plan(PORTS, [p.port for p in PORTS]):
        pipeline.validate(spec)
    bad = FlowSpec("flood", 10, Match.of(vlan_pcp=3), vlan.FLOOD_OWNER)
    with pytest.raises(pipeline.PipelineError, match="vlan_pcp match needs a vlan_vid"):
        pipeline.validate(bad)


# --- with the learning switch: unicast after learning -------------------------------

@pytest.mark.parametrize("mode", l2.MODES)
@pytest.mark.parametrize("pcp", PCPS)
def test_unicast_from_priority_tagged_access_host_to_a_trunk_keeps_pcp(mode, pcp):
    net = plan_switch(mode)
    net.send(frame(TRUNK_ALL, B, BCAST, vlan=10))          # B behind the all-VLAN trunk
    out = net.send(frame(ACCESS, A, B, vlan=0, pcp=pcp)).outputs
    assert {p: [tag_of(f) for f in fs] for p, fs in out.items()} == {TRUNK_ALL: [(10, pcp)]}
    back = net.send(frame(TRUNK_ALL, B, A, vlan=10, pcp=5)).outputs   # learned from it
    assert {p: [tag_of(f) for f in fs] for p, fs in back.items()} == {ACCESS: [None]}


@pytest.mark.parametrize("mode", l2.MODES)
@pytest.mark.parametrize("pcp", PCPS)
def test_unicast_in_vlan_0_between_trunks_follows_the_pcp(mode, pcp):
    net = plan_switch(mode)
    net.send(frame(TRUNK_0, C, BCAST))                     # C behind the VLAN-0 trunk
    out = net.send(frame(TRUNK_ALL, A, C, vlan=0, pcp=pcp)).outputs
    assert {p: [tag_of(f) for f in fs] for p, fs in out.items()} == \
        {TRUNK_0: [(0, pcp) if pcp else None]}
    out = net.send(frame(TRUNK_ALL, A, C)).outputs        # untagged stays untagged
    assert {p: [tag_of(f) for f in fs] for p, fs in out.items()} == {TRUNK_0: [None]}


def test_forgetting_a_vlan_0_host_removes_both_its_destination_entries():
    sw = Switch([1, 2])
    sw.apply(l2.learn_host(C, 2, 0, 300, untagged_egress=True))
    assert len(sw.flows("l2_dst")) == 2
    sw.apply(l2.forget_host(C, 2, 0))
    assert sw.flows(owner=l2.HOSTS) == []
    assert len(l2.forget_host(C, 2, 101)) == 2   # other VLANs: one entry, as before


def test_routes_towards_a_vlan_0_trunk_follow_the_pcp_too():
    class Fabric:   # one other switch (2) reaches the host's switch (1) through port 4
        def next_hops(self, dpid, mac):
            return {2: 4}
    routes = l2.route_host(Fabric(), C, 0, (1, 3), 300, {1: {(3, 0)}, 2: {(4, 0)}})
    sw = Switch([4, 5]).apply(pipeline.table_misses() + routes[2])
    for pcp, leaves in ((0, None), (6, (0, 6))):
        out = sw.process(frame(5, A, C, vlan=0, pcp=pcp)).outputs
        assert {p: [tag_of(f) for f in fs] for p, fs in out.items()} == {4: [leaves]}
    sw.apply(l2.forget_route(C, 0))
    assert sw.flows(owner=l2.HOSTS) == []


def test_vlan_0_learn_compiles_to_two_learns_one_matching_pcp_0_and_stripping():
    settings = l2.L2Settings(mode="datapath")
    strip = next(s for s in l2.switch_defaults(settings, {(3, 0)})
                 if s.priority == l2.STRIP_PRIORITY)
    msg = ofcompile.flow_mod(ofproto_protocol.ProtocolDesc(ofp.OFP_VERSION), strip)
    msg.serialize()
    plain, pcp_0 = msg.instructions[0].actions
    assert (plain.priority, pcp_0.priority) == (l2.HOST_PRIORITY, l2.VLAN0_UNTAGGED_PRIORITY)
    constant = [(s.src, s.dst, s.n_bits) for s in pcp_0.specs
                if isinstance(s, parser.NXFlowSpecMatch) and not isinstance(s.src, tuple)]
    assert constant == [(0, ("vlan_tci", 13), 3)]     # the TCI's PCP bits are 0
    assert not [s for s in plain.specs if isinstance(s, parser.NXFlowSpecLoad)]


def test_pcp_matches_compile_and_read_back_from_a_switch():
    """The VLAN app compares what a switch reports with its plan."""
    for spec in (vlan.flood_vlan(0, PORTS), l2.learn_host(C, 2, 0, 300, True)[1]):
        msg = ofcompile.flow_mod(ofproto_protocol.ProtocolDesc(ofp.OFP_VERSION), spec)
        msg.serialize()
        assert msg.match["vlan_pcp"] == 0 and msg.match["vlan_vid"] == ofp.OFPVID_PRESENT
        assert ofcompile.decode_match(msg.match) == spec.match
