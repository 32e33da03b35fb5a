"""The packet-in fast path: packet-ins of the tables our apps serve, handled in the
connection's own receive loop, their replies written in one send per read.

Ryu hands every packet-in to apps as an event: a message object, a match object, an
event object, a queue put, a hop to the app's green thread, and one socket write
per reply. For a learning switch that was about 20 µs of a 50 µs packet-in (issue
19). Here:

- an app registers a handler for the packet-ins of one table (`serve`); the receive
  loop (controller/ofguard.py) reads in large chunks and offers each whole
  packet-in to `packet_in_raw`, which parses it with struct (a match of plain fixed
  fields only; any other match is parsed by Ryu first and offered to
  `packet_in_msg`, so one table's packet-ins are never split between two paths and
  their order is kept);
- the handler runs at once, in the receive loop's green thread, and writes its
  replies into a `Sink` (the same sequence of messages `push` would send:
  controller/oftemplate.py); `flush` writes what one read produced in one send,
  through the runtime's one sender (controller/runtime.py `send_packed`), so a
  cluster's slave writes nothing here either;
- a handler that returns False has not touched anything: the packet-in goes to
  Ryu's event path as before (a switch the app does not serve, a fabric). When it
  returns True, the apps that still want that packet-in get Ryu's event as before:
  every observer of EventOFPPacketIn other than the handler's app, unless it is one
  of ours that declares it reads other tables only (`PACKET_IN_TABLES`); a stock
  Ryu app (simple_switch_13, ofctl_rest) loaded next to ours sees no difference;
- counters are added up per read (the packet-ins per switch, the flow-mods per app)
  instead of bumped per packet, and the read's handling latency is observed once for
  all its packet-ins.

Off with `openflow: {fast_path: false}` (controller/ofguard.py's settings): then
every packet-in takes Ryu's path.
"""
import logging
import struct
import time
from dataclasses import dataclass, field

from ryu.base import app_manager
from ryu.controller import ofp_event
from ryu.controller.handler import DEAD_DISPATCHER, MAIN_DISPATCHER
from ryu.lib import hub

from flows.dpid import format as format_dpid

# controller/ofguard.py imports this module in every ryu-manager of the venv, stock
# apps alone included, right after Ryu's controller module: the parser and the
# metrics are imported once an app of ours serves a table (`serve`), not here, so a
# stock app's process loads no more than before (its RSS is a benchmark's peer). The
# packing and counting of replies come from the app base (`serve`'s caller): they
# build on the runtime, which builds on this module.
_lazy = {}

LOG = logging.getLogger(__name__)
PACKET_IN, OFP13 = 10, 4
CATCH_UP_S = 0.5   # the longest a read's packet-ins wait for their app's queued events
# after the header and buffer_id: total_len, reason, table_id, cookie, the match's type
# and length, and (a match of in_port alone, what OVS sends on a plain port) its OXM
# header (OXM_OF_IN_PORT: class 0x8000, field 0, 4 bytes) and value
_FIXED = struct.Struct("!HBBQHH")
_FIXED_AND_IN_PORT = struct.Struct("!HBBQHHII")
_OXM_IN_PORT = 0x80000004
enabled = True


@dataclass
class _Server:
    app: object        # the RyuApp whose handler this is
    table_id: int
    handler: object    # handler(datapath, [(in_port, frame)], sink) -> bool
    pack: object       # pack(out, datapath, items, barrier) -> owners (oftemplate.pack)
    next_xids: object  # next_xids(datapath, count) -> the first (oftemplate.next_xids)
    count: object      # count(owners): the flow-mods counter (switch_sync.count_flow_mods)


@dataclass
class Sink:
    """What the packet-ins of one read of one connection produced, to send at once."""
    server: _Server
    out: bytearray = field(default_factory=bytearray)
    owners: list = field(default_factory=list)   # of the flow-mods written
    packet_ins: int = 0   # not counted yet in sdn_packet_ins
    fast: int = 0         # taken by a handler here

    def write(self, datapath, items, barrier=True) -> bool:
        """Like SdnApp.push (specs and deletes), sent at the flush; all or nothing (a
        compile error midway leaves no deletes without their adds)."""
        out = bytearray()
        self.owners += self.server.pack(out, datapath, items, barrier)
        self.out += out
        return True

    def add(self, datapath, template, encoded) -> None:
        """A precompiled template's messages (controller/oftemplate.py) for `encoded`."""
        self.out += template.render_encoded(encoded, self.server.next_xids(
            datapath, template.count))
        self.owners += template.owners


