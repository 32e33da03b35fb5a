"""A switch for app unit tests: it keeps the flows, groups and meters it is sent,
answers flow-stats, group-desc, meter-config and barrier requests from them, the way
OVS would, so an app's reconnect/reconcile logic runs against real replies.

Flow table semantics are OpenFlow 1.3's for what our apps send: an add replaces the
entry with the same table, priority and match; strict deletes need all three; other
deletes take every entry of the cookie/mask whose match includes the delete's fields.

Every flow-, group- and meter-mod is also read back from its bytes, decoded to spec
values and run in a table simulator (`sim`, tests/support/ofsim.py, FAUCET's
FakeOFTable model), which refuses what OVS refuses: so app tests run what the
compiler emits, and can ask the simulator where a frame goes.

Roles (controller/roles.py) are answered as Open vSwitch does (ofproto.c
handle_role_request, connmgr.c): a connection starts EQUAL; ROLE_REQUEST MASTER or
SLAVE with a generation_id older than the newest seen (signed 64-bit difference) is
refused STALE; a SLAVE is refused FLOW_MOD, GROUP_MOD, METER_MOD, PACKET_OUT,
PORT_MOD and TABLE_MOD with OFPBRC_IS_SLAVE (nothing applied). `demote` is another
controller becoming master.
"""
import struct

from ryu.controller import ofp_event
from ryu.controller.handler import DEAD_DISPATCHER, MAIN_DISPATCHER
from ryu.lib import hub
from ryu.ofproto import ofproto_common, ofproto_parser, ofproto_protocol
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser

from tests.support import ofsim, wire

ALL_COOKIES = 0xFFFFFFFFFFFFFFFF
SLAVE_REFUSED = (parser.OFPFlowMod, parser.OFPGroupMod, parser.OFPMeterMod, parser.OFPPacketOut,
                 parser.OFPPortMod, parser.OFPTableMod)
BACKGROUND_LOOPS = {"_discover", "canary_loop", "_poll_state", "_poll_counters",
                    "_refresh_loop"}  # endless: never run inline


def run_inline(monkeypatch, hub_module):
    """hub.spawn for unit tests: run at once, in step with the test, except the apps'
    endless background loops."""
    monkeypatch.setattr(hub_module, "spawn", lambda run, *args: None
                        if run.__name__ in BACKGROUND_LOOPS else run(*args))


def _fields(match):
    return tuple(sorted((k, repr(v)) for k, v in match.items()))


