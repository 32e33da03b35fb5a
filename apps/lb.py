"""Load balancing behind virtual IPs: an OpenFlow select group per VIP, health checks
by the controller, REST.

    ryu-manager apps/l2_switch.py apps/lb.py

What goes on the switch is in flows/lb.py. The controller finds each backend's MAC
and switch port itself (ARP from a probe address), then checks it every interval with
a TCP SYN to its service port (UDP VIPs: ARP): a backend that refuses (RST), or
leaves `misses` probes in a row unanswered for `timeout_s` each, leaves its VIP's group (buckets are replaced in place, pinned connections
stay) and comes back after its next good answer. Clients and backends of a VIP sit on
the same switch and VLAN: with the VLAN app loaded, a backend's VLAN is the one its
replies arrive on, and the VIP answers on its backends' VLANs only (flows/lb.py).

Config section `lb` (flows/lb.py LbSettings). REST (changes persist):
    GET/POST         /v1/lb/vips
    GET/PATCH/DELETE /v1/lb/vips/{id}
    POST/DELETE      /v1/lb/vips/{id}/backends/{ip}        POST body: {port, weight}
    GET              /v1/lb/vips/{id}/stats                packets/bytes per backend, health
and the spread mode's /v1/lb/spreads (apps/lb_spreads.py: a subnet over ports, no NAT).
"""
import itertools
import time

from prometheus_client.core import GaugeMetricFamily
from ryu.controller import ofp_event
from ryu.controller.handler import (CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER,
                                    set_ev_cls)
from ryu.lib import hub

from apps.lb_spreads import Spreads, SpreadsRest, by_id
from controller import desired_state, events, ofcompile, pipeline, rest, southbound
from controller.ports import SwitchPorts
from flows import diff, lb, lb_health, lb_spread, probes
from flows.spec import FLOOD, FlowDelete, GroupRef, Owner

TICK_S = 0.1


class LbSwitch(SwitchPorts):
    def __init__(self, datapath):
        super().__init__(datapath)  # its ports: a spread's are checked against them
        self.groups = set()     # VIP ids whose group exists here
        self.buckets = {}       # VIP id -> backend IPs, in bucket order
        self.plans = {}         # VIP id -> the flows and group last installed
        self.probe_plan = []    # the probe entries last installed
        self.reply_plan = []    # the nat reply entries last installed (every VIP's)
        self.spread_ids = set()  # the spreads installed here
        self.ready = False      # taken over and reconciled (program_switch)


