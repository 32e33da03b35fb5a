"""The app base (`SdnApp`): an app declares its config section, REST controller and
state document, and the base does the start-up, the canary watch, /metrics and the one
reconcile path (`converge`). The push of specs and the read-back are in
controller/switch_sync.py. Request/reply (flow stats) is matched by xid in
`SdnApp.request`. Apps send through `SdnApp.push` and `SdnApp.send` only.
"""
import collections
import functools
import gc
import time
import weakref

from prometheus_client.core import GaugeMetricFamily
from ryu.base import app_manager
from ryu.controller import ofp_event
from ryu.controller.handler import (CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER,
                                    set_ev_cls)
from ryu.lib import hub
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as ofp_parser

from controller import (channel, config, fastparse, fastpath, metrics, ofcompile, ofcounters,
                        ofguard, oftemplate, pipeline, readback, rest, runtime, state)
from controller.switch_errors import SwitchRefused  # noqa: F401 (southbound.SwitchRefused)
from controller.switch_sync import (SwitchSlow, SwitchTimeout, count_flow_mods,  # noqa: F401
                                    push, read_entries, reconcile, request_flows)
from controller.claims import LEFT_ALONE_MARK
from flows.dpid import format as format_dpid

fastparse.install()  # our apps read packet-ins with the lean parser
ofcounters.install()  # errors counted per switch, switches named (/metrics)
channel.install()    # working TLS; one connection per datapath id
ofguard.install()    # bounded parsing, per-connection limits (the venv's .pth did it already)

OFP_ERROR_MARK = "OpenFlow error from switch"  # tests grep logs for this


def _dpid_of(ev):
    """The datapath id an OpenFlow event is about (None for other events)."""
    msg = getattr(ev, "msg", None)
    if isinstance(msg, ofp_parser.OFPSwitchFeatures):
        return msg.datapath_id   # Ryu sets datapath.id from it in its own handler
    datapath = getattr(msg, "datapath", None) or getattr(ev, "datapath", None)
    return getattr(datapath, "id", None)


_frozen = []


def _freeze_start_up():
    """Once per process, when the apps start: what ryu-manager built by then (Ryu,
    eventlet, the apps: ~10^5 objects) lives as long as the process, and the cyclic
    GC would scan it again on every full collection; with 100k learned MACs that was
    ~10 % of a packet-in's cost. Garbage is collected first: only what lives stays
    out of the GC's sight (gc.freeze)."""
    if not _frozen:
        gc.collect()
        gc.freeze()
        _frozen.append(True)


def _loaded_classes():
    """The app classes of this ryu-manager (none for an app built alone: unit tests)."""
    classes = list(app_manager.AppManager.get_instance().applications_cls.values())
    return classes + [type(app) for app in app_manager.SERVICE_BRICKS.values()]


def fabric_loaded() -> bool:
    """Whether this ryu-manager runs an app that builds the loop-free fabric. Asked in
    an app's __init__: ryu-manager loads every app class before it instantiates any,
    so the answer does not depend on the order of the apps on the command line."""
    return any(getattr(cls, "BUILDS_FABRIC", False) for cls in _loaded_classes())


def app_loaded(name: str) -> bool:
    """Whether this ryu-manager runs the app whose APP is `name` (asked in __init__, like
    fabric_loaded)."""
    return any(getattr(cls, "APP", None) == name for cls in _loaded_classes())


def _openflow_settings(data):
    """The `openflow` section (listen host, per-connection limits: controller/ofguard.py)."""
    return config.section(ofguard.OpenFlowSettings, "openflow", data)


