"""The OpenFlow port against hostile peers: bounded parsing and per-connection limits.

Anyone who reaches the OpenFlow port could hang Ryu 4.34 with one message (a nested
length of 0: faucetsdn/ryu #188-#196), and Ryu's receive loop keeps going after a
message it could not parse (it logs and drops it, or "tries something sane" with a
header length below 8). `install()` replaces the Datapath's receive loop with one that

- checks every message with `controller.ofcheck` before Ryu parses it, and treats a
  failed check, a parser exception or a version other than the negotiated one as a
  parse error: that connection is closed and the log names the switch (dpid once
  known, always the peer address), the message type and the head of the message in
  hex (PARSE_ERROR_MARK); other connections go on;
- reads in large chunks (fewer recv calls than Ryu's two per message) with bounds: a
  message that has started must be complete within `message_timeout_s`, and a
  connection must finish the handshake (FEATURES_REPLY) within `handshake_timeout_s`;
- yields to other green threads after every chunk, so a peer that floods cannot
  starve the others (Ryu yields every 2048 messages).

Ryu's parser for an experimenter multipart reply (OFPExperimenterMultipart) takes
the whole rest of the message as one body's data but then steps 16 bytes on, so a
body of n bytes became n/16 overlapping copies of itself: one 64 KiB reply made
Ryu hold ~130 MB at once (the fuzzer's RSS peaks). `install()` makes that body
consume the rest of the message, as the OpenFlow spec defines it (one header, then
experimenter data).

On the send side a peer that does not read is closed once sending to it has waited
`send_timeout_s` (Ryu blocks the sending app's green thread while the 16-entry send
queue is full, and after a send timeout leaves the connection half dead). The number
of connections from one address is capped (`max_connections_per_address`).

OpenFlow listens on 127.0.0.1 unless the `openflow` config section or
`--ofp-listen-host` says otherwise (Ryu's own default is every address).

Installed at interpreter start for every ryu-manager of this venv: controller.ryu_compat
runs `install()` right after `ryu.controller.controller` is imported. Our apps read the
`openflow` section of the config file (controller.southbound calls `configure`).
"""
import collections
import contextlib
import ipaddress
import logging
import socket as socket_module
import ssl
import time
from dataclasses import dataclass

import greenlet

from ryu import cfg
from ryu.base import app_manager  # noqa: F401 - first: Ryu's controller module needs it
from ryu.controller import controller as ryu_controller  # noqa: I100
from ryu.controller import ofp_event
from ryu.controller.handler import DEAD_DISPATCHER, HANDSHAKE_DISPATCHER, MAIN_DISPATCHER
from ryu.lib import hub
from ryu.ofproto import ofproto_protocol

from controller import fastpath, ofcheck
from flows.dpid import format as format_dpid

LOG = logging.getLogger(__name__)
FEATURES_REPLY = 6
PARSE_ERROR_MARK = "malformed OpenFlow message"   # tests grep logs for these
TIMEOUT_MARK = "OpenFlow connection timed out"
NOT_READING_MARK = "does not read what the controller sends"
TOO_MANY_MARK = "too many OpenFlow connections"
READ_SIZE = 65536
HEX_HEAD = 48  # bytes of a bad message shown in the log


