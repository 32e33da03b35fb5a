"""bench/instant_controller.py (the OVS-side limit in bench/ovs_packet_ins.py) packs its
answers with struct: they must be byte for byte what Ryu itself would send."""
import struct

from ryu.ofproto import ofproto_v1_3 as ofp, ofproto_v1_3_parser as parser

from bench import instant_controller as ic
from tests.support.packets import oxm, packet_in
from tests.support.wire import DP

SRC = "02:cb:00:00:00:2a"
FRAME = bytes.fromhex("02dd00000001" + SRC.replace(":", "") + "88b5") + bytes(46)


def ryu_bytes(message):
    message.serialize()
    return bytes(message.buf)


def split(buf):
    out = []
    while buf:
        length = struct.unpack_from("!H", buf, 2)[0]
        out.append(buf[:length])
        buf = buf[length:]
    return out


def test_answer_is_two_learning_flow_mods_and_a_flood_packet_out():
    for oxms in (oxm(0, 7, 4), oxm(0, 7, 4) + oxm(2, 99, 8)):   # in_port first, or more
        message = packet_in(oxms, FRAME, table_id=0)
        learn, known, flood = split(ic.answer(message[8:]))
        assert learn == ryu_bytes(parser.OFPFlowMod(
            DP, table_id=ic.LEARN_TABLE, priority=100, match=parser.OFPMatch(eth_dst=SRC),
            instructions=[parser.OFPInstructionActions(
                ofp.OFPIT_APPLY_ACTIONS, [parser.OFPActionOutput(7, 0xFFFF)])]))
        assert known == ryu_bytes(parser.OFPFlowMod(
            DP, table_id=ic.SOURCE_TABLE, priority=100,
            match=parser.OFPMatch(in_port=7, eth_src=SRC),
            instructions=[parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, [])]))
        assert flood == ryu_bytes(parser.OFPPacketOut(
            DP, buffer_id=ofp.OFP_NO_BUFFER, in_port=7,
            actions=[parser.OFPActionOutput(ofp.OFPP_FLOOD, 0xFFFF)], data=FRAME))


def test_table_miss_sends_whole_frames_to_the_controller():
    assert ic.table_miss() == ryu_bytes(parser.OFPFlowMod(
        DP, table_id=0, priority=0, match=parser.OFPMatch(),
        instructions=[parser.OFPInstructionActions(
            ofp.OFPIT_APPLY_ACTIONS, [parser.OFPActionOutput(ofp.OFPP_CONTROLLER, 0xFFFF)])]))
