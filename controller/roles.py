"""The OpenFlow role protocol, per switch, for a node of a controller cluster: which
switches this node may write to (docs/cluster-roles.md).

Open vSwitch connects to every controller target of a bridge at once, and every new
connection is EQUAL (it may write). So a cluster node, when a switch connects:
sends ROLE_REQUEST SLAVE before any app writes (OVS then refuses it FLOW_MOD,
GROUP_MOD, PACKET_OUT), and contends for the switch with the elector
(controller/mastership.py). On a win it sends ROLE_REQUEST MASTER with the win's
generation_id, waits for the ROLE_REPLY and then a barrier, and only then lets the
apps write and has each converge the switch: writes sent before the reply could be
refused and lost (ONOS-2885). On a loss, or when the switch refuses it (a STALE
generation, OFPBRC_IS_SLAVE: another node took over while this one was paused), it
stops writing at once and does not fight: it stands in line again, and a win with a
generation no newer than the refused one is not tried.

With a single-node elector none of this runs: nothing is sent, every write may go
(OVS's default EQUAL), as before clusters existed.
"""
import collections
import logging
import struct
import time

from ryu.controller.handler import DEAD_DISPATCHER, MAIN_DISPATCHER
from ryu.lib import hub
from ryu.ofproto import ofproto_common
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as ofp_parser

from flows.dpid import format as format_dpid

LOG = logging.getLogger(__name__)
ROLE_MARK = "OpenFlow role"   # the log's word for expected role refusals (not errors)
MASTER, TAKING, SLAVE = "master", "becoming master", "slave"
# OVS tells an OpenFlow 1.3 master it was demoted with the ONF extension's role status
# (OpenFlow 1.4's ROLE_STATUS): struct onf_role_status {be32 role; u8 reason; pad[3];
# be64 generation_id}
ONFT_ROLE_STATUS = 1911
SWITCH_ROLES = {ofp.OFPCR_ROLE_EQUAL: "equal", ofp.OFPCR_ROLE_MASTER: "master",
                ofp.OFPCR_ROLE_SLAVE: "slave", ofp.OFPCR_ROLE_NOCHANGE: "nochange"}


def is_role_error(msg) -> bool:
    return msg.type == ofp.OFPET_ROLE_REQUEST_FAILED or (
        msg.type == ofp.OFPET_BAD_REQUEST and msg.code == ofp.OFPBRC_IS_SLAVE)


class _Switch:
    """This node's role on one connection of a switch."""

    def __init__(self, datapath):
        self.datapath = datapath
        self.role, self.writable = SLAVE, False
        self.generation = None      # of the win being taken or held
        self.refused_at = -1        # newest generation the switch refused us at
        self.switch_role = None     # what the switch's last ROLE_REPLY said
        self.term = 0               # bumped on every change: a stale take-over stops