@dataclass(frozen=True)
class OpenFlowSettings:
    """The `openflow` config section."""
    listen_host: str = "127.0.0.1"      # --ofp-listen-host overrides it
    message_timeout_s: float = 5.0      # a started message must be complete by then
    handshake_timeout_s: float = 10.0   # HELLO to FEATURES_REPLY
    send_timeout_s: float = 5.0         # longest wait to queue a message for a peer
    max_connections_per_address: int = 256
    fast_path: bool = True              # packet-ins of our apps' tables: controller/fastpath.py

    def __post_init__(self):
        try:
            ipaddress.ip_address(self.listen_host)
        except ValueError:
            raise ValueError(f"listen_host must be an IP address, not {self.listen_host!r}") \
                from None
        for name in ("message_timeout_s", "handshake_timeout_s", "send_timeout_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not 0 < value <= 3600:
                raise ValueError(f"{name} must be a number of seconds in (0, 3600], "
                                 f"not {value!r}")
        limit = self.max_connections_per_address
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 65535:
            raise ValueError(f"max_connections_per_address must be an integer 1..65535, "
                             f"not {limit!r}")
        if not isinstance(self.fast_path, bool):
            raise ValueError(f"fast_path must be true or false, not {self.fast_path!r}")


_settings = OpenFlowSettings()
_open = collections.Counter()  # peer address -> open connections
_holding = set()  # greenlets holding a connection slot (controller/channel.py TLS first)
_original = {}


def configure(settings: OpenFlowSettings) -> None:
    """Use `settings` for connections accepted from now on; the listen host applies if
    the OpenFlow listener has not started yet (it binds once)."""
    global _settings
    _settings = settings
    fastpath.enabled = settings.fast_path
    cfg.CONF.set_default("ofp_listen_host", settings.listen_host)


def settings() -> OpenFlowSettings:
    return _settings


def _who(datapath) -> str:
    address = datapath.address
    peer = f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)
    dpid = f"datapath {format_dpid(datapath.id)}" if datapath.id is not None else "no dpid yet"
    return f"switch at {peer} ({dpid})"


def _shut(datapath) -> None:
    """Close the connection: apps see it go (DEAD_DISPATCHER) and a receive loop blocked
    in recv wakes up at once."""
    datapath.close()
    try:
        datapath.socket.shutdown(socket_module.SHUT_RDWR)
    except OSError:
        pass


def reject(datapath, raw, reason) -> None:
    version, msg_type, msg_len, xid = ofcheck.HEADER.unpack_from(bytes(raw[:8]).ljust(8, b"\0"))
    LOG.warning("%s from %s: %s; version 0x%02x type %d (%s) length %d xid %d, %d bytes, "
                "head %s; connection closed", PARSE_ERROR_MARK, _who(datapath), reason,
                version, msg_type, _type_name(msg_type), msg_len, xid, len(raw),
                bytes(raw[:HEX_HEAD]).hex())
    _shut(datapath)


def _type_name(msg_type) -> str:
    from ryu.ofproto import ofproto_v1_3 as ofp
    names = {v: k for k, v in vars(ofp).items() if k.startswith("OFPT_")}
    return names.get(msg_type, "unknown")


def _parser_module(datapath, version):
    """The parser for a message of `version`: before the handshake only a HELLO arrives
    and may name any version Ryu knows; after it, only the negotiated one is accepted."""
    if datapath.state == HANDSHAKE_DISPATCHER:
        return ofproto_protocol._versions.get(version, (None, None))[1]
    return datapath.ofproto_parser if version == datapath.ofproto.OFP_VERSION else None


def handle(datapath, raw, offer=True) -> bool:
    """Check, parse and dispatch one whole message; False if it closed the connection.
    `offer`: a packet-in goes to the fast path first (not one it has just refused)."""
    version, msg_type, msg_len, xid = ofcheck.HEADER.unpack_from(raw)
    parser = _parser_module(datapath, version)
    if parser is None:
        reject(datapath, raw, f"version 0x{version:02x} is not the connection's")
        return False
    try:
        if version == ofcheck.OFP13 or msg_type == 0:
            ofcheck.check(raw)
        msg = parser.msg_parser(datapath, version, msg_type, msg_len, xid, raw)
    except ofcheck.Malformed as err:
        reject(datapath, raw, str(err))
        return False
    except Exception as err:  # noqa: BLE001 - hostile bytes into a third-party parser:
        # whatever it raises (struct.error, KeyError, TypeError, ...) means these bytes
        # are not a message we can use. Handlers run below, outside this try.
        reject(datapath, raw, f"Ryu's parser raised {type(err).__name__}: {err}")
        return False
    if msg is None or offer and msg_type == fastpath.PACKET_IN and \
            fastpath.packet_in_msg(datapath, msg):
        return True
    if msg_type == FEATURES_REPLY and datapath.id is None:
        # Ryu's own handler (run below, after the apps' queues got the event) sets it;
        # an app whose queue was full handled the event meanwhile (100 switches at once)
        # and saw no id
        datapath.id = msg.datapath_id
    ev = ofp_event.ofp_msg_to_ev(msg)
    datapath.ofp_brick.send_event_to_observers(ev, datapath.state)
    state = datapath.state
    for handler in datapath.ofp_brick.get_handlers(ev):
        if state in handler.callers[ev.__class__].dispatchers:
            handler(ev)
    return True


