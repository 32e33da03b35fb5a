"""controller/ofwire.py packs flow-mods byte for byte as Ryu's parser does."""
import pytest
from ryu.ofproto import ofproto_v1_3_parser as parser

from controller import ofcompile
from flows import l2, lb, topology, vlan
from flows.spec import (CONTROLLER, FLOOD, TAGGED, UNTAGGED, FlowSpec, Match, Output, Owner,
                        PopVlan, PushVlan, SetField)
from tests.support.wire import DP

OWNER = Owner("l2_switch", "host")


def specs():
    settings = l2.L2Settings(mode="reactive")
    yield from l2.switch_defaults(settings)
    yield from l2.learn_host("02:00:00:00:00:01", 3, None, 300)
    yield from l2.learn_host("02:00:00:00:00:02", 7, 101, 60, untagged_egress=True)
    ports = [vlan.PortVlan(1, tag=10), vlan.PortVlan(2, trunks=(10, 20)), vlan.trunk_all(3)]
    yield from vlan.switch_plan(ports, [1, 2], flood_only=[20])
    fabric = topology.build({1, 2}, [topology.Link((1, 1), (2, 1))], [(1, 2), (2, 2)])
    yield from topology.flood_guard(fabric, 1)
    yield FlowSpec("l2_dst", 100, Match.of(eth_dst=("01:00:00:00:00:00", "01:00:00:00:00:00"),
                                         vlan_vid=TAGGED), OWNER, actions=(Output(FLOOD),))
    yield FlowSpec("l2_dst", 100, Match.of(vlan_vid=UNTAGGED, eth_type=0x0806), OWNER,
                   actions=(PushVlan(), SetField("vlan_vid", 4094), Output(CONTROLLER, 200),
                            PopVlan(), Output(4)), hard_timeout=9)


def ryu_bytes(message, xid=77):
    message.xid = xid
    message.serialize()
    return bytes(message.buf)


@pytest.mark.parametrize("spec", list(specs()), ids=lambda s: f"{s.table}/{s.priority}")
def test_encoded_flow_mods_are_byte_identical_to_ryus(spec):
    fast = ofcompile.flow_mod(DP, spec)
    assert isinstance(fast, ofcompile._EncodedFlowMod)
    assert ryu_bytes(fast) == ryu_bytes(ofcompile.ryu_flow_mod(DP, spec))
    # and it reads back like one: the match is built on demand
    assert fast.match.to_jsondict() == ofcompile.ryu_flow_mod(DP, spec).match.to_jsondict()


def test_specs_it_cannot_pack_go_through_ryu():
    to_controller, arp_answer = lb.probe_flows("10.0.0.254")
    assert type(ofcompile.flow_mod(DP, arp_answer)) is parser.OFPFlowMod  # ARP match, Move
    assert isinstance(ofcompile.flow_mod(DP, to_controller), ofcompile._EncodedFlowMod)
