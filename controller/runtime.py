"""The runtime all apps of one ryu-manager share: one object, handed to every app as
a Ryu context (`_CONTEXTS["runtime"]`, like `wsgi`; ryu-manager builds it once).

It holds what used to be module-level registries (claims, reload participants, the
WSGI applications that serve the runtime's routes), the readiness of each switch,
the state store of each app, and the one sender: every message to a switch, from
every app, leaves through `Runtime.send`, so "may this node write to this switch"
(`may_write`: is this node the switch's master, controller/roles.py) is asked in one
place. The election behind it is `elector` (controller/mastership.py; a single node by
default, which may always write and speaks no role protocol; an etcd-backed one with a
`cluster` config section: `configured_elector`, controller/etcd_elector.py).

Module order (no cycles, tests/unit/test_runtime_object.py): rest is a leaf;
reload and runtime_api build on it; this module on those; southbound on this.
"""
import collections
import logging
import os
import weakref
from typing import Dict

from ryu.ofproto import ofproto_v1_3_parser as ofp_parser

from controller import (claims, config, mastership, metrics, ofcompile, reload, rest, roles,
                        runtime_api, state, switch_names, switch_view)
from controller.switch_errors import SwitchRefused, SwitchTimeout
from flows.dpid import format as format_dpid

LOG = logging.getLogger(__name__)
# asking a switch is not writing to it (an OpenFlow "slave" controller may read too)
READS = (ofp_parser.OFPMultipartRequest,)

PENDING, RECONCILED, LEFT_ALONE = "pending", "reconciled", "left alone"


class Readiness:
    """Which apps have made each connected switch hold what they want (reconciled) or
    leave it to the app that owns it: GET /v1/runtime/switches. Kept per connection:
    a switch that reconnects is pending again for every app."""

    def __init__(self):
        self.apps = []        # every app that takes switches, in the order they started
        self._switches = {}   # dpid -> (datapath, {app: PENDING | RECONCILED | LEFT_ALONE})

    def join(self, app: str) -> None:
        if app not in self.apps:
            self.apps.append(app)

    def connected(self, datapath) -> None:
        """A switch's features arrived (asked once per app: only the first of a
        connection starts its entry, with every app pending)."""
        entry = self._switches.get(datapath.id)
        if entry is None or entry[0] is not datapath:
            self._switches[datapath.id] = (datapath, dict.fromkeys(self.apps, PENDING))

    def mark(self, app: str, datapath, how: str) -> None:
        entry = self._switches.get(datapath.id)
        if entry is not None and entry[0] is datapath:  # not an older connection's news
            entry[1][app] = how

    def gone(self, datapath) -> None:
        entry = self._switches.get(datapath.id)
        if entry is not None and entry[0] is datapath:
            del self._switches[datapath.id]

    def describe(self):
        return [{"dpid": rest.format_dpid(dpid), "apps": dict(sorted(apps.items())),
                 "reconciled": all(how != PENDING for how in apps.values())}
                for dpid, (_, apps) in sorted(self._switches.items())]


def configured_store(data=None):
    """app name -> its StateStore, as the config file's `state` section says (SQLite by
    default; etcd for a cluster: controller/etcd_store.py). StateError when the section
    is wrong: the apps stop at start with the reason."""
    try:
        settings = config.state_settings(data)
    except config.ConfigError as err:
        raise state.StateError(str(err)) from None
    if settings.backend == "sqlite":
        return state.SqliteStateStore
    from controller import etcd_store   # only where configured: it loads etcd3gw
    return etcd_store.factory(settings.etcd)


def configured_elector(data=None) -> mastership.Elector:
    """The elector the config file asks for (None: the running one): EtcdElector with
    a `cluster` section, SingleNode without; SDN_TEST_ELECTOR wins over both. A bad
    `cluster` section, or a node the cluster refuses, stops ryu-manager with the reason."""
    if os.environ.get(mastership.TEST_ELECTOR_ENV):
        return mastership.from_environment()
    if data is None:
        try:
            data = config.load_file()
        except config.ConfigError:
            return mastership.SingleNode()   # the apps stop at start naming the file's error
    try:
        found = config.cluster_settings(data)
    except config.ConfigError as err:
        raise SystemExit(f"cluster: {err}") from None
    if found is None:
        return mastership.SingleNode()
    from controller import etcd_elector   # only for a cluster: it loads etcd3gw
    cluster, etcd = found
    LOG.info("mastership: node %s of a cluster on etcd %s", cluster.node_id,
             ", ".join(etcd.endpoints))
    return etcd_elector.EtcdElector(cluster, etcd, etcd_elector.process_record(data))