_servers = {}   # table id -> _Server
_pending = {}   # datapath -> [(server, [(in_port, frame)], [(start, end)])]: this read's
_sinks = {}     # datapath -> its Sink for the read being handled
_others = {}    # (table id, the observers) -> names of the other apps that want them
_behind = set()  # apps a catch-up gave up on (until they have caught up once)


def serve(app, table_id: int, handler, pack, next_xids, count) -> None:
    """`handler(datapath, packet_ins, sink)` takes the packet-ins of `table_id`
    (OpenFlow 1.3, switches in MAIN_DISPATCHER) from now on, a list of (in_port,
    frame) at a time, all of one switch and in order (what one read brought); it
    returns False for a list it leaves to Ryu's event path, having changed nothing.
    `app.runtime` sends."""
    from controller import fastparse, metrics
    _lazy.update(fastparse=fastparse, metrics=metrics)
    _servers[table_id] = _Server(app, table_id, handler, pack, next_xids, count)
    _others.clear()


def reset() -> None:
    """Forget every handler (unit tests: their apps are gone after each test)."""
    _servers.clear()
    _others.clear()
    _pending.clear()
    _sinks.clear()
    _behind.clear()


def packet_in_raw(datapath, buf, offset: int, length: int) -> bool:
    """Offer one whole message of `buf` (at `offset`, `length` bytes: a packet-in by
    its type) to the fast path; True when it is queued for `run_pending`. Anything
    unusual (another version, a match that is not plain fixed fields, lengths that
    do not add up) is False: the normal path checks and parses it."""
    if not (enabled and _servers) or length < 32 or buf[offset] != OFP13 \
            or datapath.state != MAIN_DISPATCHER:
        return False
    end = offset + length
    if length >= 42:
        total_len, _, table_id, _, match_type, match_len, oxm, in_port = \
            _FIXED_AND_IN_PORT.unpack_from(buf, offset + 12)
    else:
        total_len, _, table_id, _, match_type, match_len = _FIXED.unpack_from(buf, offset + 12)
        oxm = None
    server = _servers.get(table_id)
    if server is None:
        return False
    if match_len == 12 and oxm == _OXM_IN_PORT and match_type == 1:
        data_at = offset + 42   # what OVS sends most: a match of in_port alone
    else:   # any other match of plain fixed fields
        data_at = offset + 24 + (match_len + 7) // 8 * 8 + 2
        if match_type != 1 or match_len < 4 or data_at > end:
            return False
        fields = _lazy["fastparse"].simple_fields(buf, offset + 28, match_len - 4)
        in_port = dict(fields).get("in_port") if fields else None
        if in_port is None:
            return False
    data = bytes(buf[data_at:min(end, data_at + total_len)])
    runs = _pending.get(datapath)
    if runs is None:
        runs = _pending[datapath] = []
    if not runs or runs[-1][0] is not server:
        runs.append((server, [], []))
    runs[-1][1].append((in_port, data))
    runs[-1][2].append((offset, end))
    return True


def run_pending(datapath, buf, refused) -> bool:
    """Hand the packet-ins queued from `buf` to their handlers, in order, a run of one
    table at a time; `refused(raw)` takes each one no handler took (the normal path),
    before the next run is offered. The receive loop calls it before any other message
    of the read is handled and at the read's end, so nothing overtakes anything. False
    when `refused` said the connection closed."""
    runs = _pending.pop(datapath, None)
    for server, packet_ins, spans in runs or ():
        taken = _offer(server, datapath, packet_ins,
                       lambda spans=spans: [bytes(buf[b:e]) for b, e in spans])
        if taken < len(spans):
            flush(datapath)   # what the handler sent goes before what Ryu's path will
        for begin, end in spans[taken:]:
            if not refused(bytes(buf[begin:end])):
                return False
    return True


def packet_in_msg(datapath, msg) -> bool:
    """A packet-in Ryu has parsed (its match was not plain): offered alone, at once
    (run_pending has run: the order holds)."""
    server = _servers.get(msg.table_id) if enabled else None
    if server is None or msg.version != OFP13 or datapath.state != MAIN_DISPATCHER:
        return False
    in_port = msg.match.get("in_port")
    if in_port is None:
        return False
    # Ryu's parser counted this one in sdn_packet_ins already
    return _offer(server, datapath, [(in_port, msg.data)], None, msg=msg) == 1


def _parsed(datapath, raw):
    version, msg_type, msg_len, xid = struct.unpack_from("!BBHI", raw)
    return _lazy["fastparse"].parse_packet_in(datapath, version, msg_type, msg_len, xid, raw)


class _Cursor:
    """The packet-ins a handler iterates over, with where it got to: when it raises,
    the one it was at is dropped and the rest are offered again."""

    def __init__(self, items):
        self.items, self.at = items, 0

    def __len__(self):
        return len(self.items) - self.at

    def __iter__(self):
        items = self.items
        while self.at < len(items):
            self.at += 1
            yield items[self.at - 1]


