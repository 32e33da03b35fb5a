"""Link discovery and loop-free forwarding on networks with loops (OpenFlow 1.3).

    ryu-manager apps/topology.py apps/l2_switch.py [apps/vlan.py]

Every `lldp_interval_s` the controller sends an LLDP frame out of every live port of
every switch; one coming back from another switch is a link. A live port that hears
no LLDP for `edge_after_s` faces hosts; a link not heard of for `link_timeout_s`, or
whose port goes down, is gone at once. From that the app builds the fabric (a
networkx graph, flows/topology.py), installs the flood tree on every switch and tells
the learning and VLAN apps (EventTopology), which learn hosts at edge ports, route
known unicast on shortest paths and keep VLAN flooding on the tree.

Config section `topology`: lldp_interval_s (1), link_timeout_s (3.5), edge_after_s (3).

In a cluster (controller/shared_learned.py) an LLDP frame is heard only by the master
of the switch it arrives at, so each node publishes the links it heard and builds the
fabric from the union of every live node's links (docs/cluster-learned-state.md):
every node then computes the same flood tree.
REST:
    GET /v1/topology        switches and their ports' roles, links (in_tree), hosts
    GET /v1/topology.svg    the same as a picture
"""
import time

from ryu.controller import ofp_event
from ryu.controller.handler import (CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER,
                                    set_ev_cls)
from ryu.lib import hub

from controller import (config, drawing, events, ofcompile, pipeline, rest, shared_learned,
                        southbound, state)
from controller.ports import SwitchPorts
from flows import diff, lldp, topology
from flows.spec import Owner