class Lb(Spreads, southbound.SdnApp):
    APP, SETTINGS, STATE = lb.APP, lb.LbSettings, "document"  # {"vips": {id: body or None}}
    PACKET_IN_TABLES = ("vip",)   # the health checks' replies

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.vips = self.build_vips(self.overrides)
        self.spreads = self.build_spreads(self.overrides)   # id -> lb_spread.Spread
        self.backends = {}      # (VIP id, backend ip) -> lb_health.BackendState
        self.pending = {}       # (dpid, probe port) -> (VIP id, backend ip, sent at)
        self.untagged = {}      # dpid -> (port, VLAN) pairs leaving untagged (VLAN app)
        self.ports = itertools.cycle(range(33000, 61000))
        self.clock = time.monotonic
        self.spawn = hub.spawn
        self.prober = None

    def metric_families(self):
        healthy = GaugeMetricFamily("sdn_lb_backend_healthy",
                                    "1 when a VIP's backend passes its health checks",
                                    labels=["vip", "backend"])
        for vip_id, vip in sorted(self.vips.items()):
            for backend in vip.backends:
                st = self.backends.get((vip_id, backend.ip))
                healthy.add_metric([f"{vip.ip}:{vip.port}/{vip.protocol}",
                                    f"{backend.ip}:{backend.port}"], int(bool(st and st.healthy)))
        yield healthy

    def repair(self, datapath):
        switch = self.current_switch(self.switches, datapath)
        if switch is not None:
            switch.ready = False
            self.program_switch(switch)

    def take_over(self, datapath):
        """A cluster node became this switch's master: the groups there are what the
        previous master decided last, fresher than any verdict this node made when it
        was master before, so they are adopted (docs/cluster-learned-state.md)."""
        for st in self.backends.values():
            if st.dpid == datapath.id:
                st.healthy = st.verdict = False
        super().take_over(datapath)

    def apply_settings(self, settings):
        """A reloaded config: the VIPs as file and REST now say, reconciled on every
        switch like at a restart (backends keep their health)."""
        self.settings = settings
        self.vips = self.build_vips(self.overrides)
        self.spreads = self.build_spreads(self.overrides)
        for switch in list(self.switches.values()):
            if switch.ready:
                switch.ready = False
                self.spawn(self.program_switch, switch)

    # --- desired state ----------------------------------------------------------------

    def build_vips(self, overrides):
        problems = []
        vips = lb.vips_from(self.settings, overrides.get("vips", {}), problems)
        for problem in problems:
            self.logger.error("lb: %s", problem)
        return vips

    def untagged_on(self, dpid):
        return self.untagged.get(dpid, frozenset())

    def probe_vlan(self, st):
        """The tag a frame the controller sends to this backend carries: its VLAN where
        its port leaves that VLAN tagged, none where the VLAN app pops it (or the
        pipeline does not tag). A packet-out skips the VLAN app's egress."""
        if st.vlan is None or lb.pops_tag(st.port, st.vlan, self.untagged_on(st.dpid)):
            return None
        return st.vlan

    def probe_entries(self, switch):
        return lb_health.probe_entries(self.settings, self.untagged_on(switch.datapath.id))

    # --- programming -------------------------------------------------------------------

    def program_vip(self, vip_id, switches=None):
        """(Re)install one VIP (or remove it, when gone) on the switches, sending only
        what changed (flows/diff.py); the group is replaced in place. Switches still
        being taken over (program_switch) get it there."""
        vip = self.vips.get(vip_id)
        for switch in list(switches or self.switches.values()):
            if not switch.ready:
                continue
            if vip is None:
                if vip_id in switch.groups:
                    self.push(switch.datapath, lb.forget_vip(vip_id))
                    switch.groups.discard(vip_id)
                    switch.buckets.pop(vip_id, None)
                    switch.plans.pop(vip_id, None)
                continue
            plan = self.vip_plan(vip, switch)
            changes = diff.plan_changes(switch.plans.get(vip_id, []), plan)
            if changes:
                self.push(switch.datapath, changes)
            switch.plans[vip_id] = plan
        for switch in list(switches or self.switches.values()):
            if switch.ready:
                self.program_replies(switch)

    def program_replies(self, switch):
        """The nat reply entries, shared by the VIPs of one backend: what changed."""
        plan = lb_health.reply_entries(self.vips, self.backends, switch.datapath.id)
        changes = diff.plan_changes(switch.reply_plan, plan)
        if changes:
            self.push(switch.datapath, changes)
        switch.reply_plan = plan

    def vip_plan(self, vip, switch):
        plan = lb_health.vip_plan(vip, self.backends, switch.datapath.id,
                                  self.untagged_on(switch.datapath.id),
                                  vip.vip_id in switch.groups)
        self._note(vip, switch, plan)
        return plan.items

    def _note(self, vip, switch, plan):
        """What the switch now has of `vip`: its group, the backends in bucket order."""
        if len(plan.vlans) > 1:
            self.logger.warning("lb: VIP %s has backends on VLANs %s of switch %s; a VIP's "
                                "clients and backends must share one VLAN", vip.vip_id,
                                ", ".join(map(str, plan.vlans)),
                                rest.format_dpid(switch.datapath.id))
        switch.groups.add(vip.vip_id)
        switch.buckets[vip.vip_id] = plan.buckets

    def program_switch(self, switch):
        """In a greenlet, when a switch connects: take over what a previous controller
        left there (where backends are, which were live), then reconcile. The VIPs'
        entries and groups come out the same, so they are left untouched and
        connections through them see no gap across a controller restart."""
        datapath = switch.datapath

        def desired():  # after the take-over: verdicts adopted count
            switch.groups.clear()
            wanted = lb_health.desired(self.settings, self.vips, self.backends, datapath.id,
                                       self.untagged_on(datapath.id))
            for vip_id, plan in wanted.vips.items():
                self._note(self.vips[vip_id], switch, plan)
            switch.plans = {vip_id: plan.items for vip_id, plan in wanted.vips.items()}
            switch.probe_plan = wanted.probes
            switch.reply_plan = wanted.replies
            switch.spread_ids = {s.spread_id for s in self.spreads.values()
                                 if s.dpid == datapath.id}
            return desired_state.framed(lb.APP, wanted.items() + self.spread_items(datapath.id))
        self.converge(datapath, [Owner(lb.APP), pipeline.MISSES], desired,
                      forget=lambda: [FlowDelete(Owner(lb.APP))] + [
                          i for vip_id in self.vips for i in lb.forget_vip(vip_id)] + [
                          i for spread_id in self.spreads
                          for i in lb_spread.forget_spread(spread_id)],
                      groups=True, adopt=lambda installed: self.adopt(switch, installed))
        switch.ready = True
        self.sync_spreads(switch)   # made or deleted meanwhile
        for vip_id in sorted(self.vips):  # health that changed meanwhile
            self.program_vip(vip_id, [switch])

    def adopt(self, switch, installed):
        """Backends a previous controller had located on this switch, and live."""
        located, live = lb.adopt(
            [ofcompile.decode_flow(e.item) if e.kind == "flow" else ofcompile.decode_group(e.item)
             for e in installed if e.kind in ("flow", "group")])
        for vip_id, ip, st in lb_health.take_over(self.vips, self.backends, switch.datapath.id,
                                                  located, live, self.clock()):
            self.logger.info("lb: VIP %s backend %s taken over at %s port %s VLAN %s (%s)",
                             vip_id, ip, rest.format_dpid(st.dpid), st.port, st.vlan,
                             "healthy" if st.healthy else "down")

    # --- switch events -------------------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _switch_connected(self, ev):
        switch = LbSwitch(ev.msg.datapath)
        self.switches[switch.datapath.id] = switch
        self.spawn(self.program_switch, switch)  # it waits for replies: not in the handler
        if self.prober is None:
            self.prober = self.spawn(self._probe_loop)

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _port_desc(self, ev):
        switch = self.current_switch(self.switches, ev.msg.datapath)
        if switch is not None:
            switch.update_from_desc(ev.msg)   # the ports a spread may name

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def _port_status(self, ev):
        switch = self.current_switch(self.switches, ev.msg.datapath)
        if switch is not None:
            switch.update_from_status(ev.msg)

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def _switch_gone(self, ev):
        self.forget_switch(self.switches, ev.datapath)

    @set_ev_cls(events.EventPortVlans)
    def _port_vlans(self, ev):
        """The VLAN app changed which (port, VLAN) pairs leave untagged: the entries that
        send frames out of a port themselves (ARP answers, rewrites to backends) pop the
        tag there. Before the switch is taken over, just note it (program_switch reads it)."""
        if self.untagged.get(ev.dpid) == ev.untagged:
            return
        self.untagged[ev.dpid] = ev.untagged
        switch = self.switches.get(ev.dpid)
        if switch is None or not switch.ready:
            return
        plan = self.probe_entries(switch)
        changes = diff.plan_changes(switch.probe_plan, plan)
        if changes:
            self.push(switch.datapath, changes)
        switch.probe_plan = plan
        for vip_id in sorted(self.vips):
            self.program_vip(vip_id, [switch])

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def _packet_in(self, ev):
        msg = ev.msg
        if msg.table_id != pipeline.table_id("vip") or msg.datapath.id not in self.switches:
            return
        reply = probes.parse_reply(msg.data)
        if isinstance(reply, probes.ArpReply):
            self.on_arp_reply(msg.datapath.id, msg.match["in_port"], reply)  # tagged or not
        elif isinstance(reply, probes.TcpReply):
            self.on_tcp_reply(msg.datapath.id, reply)

    # --- health checks ---------------------------------------------------------------------

    def on_arp_reply(self, dpid, port, reply):
        self._act(lb_health.on_arp_reply(self.vips, self.backends, dpid, port, reply,
                                         self.clock()))

    def on_tcp_reply(self, dpid, reply):
        outcome = lb_health.on_tcp_reply(self.backends, self.pending, dpid, reply, self.clock())
        st = outcome.reset
        if st is not None:   # accepted: end the half-open connection
            self.send(self.switches[dpid].datapath, ofcompile.packet_out(
          self.switches[dpid].datapath, st.port,
          probes.reset_for(reply, lb.PROBE_MAC, st.mac, self.settings.probe_ip,
                           self.probe_vlan(st))))
        self._act(outcome)

    def _act(self, outcome):
        """Log the health changes, then reprogram the VIPs they touch."""
        for vip_id, ip, healthy in outcome.changed:
            self.logger.info("lb: VIP %s backend %s is %s", vip_id, ip,
                             "healthy" if healthy else "down")
        for vip_id in outcome.reprogram:
            self.program_vip(vip_id)

    def _probe_loop(self):
        while True:
            hub.sleep(TICK_S)
            self.probe_round()

    def probe_round(self):
        now = self.clock()
        for vip_id, ip in lb_health.expired(self.pending, self.vips, now):
            self._act(lb_health.miss(self.vips[vip_id], self.backends, ip, now))
        if not self.settings.probe_ip:
            return
        for vip, backend, st in lb_health.probes_due(self.vips, self.backends, now):
            self.probe(vip, backend, st)

    def probe(self, vip, backend, st):
        probe_ip = self.settings.probe_ip
        if lb_health.probe_by_arp(vip, st, self.switches):
            # flooded past the VLAN app's egress: untagged, unless the backend was
            # found on a VLAN its port carries tagged
            frame = probes.arp_request(lb.PROBE_MAC, probe_ip, backend.ip,
                                       self.probe_vlan(st) if st.mac else None)
            for switch in list(self.switches.values()):
                if switch.ready:  # one being taken over gets nothing until it is
                    self.send(switch.datapath,
                              ofcompile.packet_out(switch.datapath, FLOOD, frame))
            return
        switch = self.switches[st.dpid]
        port = next(self.ports)
        self.pending[(st.dpid, port)] = (vip.vip_id, backend.ip, self.clock())
        if not self.send(switch.datapath, ofcompile.packet_out(
                switch.datapath, st.port, probes.tcp_segment(
                    lb.PROBE_MAC, st.mac, probe_ip, backend.ip, port, backend.port, probes.SYN,
                    seq=port * 7919, vlan=self.probe_vlan(st)))):
            del self.pending[(st.dpid, port)]   # not master (cluster): a probe not sent is no miss

    # --- what REST asks ---------------------------------------------------------------------

    def vip(self, vip_id):
        return by_id(self.vips, vip_id, "VIP")

    def describe(self, vip):
        out = lb.vip_to_dict(vip)
        now = self.clock()
        for entry in out["backends"]:
            st = self.backends.get((vip.vip_id, entry["ip"])) or \
                lb_health.BackendState(last_change=now)
            entry.update(healthy=st.healthy, mac=st.mac, switch_port=st.port, vlan=st.vlan,
                         state_for_s=round(now - st.last_change, 1))
        out["mac"] = lb.vip_mac(vip.vip_id)
        return out

    def change(self, vip_id, body):
        """Set (body) or remove (None) one VIP: validated, saved, then programmed."""
        if body is not None:
            try:
                vip = lb.vip_from_dict(vip_id, body, self.settings.subnets)
            except ValueError as err:
                raise rest.ApiError(400, str(err)) from None
            for other in self.vips.values():
                if other.vip_id != vip_id and (other.ip, other.protocol, other.port) == \
                        (vip.ip, vip.protocol, vip.port):
                    raise rest.ApiError(409, f"VIP {vip.ip} {vip.protocol}/{vip.port} exists "
                                             f"(id {other.vip_id})")
        overrides = dict(self.overrides)   # the spreads stay as they are
        overrides["vips"] = dict(self.overrides.get("vips", {}))
        overrides["vips"][str(vip_id)] = body
        self.save_state(overrides)
        self.overrides = overrides
        self.vips = self.build_vips(overrides)
        for key in [k for k in self.backends if k[0] == vip_id and
                    (vip_id not in self.vips or self.vips[vip_id].backend(k[1]) is None)]:
            del self.backends[key]
        self.program_vip(vip_id)
        return self.vips.get(vip_id)

    def body_of(self, vip):
        return {k: v for k, v in lb.vip_to_dict(vip).items() if k != "id"}

    def stats(self, vip):
        out = self.describe(vip)
        counters = {b["ip"]: {"packets": 0, "bytes": 0} for b in out["backends"]}
        for switch in list(self.switches.values()):
            if vip.vip_id not in switch.groups:
                continue
            try:
                buckets = ofcompile.decode_group_stats(self.request(
                    switch.datapath, ofcompile.group_stats_request(
                        switch.datapath, GroupRef(lb.vip_owner(vip.vip_id), vip.vip_id))))
            except southbound.SwitchTimeout as err:
                raise rest.ApiError(504, str(err)) from None
            for ip, (packets, nbytes) in zip(switch.buckets.get(vip.vip_id, []), buckets):
                counters[ip]["packets"] += packets
                counters[ip]["bytes"] += nbytes
        for entry in out["backends"]:
            entry.update(counters[entry["ip"]])
        return out


