"""MAC-learning switch (OpenFlow 1.3), reactive or datapath learning.

    ryu-manager apps/l2_switch.py            # REST on 127.0.0.1:8080
    SDN_CONFIG=sdn.yaml ryu-manager apps/l2_switch.py

Config section `l2_switch`: mode (reactive|datapath), idle_timeout, max_macs,
packet_in_bytes, and port security (reactive): max_macs_per_port, flap_moves,
flap_window_s, ban_s (see flows/l2.py). REST:
    GET    /v1/switches                  connected switches
    GET    /v1/switches/{dpid}/macs      learned MACs: mac, port, vlan, age_s
    DELETE /v1/switches/{dpid}/macs      flush them
"""
import collections
import dataclasses
import struct
import time

from prometheus_client.core import GaugeMetricFamily
from ryu.controller import ofp_event
from ryu.controller.handler import (CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER,
                                    set_ev_cls)
from ryu.lib import hub

from controller import (config, desired_state, events, metrics, ofcompile, oftemplate, ovsdb,
                        pipeline, rest, shared_learned, southbound, state)
from flows import l2, learning, shared_hosts
from flows.mac_table import MOVED, NEW, PORT_FULL
from flows.spec import UNTAGGED, Output, Owner

_ETH_8021Q = b"\x81\x00"
_TCI = struct.Struct("!H")
_L2_SRC = pipeline.table_id("l2_src")  # the table whose packet-ins are ours
SHARE_S = 0.5   # a cluster node publishes its hosts this often (and at once on a new one)


def frame_source(data: bytes):
    """(source MAC, VLAN or None) from the first bytes of a frame; None if too short."""
    if len(data) < 14:
        return None
    if data[12:14] == _ETH_8021Q and len(data) >= 16:
        return data[6:12].hex(":"), _TCI.unpack_from(data, 14)[0] & 0x0FFF
    return data[6:12].hex(":"), None


class SwitchState:
    def __init__(self, datapath, settings):
        self.datapath = datapath
        self.macs = learning.mac_table(settings)
        self.bans = {}  # ("port", number) or ("mac", vlan, mac) -> when it ends
        self.packet_ins = 0
        self.not_learned = 0  # sources seen while the MAC table was full
        self.mac_cap = "pending"  # how max_macs is enforced on this switch
        self.untagged = frozenset()  # (port, VLAN) pairs leaving untagged (from the VLAN app)
        self.routes = {}    # fabric: (vlan, mac) -> entry towards a host on another switch
        self.reconciled = False  # its entries have been read back and put right
        self.no_learn = []  # fabric: the no-learning entries last pushed