class Topology(southbound.SdnApp):
    _EVENTS = [events.EventTopology]
    BUILDS_FABRIC = True   # the bond app leaves its bridges in this fabric (apps/bond.py)
    APP, SETTINGS = topology.APP, topology.TopologySettings
    PACKET_IN_TABLES = ("ingress",)   # its LLDP trap (flows/topology.py discovery_trap)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)   # self.switches: dpid -> SwitchPorts
        self.live = {}      # dpid -> {port: when it came up}
        self.heard = {}     # Link -> when LLDP last crossed it
        self.guards = {}    # dpid -> flood guard last pushed
        self.hosts = {}     # (vlan, mac) -> (dpid, port), from the learning app
        self.trusted = {}   # dpid -> ports a previous controller's flood guard let flood
        self.described = set()  # dpids whose ports we know (their guard may change)
        self.fabric = topology.build((), (), ())
        self.changes, self.changed_at = 0, time.monotonic()
        self._trap_cookie = pipeline.cookie(topology.DISCOVERY)
        # _refresh runs from event handlers and from the discovery loop (two greenlets);
        # a send that blocks must not let the other push a diff against stale guards
        self._refreshing = hub.Semaphore(1)
        # a cluster: the links the other live nodes heard, and when each was last among
        # them (a dead node's links age out like unheard ones); None: a single node
        self.remote, self.remote_seen = frozenset(), {}
        try:
            self.shared = shared_learned.for_app(topology.APP, self._shared_changed)
        except (config.ConfigError, state.StateError) as err:
            raise SystemExit(f"{topology.APP}: {err}") from None
        hub.spawn(self._discover)

    # --- switches and ports ---------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _switch_connected(self, ev):
        datapath = ev.msg.datapath
        self.switches[datapath.id] = SwitchPorts(datapath)
        self.live[datapath.id] = {}
        self.described.discard(datapath.id)
        hub.spawn(self._reconcile, self.switches[datapath.id])

    def _reconcile(self, switch):
        """Take over what a previous controller left on the switch. Its flood guard
        stays and keeps flooding loop-free until the fabric is rebuilt, and the ports it
        let flood become edge ports at once unless LLDP shows a link on them (so a
        restart does not stop broadcasts for edge_after_s). A switch with nothing of
        ours floods nothing until the fabric knows it (every port is pending)."""
        datapath, taken = switch.datapath, []

        def adopt(installed):
            if self.switches.get(datapath.id) is not switch:
                return False  # gone again meanwhile
            taken.append(datapath.id)
            specs = [ofcompile.decode_flow(e.item) for e in installed if e.kind == "flow"]
            self._take_over_guard(datapath, [s for s in specs
                                             if s.owner == topology.FLOOD_GUARD])
        # the guard is read (adopt) but kept by _refresh, not reconciled here
        self.converge(datapath, [Owner(topology.APP)],
                      topology.discovery_trap() + [pipeline.canary(topology.APP)],
                      skip=[topology.FLOOD_GUARD], adopt=adopt)
        if not taken:  # it did not answer: as if it held nothing of ours
            if self.switches.get(datapath.id) is not switch:
                return
            self._take_over_guard(datapath, [])
        self._refresh()

    def _take_over_guard(self, datapath, guard):
        """The ports a previous controller's flood guard let flood count as edge ports
        at once; no guard: flood nothing until the fabric knows the switch."""
        with self._refreshing:
            self.trusted[datapath.id] = topology.allowed_in_ports(guard)
            for port in list(self.live[datapath.id]):
                self.live[datapath.id][port] = min(self.live[datapath.id][port],
                                                   self._came_up(datapath.id, port))
            self.guards[datapath.id] = guard
            if not guard:  # floods nothing until the fabric knows it
                self.guards[datapath.id] = topology.flood_guard(self.fabric, datapath.id)
                self.push(datapath, self.guards[datapath.id])

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _port_desc(self, ev):
        dpid = ev.msg.datapath.id
        switch = self.switches.get(dpid)
        if switch is None:
            return
        switch.update_from_desc(ev.msg)
        for port, live in ofcompile.decode_port_liveness(ev.msg):
            if live:
                self.live[dpid].setdefault(port, self._came_up(dpid, port))
                self._send_lldp(switch.datapath, port)
        if not ev.msg.flags & ofcompile.REPLY_MORE:
            self.described.add(dpid)
            self._refresh()

    def _came_up(self, dpid, port):
        """When a live port counts as up since: now, or, for a port the previous
        controller's guard let flood, long enough ago to be an edge port already."""
        now = time.monotonic()
        return now - self.settings.edge_after_s if port in self.trusted.get(dpid, ()) else now

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def _port_status(self, ev):
        dpid = ev.msg.datapath.id
        switch = self.switches.get(dpid)
        if switch is None:
            return
        switch.update_from_status(ev.msg)
        port, live = ofcompile.decode_port_status_liveness(ev.msg)
        if live:
            if port not in self.live[dpid]:
                self.live[dpid][port] = self._came_up(dpid, port)
                self._send_lldp(switch.datapath, port)
            return
        self.live[dpid].pop(port, None)
        self._drop_links(lambda end: end == (dpid, port))
        self._refresh()

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def _switch_gone(self, ev):
        dpid = ev.datapath.id
        switch = self.switches.get(dpid)
        if switch is None or switch.datapath is not ev.datapath:
            return  # unknown, or the old connection of a switch that is back already
        del self.switches[dpid]
        self.live.pop(dpid, None)
        self.guards.pop(dpid, None)
        self.trusted.pop(dpid, None)
        self.described.discard(dpid)
        self._drop_links(lambda end: end[0] == dpid)
        self._refresh()

    def programmed_datapaths(self):
        return [s.datapath for d, s in self.switches.items() if d in self.guards]

    def repair(self, datapath):
        switch = self.current_switch(self.switches, datapath)
        if switch is not None:
            self._reconcile(switch)

    @set_ev_cls(events.EventHostLocation)
    def _host(self, ev):
        if ev.port is None:
            self.hosts.pop((ev.vlan, ev.mac), None)
        else:
            self.hosts[(ev.vlan, ev.mac)] = (ev.dpid, ev.port)

    # --- discovery --------------------------------------------------------------------

    def _send_lldp(self, datapath, port):
        self.send(datapath, ofcompile.packet_out(
            datapath, port, lldp.frame(datapath.id, port)))

    def _discover(self):
        while True:
            for dpid, switch in list(self.switches.items()):
                for port in list(self.live.get(dpid, ())):
                    self._send_lldp(switch.datapath, port)
            self._refresh()
            hub.sleep(self.settings.lldp_interval_s)

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def _packet_in(self, ev):
        msg = ev.msg
        if msg.cookie != self._trap_cookie:
            return
        sender = lldp.parse(msg.data)
        here = (msg.datapath.id, msg.match["in_port"])
        if sender is None or not self._is_live(sender) or not self._is_live(here):
            return  # another speaker's LLDP, or a port that went down meanwhile
        link = topology.Link.between(sender, here)
        known = link in self.heard
        self.heard[link] = time.monotonic()
        if not known:
            self.logger.info("link %s", link)
            self._refresh()

    def _is_live(self, switch_port):
        dpid, port = switch_port
        return port in self.live.get(dpid, ())

    def _drop_links(self, touches):
        for link in [link for link in self.heard if touches(link.a) or touches(link.b)]:
            del self.heard[link]
            self.logger.info("link %s gone", link)
        for link in [link for link in self.remote_seen if touches(link.a) or touches(link.b)]:
            del self.remote_seen[link]

    def _shared_changed(self, documents):
        """Another node's links changed (the watch's green thread): refresh from them."""
        links = set()
        for node, document in sorted(documents.items()):
            try:
                links |= topology.links_of(document)
            except ValueError as err:
                self.logger.error("links of node %s left out: %s", node, err)
        self.remote = frozenset(links)
        hub.spawn(self._refresh)

    def _links(self, now):
        """The links the fabric is built from: those heard here, and in a cluster those
        another node heard (or did, less than link_timeout_s ago)."""
        if self.shared is None:
            return self.heard
        self.shared.publish(topology.links_document(self.heard))
        topology.age_links(self.remote_seen, self.remote, now, self.settings.link_timeout_s)
        return topology.union_links(self.heard, self.remote_seen, self._is_live)

    def _refresh(self):
        """Rebuild the fabric from what discovery knows now; if it changed, move every
        switch's flood guard to it and tell the other apps."""
        with self._refreshing:
            self._rebuild()

    def _rebuild(self):
        now = time.monotonic()
        for link in topology.age_links(self.heard, (), now, self.settings.link_timeout_s):
            self.logger.info("link %s timed out", link)
        edge = [(dpid, port) for dpid, ports in self.live.items()
                for port, since in ports.items() if now - since >= self.settings.edge_after_s]
        fabric = topology.build(self.switches, self._links(now), edge)
        changed = fabric != self.fabric
        if changed:
            self.fabric, self.changes, self.changed_at = fabric, self.changes + 1, now
            self.runtime.links = fabric.links   # what a trace follows (controller/trace.py)
        for dpid, switch in list(self.switches.items()):
            if dpid not in self.described or dpid not in self.guards:
                continue  # ports or installed guard not known yet: leave it as it is
            guard = topology.flood_guard(fabric, dpid)
            changes = diff.plan_changes(self.guards[dpid], guard)  # [] when in step
            self.guards[dpid] = guard
            if changes:
                self.push(switch.datapath, changes)
        if changed:
            self.send_event_to_observers(events.EventTopology(fabric))

    # --- what REST asks ---------------------------------------------------------------

    def view(self):
        fabric = self.fabric
        view = topology.describe(fabric)
        view["switches"] = [
            {"dpid": rest.format_dpid(dpid), "name": switch.name,
             "ports": [{"port": port, "name": switch.ports.get(port),
                        "role": topology.port_role(fabric, dpid, port)}
                       for port in sorted(self.live.get(dpid, ()))]}
            for dpid, switch in sorted(self.switches.items())]
        view["hosts"] = [{"mac": mac, "vlan": vlan, "dpid": rest.format_dpid(dpid), "port": port}
                         for (vlan, mac), (dpid, port) in sorted(
                             self.hosts.items(), key=lambda item: (item[0][0] or 0, item[0][1]))]
        view["root"] = rest.format_dpid(min(fabric.switches)) if fabric.switches else None
        pending = sum(port["role"] == "pending" for s in view["switches"] for port in s["ports"])
        view["pending_ports"] = pending
        view["changes"] = self.changes
        view["stable_for_s"] = round(time.monotonic() - self.changed_at, 1)
        if self.shared is not None:   # where the links came from
            view["learned"] = {"node": self.shared.node_id, "heard_here": len(self.heard),
                               "from_others": len(self.remote_seen),
                               "nodes": sorted(self.shared.documents())}
        return view


class TopologyRest(rest.AppController):
    @rest.api("topology", "/v1/topology", methods=["GET"])
    def get_topology(self, req, **_):
        return self.app.view()

    @rest.api("topology_svg", "/v1/topology.svg", methods=["GET"])
    def get_picture(self, req, **_):
        return rest.text_response(drawing.topology_svg(self.app.view()), "image/svg+xml")


Topology.REST = TopologyRest   # the app declares its REST controller (defined after it)