class FakeSwitch(ofproto_protocol.ProtocolDesc):
    def __init__(self, dpid, app=None, answer=None, kind="main"):
        """`kind`: the bridge's pipeline, "main" or "tunnel" (an overlay br-tun)."""
        super().__init__(ofp.OFP_VERSION)
        self.kind, self.sim = kind, ofsim.Switch([], kind=kind, declared=False,
                                                     through_wire=False)
        self.id, self.app = dpid, app
        self.answer = answer  # called with every message too (other requests a test serves)
        self.sent, self.xid, self.wire = [], 0, bytearray()
        self.state = MAIN_DISPATCHER
        self.flows = {}    # (table, priority, match fields) -> OFPFlowStats
        self.groups = {}   # id -> OFPGroupDescStats
        self.meters = {}   # id -> OFPMeterConfigStats
        self.role, self.election_id = ofp.OFPCR_ROLE_EQUAL, None
        self.refused = []  # what a slave sent: not applied, answered OFPBRC_IS_SLAVE

    # --- what Ryu's Datapath offers an app ------------------------------------------
    def close(self):
        self.state = DEAD_DISPATCHER

    def set_xid(self, msg):
        self.xid += 1
        msg.set_xid(self.xid)

    def send_msg(self, msg):
        if msg.xid is None:
            self.set_xid(msg)
        msg.serialize()  # what Ryu would do: it must encode
        self._take(msg)

    def send_packed(self, buf):
        """Messages already packed (the packet-in fast path writes bytes): each is read
        back with Ryu's parser and taken as if sent one by one. A test that sets it as
        a switch's `send` has the runtime write every batch of messages as bytes, as to
        Ryu's Datapath."""
        offset = 0
        while offset < len(buf):
            version, msg_type, msg_len, xid = struct.unpack_from("!BBHI", buf, offset)
            raw = bytes(buf[offset:offset + msg_len])
            if msg_type == ofp.OFPT_BARRIER_REQUEST:   # Ryu parses no barrier request
                msg = parser.OFPBarrierRequest(self)
                msg.set_headers(version, msg_type, msg_len, xid)
                msg.set_buf(raw)
            else:
                msg = ofproto_parser.msg(self, version, msg_type, msg_len, xid, raw)
            self._take(msg)
            offset += msg_len

    def _take(self, msg):
        self.sent.append(msg)
        self.wire += msg.buf   # every byte sent, in order
        if self.role == ofp.OFPCR_ROLE_SLAVE and isinstance(msg, SLAVE_REFUSED):
            self.refused.append(msg)
            self._error(msg, ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_IS_SLAVE)
            return
        item = wire.decoded(msg, self.kind)
        if item is not None:
            self.sim.apply([item])
        for cls in type(msg).__mro__:  # a packed flow-mod is an OFPFlowMod subclass
            handler = getattr(self, "_on_" + cls.__name__, None)
            if handler is not None:
                handler(msg)
                break
        if self.answer is not None:
            self.answer(msg)

    # --- state changes -----------------------------------------------------------------
    def _on_OFPFlowMod(self, mod):
        if mod.command in (ofp.OFPFC_ADD, ofp.OFPFC_MODIFY):
            key = (mod.table_id, mod.priority, _fields(mod.match))
            self.flows[key] = parser.OFPFlowStats(
                table_id=mod.table_id, duration_sec=0, duration_nsec=0, priority=mod.priority,
                idle_timeout=mod.idle_timeout, hard_timeout=mod.hard_timeout, flags=mod.flags,
                cookie=mod.cookie, packet_count=0, byte_count=0, match=mod.match,
                instructions=mod.instructions)
            return
        strict = mod.command == ofp.OFPFC_DELETE_STRICT
        wanted = set(_fields(mod.match))
        for key, stat in list(self.flows.items()):
            if (stat.cookie & mod.cookie_mask) != (mod.cookie & mod.cookie_mask):
                continue
            if mod.table_id not in (ofp.OFPTT_ALL, stat.table_id):
                continue
            if strict and (key[1] != mod.priority or key[2] != _fields(mod.match)):
                continue
            if not strict and not wanted <= set(key[2]):
                continue
            del self.flows[key]

    def _on_OFPGroupMod(self, mod):
        if mod.command == ofp.OFPGC_DELETE:
            self.groups.pop(mod.group_id, None)
            for key, stat in list(self.flows.items()):  # flows sending to it go too
                if any(getattr(a, "group_id", None) == mod.group_id
                       for i in stat.instructions for a in getattr(i, "actions", [])):
                    del self.flows[key]
            return
        _refuse_mismatch("group", mod.group_id, mod.group_id in self.groups,
                         mod.command == ofp.OFPGC_MODIFY)
        self.groups[mod.group_id] = parser.OFPGroupDescStats(
            type_=mod.type, group_id=mod.group_id, buckets=mod.buckets)

    def _on_OFPMeterMod(self, mod):
        if mod.command == ofp.OFPMC_DELETE:
            self.meters.pop(mod.meter_id, None)
            return
        _refuse_mismatch("meter", mod.meter_id, mod.meter_id in self.meters,
                         mod.command == ofp.OFPMC_MODIFY)
        self.meters[mod.meter_id] = parser.OFPMeterConfigStats(
            flags=mod.flags, meter_id=mod.meter_id, bands=mod.bands)

    # --- roles ------------------------------------------------------------------------
    def _on_OFPRoleRequest(self, req):
        if req.role in (ofp.OFPCR_ROLE_MASTER, ofp.OFPCR_ROLE_SLAVE):
            if self.election_id is not None and _signed(req.generation_id - self.election_id) < 0:
                self._error(req, ofp.OFPET_ROLE_REQUEST_FAILED, ofp.OFPRRFC_STALE)
                return
            self.election_id = req.generation_id
        if req.role != ofp.OFPCR_ROLE_NOCHANGE:
            self.role = req.role
        if self.app is not None:
            reply = parser.OFPRoleReply(self, self.role, self.election_id or 0)
            reply.xid = req.xid
            hub.spawn(self.app._role_reply, ofp_event.EventOFPRoleReply(reply))

    def demote(self, generation_id, tell=False):
        """Another controller became master at `generation_id`: this one is a slave
        (`tell`: a master hears it, as OVS's ONF role status says it)."""
        was_master = self.role == ofp.OFPCR_ROLE_MASTER
        self.role, self.election_id = ofp.OFPCR_ROLE_SLAVE, generation_id
        if tell and was_master and self.app is not None:
            status = parser.OFPExperimenter(
                self, experimenter=ofproto_common.ONF_EXPERIMENTER_ID, exp_type=1911,
                data=struct.pack("!IB3xQ", ofp.OFPCR_ROLE_SLAVE, 0, generation_id))
            hub.spawn(self.app._role_status, ofp_event.EventOFPExperimenter(status))

    def _error(self, request, type_, code):
        if self.app is not None:
            error = parser.OFPErrorMsg(self, type_=type_, code=code, data=b"")
            error.xid = request.xid
            hub.spawn(self.app._log_switch_error, ofp_event.EventOFPErrorMsg(error))

    # --- replies --------------------------------------------------------------------------
    def _reply(self, cls, event, request, body):
        if self.app is None:
            return
        reply = cls(self, body=body) if body is not None else cls(self)
        reply.xid = request.xid
        if body is not None:
            reply.flags = 0
            hub.spawn(self.app._multipart_reply, event(reply))
        else:
            hub.spawn(self.app._barrier_reply, event(reply))

    def _on_OFPFlowStatsRequest(self, req):
        body = [s for s in self.flows.values()
                if (s.cookie & req.cookie_mask) == (req.cookie & req.cookie_mask)
                and req.table_id in (ofp.OFPTT_ALL, s.table_id)]
        self._reply(parser.OFPFlowStatsReply, ofp_event.EventOFPFlowStatsReply, req, body)

    def _on_OFPGroupDescStatsRequest(self, req):
        self._reply(parser.OFPGroupDescStatsReply, ofp_event.EventOFPGroupDescStatsReply, req,
                    list(self.groups.values()))

    def _on_OFPMeterConfigStatsRequest(self, req):
        self._reply(parser.OFPMeterConfigStatsReply, ofp_event.EventOFPMeterConfigStatsReply,
                    req, list(self.meters.values()))

    def _on_OFPBarrierRequest(self, req):
        self._reply(parser.OFPBarrierReply, ofp_event.EventOFPBarrierReply, req, None)

    # --- for assertions ---------------------------------------------------------------------
    def table(self):
        """Everything installed, comparable between two points in time (wire bytes)."""
        return (sorted(repr((k, s.cookie, s.idle_timeout, s.hard_timeout, s.flags,
                             _wire(s.instructions))) for k, s in self.flows.items()),
                sorted(repr((g.group_id, g.type, _wire(g.buckets))) for g in self.groups.values()),
                sorted(repr((m.meter_id, m.flags, _wire(m.bands))) for m in self.meters.values()))


def _signed(value):
    value &= 0xFFFFFFFFFFFFFFFF
    return value - (1 << 64) if value >> 63 else value


def _refuse_mismatch(kind, number, exists, modify):
    """What OVS answers with an error (GROUP_EXISTS, UNKNOWN_GROUP, ...): fail the test."""
    assert exists == modify, \
        f"{kind} {number:#x}: {'an add of an existing' if exists else 'a modify of a missing'} one"


def _wire(objs) -> bytes:
    buf = bytearray()
    for obj in objs:
        obj.serialize(buf, len(buf))
    return bytes(buf)