class Runtime:
    def __init__(self, store=None, elector=None):
        self.claims = claims.Claims()
        self.reload = reload.Reloader()
        self.readiness = Readiness()
        # bridge names, for references by name: the LOCAL port's, else what OVSDB said
        self.names = switch_names.SwitchNames(fallback=self.claims.known_name)
        # the switch-to-switch links the topology app found (controller/trace.py follows a
        # packet over them); none without that app
        self.links = frozenset()
        self.refused = collections.Counter()   # dpid -> messages may_write stopped
        # dpid -> (datapath, [apps]): the connection and the apps that serve it, whose
        # `request` reads it for the runtime's own routes (controller/switch_view.py)
        self._readers: Dict[int, tuple] = {}
        self._store = store   # app name -> its state.StateStore (None: configured_store)
        self._served = weakref.WeakSet()       # WSGI applications with our routes
        self._live = weakref.WeakSet()         # connections counted as connected
        self.roles = roles.Roles(elector or configured_elector(), _send_together)

    def state(self, app: str) -> state.StateStore:
        """Where `app` keeps its REST-made document."""
        if self._store is None:   # asked at the first app's start: one client for all
            self._store = configured_store()
        return self._store(app)

    def register(self, wsgi, controller_cls, data) -> None:
        """An app's REST controller on `wsgi`, and the runtime's routes with it (once
        per WSGI application)."""
        rest.register(wsgi, controller_cls, data)
        if wsgi not in self._served:
            self._served.add(wsgi)
            rest.register(wsgi, runtime_api.RuntimeRest, self)

    def may_write(self, dpid: int) -> bool:
        """Whether this node may change switch `dpid`: always for a single node; in a
        cluster, once it is the switch's confirmed master (ROLE_REPLY and a barrier)."""
        return self.roles.may_write(dpid)

    def connected(self, datapath) -> bool:
        """A switch's features arrived (the app base tells, once per app): readiness
        starts, and a cluster node sends SLAVE and contends for the switch. Counted
        once per connection in /metrics; True the first time for this connection."""
        new = datapath not in self._live
        if new:
            self._live.add(datapath)
            metrics.CONNECTIONS.inc(datapath.id)
        self.readiness.connected(datapath)
        self.roles.connected(datapath)
        if self.names.connected(datapath):   # its LOCAL port's name is the bridge's
            self.send(datapath, [ofcompile.port_desc_request(datapath)])
        return new

    def serves(self, app, datapath) -> None:
        """`app` (a southbound.SdnApp) handles this switch's events: the runtime may
        read the switch through it (a new connection of the switch replaces an old
        one's apps)."""
        current = self._readers.get(datapath.id)
        if current is None or current[0] is not datapath:
            current = self._readers[datapath.id] = (datapath, [])
        if app not in current[1]:
            current[1].append(app)

    def gone(self, datapath) -> None:
        """A connection ended (each app tells); one that had connected is counted."""
        if datapath in self._live:
            self._live.discard(datapath)
            metrics.DISCONNECTIONS.inc(datapath.id)
        self.readiness.gone(datapath)
        self.roles.gone(datapath)
        self.names.gone(datapath)
        if self._readers.get(datapath.id, (None, None))[0] is datapath:
            del self._readers[datapath.id]

    def switch_flows(self, dpid: int):
        """Every entry switch `dpid` holds (switch_view.describe); None when no app
        serves a switch of that id; an ApiError 504 when the switch does not answer, 502
        when it answers with an OpenFlow error."""
        stats = self._read(dpid, ofcompile.all_flows_request)
        return None if stats is None else switch_view.describe(stats)

    def switch_ports(self, dpid: int):
        """Switch `dpid`'s port counters (switch_view.describe_ports), as switch_flows."""
        stats = self._read(dpid, ofcompile.port_stats_request)
        return None if stats is None else switch_view.describe_ports(stats)

    def _read(self, dpid, request):
        datapath, apps = self._readers.get(dpid, (None, ()))
        # one that still sees the switch's replies (a claim made since may cut one off)
        app = next((a for a in apps if not self.claims.leaves_alone(a.name, dpid)), None)
        if app is None:
            return None
        try:
            return app.request(datapath, request(datapath))
        except SwitchRefused as err:
            raise rest.ApiError(502, str(err)) from None
        except SwitchTimeout as err:
            raise rest.ApiError(504, str(err)) from None

    def on_master(self, listener) -> None:
        """listener(datapath): this node became the switch's master (cluster only):
        the app base has its app converge the switch."""
        self.roles.listen(listener)

    def describe_switches(self):
        """GET /v1/runtime/switches: readiness, the bridge's name (None until its
        port description arrived), and in a cluster this node's role."""
        switches = self.readiness.describe()
        for entry in switches:
            entry["name"] = self.names.name_of(int(entry["dpid"], 16))
        if self.roles.clustered:
            for entry in switches:
                dpid = int(entry["dpid"], 16)
                entry.update(self.roles.describe(dpid), refused=self.refused[dpid])
        return switches

    def send(self, datapath, messages) -> bool:
        """The one way out to a switch: `messages` (Ryu message objects, in order) as
        one write, unless they change the switch and this node may not write to it.
        True when sent."""
        if not self.may_write(datapath.id) and \
                not all(isinstance(message, READS) for message in messages):
            self.refused[datapath.id] += len(messages)
            LOG.debug("not sending %d message(s) to switch %s: this node may not write "
                      "to it", len(messages), format_dpid(datapath.id))
            return False
        _send_together(datapath, messages)
        return True

    def send_packed(self, datapath, buf: bytes) -> bool:
        """`send` for messages already packed (the packet-in fast path,
        controller/fastpath.py): one write, unless this node may not write to the
        switch (they change it). True when sent."""
        if not self.may_write(datapath.id):
            self.refused[datapath.id] += _count_messages(buf)
            LOG.debug("not sending %d packed bytes to switch %s: this node may not write "
                      "to it", len(buf), format_dpid(datapath.id))
            return False
        datapath.send(buf)
        return True


def _count_messages(buf: bytes) -> int:
    count = offset = 0
    while offset + 4 <= len(buf):
        offset += max(8, int.from_bytes(buf[offset + 2:offset + 4], "big"))
        count += 1
    return count


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