class SdnApp(app_manager.RyuApp):
    """Base of our apps: OpenFlow 1.3 only, switch errors are never silent, and
    multipart requests get their replies. ryu-manager hands every app the same
    `runtime` (controller/runtime.py) and `wsgi` (the REST server).

    An app declares what it has and the base does its start-up (docs/adding-an-app.md):

    - `APP`: its id in the pipeline declaration (cookies, canary, metrics label);
    - `SETTINGS`: the settings class of its config section (named `APP`), read into
      `self.settings` at start and on every reload (`apply_settings`);
    - `REST`: its REST controller class (rest.AppController), served on `wsgi`;
    - `STATE`: None, "document" or "by_switch" (a document keyed by datapath id): its
      REST-made state, loaded into `restore_state(document)` with `self.revision`,
      saved with `save_state`.

    Then the canary watch (`programmed_datapaths`, `repair`) and /metrics
    (`connected_datapaths`, `metric_families`) run from the hooks below; the base's
    defaults read `self.switches` (dpid -> an object with .datapath)."""
    OFP_VERSIONS = [ofp.OFP_VERSION]
    _CONTEXTS = {"wsgi": rest.WSGIApplication, "runtime": runtime.Runtime}
    # True for an app that makes every switch's flooding loop-free (the topology app):
    # with one loaded, apps that would otherwise take a switch for NORMAL switching
    # leave it in the fabric instead (see fabric_loaded)
    BUILDS_FABRIC = False
    APP = None
    SETTINGS = None
    REST = None
    STATE = None
    STATE_POLL_S = 2.0
    # the tables whose packet-ins the app reads (names); None: any. The packet-in fast
    # path (controller/fastpath.py) gives the event of a packet-in another app handled
    # there to every observer that may want it
    PACKET_IN_TABLES = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # ryu-manager passes the shared one; an app built alone (unit tests) has its own
        self.runtime = kwargs.get("runtime") or runtime.Runtime()
        self.runtime.readiness.join(self.name)
        self.runtime.on_master(lambda datapath: hub.spawn(self.take_over, datapath))
        try:  # before any app starts: the OpenFlow listener binds after all are built
            ofguard.configure(_openflow_settings(None))
        except config.ConfigError as err:
            raise SystemExit(f"openflow: {err}") from None
        self.runtime.reload.participate("openflow", _openflow_settings, ofguard.configure)
        self._waiting = {}  # xid -> (event set on the last reply part, collected bodies)
        self._rechecks = {}  # datapath -> how often a slow switch was checked again
        self.switches = {}  # dpid -> what the app knows of a connected switch (.datapath)
        self._converging = {}  # dpid -> lock: one converge at a time (see `converge`)
        self._handling = 0     # event handlers of this app running now (events_pending)
        self._canaries = None  # (app, watched, on_lost) once watch_canaries runs
        # datapath -> {table id: entries of this app} as its last reconcile left them
        self._reconciled_flows = weakref.WeakKeyDictionary()
        if self.APP is not None:
            self._start(kwargs.get("wsgi"))

    def _start(self, wsgi):
        """The declared start-up: settings, state, REST, reload, canaries, metrics. A bad
        config section or an unreadable state store stops ryu-manager with the reason."""
        app = self.APP
        try:
            if self.SETTINGS is not None:
                self.settings = self.parse_settings(None)
            if self.STATE is not None:
                store = self.runtime.state(app)
                self.store = state.DpidKeyed(store) if self.STATE == "by_switch" else store
                document, self.revision = self.store.load()
                self.restore_state(document)
                self.store.watch(self._state_changed_elsewhere)
        except (config.ConfigError, state.StateError) as err:
            raise SystemExit(f"{app}: {err}") from None
        if self.REST is not None and wsgi is not None:
            self.runtime.register(wsgi, self.REST, self)
        if self.SETTINGS is not None:
            self.runtime.reload.participate(app, self.parse_settings, self.apply_settings)
        self.watch_canaries(app, lambda: self.programmed_datapaths(), self.repair)
        self.contribute_metrics(app, lambda: self.connected_datapaths(), self.metric_families)
        if self.STATE is not None:
            hub.spawn(self._poll_state)

    # --- what an app may override ----------------------------------------------------

    def parse_settings(self, data):
        """The app's settings from a config file's data (None: the running config file)."""
        return config.section(self.SETTINGS, self.APP, data)

    def apply_settings(self, settings):
        """A reloaded config (and another writer's state change): switch over to it."""
        self.settings = settings

    def restore_state(self, document):
        """The REST-made state as loaded (at start, or another writer's newer one)."""
        self.overrides = document

    def connected_datapaths(self):
        return [s.datapath for s in self.switches.values()]

    def programmed_datapaths(self):
        """The datapaths whose entries the canary watch guards (the app pushed them)."""
        return [s.datapath for s in self.switches.values() if getattr(s, "ready", False)]

    def repair(self, datapath):
        """The canary of `datapath` is gone: put the app's entries back."""

    def metric_families(self):
        return ()

    def take_over(self, datapath):
        """In a greenlet: this cluster node has just become the switch's master (its
        writes were refused until now): converge it, by diff, like a canary repair."""
        self.repair(datapath)

    def packet_in_table_ids(self):
        """PACKET_IN_TABLES as table ids (None: any table)."""
        if self.PACKET_IN_TABLES is None:
            return None
        return frozenset(pipeline.table_id(name) for name in self.PACKET_IN_TABLES)

    def serve_packet_ins(self, table: str, handler) -> None:
        """Take the packet-ins of `table` on the fast path: `handler(datapath,
        packet_ins, sink)` runs in the connection's receive loop with the [(in_port,
        frame)] of one read, and sends with `sink.write(datapath, items, barrier)` as
        with `push` (or `sink.add` of a precompiled template: controller/oftemplate.py);
        it returns False for packet-ins it leaves to the app's event handler (having
        changed nothing). See controller/fastpath.py."""
        fastpath.serve(self, pipeline.table_id(table), handler, oftemplate.pack,
                       oftemplate.next_xids, count_flow_mods)

    # --- what REST asks about a switch -------------------------------------------------

    def serves(self, switch) -> bool:
        """Whether REST may act on a connected switch: yes, unless the app keeps a `ready`
        flag (set once it has taken the switch over) that is still down."""
        return getattr(switch, "ready", True)

    def dpid_of(self, ref) -> int:
        """A REST switch reference (a bridge name or a datapath id) as a datapath id,
        or the ApiError it deserves (rest.resolve_switch)."""
        return rest.resolve_switch(ref, self.runtime.names)

    def switch(self, dpid):
        """The app's entry of switch `dpid`; a 404 unless it is connected and served."""
        switch = self.switches.get(dpid)
        if switch is None or not self.serves(switch):
            raise rest.ApiError(404, f"no switch {rest.format_dpid(dpid)} is connected")
        return switch

    def switch_port(self, dpid, port_ref):
        """(switch, port number) for a port given by number or name; a 400 if it has none."""
        switch = self.switch(dpid)
        number = switch.resolve(port_ref)
        if number is None:
            raise rest.ApiError(400, f"switch {rest.format_dpid(dpid)} has no port {port_ref!r}")
        return switch, number

    # --- REST-made state ----------------------------------------------------------------

    def save_state(self, document, based_on=None):
        """Save `document` over `based_on`, the revision it was built from (default: the
        one this app last loaded, saved or took from another writer: pass it when the
        document was built before something that yields, as another writer's state may
        be taken meanwhile); the caller switches to it only after this returned.
        Another writer's save meanwhile is a 409: this app takes that writer's state (as
        a reload would) and the client retries on it. A store that cannot write is a
        500. Either way nothing is saved."""
        try:
            self.revision = self.store.save(
                document, self.revision if based_on is None else based_on)
        except state.StateConflict as err:
            try:   # applied in its own greenlet: the caller may hold the app's lock
                self._state_changed_elsewhere(
                    *self.store.load(), apply=lambda run: hub.spawn(run))
            except state.StateError as load_err:
                self.logger.error("%s: cannot reload state: %s", self.APP, load_err)
            raise rest.ApiError(409, str(err)) from None
        except state.StateError as err:
            raise rest.ApiError(500, str(err)) from None

    def _state_changed_elsewhere(self, document, revision, apply=lambda run: run()):
        self.logger.warning("%s: state changed by another writer (revision %s): applying it",
                            self.APP, revision)
        self.revision = revision
        self.restore_state(document)
        apply(lambda: self.apply_settings(getattr(self, "settings", None)))   # as it runs then

    def _poll_state(self):
        while True:
            hub.sleep(self.STATE_POLL_S)
            try:
                self.store.poll()
            except state.StateError as err:
                self.logger.warning("%s: %s", self.APP, err)
            except Exception:   # noqa: BLE001 - the loop must outlive one bad change
                self.logger.exception("%s: applying another writer's state failed", self.APP)

    def get_handlers(self, ev, state=None):
        """Ryu's dispatch, minus the events of switches another app owns outright
        (controller/claims.py). A connection's end always gets through: an app that
        had the switch before it was claimed must still forget it."""
        gone = isinstance(ev, ofp_event.EventOFPStateChange) and ev.state == DEAD_DISPATCHER
        features = isinstance(ev, ofp_event.EventOFPSwitchFeatures)
        dpid, claims = _dpid_of(ev), self.runtime.claims
        if features:
            # a cluster's SLAVE goes out first; the runtime asks a new connection for its
            # ports once, whose LOCAL port names the switch (REST, CLI, /metrics)
            self.runtime.connected(ev.msg.datapath)
        if gone:
            claims.forget_name(dpid)
            self.runtime.gone(ev.datapath)
        elif claims.leaves_alone(self.name, dpid):
            if features:
                self.logger.info("%s: %s switch %s: it is %s's", self.name,
                                 LEFT_ALONE_MARK, format_dpid(dpid), claims.owner(dpid))
                self.leave_alone(ev.msg.datapath)
            return []
        elif features:   # this app sees the switch's replies: the runtime may read through it
            self.runtime.serves(self, ev.msg.datapath)
        # a packet-in's handling latency runs from its read's arrival (fastparse.py)
        read_at = getattr(ev.msg, "sdn_read_at", None) \
            if isinstance(ev, ofp_event.EventOFPPacketIn) else None
        return [self._tracked(handler, read_at) for handler in super().get_handlers(ev, state)]

    def _tracked(self, handler, read_at=None):
        """`handler`, counted in `_handling` while it runs (it may yield midway); with
        `read_at`, its end is observed in the packet-in latency histogram."""
        @functools.wraps(handler)   # Ryu's log of a handler that raised names it
        def run(ev):
            self._handling += 1
            try:
                return handler(ev)
            finally:
                self._handling -= 1
                if read_at is not None:
                    metrics.PACKET_IN_LATENCY.observe("event", time.perf_counter() - read_at)
        return run

    def events_pending(self) -> bool:
        """Whether events of this app wait in its queue or are being handled. The fast
        path's handlers then leave their packet-ins to the event path, behind them: a
        port that went down or a host's expiry, queued before a packet-in, is applied
        before the packet-in is decided, as on Ryu's path."""
        return self._handling > 0 or not self.events.empty()

    def start(self):
        """Ryu starts each app once all are built, before any switch is accepted."""
        _freeze_start_up()
        return super().start()

    def request(self, datapath, message, timeout=5.0):
        """Send a multipart request and return the bodies of all its reply parts."""
        datapath.set_xid(message)
        done, bodies, errors = hub.Event(), [], []
        self._waiting[message.xid] = (done, bodies, errors)
        try:
            self.runtime.send(datapath, [message])   # a read: always sent
            if not done.wait(timeout=timeout):
                raise SwitchTimeout(f"switch {format_dpid(datapath.id)} did not answer "
                                    f"{type(message).__name__} within {timeout} s")
            if errors:
                raise SwitchRefused(f"switch {format_dpid(datapath.id)} answered "
                                    f"{type(message).__name__} with {errors[0]}")
            return bodies
        finally:
            self._waiting.pop(message.xid, None)

    def contribute_metrics(self, app, watched, more=None):
        """/metrics for this app: switches connected, its entries per switch and table
        as of their last reconcile (no switch is asked at scrape time), and `more()`'s
        families."""
        def families():
            connected = GaugeMetricFamily("sdn_switches_connected",
                                          "Switches an app has connected", labels=["app"])
            flows = GaugeMetricFamily(
                "sdn_flows", "Entries an app holds on a switch, per table, as its last "
                "reconcile left them (what it read back, plus what it added, minus what it "
                "removed; no switch is asked at scrape time). Entries the app changed since "
                "(learned hosts, port changes) and entries that expired are not in it: "
                "sdn_flow_mods_total counts the changes",
                labels=["app", "dpid", "dp_name", "table"])
            datapaths = list(watched())
            connected.add_metric([app], len(datapaths))
            for datapath in datapaths:
                tables = self._reconciled_flows.get(datapath, {})
                for table, count in sorted(tables.items()):
                    flows.add_metric([app] + metrics.switch_labels(datapath.id) + [str(table)],
                                     count)
            yield from (connected, flows)
            if more is not None:
                yield from more()
        metrics.contribute(app, families)

    def entries_reconciled(self, datapath, entries) -> None:
        """`entries` (readback.Entry values) are what the switch holds of what this app
        reconciled: its flows per table are its sdn_flows until the next reconcile."""
        self._reconciled_flows[datapath] = collections.Counter(
            entry.slot[1] for entry in entries if entry.kind == "flow"
            and getattr(entry.item, "owner", None) is not None and entry.item.owner.app == self.APP)

    # The canary watch. The canary carries OFPFF_SEND_FLOW_REM (controller/pipeline.py),
    # so a delete that takes it (ovs-ofctl del-flows of the bridge or of its table 0,
    # another controller's delete) makes the switch send a FLOW_REMOVED at once:
    # `_canary_removed` checks and repairs within a round trip (OVS 3.1, seen: reason
    # DELETE about 35 ms after `ovs-ofctl del-flows br`, likewise for `table=N` of the
    # entry's table; a del-flows test's entries were back in 0.2 s, 1.7 s before).
    # The poll is only the backstop for a loss that sends nothing (a notification lost
    # on the way, a switch whose async config drops flow-removed messages). It used to
    # ask every switch every 2 s: one flow-stats request per app and switch, which with
    # 100 idle switches was most of the controller's idle CPU (issue 19). Now each
    # switch is asked at most every CANARY_INTERVAL_S and an app asks at most
    # CANARY_CHECKS_PER_S switches a second, one at a time, spread over the round (no
    # burst of requests): a small network keeps its 2 s backstop, 100 switches are each
    # asked every 100 s (a check costs about 1 ms of CPU: five apps, 0.5 % of a core).
    CANARY_INTERVAL_S = 2.0
    CANARY_CHECKS_PER_S = 1.0

    def watch_canaries(self, app, watched, on_lost):
        """Look for `app`'s canary entry (pipeline.canary, part of what the app
        reconciles) on each datapath `watched()` gives, when the switch says it was
        removed and in a slow poll (see above); when it is gone the switch lost the
        app's entries without reconnecting (an admin's del-flows, a datapath that lost
        its tables): `on_lost(datapath)` puts them back."""
        self._canaries = (app, watched, on_lost)

        def canary_loop():
            while True:
                datapaths = list(watched())
                if not datapaths:
                    hub.sleep(self.CANARY_INTERVAL_S)
                    continue
                pause = max(self.CANARY_INTERVAL_S / len(datapaths),
                            1.0 / self.CANARY_CHECKS_PER_S)
                for datapath in datapaths:
                    hub.sleep(pause)
                    self._check_canary(datapath)
        return hub.spawn(canary_loop)

    def _check_canary(self, datapath):
        app, _, on_lost = self._canaries
        if datapath.state == DEAD_DISPATCHER:
            return   # gone since the round began: its reconnect reconciles it
        if not self.runtime.may_write(datapath.id):
            return   # a cluster's slave: the master repairs, on its win we do
        if self.canary_gone(app, datapath):
            self.logger.warning("%s: switch %s lost its entries (canary gone): "
                                "putting them back", app, format_dpid(datapath.id))
            on_lost(datapath)

    def canary_gone(self, app, datapath):
        try:
            return not request_flows(self, datapath, pipeline.canary_owner(app))
        except SwitchTimeout:
            return False  # a slow switch is not a wiped one

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _learn_bridge_name(self, ev):
        """The runtime asked every new connection for its ports: the LOCAL one is
        named after the bridge (each app sees the reply; naming it twice is harmless)."""
        for number, name in ofcompile.decode_port_desc(ev.msg):
            if number == ofcompile.LOCAL_PORT:
                self.runtime.names.named(ev.msg.datapath, name)

    @set_ev_cls(ofp_event.EventOFPFlowRemoved, MAIN_DISPATCHER)
    def _canary_removed(self, ev):
        """The switch removed an entry that asked to be told: if it was this app's
        canary on a switch the app programmed, check (the app may have put it back
        meanwhile) and repair, in a greenlet of its own (it waits for replies)."""
        msg = ev.msg
        canaries = self._canaries
        if canaries is None or msg.cookie != pipeline.cookie(pipeline.canary_owner(canaries[0])):
            return
        if any(datapath is msg.datapath for datapath in canaries[1]()):
            hub.spawn(self._check_canary, msg.datapath)

    @staticmethod
    def current_switch(switches, datapath):
        """`switches[datapath.id]` when it is this connection's entry, else None."""
        entry = switches.get(datapath.id)
        return entry if entry is not None and entry.datapath is datapath else None

    def forget_switch(self, switches, datapath):
        """Pop `datapath`'s entry from `switches` (dpid -> object with .datapath) when its
        connection went down, but not a newer connection's entry of the same switch (a
        switch that reconnected before the old connection's end was noticed)."""
        return switches.pop(datapath.id) if self.current_switch(switches, datapath) else None

    def wait_ready(self, datapath, timeout=10.0):
        """In a greenlet: until Ryu has finished the switch's handshake (multipart
        replies are only delivered from then on)."""
        deadline = time.monotonic() + timeout
        while datapath.state != MAIN_DISPATCHER:
            if datapath.state == DEAD_DISPATCHER or time.monotonic() > deadline:
                raise SwitchTimeout(f"switch {format_dpid(datapath.id or 0)} did not become ready")
            hub.sleep(0.02)

    RECHECK_S = 5.0
    RECHECKS = 5

    def converge(self, datapath, *args, **kwargs):
        """One at a time per switch and app: a cluster node's take-over (`take_over`)
        can start while the connect's pass still runs; the later one then reads what
        the earlier one put there and has nothing left to change. See `_converge`."""
        lock = self._converging.setdefault(datapath.id, hub.BoundedSemaphore(1))
        with lock:
            return self._converge(datapath, *args, **kwargs)

    def _converge(self, datapath, owners, desired, forget=(), skip=(), groups=False,
                  meters=False, adopt=None):
        """In a greenlet: the one path by which an app puts a switch right on connect,
        reconnect, restart, reload and canary repair. Reads back what the switch holds
        of `owners` (groups/meters too when asked), hands that to `adopt(installed)`
        (an app's take-over of what a previous controller left: learned hosts, backend
        verdicts), then reconciles it with `desired` (see `reconcile`). Flows of `skip`
        owners are read and shown to `adopt` but not reconciled (another path keeps
        them: learn()'s entries, the topology's flood guard).

        `desired` (and `forget`) may be callables, asked once, after `adopt`: what an
        app wants can depend on what it took over. `adopt` returning False stops here
        (the switch went away meanwhile): nothing is sent, returns None. A switch that
        does not answer gets `forget` (deletes of everything of ours) and `desired`
        pushed instead, and counts as reconciled when that was sent; returns None. One
        that answered the read-back but not the barriers after the changes keeps its
        entries and is repaired (`repair`, the app's own path) RECHECK_S later, in a
        greenlet of its own (the caller may hold a lock); returns None.
        Otherwise returns (adds, removed)."""
        wanted = []

        def want():
            if not wanted:
                wanted.append(list(desired() if callable(desired) else desired))
            return wanted[0]
        try:
            self.wait_ready(datapath)
            installed = read_entries(self, datapath, owners, (), groups, meters)
            if adopt is not None and adopt(installed) is False:
                return None
            installed = [e for e in installed if not (e.kind == "flow" and any(
                readback.owns(o, pipeline.owner_of(e.item.cookie)) for o in skip))]
            result = reconcile(self, datapath, installed, want())
            self._rechecks.pop(datapath, None)
            return result
        except SwitchSlow as err:
            # it answered the read-back: replacing its entries would cut what they carry
            self._recheck_later(datapath, err)
            return None
        except SwitchTimeout as err:
            self.logger.warning("%s: switch %s: %s; replacing its entries", self.name,
                                format_dpid(datapath.id or 0), err)
            if self.push(datapath, list(forget() if callable(forget) else forget) + want()):
                self.runtime.readiness.mark(self.name, datapath, runtime.RECONCILED)
                self.entries_reconciled(datapath, readback.desired(datapath, want()))
            return None

    def _recheck_later(self, datapath, err):
        """A slow switch: the app's repair path runs again RECHECK_S from now (it reads
        back what is there now, learned entries included), at most RECHECKS times."""
        count = self._rechecks.get(datapath, 0) + 1
        if count > self.RECHECKS:
            self._rechecks.pop(datapath, None)
            self.logger.error("%s: %s; gave up after %d checks (readiness stays pending)",
                              self.name, err, self.RECHECKS)
            return
        self._rechecks[datapath] = count
        self.logger.warning("%s: %s; its entries stay, checked again in %s s", self.name, err,
                            self.RECHECK_S)

        def later():
            hub.sleep(self.RECHECK_S)
            if datapath.state != DEAD_DISPATCHER and \
                    self.current_switch(self.switches, datapath) is not None:
                self.repair(datapath)
            else:   # gone meanwhile: keep no count (nor the connection) for it
                self._rechecks.pop(datapath, None)
        hub.spawn(later)

    def confirm(self, datapath, timeout=10.0):
        """Send a barrier and wait for its reply: everything sent before it is done.
        False when the runtime may not write to the switch (nothing to wait for)."""
        message = ofcompile.barrier(datapath)
        datapath.set_xid(message)
        done = hub.Event()
        self._waiting[message.xid] = (done, [])
        try:
            if not self.runtime.send(datapath, [message]):
                return False
            if not done.wait(timeout=timeout):
                raise SwitchTimeout(f"switch {format_dpid(datapath.id)} did not confirm a barrier "
                                    f"within {timeout} s")
            return True
        finally:
            self._waiting.pop(message.xid, None)

    def push(self, datapath, items, barrier=True) -> bool:
        """Send specs and deletes to the switch (see the module's `push`)."""
        return push(self.runtime, datapath, items, barrier)

    def leave_alone(self, datapath):
        """This app has nothing to do on the switch: its readiness waits for it no more
        (a switch another app claims is left alone by `get_handlers`)."""
        self.runtime.readiness.mark(self.name, datapath, runtime.LEFT_ALONE)

    def send(self, datapath, message) -> bool:
        """Send one message the app built with controller.ofcompile (a packet-out, a
        request, a switch setting)."""
        return self.runtime.send(datapath, [message])

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def _barrier_reply(self, ev):
        waiting = self._waiting.get(ev.msg.xid)
        if waiting is not None:
            waiting[0].set()
        self.runtime.roles.barrier_reply(ev.msg)

    @set_ev_cls(ofp_event.EventOFPRoleReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _role_reply(self, ev):
        self.runtime.roles.role_reply(ev.msg)

    @set_ev_cls(ofp_event.EventOFPExperimenter, MAIN_DISPATCHER)
    def _role_status(self, ev):
        self.runtime.roles.role_status(ev.msg)

    @set_ev_cls([ofp_event.EventOFPFlowStatsReply, ofp_event.EventOFPQueueStatsReply,
                 ofp_event.EventOFPMeterStatsReply, ofp_event.EventOFPGroupStatsReply,
                 ofp_event.EventOFPGroupDescStatsReply, ofp_event.EventOFPMeterConfigStatsReply,
                 ofp_event.EventOFPPortStatsReply],
                MAIN_DISPATCHER)
    def _multipart_reply(self, ev):
        waiting = self._waiting.get(ev.msg.xid)
        if waiting is None:
            return
        done, bodies, _ = waiting
        bodies.extend(ev.msg.body)
        if not ev.msg.flags & ofp.OFPMPF_REPLY_MORE:
            done.set()

    @set_ev_cls(ofp_event.EventOFPErrorMsg, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _log_switch_error(self, ev):
        msg = ev.msg
        if self.runtime.roles.switch_error(msg):
            return   # a cluster node's expected role refusal: handled, not an error
        self.logger.error("%s %s: type=0x%x code=0x%x xid=%s data=%s", OFP_ERROR_MARK,
                          format_dpid(msg.datapath.id or 0), msg.type, msg.code, msg.xid,
                          msg.data[:64].hex())
        waiting = self._waiting.get(msg.xid)
        if waiting is not None:   # the answer to a read of this app's: fail it now
            waiting[2].append(f"an OpenFlow error (type {msg.type:#x}, code {msg.code:#x})")
            waiting[0].set()
