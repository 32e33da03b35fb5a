"""controller/roles.py: OVS's role status saying "slave" while this node is still
becoming master (its MASTER reply in, its barrier not yet answered) stops the
take-over: the node does not go on to write as a master the switch refuses."""
import struct
from types import SimpleNamespace

from ryu.controller.handler import MAIN_DISPATCHER
from ryu.lib import hub
from ryu.ofproto import ofproto_common
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser

from controller import roles
from tests.support.fake_elector import FakeElector


class Datapath:
    def __init__(self):
        self.id, self.state, self.xid = 1, MAIN_DISPATCHER, 100
        self.ofproto, self.ofproto_parser = ofp, parser

    def set_xid(self, msg):
        self.xid += 1
        msg.set_xid(self.xid)


def test_a_role_status_slave_while_becoming_master_stops_the_take_over():
    sent, elector, datapath = [], FakeElector(), Datapath()
    node = roles.Roles(elector, lambda dp, messages: sent.extend(messages))
    node.connected(datapath)
    elector.win(1, 5)
    hub.sleep(0.01)                                   # MASTER asked, waiting
    request = [m for m in sent if isinstance(m, parser.OFPRoleRequest)][-1]
    reply = parser.OFPRoleReply(datapath, ofp.OFPCR_ROLE_MASTER, 5)
    reply.xid = request.xid
    node.role_reply(reply)
    hub.sleep(0.01)                                   # the barrier asked, waiting
    node.role_status(SimpleNamespace(   # another node's MASTER landed: we are slave
        datapath=datapath, experimenter=ofproto_common.ONF_EXPERIMENTER_ID,
        exp_type=roles.ONFT_ROLE_STATUS,
        data=struct.pack("!IB3xQ", ofp.OFPCR_ROLE_SLAVE, 0, 6)))
    barrier = [m for m in sent if isinstance(m, parser.OFPBarrierRequest)][-1]
    node.barrier_reply(SimpleNamespace(datapath=datapath, xid=barrier.xid))
    hub.sleep(0.01)
    described = node.describe(1)
    assert not described["may_write"] and described["role"] == "slave", described
    assert not node.may_write(1)