def _offer(server, datapath, packet_ins, raws, msg=None) -> int:
    """Offer `packet_ins` to the server's handler; how many of them (from the first)
    it took. A packet-in whose handling raised is logged and dropped, as Ryu's event
    loop drops an event whose handler raised; the others go on. Other apps that want
    them get the events of all taken (`raws()` or `msg` builds them)."""
    _catch_up(server.app, datapath)   # first: it may send (and so end) the read's sink
    sink = _sinks.get(datapath)
    if sink is None:
        sink = _sinks[datapath] = Sink(server)
    cursor, taken = _Cursor(packet_ins), 0
    while len(cursor):
        try:
            if not server.handler(datapath, cursor, sink):
                break
            taken = len(packet_ins)
        except Exception:  # noqa: BLE001 - a bad packet-in must not end the connection
            port = packet_ins[cursor.at - 1][0] if cursor.at else None
            LOG.exception("%s: a packet-in from switch %s port %s failed (dropped)",
                          server.app.name, format_dpid(datapath.id or 0), port)
            taken = cursor.at = max(cursor.at, 1)
            continue
        break
    if not taken:
        return 0
    sink.fast += taken
    if msg is None:
        sink.packet_ins += taken
    others = _wanting(datapath.ofp_brick, server)
    if others:
        messages = [msg] if msg is not None else \
            [_parsed(datapath, raw) for raw in raws()[:taken]]
        for message in messages:
            ev = ofp_event.ofp_msg_to_ev(message)
            for name in others:
                datapath.ofp_brick.send_event(name, ev, datapath.state)
    return taken


def _catch_up(app, datapath):
    """Let `app` handle the events it has queued before these packet-ins are decided
    (a port that went down, a host's expiry: Ryu's path would have them wait behind
    those too). Without it, one packet-in left to Ryu's path under load kept the app's
    queue from ever emptying, and every later one followed it there (a tenth of the
    rate). What the read's earlier packet-ins produced is sent first: the app may send
    to this switch while we wait, and must not overtake them.

    An app still busy after CATCH_UP_S (a handler waiting for a full send queue, or
    for a reply this very connection must bring) is not waited for again until it
    has caught up once: its handler leaves the packet-ins to Ryu's path, behind the
    rest. The wait polls every millisecond, not in a busy loop."""
    pending = getattr(app, "events_pending", None)
    if pending is None or not pending():
        _behind.discard(app)
        return
    if app in _behind:
        return
    flush(datapath)
    deadline = time.monotonic() + CATCH_UP_S
    hub.sleep(0)   # most often the app's loop needs just one turn
    while pending() and datapath.state != DEAD_DISPATCHER:
        if time.monotonic() >= deadline:
            _behind.add(app)
            return
        hub.sleep(0.001)


def _wanting(brick, server):
    """The observers of EventOFPPacketIn, other than the server's app, that want the
    packet-ins of its table in MAIN_DISPATCHER (kept per set of observers)."""
    observers = brick.observers.get(ofp_event.EventOFPPacketIn, {})
    key = (server.table_id, frozenset((name, frozenset(states or ()))
                                      for name, states in observers.items()))
    found = _others.get(key)
    if found is None:
        found = _others[key] = []
        for name, states in observers.items():
            app = app_manager.SERVICE_BRICKS.get(name)
            tables = getattr(app, "packet_in_table_ids", lambda: None)()
            if name != server.app.name and (not states or MAIN_DISPATCHER in states) \
                    and (tables is None or server.table_id in tables):
                found.append(name)
    return found


def flush(datapath) -> None:
    """Send what the read produced (one write), and add up its counters and its
    latency (from the read's arrival, `sdn_read_at`: controller/ofguard.py). Packet-ins
    still queued (the connection closed mid-read) are dropped with it."""
    _pending.pop(datapath, None)
    sink = _sinks.pop(datapath, None)
    if sink is None:
        return
    if sink.out and sink.server.app.runtime.send_packed(datapath, bytes(sink.out)):
        sink.server.count(sink.owners)
    if sink.fast:
        metrics, dpid = _lazy["metrics"], datapath.id or 0
        metrics.PACKET_INS.inc(dpid, amount=sink.packet_ins)
        metrics.FAST_PATH.inc(dpid, amount=sink.fast)
        read_at = getattr(datapath, "sdn_read_at", None)
        if read_at is not None:
            metrics.PACKET_IN_LATENCY.observe("fast_path", time.perf_counter() - read_at,
                                              sink.fast)
