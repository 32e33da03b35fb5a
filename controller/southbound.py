"""The one place that sends messages to switches.

Apps hand over specs; this compiles and sends them, confirms with a barrier, and
does request/reply through Ryu's own ofctl service (`ryu.app.ofctl.api`), which
matches replies to requests by xid.
"""
import logging
import sys

from ryu.app.ofctl import api as ofctl_api
from ryu.base import app_manager
from ryu.controller import ofp_event
from ryu.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser

from controller import ofcompile

LOG = logging.getLogger(__name__)
OFP_ERROR_MARK = "OpenFlow error from switch"  # tests grep logs for this
_OFCTL_SERVICE = "ryu.app.ofctl.service"


def push(datapath, items, barrier=True):
    """Send specs/deletes in order; a barrier makes the switch finish them first."""
    for message in ofcompile.compile_all(datapath, items):
        datapath.send_msg(message)
    if barrier:
        datapath.send_msg(ofcompile.barrier(datapath))


def send(datapath, message):
    datapath.send_msg(message)


def request_flows(app, datapath, owner, table=None):
    """Flow-stats entries owned by `owner`, as FlowSpecs paired with their stats."""
    replies = ofctl_api.send_msg(app, ofcompile.flow_stats_request(datapath, owner, table),
                                 reply_cls=parser.OFPFlowStatsReply, reply_multi=True)
    return [(ofcompile.decode_flow(stat), stat) for reply in replies or () for stat in reply.body]


class SdnApp(app_manager.RyuApp):
    """Base of our apps: OpenFlow 1.3 only, and switch errors are never silent."""
    OFP_VERSIONS = [ofp.OFP_VERSION]

    def __init_subclass__(cls, **kwargs):
        # request_flows() relies on Ryu's ofctl service. ryu-manager loads the services
        # listed in `_REQUIRED_APP` of the module defining each app class (require_app()
        # would mark this module instead), so declare it there.
        super().__init_subclass__(**kwargs)
        required = vars(sys.modules[cls.__module__]).setdefault("_REQUIRED_APP", [])
        if _OFCTL_SERVICE not in required:
            required.append(_OFCTL_SERVICE)

    @set_ev_cls(ofp_event.EventOFPErrorMsg, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _log_switch_error(self, ev):
        msg = ev.msg
        self.logger.error("%s %016x: type=0x%x code=0x%x xid=%s data=%s", OFP_ERROR_MARK,
                          msg.datapath.id or 0, msg.type, msg.code, msg.xid, msg.data[:64].hex())
