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
import struct
import time

from prometheus_client.core import GaugeMetricFamily
from ryu.controller import ofp_event
from ryu.controller.handler import (CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER,
                                    set_ev_cls)
from ryu.lib import hub

from controller import config, events, ofcompile, ovsdb, pipeline, readback, rest, southbound
from flows import diff, l2
from flows.mac_table import FLAPPING, KNOWN, MOVED, PORT_FULL, TABLE_FULL, MacTable
from flows.spec import UNTAGGED, Output, Owner, is_multicast_mac

_ETH_8021Q = 0x8100
_L2_SRC = pipeline.table_id("l2_src")  # the table whose packet-ins are ours


def parse_ethernet(data: bytes):
    """(dst, src, vlan or None) from the first bytes of a frame; None if too short."""
    if len(data) < 14:
        return None
    dst, src = data[0:6].hex(":"), data[6:12].hex(":")
    vlan = None
    if struct.unpack_from("!H", data, 12)[0] == _ETH_8021Q and len(data) >= 16:
        vlan = struct.unpack_from("!H", data, 14)[0] & 0x0FFF
    return dst, src, vlan


class SwitchState:
    def __init__(self, datapath, settings):
        self.datapath = datapath
        self.macs = MacTable(settings.max_macs, settings.max_macs_per_port,
                             settings.flap_moves, settings.flap_window_s)
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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        try:
            self.settings = config.section(l2.L2Settings, "l2_switch")
        except config.ConfigError as err:
            raise SystemExit(f"l2_switch: {err}") from None
        self.switches = {}
        self.fabric = None  # set when the topology app runs (flows/topology.py)
        self.ovsdb = ovsdb.Ovsdb()
        self.runtime.register(kwargs["wsgi"], L2Rest, self)
        self.runtime.reload.participate(
            "l2_switch", lambda data: config.section(l2.L2Settings, "l2_switch", data),
            self.apply_settings)
        self.watch_canaries(l2.APP, lambda: [s.datapath for s in self.switches.values()
                                             if s.reconciled], self._wiped)
        self.contribute_metrics(l2.APP, lambda: [s.datapath for s in self.switches.values()],
                                self._metric_families)
        self.logger.info("l2_switch: %s learning, idle_timeout=%ss, max_macs=%s",
                         self.settings.mode, self.settings.idle_timeout, self.settings.max_macs)

    def apply_settings(self, settings):
        """A reloaded config, applied the way a restart would: each switch starts over
        with the new limits and is reconciled (reactive hosts adopted from its entries,
        only what differs changed)."""
        self.settings = settings
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
        datapath = switch.datapath
        try:
            installed = [pair for owner in (Owner(l2.APP), Owner("pipeline"))
                         for pair in southbound.request_flows(self, datapath, owner)]
        except southbound.SwitchTimeout as err:
            self.logger.warning("switch %s: %s; replacing its entries",
                                rest.format_dpid(datapath.id), err)
            self.push(datapath, l2.forget_everything() + pipeline.table_misses()
                      + [pipeline.canary(l2.APP)]
                      + l2.switch_defaults(self.settings, switch.untagged))
            switch.reconciled = True
            return
        if self.settings.mode == "datapath":  # the switch's own learned entries are not ours
            installed = [(spec, stat) for spec, stat in installed if spec.owner != l2.LEARNED]
        kept = self._adopt(switch, [spec for spec, _ in installed]) \
            if self.settings.mode == "reactive" else []
        desired = pipeline.table_misses() + [pipeline.canary(l2.APP)] + \
            l2.switch_defaults(self.settings, switch.untagged)
        if self.fabric is not None:
            desired += l2.fabric_ports(self.settings, self.fabric, datapath.id)
            switch.no_learn = l2.fabric_ports(self.settings, self.fabric, datapath.id)
        southbound.reconcile(self, datapath, readback.flow_entries([s for _, s in installed]),
                             desired + kept)
        switch.reconciled = True
        if switch.macs:
            self.logger.info("switch %s: %d hosts adopted from its entries",
                             rest.format_dpid(datapath.id), len(switch.macs))
        if self.fabric is not None:  # routes to hosts on other switches, as they are now
            self._apply_fabric(self.fabric, self.fabric)

    def _metric_families(self):
        macs = GaugeMetricFamily("sdn_learned_macs", "MACs learned, per switch and VLAN",
                                 labels=["dpid", "vlan"])
        for dpid in sorted(self.switches):
            per_vlan = collections.Counter(m["vlan"] or 0 for m in self.learned_macs(dpid))
            for vlan, count in sorted(per_vlan.items()):
                macs.add_metric([rest.format_dpid(dpid), str(vlan)], count)
        yield macs

    def _wiped(self, datapath):
        """The switch lost our entries without reconnecting: learn afresh, put the rest
        back (the other apps notice their own canaries)."""
        switch = self.current_switch(self.switches, datapath)
        if switch is None:
            return
        switch.reconciled = False
        switch.macs.clear()
        switch.routes, switch.no_learn = {}, []
        self._reconcile(switch)

    def _adopt(self, switch, installed):
        """Reactive host entries a previous controller left, to keep: each source entry
        puts its MAC back into the table; a destination entry whose host does not live
        here is a route to a host on another switch (pruned once a fabric says where
        hosts are)."""
        now, kept = time.monotonic(), []
        for spec in installed:
            if spec.owner == l2.HOSTS and spec.table == "l2_src":
                mac, port, vlan = l2.host_of(spec)
                if switch.macs.observe(mac, port, vlan, now)[0] != TABLE_FULL:
                    kept.append(spec)
        for spec in installed:
            if spec.owner == l2.HOSTS and spec.table == "l2_dst":
                mac, _, vlan = l2.host_of(spec)
                if switch.macs.get(mac, vlan) is None:
                    switch.routes[(vlan, mac)] = spec
                kept.append(spec)
        return kept

    def _enforce_mac_cap(self, switch):
        """reactive: the controller refuses to learn past max_macs. datapath: the switch
        learns by itself, so OVS caps the l2_dst table (Flow_Table flow_limit, refuse)."""
        dpid, table = switch.datapath.id, pipeline.table_id("l2_dst")
        try:
            if self.settings.mode == "reactive":
                self.ovsdb.clear_flow_limit(dpid, table, owner=l2.APP)
                switch.mac_cap = "controller"
                return
            fixed = sum(1 for s in pipeline.table_misses() + l2.switch_defaults(self.settings)
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
        changes = diff.plan_changes(l2.switch_defaults(self.settings, old),
                                    l2.switch_defaults(self.settings, switch.untagged))
        if self.settings.mode == "datapath":
            changes.append(l2.forget_learned())
        for entry in switch.macs.entries():
            changes += l2.learn_host(entry.mac, entry.port, entry.vlan,
                                     self.settings.idle_timeout,
                                     (entry.port, entry.vlan) in switch.untagged)
        self.push(switch.datapath, changes)
        if self.fabric is not None:  # routes pop the tag where it leaves untagged too
            self._apply_fabric(self.fabric, self.fabric)

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def _switch_gone(self, ev):
        if self.forget_switch(self.switches, ev.datapath):
            self.logger.info("switch %s disconnected", rest.format_dpid(ev.datapath.id))

    # --- learning (reactive mode) -------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def _packet_in(self, ev):
        msg = ev.msg
        switch = self.switches.get(msg.datapath.id)
        if switch is None:
            return
        if msg.table_id != _L2_SRC:
            return  # another app's (LLDP, health probes)
        switch.packet_ins += 1
        if self.settings.mode != "reactive":
            return
        headers = parse_ethernet(msg.data)
        if headers is None:
            return
        _, src, vlan = headers
        if is_multicast_mac(src):
            return
        port, dpid = msg.match["in_port"], msg.datapath.id
        if self.fabric is not None:
            if not self.fabric.is_edge(dpid, port):
                return  # a host attached elsewhere, or a port not classified yet
            self._forget_elsewhere(src, vlan, dpid)
        now = time.monotonic()
        verdict, previous = switch.macs.observe(src, port, vlan, now)
        if verdict == TABLE_FULL:
            switch.not_learned += 1
            return
        if verdict in (PORT_FULL, FLAPPING):
            switch.not_learned += 1
            self._ban(switch, verdict, src, port, vlan, previous, now)
            return
        if verdict == KNOWN:
            return
        changes = []
        if verdict == MOVED:
            changes += l2.forget_host(src, previous.port, vlan)
            self.logger.debug("%s: %s moved %s -> %s", rest.format_dpid(dpid), src,
                              previous.port, port)
        if self.fabric is None:
            changes += l2.learn_host(src, port, vlan, self.settings.idle_timeout,
                                     untagged_egress=(port, vlan) in switch.untagged)
            self.push(msg.datapath, changes, barrier=False)
        else:
            if changes:
                self.push(msg.datapath, changes)
            self._route(src, vlan, dpid, port, include_home=True)
        self.send_event_to_observers(events.EventHostLocation(src, vlan, dpid, port))

    def _ban(self, switch, verdict, mac, port, vlan, previous, now):
        """Port security: drop what would thrash the tables, for ban_s, in the switch
        (counted there; no more packet-ins for it meanwhile)."""
        key = ("port", port) if verdict == PORT_FULL else ("mac", vlan, mac)
        if switch.bans.get(key, 0) > now:
            return  # already banned; a packet-in that raced the drop entry
        seconds = self.settings.ban_s
        switch.bans[key] = now + seconds
        if verdict == PORT_FULL:
            self.logger.warning("switch %s port %s: more than %d MACs; new sources there "
                                "dropped for %d s", rest.format_dpid(switch.datapath.id), port,
                                self.settings.max_macs_per_port, seconds)
            self.push(switch.datapath, [l2.ban_new_sources(port, seconds)], barrier=False)
            return
        self.logger.warning("switch %s: %s flaps between ports %s and %s; dropped for %d s",
                            rest.format_dpid(switch.datapath.id), mac, previous.port, port,
                            seconds)
        changes = [l2.ban_mac(mac, vlan, seconds)]
        if switch.macs.remove(mac, previous.port, vlan):
            changes = l2.forget_host(mac, previous.port, vlan) + changes
        self.push(switch.datapath, changes)

    # --- a fabric of switches (with the topology app) ----------------------------

    def _route(self, mac, vlan, home, port, include_home):
        """Point every switch at `mac`'s home (dpid, port), sending only what changed."""
        routes = l2.route_host(self.fabric, mac, vlan, (home, port), self.settings.idle_timeout,
                               {dpid: s.untagged for dpid, s in self.switches.items()})
        key = (vlan, mac)
        # nearest the host first: a switch forwarding towards it must not reach a next
        # hop that has no entry yet (that one would flood, and a frame coming in off the
        # flood tree is dropped there)
        hops = self.fabric.hops_to(home)
        for dpid, switch in sorted(self.switches.items(),
                                   key=lambda item: hops.get(item[0], len(hops) + 1)):
            if dpid == home:
                switch.routes.pop(key, None)
                if include_home:
                    self.push(switch.datapath, routes[dpid], barrier=False)
                continue
            wanted = routes.get(dpid, [None])[0]
            if switch.routes.get(key) == wanted:
                continue
            if wanted is None:
                del switch.routes[key]
                self.push(switch.datapath, l2.forget_route(mac, vlan), barrier=False)
            else:
                switch.routes[key] = wanted
                self.push(switch.datapath, [wanted], barrier=False)

    def _unroute(self, mac, vlan):
        for switch in self.switches.values():
            if switch.routes.pop((vlan, mac), None) is not None:
                self.push(switch.datapath, l2.forget_route(mac, vlan), barrier=False)

    def _forget_elsewhere(self, mac, vlan, here):
        """A host heard at an edge port of `here` no longer lives on another switch."""
        for dpid, switch in self.switches.items():
            entry = switch.macs.get(mac, vlan) if dpid != here else None
            if entry is not None and switch.macs.remove(mac, entry.port, vlan):
                self.push(switch.datapath, l2.forget_host(mac, entry.port, vlan))

    def _forget(self, switch, entry):
        """`entry` left switch's port: forget it there and everywhere it was routed."""
        if not switch.macs.remove(entry.mac, entry.port, entry.vlan):
            return []
        if self.fabric is not None:
            self._unroute(entry.mac, entry.vlan)
        self.send_event_to_observers(events.EventHostLocation(
            entry.mac, entry.vlan, switch.datapath.id, None))
        return l2.forget_host(entry.mac, entry.port, entry.vlan)

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
        for dpid, switch in self.switches.items():
            plan = l2.fabric_ports(self.settings, fabric, dpid)
            changes = diff.plan_changes(switch.no_learn, plan)
            switch.no_learn = plan
            if changes:
                self.push(switch.datapath, changes)
        if self.settings.mode == "datapath":
            if old is None or old.tree != fabric.tree:  # learned entries follow the old tree
                for switch in self.switches.values():
                    self.push(switch.datapath, [l2.forget_learned()])
            return
        homed = {(e.vlan, e.mac) for s in self.switches.values() for e in s.macs.entries()}
        for switch in self.switches.values():
            for key in [key for key in switch.routes if key not in homed]:
                del switch.routes[key]  # adopted from a previous controller, host unknown
                self.push(switch.datapath, l2.forget_route(key[1], key[0]), barrier=False)
        for dpid, switch in self.switches.items():
            for entry in switch.macs.entries():
                if fabric.is_edge(dpid, entry.port):
                    self._route(entry.mac, entry.vlan, dpid, entry.port, include_home=False)
                else:
                    self.push(switch.datapath, self._forget(switch, entry))

    @set_ev_cls(ofp_event.EventOFPFlowRemoved, MAIN_DISPATCHER)
    def _flow_removed(self, ev):
        msg = ev.msg
        switch = self.switches.get(msg.datapath.id)
        if switch is not None and pipeline.owner_of(msg.cookie) == l2.BANS:
            now = time.monotonic()  # a ban ended: forget it (and any others past due)
            switch.bans = {key: end for key, end in switch.bans.items() if end > now + 0.5}
            return
        if switch is None or pipeline.owner_of(msg.cookie) != l2.HOSTS:
            return
        if msg.table_id != _L2_SRC:
            return
        match = ofcompile.decode_match(msg.match)
        mac, port, vlan = match.get("eth_src"), match.get("in_port"), match.get("vlan_vid")
        vlan = None if vlan == UNTAGGED else vlan
        entry = switch.macs.get(mac, vlan)
        if entry is not None and entry.port == port:
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
        for entry in switch.macs.entries():
            if entry.port == msg.desc.port_no:
                changes += self._forget(switch, entry)
        if changes:
            self.push(msg.datapath, changes)

    # --- what REST asks -----------------------------------------------------------

    def switch(self, dpid):
        switch = self.switches.get(dpid)
        if switch is None:
            raise rest.ApiError(404, f"no switch {rest.format_dpid(dpid)} is connected")
        return switch

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
        now = time.monotonic()
        bans = [({"port": key[1]} if key[0] == "port" else {"mac": key[2], "vlan": key[1]})
                | {"ends_in_s": round(end - now, 1)}
                for key, end in switch.bans.items() if end > now]
        return sorted(bans, key=lambda ban: (ban.get("port", 0), ban.get("mac", "")))

    def flush_macs(self, dpid):
        switch = self.switch(dpid)
        count = len(self.learned_macs(dpid))
        self._clear_macs(switch)
        self.push(switch.datapath, l2.forget_all_hosts())
        return count


class L2Rest(rest.AppController):
    @rest.api("l2_switches", "/v1/switches", methods=["GET"])
    def list_switches(self, req, **_):
        return [{"dpid": rest.format_dpid(dpid), "mode": self.app.settings.mode,
                 "macs": len(self.app.learned_macs(dpid)), "max_macs": self.app.settings.max_macs,
                 "mac_cap": s.mac_cap, "packet_ins": s.packet_ins, "not_learned": s.not_learned,
                 "bans": self.app.active_bans(s)}
                for dpid, s in sorted(self.app.switches.items())]

    @rest.api("l2_macs", "/v1/switches/{dpid}/macs", methods=["GET"])
    def list_macs(self, req, dpid, **_):
        return self.app.learned_macs(rest.parse_dpid(dpid))

    @rest.api("l2_flush", "/v1/switches/{dpid}/macs", methods=["DELETE"])
    def flush(self, req, dpid, **_):
        return {"flushed": self.app.flush_macs(rest.parse_dpid(dpid))}