def _messages(datapath, buf):
    """Handle the whole messages at the start of `buf`; how many bytes they took, or
    None when the connection was closed."""
    offset = 0
    while len(buf) - offset >= 8:
        msg_len = int.from_bytes(buf[offset + 2:offset + 4], "big")
        if msg_len < 8:
            if _before_other(datapath, buf):   # what came before it is handled first
                reject(datapath, buf[offset:offset + 8],
                       f"header length {msg_len} (minimum 8)")
            return None
        if len(buf) - offset < msg_len:
            break
        if not (buf[offset + 1] == fastpath.PACKET_IN and
                fastpath.packet_in_raw(datapath, buf, offset, msg_len)):
            # the packet-ins queued before it go first: nothing overtakes anything
            if not _before_other(datapath, buf) or \
                    not handle(datapath, bytes(buf[offset:offset + msg_len])):
                return None
        offset += msg_len
        if datapath.state == DEAD_DISPATCHER:
            return None
    return offset if _run_pending(datapath, buf) else None


def _run_pending(datapath, buf) -> bool:
    """The fast path's queued packet-ins (controller/fastpath.py); those it leaves take
    the normal path, in order. False if the connection closed."""
    return fastpath.run_pending(datapath, buf, lambda raw: handle(datapath, raw, offer=False))


def _before_other(datapath, buf) -> bool:
    """Before a message that is not a packet-in of the fast path: the packet-ins
    queued before it are handled and what they produced is sent (handling it may yield
    to the apps, which may send to this switch themselves: nothing may overtake)."""
    done = _run_pending(datapath, buf)
    fastpath.flush(datapath)
    return done


def _deadline(datapath, connected, partial_since):
    limits = []
    if datapath.state != MAIN_DISPATCHER:
        limits.append((connected + _settings.handshake_timeout_s, "no handshake within "
                       f"{_settings.handshake_timeout_s:g} s"))
    if partial_since is not None:
        limits.append((partial_since + _settings.message_timeout_s, "a message started "
                       f"and not completed within {_settings.message_timeout_s:g} s"))
    return min(limits) if limits else (None, None)


def recv_loop(datapath):
    """Datapath._recv_loop, bounded (see the module docstring)."""
    buf, connected, partial_since = bytearray(), time.monotonic(), None
    sock = datapath.socket
    while datapath.state != DEAD_DISPATCHER:
        deadline, why = _deadline(datapath, connected, partial_since)
        chunk = None
        try:
            if deadline is None:
                chunk = sock.recv(READ_SIZE)  # the socket's own timeout (Ryu's 5 s)
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    LOG.warning("%s: %s: %s, %d bytes of it held; closed", TIMEOUT_MARK,
                                _who(datapath), why, len(buf))
                    _shut(datapath)
                    return
                with hub.Timeout(remaining, False):
                    chunk = sock.recv(READ_SIZE)
                if chunk is None:
                    continue
        except (socket_module.timeout, ssl.SSLError):
            continue  # eventlet raises SSLError on an SSL read timeout: retry, like Ryu
        except (EOFError, OSError):
            return
        if not chunk:
            return
        # when this read arrived: the packet-in handling latency is measured from here
        # (controller/fastpath.py's flush, the app base's handlers of Ryu's events)
        datapath.sdn_read_at = time.perf_counter()
        buf += chunk
        try:
            offset = _messages(datapath, buf)
        finally:   # the replies of this read's packet-ins, in one send
            fastpath.flush(datapath)
        if offset is None:
            return
        if offset:
            del buf[:offset]
            partial_since = time.monotonic() if buf else None
        elif partial_since is None:
            partial_since = time.monotonic()
        hub.sleep(0)