class LbRest(SpreadsRest, rest.AppController):
    @rest.api("lb_list", "/v1/lb/vips", methods=["GET"])
    def list_vips(self, req, **_):
        return [self.app.describe(v) for _, v in sorted(self.app.vips.items())]

    @rest.api("lb_add", "/v1/lb/vips", methods=["POST"])
    def add_vip(self, req, **_):
        body = rest.parse_json_body(req)
        vip_id = max(self.app.vips, default=0) + 1
        return rest.json_response(self.app.describe(self.app.change(vip_id, body)), 201)

    @rest.api("lb_get", "/v1/lb/vips/{vip_id}", methods=["GET"])
    def get_vip(self, req, vip_id, **_):
        return self.app.describe(self.app.vip(vip_id))

    @rest.api("lb_patch", "/v1/lb/vips/{vip_id}", methods=["PATCH"])
    def patch_vip(self, req, vip_id, **_):
        vip = self.app.vip(vip_id)
        body = dict(self.app.body_of(vip), **rest.parse_json_body(req))
        return self.app.describe(self.app.change(vip.vip_id, body))

    @rest.api("lb_delete", "/v1/lb/vips/{vip_id}", methods=["DELETE"])
    def delete_vip(self, req, vip_id, **_):
        vip = self.app.vip(vip_id)
        self.app.change(vip.vip_id, None)
        return {"deleted": vip.vip_id}

    @rest.api("lb_backend_add", "/v1/lb/vips/{vip_id}/backends/{ip}", methods=["POST"])
    def add_backend(self, req, vip_id, ip, **_):
        vip = self.app.vip(vip_id)
        if vip.backend(ip) is not None:
            raise rest.ApiError(409, f"{ip} is already a backend of VIP {vip.vip_id}")
        extra = rest.parse_json_body(req) if req.body else {}
        body = self.app.body_of(vip)
        body["backends"] = body["backends"] + [dict(extra, ip=ip)]
        return rest.json_response(self.app.describe(self.app.change(vip.vip_id, body)), 201)

    @rest.api("lb_backend_delete", "/v1/lb/vips/{vip_id}/backends/{ip}", methods=["DELETE"])
    def delete_backend(self, req, vip_id, ip, **_):
        vip = self.app.vip(vip_id)
        if vip.backend(ip) is None:
            raise rest.ApiError(404, f"{ip} is not a backend of VIP {vip.vip_id}")
        if len(vip.backends) == 1:
            raise rest.ApiError(409, f"{ip} is VIP {vip.vip_id}'s last backend; delete the "
                                     f"VIP instead")
        body = self.app.body_of(vip)
        body["backends"] = [b for b in body["backends"] if b["ip"] != ip]
        return self.app.describe(self.app.change(vip.vip_id, body))

    @rest.api("lb_stats", "/v1/lb/vips/{vip_id}/stats", methods=["GET"])
    def vip_stats(self, req, vip_id, **_):
        return self.app.stats(self.app.vip(vip_id))


Lb.REST = LbRest   # the app declares its REST controller (defined after it)
