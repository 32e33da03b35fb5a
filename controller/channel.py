"""The OpenFlow channel: TLS that works for more than one switch, and one connection
per datapath id.

Ryu 4.34's TLS listener (ryu.lib.hub.StreamServer) builds its SSL context from
arguments it pops on the first connection, so every later connection is wrapped
without a certificate and fails. `TlsStreamServer` builds the context once (TLS 1.2
or newer; with `--ca-certs`, a client certificate from that CA is required) and
closes connections whose handshake fails, logging why.

Ryu also lets a second connection that reports an existing datapath id replace the
switch in every app. `install()` puts a guard in front of Ryu's OpenFlow event
dispatch: while the first connection of a datapath id is up, a second one naming
the same id is refused (closed, its events dropped), so it cannot take the switch
over. A switch that reconnects after its old connection died is accepted.

A refusal also puts the holder to the test: it gets an echo request and PROBE_SECONDS
to answer. A live switch answers at once and keeps its place; a connection that is
only half-open (the switch went away without a FIN, so Ryu, which sends no echoes by
default, would hold it for a long time) is closed, and the switch's next attempt is
accepted.
"""
import logging
import socket
import ssl

from ryu.controller import ofp_event, ofp_handler  # first: they import Ryu's controller
from ryu.controller import controller as ryu_controller  # noqa: I100
from ryu.controller.handler import DEAD_DISPATCHER
from ryu.lib import hub

from controller import ofguard
from flows.dpid import format as format_dpid

LOG = logging.getLogger(__name__)
REFUSED_MARK = "refused a second connection"  # tests grep logs for this
SILENT_MARK = "did not answer an echo"        # and for this
PROBE_SECONDS = 2.0
_holders = {}  # datapath id -> the Datapath that holds it
_probed = set()  # holders with an echo out


class TlsStreamServer(hub.StreamServer):
    def __init__(self, listen_info, handle=None, backlog=None, spawn="default", **ssl_args):
        super().__init__(listen_info, handle, backlog, spawn)
        if not ssl_args:
            return
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(ssl_args["certfile"], ssl_args["keyfile"])
        if ssl_args.get("ca_certs"):
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(ssl_args["ca_certs"])

        def wrap_and_handle(sock, addr):
            # a peer in its TLS handshake holds one of its address's connection slots
            # (openflow.max_connections_per_address), as a connected switch does
            with ofguard.connection_slot(addr) as admitted:
                if not admitted:
                    sock.close()
                    return
                handshake_and_handle(sock, addr)

        def handshake_and_handle(sock, addr):
            # a peer that opens the port and never finishes its TLS handshake would hold
            # this green thread and the socket forever: it gets the OpenFlow handshake's
            # budget (openflow.handshake_timeout_s), then it is closed
            wrapped, budget = sock, ofguard.settings().handshake_timeout_s
            try:   # one deadline for the whole handshake (a byte now and then is no help)
                with hub.Timeout(budget, socket.timeout(
                        f"TLS handshake not finished within {budget:g} s")):
                    # the TLS socket takes the descriptor over: it is the one to close
                    wrapped = context.wrap_socket(sock, server_side=True,
                                                  do_handshake_on_connect=False)
                    wrapped.do_handshake()
            except (ssl.SSLError, OSError) as err:
                LOG.warning("refused a TLS connection from %s:%s: %s", addr[0], addr[1], err)
                wrapped.close()
                return
            handle(wrapped, addr)
        self.handle = wrap_and_handle


def _alive(datapath) -> bool:
    return datapath.is_active and datapath.state != DEAD_DISPATCHER


def _claim(datapath, dpid, spawn=hub.spawn) -> bool:
    holder = _holders.get(dpid)
    if holder is not None and holder is not datapath and _alive(holder):
        LOG.warning("%s claiming datapath %s (from %s; it is held by %s)", REFUSED_MARK,
                    format_dpid(dpid), datapath.address, holder.address)
        if holder not in _probed:
            _probed.add(holder)
            spawn(_probe, holder, dpid)
        return False
    _holders[dpid] = datapath
    return True


def _release(datapath) -> None:
    """A connection ended: forget it as its id's holder, so the dead Datapath (its
    socket, queues, ports and greenthread references) can be garbage-collected; with
    hostile peers cycling through datapath ids these pile up otherwise."""
    if datapath is not None and _holders.get(datapath.id) is datapath:
        del _holders[datapath.id]


def _probe(holder, dpid, seconds=None):
    """Close `holder` unless it answers an echo request within `seconds` (Ryu's own
    echo reply handler removes the xid from `unreplied_echo_requests`)."""
    try:
        echo = holder.ofproto_parser.OFPEchoRequest(holder)
        xid = holder.set_xid(echo)
        holder.unreplied_echo_requests.append(xid)
        holder.send_msg(echo)
        hub.sleep(PROBE_SECONDS if seconds is None else seconds)
        if xid in holder.unreplied_echo_requests:
            holder.unreplied_echo_requests.remove(xid)
            if _holders.get(dpid) is holder and _alive(holder):
                LOG.warning("datapath %s: the connection from %s %s within %.1f s while "
                            "another claimed its id: closed", format_dpid(dpid), holder.address,
                            SILENT_MARK, PROBE_SECONDS if seconds is None else seconds)
                holder.close()
    finally:
        _probed.discard(holder)


def _guarded(send):
    def send_event_to_observers(self, ev, state=None):
        datapath = getattr(getattr(ev, "msg", None), "datapath", None) or \
            getattr(ev, "datapath", None)
        if getattr(datapath, "sdn_refused", False):
            return None  # nothing of a refused connection reaches the apps
        if isinstance(ev, ofp_event.EventOFPStateChange) and ev.state == DEAD_DISPATCHER:
            _release(datapath)
        if isinstance(ev, ofp_event.EventOFPSwitchFeatures) and \
                not _claim(datapath, ev.msg.datapath_id):
            datapath.sdn_refused = True
            datapath.close()
            return None
        return send(self, ev, state)
    send_event_to_observers.sdn_guard = True
    return send_event_to_observers


def install() -> None:
    """Idempotent; done when controller.southbound is imported (before Ryu starts its
    OpenFlow listener)."""
    ryu_controller.StreamServer = TlsStreamServer
    handler = ofp_handler.OFPHandler
    if not getattr(handler.send_event_to_observers, "sdn_guard", False):
        handler.send_event_to_observers = _guarded(handler.send_event_to_observers)
