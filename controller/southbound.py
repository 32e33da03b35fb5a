"""The one place that sends messages to switches.

Apps hand over specs; this compiles and sends them in order, with a barrier between
deletes and the adds that follow (OpenFlow lets a switch reorder messages that no
barrier separates) and one at the end. Request/reply (flow stats) is matched by xid
in `SdnApp.request`.
"""
import time

from ryu.base import app_manager
from ryu.controller import ofp_event
from ryu.controller.handler import (CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER,
                                    set_ev_cls)
from ryu.lib import hub
from ryu.ofproto import ofproto_v1_3 as ofp

from controller import fastparse, ofcompile
from flows import diff

fastparse.install()  # our apps read packet-ins with the lean parser

OFP_ERROR_MARK = "OpenFlow error from switch"  # tests grep logs for this


class SwitchTimeout(RuntimeError):
    pass


def push(datapath, items, barrier=True):
    """Send specs/deletes in order; deletes are finished before later adds start."""
    messages, previous_was_delete = [], False
    for item, message in zip(items, ofcompile.compile_all(datapath, items)):
        is_delete = isinstance(item, ofcompile.DELETES)
        if previous_was_delete and not is_delete:
            messages.append(ofcompile.barrier(datapath))
        messages.append(message)
        previous_was_delete = is_delete
    if barrier:
        messages.append(ofcompile.barrier(datapath))
    _send_together(datapath, messages)


def _send_together(datapath, messages):
    """One write for the lot: Ryu's Datapath queues every send on its own (a semaphore,
    a queue hand-off and a socket write each), which was a third of the cost of
    learning a MAC. Test doubles without `send` get the messages one by one."""
    if len(messages) < 2 or not hasattr(datapath, "send"):
        for message in messages:
            datapath.send_msg(message)
        return
    buf = bytearray()
    for message in messages:
        if message.xid is None:
            datapath.set_xid(message)
        message.serialize()
        buf += message.buf
    datapath.send(bytes(buf))


def send(datapath, message):
    datapath.send_msg(message)


def request_flows(app, datapath, owner, table=None):
    """Flow-stats entries owned by `owner`, as (FlowSpec, stats entry) pairs."""
    stats = app.request(datapath, ofcompile.flow_stats_request(datapath, owner, table))
    return [(ofcompile.decode_flow(stat), stat) for stat in stats]


def reconcile(app, datapath, installed, desired):
    """Make the switch's entries `installed` (as read back with request_flows) equal
    `desired` without a gap: the missing and changed entries first, confirmed by a
    barrier, then strict deletes of the stale ones. Returns (adds, deletes)."""
    adds, deletes = diff.reconcile(installed, desired)
    app.logger.info("%s: reconciled switch %016x: %d entries kept, %d added, %d stale removed",
                    app.name, datapath.id, len(installed) - len(deletes)
                    - len(set(adds) & set(installed)), len(adds), len(deletes))
    if adds:
        push(datapath, adds, barrier=False)
        app.confirm(datapath)
    if deletes:
        push(datapath, deletes, barrier=False)
        app.confirm(datapath)
    return adds, deletes


class SdnApp(app_manager.RyuApp):
    """Base of our apps: OpenFlow 1.3 only, switch errors are never silent, and
    multipart requests get their replies."""
    OFP_VERSIONS = [ofp.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._waiting = {}  # xid -> (event set on the last reply part, collected bodies)

    def request(self, datapath, message, timeout=5.0):
        """Send a multipart request and return the bodies of all its reply parts."""
        datapath.set_xid(message)
        done, bodies = hub.Event(), []
        self._waiting[message.xid] = (done, bodies)
        try:
            datapath.send_msg(message)
            if not done.wait(timeout=timeout):
                raise SwitchTimeout(f"switch {datapath.id:016x} did not answer "
                                    f"{type(message).__name__} within {timeout} s")
            return bodies
        finally:
            self._waiting.pop(message.xid, None)

    def wait_ready(self, datapath, timeout=10.0):
        """In a greenlet: until Ryu has finished the switch's handshake (multipart
        replies are only delivered from then on)."""
        deadline = time.monotonic() + timeout
        while datapath.state != MAIN_DISPATCHER:
            if datapath.state == DEAD_DISPATCHER or time.monotonic() > deadline:
                raise SwitchTimeout(f"switch {datapath.id or 0:016x} did not become ready")
            hub.sleep(0.02)

    def confirm(self, datapath, timeout=10.0):
        """Send a barrier and wait for its reply: everything sent before it is done."""
        message = ofcompile.barrier(datapath)
        datapath.set_xid(message)
        done = hub.Event()
        self._waiting[message.xid] = (done, [])
        try:
            datapath.send_msg(message)
            if not done.wait(timeout=timeout):
                raise SwitchTimeout(f"switch {datapath.id:016x} did not confirm a barrier "
                                    f"within {timeout} s")
        finally:
            self._waiting.pop(message.xid, None)

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def _barrier_reply(self, ev):
        waiting = self._waiting.get(ev.msg.xid)
        if waiting is not None:
            waiting[0].set()

    @set_ev_cls([ofp_event.EventOFPFlowStatsReply, ofp_event.EventOFPQueueStatsReply,
                 ofp_event.EventOFPMeterStatsReply, ofp_event.EventOFPGroupStatsReply],
                MAIN_DISPATCHER)
    def _multipart_reply(self, ev):
        waiting = self._waiting.get(ev.msg.xid)
        if waiting is None:
            return
        done, bodies = waiting
        bodies.extend(ev.msg.body)
        if not ev.msg.flags & ofp.OFPMPF_REPLY_MORE:
            done.set()

    @set_ev_cls(ofp_event.EventOFPErrorMsg, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _log_switch_error(self, ev):
        msg = ev.msg
        self.logger.error("%s %016x: type=0x%x code=0x%x xid=%s data=%s", OFP_ERROR_MARK,
                          msg.datapath.id or 0, msg.type, msg.code, msg.xid, msg.data[:64].hex())