class L2Switch(southbound.SdnApp):
    _EVENTS = [events.EventHostLocation]
    APP, SETTINGS = l2.APP, l2.L2Settings
    PACKET_IN_TABLES = ("l2_src",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fabric = None  # set when the topology app runs (flows/topology.py)
        self.ovsdb = ovsdb.Ovsdb()
        # a cluster: the other nodes' hosts ({node: {(vlan, mac): (dpid, port)}}) and
        # those routed to (flows/shared_hosts.py); a single node has no `shared`
        self._remote_docs, self.remote_hosts = {}, {}
        try:
            self.shared = shared_learned.for_app(l2.APP, self._hosts_changed)
        except (config.ConfigError, state.StateError) as err:
            raise SystemExit(f"{l2.APP}: {err}") from None
        if self.shared is not None:
            hub.spawn(self._share_loop)
        self._templates = None   # learn_host precompiled (the fast path's first packet-in)
        self.serve_packet_ins("l2_src", self._fast_packet_ins)
        self.logger.info("l2_switch: %s learning, idle_timeout=%ss, max_macs=%s",
                         self.settings.mode, self.settings.idle_timeout, self.settings.max_macs)

    def apply_settings(self, settings):
        """A reloaded config, applied the way a restart would: each switch starts over
        with the new limits and is reconciled (reactive hosts adopted from its entries,
        only what differs changed)."""
        self.settings = settings
        self._templates = None
        for dpid, old in list(self.switches.items()):
            switch = SwitchState(old.datapath, settings)
            switch.untagged = old.untagged
            self.switches[dpid] = switch
            self._configure(switch.datapath)
            hub.spawn(self._reconcile, switch)
            hub.spawn(self._enforce_mac_cap, switch)

    # --- switch lifecycle -----------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _switch_connected(self, ev):
        datapath = ev.msg.datapath
        self.switches[datapath.id] = SwitchState(datapath, self.settings)
        self._configure(datapath)
        self.logger.info("switch %s connected (%s learning)", rest.format_dpid(datapath.id),
                         self.settings.mode)
        hub.spawn(self._enforce_mac_cap, self.switches[datapath.id])  # OVSDB: off the handshake

    def _configure(self, datapath):
        self.send(datapath, ofcompile.set_packet_in_bytes(datapath,
                                                          self.settings.packet_in_bytes))
        for message in ofcompile.packet_in_limit(datapath, l2.packet_in_limit(self.settings)):
            self.send(datapath, message)

    def take_over(self, datapath):
        """A cluster node became master (its connect-time writes were refused): the
        connect's settings, then converge."""
        self._configure(datapath)
        super().take_over(datapath)

    @set_ev_cls(ofp_event.EventOFPStateChange, MAIN_DISPATCHER)
    def _switch_ready(self, ev):
        switch = self.current_switch(self.switches, ev.datapath)
        if switch is not None:
            hub.spawn(self._reconcile, switch)  # it waits for replies: not in the handler

    def _reconcile(self, switch):
        """Make the switch hold what this app wants, leaving what is right untouched:
        entries a controller before this one installed stay in place (with fail_mode
        secure the switch kept forwarding on them meanwhile), and in reactive mode the
        hosts they name are adopted instead of re-learned."""
        datapath, kept = switch.datapath, []

        def adopt(installed):
            if self.settings.mode == "reactive":
                kept.extend(learning.adopt(
                    switch.macs, switch.routes,
                    [ofcompile.decode_flow(e.item) for e in installed if e.kind == "flow"],
                    time.monotonic()))

        def desired():
            if self.fabric is not None:
                switch.no_learn = l2.fabric_ports(self.settings, self.fabric, datapath.id)
            return desired_state.framed(l2.APP, learning.desired(
                self.settings, switch.untagged, self.fabric, datapath.id)) + kept
        # in datapath mode the switch's own learned entries are not ours to reconcile
        done = self.converge(datapath, [Owner(l2.APP), Owner("pipeline")], desired,
                             forget=l2.forget_everything(), adopt=adopt,
                             skip=[l2.LEARNED] if self.settings.mode == "datapath" else ())
        switch.reconciled = True
        if done is None:  # not answered (entries replaced) or slow (repaired later, anew)
            return
        if switch.macs:
            self.logger.info("switch %s: %d hosts adopted from its entries",
                             rest.format_dpid(datapath.id), len(switch.macs))
        if self.fabric is not None:  # routes to hosts on other switches, as they are now
            self._apply_fabric(self.fabric, self.fabric)

    def programmed_datapaths(self):
        return [s.datapath for s in self.switches.values() if s.reconciled]

    def metric_families(self):
        macs = GaugeMetricFamily("sdn_learned_macs", "MACs learned, per switch and VLAN",
                                 labels=["dpid", "dp_name", "vlan"])
        for dpid in sorted(self.switches):
            per_vlan = collections.Counter(m["vlan"] or 0 for m in self.learned_macs(dpid))
            for vlan, count in sorted(per_vlan.items()):
                macs.add_metric(metrics.switch_labels(dpid) + [str(vlan)], count)
        yield macs

    def repair(self, datapath):
        """The switch lost our entries without reconnecting: learn afresh, put the rest
        back (the other apps notice their own canaries)."""
        switch = self.current_switch(self.switches, datapath)
        if switch is None:
            return
        switch.reconciled = False
        switch.macs.clear()
        switch.routes, switch.no_learn = {}, []
        self._reconcile(switch)

    def _enforce_mac_cap(self, switch):
        """reactive: the controller refuses to learn past max_macs. datapath: the switch
        learns by itself, so OVS caps the l2_dst table (Flow_Table flow_limit, refuse)."""
        dpid, table = switch.datapath.id, pipeline.table_id("l2_dst")
        try:
            if self.settings.mode == "reactive":
                self.ovsdb.clear_flow_limit(dpid, table, owner=l2.APP)
                switch.mac_cap = "controller"
                return
            fixed = sum(1 for s in desired_state.framed(l2.APP, learning.desired(self.settings))
                        if s.table == "l2_dst")
            limit = self.settings.max_macs + fixed
            self.ovsdb.set_flow_limit(dpid, table, limit, owner=l2.APP, name="l2_dst")
            switch.mac_cap = f"switch (OVSDB Flow_Table flow_limit={limit})"
        except ovsdb.OvsdbError as err:
            if self.settings.mode == "reactive":
                switch.mac_cap = "controller"
                self.logger.debug("switch %s: no OVSDB to clear an old cap: %s",
                                  rest.format_dpid(dpid), err)
            else:
                switch.mac_cap = f"not enforced: {err}"
                self.logger.warning("switch %s: max_macs not enforced: %s",
                                    rest.format_dpid(dpid), err)

    @set_ev_cls(events.EventPortVlans)
    def _port_vlans(self, ev):
        """The VLAN app changed which (port, VLAN) pairs leave untagged. Before the
        switch is reconciled, just note it (reconciliation uses it). Afterwards, move the
        defaults (datapath: tag-stripping learns) and the hosts' entries over in place;
        in datapath mode the switch's learned entries baked in the old tag handling, so
        they are flushed and re-learned."""
        switch = self.switches.get(ev.dpid)
        if switch is None or switch.untagged == ev.untagged:
            return
        old, switch.untagged = switch.untagged, ev.untagged
        if not switch.reconciled:
            return
        self.push(switch.datapath,
                  learning.relearn(self.settings, switch.macs, old, switch.untagged))
        if self.fabric is not None:  # routes pop the tag where it leaves untagged too
            self._apply_fabric(self.fabric, self.fabric)

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def _switch_gone(self, ev):
        if self.forget_switch(self.switches, ev.datapath):
            self.logger.info("switch %s disconnected", rest.format_dpid(ev.datapath.id))

    # --- learning (reactive mode) -------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def _packet_in(self, ev):
        """Ryu's path: the packet-ins the fast path left (a fabric, a switch not ready
        for it, `openflow: {fast_path: false}`)."""
        msg = ev.msg
        switch = self.switches.get(msg.datapath.id)
        if switch is None:
            return
        if msg.table_id != _L2_SRC:
            return  # another app's (LLDP, health probes)
        switch.packet_ins += 1
        source = self._learnable_source(msg.data)
        if source is None:
            return
        src, vlan = source
        port, dpid = msg.match["in_port"], msg.datapath.id
        if self.fabric is not None:
            if not self.fabric.is_edge(dpid, port):
                return  # a host attached elsewhere, or a port not classified yet
            self._forget_elsewhere(src, vlan, dpid)
        decision = learning.packet_in(self.settings, switch.macs, switch.bans, src, port, vlan,
                                      time.monotonic(), switch.untagged,
                                      fabric=self.fabric is not None)
        self._decided(switch, decision, src, port, vlan, self.push)

    def _fast_packet_ins(self, datapath, packet_ins, sink):
        """The fast path (controller/fastpath.py), in the switch's receive loop, for
        the [(port, frame)] of one read: the same decisions as `_packet_in`, a new
        host's entries from precompiled bytes, all sent with the read's other replies.
        A fabric's hosts take Ryu's path (they are routed across switches)."""
        switch = self.switches.get(datapath.id)
        if switch is None or switch.datapath is not datapath or self.fabric is not None \
                or self.events_pending():   # what is queued before them goes first
            return False
        if self.settings.mode != "reactive":
            switch.packet_ins += len(packet_ins)
            return True
        observe, untagged, now = switch.macs.observe, switch.untagged, time.monotonic()
        templates = {}   # (VLAN, untagged egress) -> its template, for this read
        for port, data in packet_ins:
            switch.packet_ins += 1
            source = self._learnable_source(data)
            if source is None:
                continue
            src, vlan = source
            verdict, previous = observe(src, port, vlan, now)
            if verdict == NEW:   # learning.decide would answer learning.new_host()
                untagged_egress = (port, vlan) in untagged
                template = templates.get((vlan, untagged_egress), False)
                if template is False:
                    template = templates[(vlan, untagged_egress)] = self._learn_template(
                        datapath, vlan, untagged_egress)
                if template is not None:
                    sink.add(datapath, template, (data[6:12], port.to_bytes(4, "big"),
                                                  oftemplate.vid_bytes(vlan or 0)))
                    self._located(src, vlan, datapath.id, port)
                    continue
            decision = learning.decide(self.settings, switch.macs, switch.bans, verdict,
                                       previous, src, port, vlan, now, untagged)
            self._decided(switch, decision, src, port, vlan, sink.write)
        return True

    def _learnable_source(self, data):
        """(source MAC, VLAN) of a frame reactive learning learns from, else None."""
        if self.settings.mode != "reactive":
            return None
        source = frame_source(data)
        return source if source is not None and learning.learnable(source[0]) else None

    def _decided(self, switch, decision, src, port, vlan, send):
        """Carry out a learning decision: log, send its changes with `send` (push, or
        the fast path's sink), route the host on a fabric and tell the observers."""
        switch.not_learned += decision.not_learned
        if decision.banned:
            self._log_ban(switch, decision, src, port)
        if decision.verdict == MOVED:
            self.logger.debug("%s: %s moved %s -> %s", rest.format_dpid(switch.datapath.id),
                              src, decision.previous.port, port)
        if decision.changes:
            send(switch.datapath, decision.changes, barrier=decision.barrier)
        if not decision.located:
            return
        if self.fabric is not None:
            self._route(src, vlan, switch.datapath.id, port, include_home=True)
            self._share_hosts()
        self._located(src, vlan, switch.datapath.id, port)

    def _located(self, mac, vlan, dpid, port):
        if self.observers.get(events.EventHostLocation):   # none: build no event
            self.send_event_to_observers(events.EventHostLocation(mac, vlan, dpid, port))

    def _learn_template(self, datapath, vlan, untagged_egress):
        """learning.new_host's entries precompiled for this layout (None: not
        templatable, compiled as usual)."""
        if self._templates is None:   # the settings' templates (apply_settings resets)
            self._templates = oftemplate.Templated(self._learn_layout)
        kind = "none" if vlan is None else "zero" if vlan == 0 else "tagged"
        return self._templates.get((kind, untagged_egress, self.settings.idle_timeout))

    def _learn_layout(self, key):
        """learning.new_host for one layout (no / zero / a VLAN, untagged egress, idle
        timeout): the builder with its open slots (MAC, port, VLAN), the slots and the
        self-check's values (controller/oftemplate.py). Slots the layout fixes (the
        VLAN of an untagged host) are still given by the caller and left unpatched."""
        vlan_kind, untagged_egress, idle_timeout = key
        slots = {"mac": oftemplate.Slot(oftemplate.mac_bytes, "02:11:22:33:44:55",
                                        "0e:ee:dd:cc:bb:aa"),
                 "port": oftemplate.Slot(oftemplate.port_bytes, 0x11223344, 0x22334455)}
        check = {"mac": "5a:a5:0f:f0:33:cc", "port": 7}
        if vlan_kind == "tagged":
            slots["vlan"] = oftemplate.Slot(oftemplate.vid_bytes, 0x123, 0xABC)
            check["vlan"] = 42
        settings = dataclasses.replace(self.settings, idle_timeout=idle_timeout)

        def build(mac, port, vlan=None if vlan_kind == "none" else 0):
            return learning.new_host(settings, mac, port, vlan,
                                     {(port, vlan)} if untagged_egress else ())
        return build, slots, check

    def _log_ban(self, switch, decision, mac, port):
        if decision.verdict == PORT_FULL:
            self.logger.warning("switch %s port %s: more than %d MACs; new sources there "
                                "dropped for %d s", rest.format_dpid(switch.datapath.id), port,
                                self.settings.max_macs_per_port, self.settings.ban_s)
        else:
            self.logger.warning("switch %s: %s flaps between ports %s and %s; dropped for "
                                "%d s", rest.format_dpid(switch.datapath.id), mac,
                                decision.previous.port, port, self.settings.ban_s)

    # --- a fabric of switches (with the topology app) ----------------------------

    def _send_each(self, per_switch, barrier=True):
        for dpid, changes in per_switch:
            self.push(self.switches[dpid].datapath, changes, barrier=barrier)

    def _route(self, mac, vlan, home, port, include_home):
        """Point every switch at `mac`'s home (dpid, port), sending only what changed."""
        self._send_each(learning.route(
            self.fabric, self.settings, mac, vlan, home, port,
            {dpid: s.routes for dpid, s in self.switches.items()},
            {dpid: s.untagged for dpid, s in self.switches.items()}, include_home), barrier=False)

    def _unroute(self, mac, vlan):
        self._send_each(learning.unroute({d: s.routes for d, s in self.switches.items()},
                                         mac, vlan), barrier=False)

    def _forget_elsewhere(self, mac, vlan, here):
        """A host heard at an edge port of `here` no longer lives on another switch."""
        self._send_each(learning.forget_elsewhere(
            {dpid: s.macs for dpid, s in self.switches.items()}, mac, vlan, here))

    def _forget(self, switch, entry):
        """`entry` left switch's port: forget it there and everywhere it was routed."""
        changes = learning.forget(switch.macs, entry)
        if not changes:
            return []
        if self.fabric is not None:
            self._unroute(entry.mac, entry.vlan)
        self.send_event_to_observers(events.EventHostLocation(
            entry.mac, entry.vlan, switch.datapath.id, None))
        return changes

    def _clear_macs(self, switch):
        """Forget the switch's hosts in the controller, and their routes elsewhere (the
        caller deletes the switch's own entries)."""
        if self.fabric is not None:
            for entry in switch.macs.entries():
                self._unroute(entry.mac, entry.vlan)
        switch.macs.clear()

    @set_ev_cls(events.EventTopology)
    def _topology(self, ev):
        old, self.fabric = self.fabric, ev.fabric
        self._apply_fabric(old, ev.fabric)

    def _apply_fabric(self, old, fabric):
        plans, changes = learning.refabric(self.settings, old, fabric,
                                           {d: s.no_learn for d, s in self.switches.items()})
        for dpid, plan in plans.items():
            self.switches[dpid].no_learn = plan
        self._send_each(changes)
        if self.settings.mode == "datapath":
            return
        self._send_each(learning.stale_routes({d: s.routes for d, s in self.switches.items()},
                                              [s.macs for s in self.switches.values()],
                                              self.remote_hosts), barrier=False)
        for dpid, switch in self.switches.items():
            for entry in switch.macs.entries():
                if fabric.is_edge(dpid, entry.port):
                    self._route(entry.mac, entry.vlan, dpid, entry.port, include_home=False)
                else:
                    self.push(switch.datapath, self._forget(switch, entry))
        self._route_remote(everything=True)

    # --- hosts shared by the nodes of a cluster (reactive, on a fabric) ----------

    def _share_hosts(self):
        """Publish the hosts learned at edge ports of the switches this node masters."""
        if self.shared is None or self.fabric is None or self.settings.mode != "reactive":
            return
        self.shared.publish(shared_hosts.hosts_document(
            {d: s.macs for d, s in self.switches.items()}, self.fabric.is_edge,
            self.runtime.may_write))

    def _share_loop(self):
        while True:
            hub.sleep(SHARE_S)
            self._share_hosts()

    def _hosts_changed(self, documents):
        """Another node's hosts changed (the watch's green thread)."""
        hosts = {}
        for node, document in sorted(documents.items()):
            try:
                hosts[node] = shared_hosts.hosts_of(document)
            except ValueError as err:
                self.logger.error("hosts of node %s left out: %s", node, err)
        self._remote_docs = hosts
        hub.spawn(self._route_remote)

    def _route_remote(self, everything=False):
        """Route to the other nodes' hosts as to this node's own; a host this node
        learned itself is its own (it heard it last)."""
        if self.shared is None or self.fabric is None or self.settings.mode != "reactive":
            return
        local = {(e.vlan, e.mac) for dpid, s in self.switches.items()
                 if self.runtime.may_write(dpid) for e in s.macs.entries()}
        new = shared_hosts.remote_hosts(self._remote_docs.values(), local)
        moved, gone = shared_hosts.changes(self.remote_hosts, new)
        self.remote_hosts = new
        if everything:   # a new fabric: every route again (only what changed is sent)
            moved = new
        for vlan, mac in gone:
            if (vlan, mac) not in local:
                self._unroute(mac, vlan)
        for (vlan, mac), (dpid, port) in moved.items():
            if dpid in self.fabric.switches:
                self._route(mac, vlan, dpid, port, include_home=False)

    @set_ev_cls(ofp_event.EventOFPFlowRemoved, MAIN_DISPATCHER)
    def _flow_removed(self, ev):
        msg = ev.msg
        switch = self.switches.get(msg.datapath.id)
        if switch is not None and pipeline.owner_of(msg.cookie) == l2.BANS:
            switch.bans = learning.bans_after_expiry(switch.bans, time.monotonic())
            return
        if switch is None or pipeline.owner_of(msg.cookie) != l2.HOSTS:
            return
        if msg.table_id != _L2_SRC:
            return
        match = ofcompile.decode_match(msg.match)
        mac, port, vlan = match.get("eth_src"), match.get("in_port"), match.get("vlan_vid")
        vlan = None if vlan == UNTAGGED else vlan
        entry = learning.expired_host(switch.macs, mac, port, vlan)
        if entry is not None:
            self.push(msg.datapath, self._forget(switch, entry), barrier=False)

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def _port_status(self, ev):
        """A port that went down or away takes its MACs with it (re-learned at once
        when the host speaks elsewhere)."""
        msg = ev.msg
        switch = self.switches.get(msg.datapath.id)
        ofp = msg.datapath.ofproto
        down = msg.reason == ofp.OFPPR_DELETE or msg.desc.state & ofp.OFPPS_LINK_DOWN
        if switch is None or not down:
            return
        changes = []
        for entry in learning.on_port(switch.macs, msg.desc.port_no):
            changes += self._forget(switch, entry)
        if changes:
            self.push(msg.datapath, changes)

    # --- what REST asks -----------------------------------------------------------

    def learned_macs(self, dpid):
        switch = self.switch(dpid)
        if self.settings.mode == "reactive":
            now = time.monotonic()
            return [{"mac": e.mac, "port": e.port, "vlan": e.vlan,
                     "age_s": round(now - e.learned_at, 1)} for e in switch.macs.entries()]
        try:
            learned = southbound.request_flows(self, switch.datapath, l2.LEARNED, "l2_dst")
        except southbound.SwitchTimeout as err:
            raise rest.ApiError(504, str(err)) from None
        macs = []
        for spec, stat in learned:
            if spec.priority == l2.VLAN0_UNTAGGED_PRIORITY:
                continue  # a VLAN-0 MAC's PCP-0 twin (flows/l2.py): listed once
            ports = [a.port for a in spec.actions if isinstance(a, Output)]
            vlan = spec.match.get("vlan_vid") or None  # learn() records untagged as VID 0
            macs.append({"mac": spec.match.get("eth_dst"), "port": ports[0] if ports else None,
                         "vlan": vlan, "age_s": stat.duration_sec})
        return sorted(macs, key=lambda m: (m["vlan"] or 0, m["mac"]))

    def active_bans(self, switch):
        return learning.active_bans(switch.bans, time.monotonic())

    def flush_macs(self, dpid):
        switch = self.switch(dpid)
        count = len(self.learned_macs(dpid))
        self._clear_macs(switch)
        self.push(switch.datapath, l2.forget_all_hosts())
        return count


class L2Rest(rest.AppController):
    @rest.api("l2_switches", "/v1/switches", methods=["GET"])
    def list_switches(self, req, **_):
        return [{"dpid": rest.format_dpid(dpid), "name": self.app.runtime.names.name_of(dpid),
                 "mode": self.app.settings.mode,
                 "macs": len(self.app.learned_macs(dpid)), "max_macs": self.app.settings.max_macs,
                 "mac_cap": s.mac_cap, "packet_ins": s.packet_ins, "not_learned": s.not_learned,
                 "bans": self.app.active_bans(s)}
                for dpid, s in sorted(self.app.switches.items())]

    @rest.api("l2_macs", "/v1/switches/{dpid}/macs", methods=["GET"])
    def list_macs(self, req, dpid, **_):
        return self.app.learned_macs(self.app.dpid_of(dpid))

    @rest.api("l2_flush", "/v1/switches/{dpid}/macs", methods=["DELETE"])
    def flush(self, req, dpid, **_):
        return {"flushed": self.app.flush_macs(self.app.dpid_of(dpid))}


L2Switch.REST = L2Rest   # the app declares its REST controller (defined after it)