class Roles:
    REPLY_TIMEOUT_S = 5.0
    READY_TIMEOUT_S = 10.0

    def __init__(self, elector, send):
        """`send(datapath, messages)`: the runtime's raw sender (role requests and our
        barriers are the protocol's own, not app writes)."""
        self.elector, self._send = elector, send
        self.clustered = elector.CLUSTERED
        self._switches = {}                              # dpid -> _Switch
        self._waiting = {}                               # xid -> [event, reply]
        self._errors_seen = collections.deque(maxlen=256)  # one error, one step down
        self._listeners = []
        elector.start(self._won, self._lost)

    def listen(self, on_master) -> None:
        """on_master(datapath): this node has just become the switch's master."""
        self._listeners.append(on_master)

    def may_write(self, dpid) -> bool:
        if not self.clustered:
            return True
        switch = self._switches.get(dpid)
        return switch is not None and switch.writable

    # --- connections -----------------------------------------------------------------

    def connected(self, datapath) -> None:
        """A switch's features arrived (once per connection counts)."""
        if not self.clustered:
            return
        switch = self._switches.get(datapath.id)
        if switch is not None and switch.datapath is datapath:
            return
        if switch is not None:
            switch.term += 1
        self._switches[datapath.id] = _Switch(datapath)
        self._request(datapath, ofp.OFPCR_ROLE_SLAVE, self.elector.generation(datapath.id))
        self.elector.contend(datapath.id)

    def gone(self, datapath) -> None:
        switch = self._switches.get(datapath.id)
        if switch is not None and switch.datapath is datapath:
            switch.term += 1
            del self._switches[datapath.id]
            self.elector.release(datapath.id)

    # --- the elector's decisions -------------------------------------------------------

    def _won(self, dpid, generation):
        switch = self._switches.get(dpid)
        if switch is None:
            return   # not connected to this node (any more)
        if generation <= switch.refused_at:
            LOG.warning("%s: switch %s: not taking it at generation %s, it refused us at %s",
                        ROLE_MARK, format_dpid(dpid), generation, switch.refused_at)
            return
        switch.term += 1
        switch.role, switch.writable, switch.generation = TAKING, False, generation
        hub.spawn(self._take, switch, switch.term)

    def _lost(self, dpid):
        switch = self._switches.get(dpid)
        if switch is None:
            return
        switch.term += 1
        was = switch.role
        switch.role, switch.writable = SLAVE, False
        LOG.warning("%s: switch %s: lost mastership (was %s): not writing", ROLE_MARK,
                    format_dpid(dpid), was)
        self._request(switch.datapath, ofp.OFPCR_ROLE_SLAVE, self.elector.generation(dpid))

    def _take(self, switch, term):
        datapath, generation = switch.datapath, switch.generation
        if not _wait_ready(datapath, self.READY_TIMEOUT_S):
            return
        reply = self._ask(datapath, self._role_request(datapath, ofp.OFPCR_ROLE_MASTER,
                                                        generation))
        if switch.term != term:
            return   # lost, refused or gone meanwhile
        if not isinstance(reply, ofp_parser.OFPRoleReply) or reply.role != ofp.OFPCR_ROLE_MASTER:
            self._step_down(switch, f"no master ROLE_REPLY at generation {generation} "
                                    f"({'none' if reply is None else _what(reply)})")
            return
        if self._ask(datapath, ofp_parser.OFPBarrierRequest(datapath)) is None:
            if switch.term == term:
                self._step_down(switch, "no barrier reply after becoming master")
            return
        if switch.term != term:
            return
        switch.role, switch.writable = MASTER, True
        LOG.info("%s: switch %s: master at generation %s: apps converge it", ROLE_MARK,
                 format_dpid(datapath.id), generation)
        for on_master in self._listeners:
            on_master(datapath)

    def _step_down(self, switch, why):
        """Refused or unanswered: stop writing now, give the switch up and stand in
        line again (a newer win is tried, this generation is not)."""
        switch.term += 1
        switch.role, switch.writable = SLAVE, False
        if switch.generation is not None:
            switch.refused_at = max(switch.refused_at, switch.generation)
        LOG.warning("%s: switch %s: stepping down: %s", ROLE_MARK,
                    format_dpid(switch.datapath.id), why)
        self.elector.release(switch.datapath.id)
        self.elector.contend(switch.datapath.id)

    # --- what the switch answers (forwarded by the app base) ---------------------------

    def role_reply(self, msg) -> None:
        switch = self._switches.get(msg.datapath.id)
        if switch is not None and switch.datapath is msg.datapath:
            switch.switch_role = SWITCH_ROLES.get(msg.role, str(msg.role))
        self._answered(msg)

    def barrier_reply(self, msg) -> None:
        self._answered(msg)

    def role_status(self, msg) -> None:
        """An experimenter message: when it is the switch's role status saying another
        node became master, step down now (not at the next refused write)."""
        if not self.clustered or msg.experimenter != ofproto_common.ONF_EXPERIMENTER_ID or \
                msg.exp_type != ONFT_ROLE_STATUS or len(msg.data) < 16:
            return
        role, _, generation = struct.unpack_from("!IB3xQ", msg.data)
        switch = self._switches.get(msg.datapath.id)
        if switch is None or switch.datapath is not msg.datapath:
            return
        switch.switch_role = SWITCH_ROLES.get(role, str(role))
        if role == ofp.OFPCR_ROLE_SLAVE and switch.role in (MASTER, TAKING):
            # (while becoming master too: its MASTER reply may already be in, and the
            # take-over would otherwise go on to write as a master the switch refuses)
            self._step_down(switch, f"the switch made it a slave (a master at generation "
                                    f"{generation})")

    def switch_error(self, msg) -> bool:
        """True when `msg` is an expected role refusal of a cluster node: handled here
        (stepping down when it concerns our mastership), not an error to log."""
        if not self.clustered or not is_role_error(msg):
            return False
        key = (id(msg.datapath), msg.xid, msg.type, msg.code)
        if key in self._errors_seen:
            return True          # every app is handed the same error
        self._errors_seen.append(key)
        ours = msg.xid in self._waiting
        self._answered(msg)
        switch = self._switches.get(msg.datapath.id)
        if switch is None or switch.datapath is not msg.datapath:
            return True
        if ours or (msg.type == ofp.OFPET_BAD_REQUEST and switch.role == MASTER):
            self._step_down(switch, f"the switch refused us: {_what(msg)}")
        else:   # our SLAVE request, or writes already refused: nothing more to stop
            LOG.info("%s: switch %s: %s (this node is %s)", ROLE_MARK,
                     format_dpid(msg.datapath.id), _what(msg), switch.role)
        return True

    def describe(self, dpid) -> dict:
        switch = self._switches.get(dpid)
        if switch is None:
            return {"role": SLAVE, "may_write": False}
        return {"role": switch.role, "may_write": switch.writable,
                "generation": switch.generation, "switch_role": switch.switch_role}

    # --- request / reply -----------------------------------------------------------------

    def _role_request(self, datapath, role, generation):
        return ofp_parser.OFPRoleRequest(datapath, role, generation or 0)

    def _request(self, datapath, role, generation):
        self._send(datapath, [self._role_request(datapath, role, generation)])

    def _ask(self, datapath, message):
        """Send `message` and wait for its answer (a reply or an error; None: none)."""
        datapath.set_xid(message)
        waiting = [hub.Event(), None]
        self._waiting[message.xid] = waiting
        try:
            self._send(datapath, [message])
            waiting[0].wait(timeout=self.REPLY_TIMEOUT_S)
            return waiting[1]
        finally:
            self._waiting.pop(message.xid, None)

    def _answered(self, msg):
        waiting = self._waiting.get(msg.xid)
        if waiting is not None:
            waiting[1] = msg
            waiting[0].set()


def _wait_ready(datapath, timeout):
    """Until Ryu has finished the handshake (barrier replies reach us from then on)."""
    deadline = time.monotonic() + timeout
    while datapath.state != MAIN_DISPATCHER:
        if datapath.state == DEAD_DISPATCHER or time.monotonic() > deadline:
            return False
        hub.sleep(0.02)
    return True


def _what(msg):
    if isinstance(msg, ofp_parser.OFPErrorMsg):
        name = {(ofp.OFPET_ROLE_REQUEST_FAILED, ofp.OFPRRFC_STALE): "STALE generation",
                (ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_IS_SLAVE): "OFPBRC_IS_SLAVE"}.get(
                    (msg.type, msg.code), "")
        return f"error type=0x{msg.type:x} code=0x{msg.code:x} {name}".strip()
    return f"ROLE_REPLY {SWITCH_ROLES.get(getattr(msg, 'role', None), '?')}"