def send(datapath, buf, close_socket=False):
    """Datapath.send, bounded: waits at most send_timeout_s for room in the send queue,
    then closes the connection of a peer that does not read."""
    if not datapath._send_q_sem.acquire(timeout=_settings.send_timeout_s):
        if datapath.state != DEAD_DISPATCHER:
            LOG.warning("%s: %s %s (send queue full for %g s); closed", TIMEOUT_MARK,
                        _who(datapath), NOT_READING_MARK, _settings.send_timeout_s)
            _shut(datapath)
        return False
    if datapath.send_q:
        datapath.send_q.put((buf, close_socket))
        return True
    datapath._send_q_sem.release()
    return False


def send_loop(datapath):
    """Ryu's send loop, then: if it ended on a timeout or socket error while the
    connection was up, close it (Ryu left it open with nothing ever sent again)."""
    _original["send_loop"](datapath)
    if datapath.state != DEAD_DISPATCHER:
        LOG.warning("%s: %s %s (a write timed out or failed); closed", TIMEOUT_MARK,
                    _who(datapath), NOT_READING_MARK)
        _shut(datapath)


@contextlib.contextmanager
def connection_slot(address):
    """One of the max_connections_per_address slots of `address`, held for the life of
    a connection from its accept: the TLS listener (controller/channel.py) takes it
    before the TLS handshake, so peers stuck in a handshake count too. Yields False when
    the address has no slot left. A slot taken again in the greenlet that holds one (the
    TLS listener hands the connection to connection_factory) is the same slot."""
    me = greenlet.getcurrent()
    if me in _holding:
        yield True
        return
    host = address[0] if isinstance(address, tuple) else str(address)
    limit = _settings.max_connections_per_address
    if _open[host] >= limit:
        LOG.warning("%s from %s: %d open, limit %d; refused %s:%s", TOO_MANY_MARK, host,
                    _open[host], limit, host, address[1] if isinstance(address, tuple) else "")
        yield False
        return
    _open[host] += 1
    _holding.add(me)
    try:
        yield True
    finally:
        _holding.discard(me)
        _open[host] -= 1
        if not _open[host]:
            del _open[host]


def connection_factory(sock, address):
    """Ryu's datapath_connection_factory, with at most max_connections_per_address."""
    with connection_slot(address) as admitted:
        if not admitted:
            sock.close()
            return
        _original["factory"](sock, address)


def _experimenter_multipart(cls, buf, offset):
    """OFPExperimenterMultipart.parser, consuming the rest of the message (one body)."""
    stats = _original["experimenter_multipart"].__func__(cls, buf, offset)
    stats.length = len(buf) - offset
    return stats


def install() -> None:
    """Idempotent; see the module docstring for when it runs."""
    if _original:
        return
    from ryu.ofproto import ofproto_v1_3_parser
    body = ofproto_v1_3_parser.OFPExperimenterMultipart
    _original["experimenter_multipart"] = body.parser
    body.parser = classmethod(_experimenter_multipart)
    datapath = ryu_controller.Datapath
    _original.update(send_loop=datapath._send_loop,
                     factory=ryu_controller.datapath_connection_factory)
    # Ryu's own decorator closes the socket when the loop ends, as for its loop.
    datapath._recv_loop = ryu_controller._deactivate(recv_loop)
    datapath.send = send
    datapath._send_loop = send_loop
    ryu_controller.datapath_connection_factory = connection_factory
    cfg.CONF.set_default("ofp_listen_host", _settings.listen_host)
