"""The router: a gateway per VLAN, routing between VLANs, static routes, SNAT and
floating IPs, in flows (flows/router.py), next to the VLAN and learning apps.

    ryu-manager apps/l2_switch.py apps/vlan.py apps/router.py   # with any other apps too

The switch answers ARP and ping for the gateways itself and routes in its tables; the
controller only learns the hosts' MACs: from the ARP requests hosts send their gateway
(a copy comes up), and by asking (an ARP request sent in through the switch's tables)
when a frame is for a host or next hop it does not know yet. That frame is sent again
once the answer is there. Known hosts are asked again every REFRESH_S; one that stays
silent for FORGET_AFTER rounds is forgotten. IPv6 alike, by neighbour discovery, but
the controller answers the solicitations for its gateways itself (flows/ndp.py says
why), and sends every IPv6 network's router advertisement each REFRESH_S and to a
host's router solicitation. A routed packet whose TTL would run out comes up too (the
route table sends TTL 0 and 1 to the controller before dec_ttl sees them) and is
answered with time-exceeded.

Config section `router` (flows/router_model.py). REST (changes persist):
    GET         /v1/router                                  interfaces, routes, NAT, hosts
    POST        /v1/router/routes                           a static route
    DELETE      /v1/router/routes/{address}/{length}        one (a config file's too)
    POST        /v1/router/floating_ips                     a floating IP
    DELETE      /v1/router/floating_ips/{external}          one
"""
import time

from ryu.controller import ofp_event
from ryu.controller.handler import MAIN_DISPATCHER, set_ev_cls
from ryu.lib import hub

from controller import events, ofcompile, pipeline, rest, southbound
from controller.port_plans import PortPlans
from flows import ndp, probes, router
from flows.router_model import (APP, RouterSettings, RouterState, floating_from_dict,
                                route_from_dict)

REFRESH_S = 30.0        # how often a known host is asked again
FORGET_AFTER = 3        # rounds without an answer before a host is forgotten
ASK_AGAIN_S = 1.0       # the least time between two questions for one address
PENDING_PER_HOST = 16   # frames kept while their next hop is asked for
PENDING_MAX_S = 3.0     # how long they are kept
MAX_NEIGHBOURS = 4096
MAX_ADDRESSES_PER_MAC = 16  # a host's IPv4 and IPv6 addresses (SLAAC, privacy ones):
                            # one host making up sources cannot fill the table alone
MAX_ASKED = 4096        # addresses asked for within a refresh round
MAX_PENDING_TARGETS = 256   # addresses frames are kept for at once
RA_PER_PORT_S = 1.0         # the least time between two solicited advertisements out of
                            # one port (RFC 4861 6.2.6 spaces multicast ones 3 s apart)
ICMP_ERRORS_PER_S = 100     # time-exceeded sent at most, a burst of as many (RFC 1812
                            # asks for a limit; Linux allows 1000/s per host)


class Router(PortPlans, southbound.SdnApp):
    # {"routes": {prefix: body or None}, "floating_ips": {external: body or None}}
    APP, SETTINGS, STATE = APP, RouterSettings, "document"
    PACKET_IN_TABLES = ("router", "route")

    def __init__(self, *args, **kwargs):
        self.overrides = {"routes": {}, "floating_ips": {}}
        self._state = None     # the RouterState of settings + overrides (state())
        super().__init__(*args, **kwargs)
        self.plans = {}        # dpid -> the entries last pushed
        self.untagged = {}     # dpid -> (port, VLAN) pairs leaving untagged (VLAN app)
        self.neighbours = {}   # ip -> router.Neighbour
        self.heard = {}        # ip -> (when last heard, dpid it was heard on)
        self.asked = {}        # ip -> when last asked
        self.pending = {}      # ip -> [(dpid, in_port, frame bytes, kept at)]
        self.replayed = {}     # IP packet bytes -> when sent again (never kept twice)
        self.clock = time.monotonic
        self.error_tokens, self.error_tokens_at = float(ICMP_ERRORS_PER_S), 0.0
        self.advertised = {}   # (dpid, port) -> when a solicited advertisement left there
        if not southbound.app_loaded("vlan"):
            self.logger.error("router: the VLAN app is not loaded: its gateways live in "
                              "VLANs, and without it frames carry no VLAN to route between")
        hub.spawn(self._refresh_loop)

    # --- state ---------------------------------------------------------------------

    def state(self, overrides=None) -> RouterState:
        """The router as it runs (cached: a packet-in must not parse every override
        again), or as `overrides` would make it."""
        if overrides is None:
            if self._state is None or self._state.settings is not self.settings:
                self._state = self.state(self.overrides)
            return self._state
        return RouterState(self.settings, dict(overrides["routes"]),
                           dict(overrides["floating_ips"]))

    def _fitting(self, overrides, why):
        """The overrides that parse, are stored under their own key and fit the config
        together, taken one by one in order; each left out is logged (the next save
        drops it), the rest stay."""
        kept = {"routes": {}, "floating_ips": {}}
        keys = {"routes": lambda body: route_from_dict(body).prefix,
                "floating_ips": lambda body: floating_from_dict(body).external}
        for kind, key_of in keys.items():
            entries = overrides.get(kind) if isinstance(overrides, dict) else None
            for key, body in (entries.items() if isinstance(entries, dict) else ()):
                trial = {k: dict(v) for k, v in kept.items()}
                trial[kind][str(key)] = body
                try:
                    if body is not None and key_of(body) != key:
                        raise ValueError(f"stored under {key!r}, not its own key")
                    self.state(trial).check()
                except (ValueError, TypeError) as err:
                    self.logger.error("router: %s %s %r left out: %s", why, kind, key, err)
                    continue
                kept = trial
        return kept

    def restore_state(self, document):
        """The REST-made routes and floating IPs as stored."""
        self.overrides = self._fitting(document, "stored")
        self._state = None

    def apply_settings(self, settings):
        """A reloaded config: REST's changes that no longer fit it are dropped, one by
        one (logged)."""
        self.settings = settings
        self.overrides = self._fitting(self.overrides, "with the new config, REST's")
        self._state = None
        self.neighbours = router.known_neighbours(settings, self.neighbours)
        self.program_all()

    # --- programming ---------------------------------------------------------------

    def program(self, switch):
        self.push_plan(switch, router.desired(self.state(), self.neighbours,
                                              self.untagged.get(switch.datapath.id, ())))

    @set_ev_cls(events.EventPortVlans)
    def _port_vlans(self, ev):
        """The VLAN app changed which (port, VLAN) pairs leave untagged: the answers the
        switch sends back out of a port pop the tag there."""
        if self.untagged.get(ev.dpid) == ev.untagged:
            return
        self.untagged[ev.dpid] = ev.untagged
        switch = self.switches.get(ev.dpid)
        if switch is not None and ev.dpid in self.plans:
            self.program(switch)

    # --- hosts -----------------------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def _packet_in(self, ev):
        msg = ev.msg
        owner = pipeline.owner_of(msg.cookie)
        if owner is None or owner.app != APP or msg.datapath.id not in self.plans:
            return
        frame = router.parse_frame(msg.data)
        if frame is None:
            return
        if owner.purpose == router.EXPIRED.purpose:
            self.on_ttl_expired(msg.datapath.id, msg.match["in_port"], msg.data, frame)
        elif frame.arp_op is not None:
            self.on_arp(msg.datapath.id, frame)
        elif frame.nd is not None and frame.nd.kind in (ndp.NS, ndp.NA, ndp.RS):
            self.on_nd(msg.datapath.id, msg.match["in_port"], frame)
        elif frame.ip_dst is not None:
            self.on_unresolved(msg.datapath.id, msg.match["in_port"], msg.data, frame)

    def on_nd(self, dpid, in_port, frame):
        """A solicitation for a gateway (answered back out of the port it came in by,
        tagged as that port carries the VLAN) or an advertisement sent to the gateway:
        the host it tells about is learnt."""
        self.learn(dpid, router.gleaned6(self.settings, frame))
        if frame.nd.kind == ndp.RS:
            now = self.clock()
            if now - self.advertised.get((dpid, in_port), -RA_PER_PORT_S) < RA_PER_PORT_S:
                return
            if len(self.advertised) >= MAX_ASKED:
                self.advertised = {k: t for k, t in self.advertised.items()
                                   if now - t < RA_PER_PORT_S}
            self.advertised[(dpid, in_port)] = now
        self._answer(dpid, in_port, frame,
                     lambda tagged: router.nd_answer(self.settings, frame, tagged))

    def on_ttl_expired(self, dpid, in_port, data, frame):
        """A routed packet's TTL runs out here (the route table sent it up): a
        time-exceeded back to its sender, out of the port it came in by, within the
        rate limit."""
        now = self.clock()
        self.error_tokens = min(float(ICMP_ERRORS_PER_S), self.error_tokens + (
            now - self.error_tokens_at) * ICMP_ERRORS_PER_S)
        self.error_tokens_at = now
        if self.error_tokens < 1:
            return
        if self._answer(dpid, in_port, frame, lambda tagged: router.time_exceeded(
                self.state(), frame, router.ip_packet(data, frame), tagged)):
            self.error_tokens -= 1

    def _answer(self, dpid, in_port, frame, build) -> bool:
        """The frame `build(tagged)` makes, sent back out of the port `frame` came in by
        (tagged as that port carries its VLAN); False when there is none to send."""
        switch = self.switches.get(dpid)
        answer = build((in_port, frame.vlan) not in self.untagged.get(dpid, ()))
        if answer is None or switch is None:
            return False
        self.send(switch.datapath, ofcompile.packet_out(switch.datapath, in_port, answer))
        return True

    def on_arp(self, dpid, frame):
        self.learn(dpid, router.gleaned(self.settings, frame))

    def learn(self, dpid, host):
        if host is None:
            return
        known = self.neighbours.get(host.ip)
        if known is None and len(self.neighbours) >= MAX_NEIGHBOURS:
            return   # full: a flood of made-up hosts must not grow the tables
        if (known is None or known.mac != host.mac) and sum(
                n.mac == host.mac for n in self.neighbours.values()) >= MAX_ADDRESSES_PER_MAC:
            return
        self.heard[host.ip] = (self.clock(), dpid)
        if known != host:
            self.neighbours[host.ip] = host
            self.logger.info("router: %s is at %s (VLAN %d)", host.ip, host.mac, host.vlan)
            self.program_all()
        if self.pending.get(host.ip):
            hub.spawn(self._send_pending, host.ip)   # it waits for a barrier reply,
            # which this app's own event loop delivers

    def on_unresolved(self, dpid, in_port, data, frame):
        """A frame for an address whose MAC the router does not know: keep it, ask."""
        found = router.next_hop(self.state(), frame.ip_dst)
        if found is None:
            return
        target, iface = found
        now = self.clock()
        packet = router.ip_packet(data, frame)
        again = now - self.replayed.get(packet, -PENDING_MAX_S) < PENDING_MAX_S
        if router.replayable(self.state(), frame) and not again and \
                (target in self.pending or len(self.pending) < MAX_PENDING_TARGETS):
            kept = [p for p in self.pending.get(target, []) if now - p[3] < PENDING_MAX_S]
            if len(kept) < PENDING_PER_HOST:
                kept.append((dpid, in_port, data, now))
            self.pending[target] = kept
        if now - self.asked.get(target, -ASK_AGAIN_S) >= ASK_AGAIN_S and \
                (target in self.asked or len(self.asked) < MAX_ASKED):
            self.ask(dpid, target, iface)

    def ask(self, dpid, target, iface):
        """An ARP request (IPv6: a neighbour solicitation) from the gateway, sent in
        through the switch's tables in the interface's VLAN: the VLAN app floods it to
        that VLAN's ports only."""
        switch = self.switches.get(dpid)
        if switch is None:
            return
        self.asked[target] = self.clock()
        if ":" in target:
            frame = ndp.solicitation(self.settings.mac, iface.ip6, target, iface.vlan)
        else:
            frame = probes.arp_request(self.settings.mac, iface.ip, target, iface.vlan)
        self.send(switch.datapath, ofcompile.packet_out_through_pipeline(switch.datapath, frame))

    def advertise_all(self):
        """A router advertisement for every IPv6 network, sent in through one switch's
        tables (the VLAN floods it to every port of its, across a fabric too), so hosts
        that came up before the switch connected configure themselves."""
        dpid = min((d for d in self.plans if d in self.switches), default=None)
        if dpid is None:
            return
        datapath = self.switches[dpid].datapath
        for iface in self.settings.internal():
            if iface.address6 is not None:
                self.send(datapath, ofcompile.packet_out_through_pipeline(
                    datapath, router.advertise(self.settings, iface, iface.vlan)))

    def _send_pending(self, ip):
        """The frames kept for `ip`, sent through the switch they came from again now
        that its entry is there (after a barrier: the entry first)."""
        now, confirmed = self.clock(), set()
        for dpid, in_port, data, kept_at in self.pending.pop(ip, []):
            switch = self.switches.get(dpid)
            frame = router.parse_frame(data)
            if switch is None or frame is None or now - kept_at >= PENDING_MAX_S:
                continue
            if dpid not in confirmed:
                try:
                    self.confirm(switch.datapath)
                except southbound.SwitchTimeout as err:
                    self.logger.warning("router: %s", err)
                    continue
                confirmed.add(dpid)
            self.replayed[router.ip_packet(data, frame)] = now
            if (in_port, frame.vlan) in self.untagged.get(dpid, ()):
                data = router.untag(data, frame)   # it came in untagged
            self.send(switch.datapath, ofcompile.packet_out_through_pipeline(
                switch.datapath, data, in_port))

    def _refresh_loop(self):
        while True:
            hub.sleep(REFRESH_S)
            try:
                self.refresh()
                self.advertise_all()
            except Exception:   # noqa: BLE001 - the loop must outlive one bad round
                self.logger.exception("router: refreshing the known hosts failed")

    def refresh(self):
        """Ask every known host again; forget the ones silent for FORGET_AFTER rounds
        (and what was asked, kept or sent again long ago)."""
        now, forgotten = self.clock(), []
        self.asked = {ip: at for ip, at in self.asked.items() if now - at < REFRESH_S}
        self.replayed = {p: at for p, at in self.replayed.items() if now - at < PENDING_MAX_S}
        self.pending = {ip: kept for ip, kept in self.pending.items()
                        if any(now - p[3] < PENDING_MAX_S for p in kept)}
        for ip, host in list(self.neighbours.items()):
            heard_at, dpid = self.heard.get(ip, (now, None))
            if now - heard_at > FORGET_AFTER * REFRESH_S:
                forgotten.append(ip)
                continue
            iface = next((i for i in self.settings.interfaces if i.vlan == host.vlan), None)
            if iface is not None and dpid is not None:
                self.ask(dpid, ip, iface)
        for ip in forgotten:
            self.logger.info("router: %s stopped answering: forgotten", ip)
            self.neighbours.pop(ip, None)
            self.heard.pop(ip, None)
        if forgotten:
            self.program_all()

    # --- what REST asks ------------------------------------------------------------

    def describe(self):
        state, settings = self.state(), self.settings
        return {"mac": settings.mac,
                "interfaces": [i.to_dict() for i in settings.interfaces],
                "routes": [r.to_dict() for _, r in sorted(state.routes().items())],
                "snat": list(settings.snat),
                "floating_ips": [f.to_dict() for _, f in sorted(state.floating_ips().items())],
                "neighbours": [{"ip": h.ip, "mac": h.mac, "vlan": h.vlan}
                               for _, h in sorted(self.neighbours.items())]}

    def _commit(self, overrides):
        try:
            self.state(overrides).check()
        except ValueError as err:
            raise rest.ApiError(400, str(err)) from None
        self.save_state(overrides)
        self.overrides, self._state = overrides, None
        self.program_all()

    def _copy(self):
        return {"routes": dict(self.overrides["routes"]),
                "floating_ips": dict(self.overrides["floating_ips"])}

    def _effective(self, kind):
        state = self.state()
        return state.routes() if kind == "routes" else state.floating_ips()

    def _change(self, kind, key, item):
        """Add `item` under `key` (None: remove what is there), checked whole, saved,
        pushed; the added or removed item as REST answers it."""
        current = self._effective(kind).get(key)
        what = "a route for" if kind == "routes" else "floating IP"
        if item is not None and current is not None:
            raise rest.ApiError(409, f"{what} {key} exists: delete it first")
        if item is None and current is None:
            raise rest.ApiError(404, f"no {what.replace('a ', '')} {key}")
        overrides = self._copy()
        overrides[kind][key] = None if item is None else item.to_dict()
        self._commit(overrides)
        return (item or current).to_dict()

    @staticmethod
    def _parsed(parse, body):
        try:
            return parse(body)
        except ValueError as err:
            raise rest.ApiError(400, str(err)) from None

    def add_route(self, body):
        route = self._parsed(route_from_dict, body)
        return self._change("routes", route.prefix, route)

    def delete_route(self, address, length):
        prefix = self._parsed(route_from_dict, {"prefix": f"{address}/{length}",
                                                "next_hop": "0.0.0.0"}).prefix
        return self._change("routes", prefix, None)

    def add_floating_ip(self, body):
        fip = self._parsed(floating_from_dict, body)
        return self._change("floating_ips", fip.external, fip)

    def delete_floating_ip(self, external):
        return self._change("floating_ips", external, None)


class RouterRest(rest.AppController):
    @rest.api("router_get", "/v1/router", methods=["GET"])
    def get_all(self, req, **_):
        return self.app.describe()

    @rest.api("router_route_post", "/v1/router/routes", methods=["POST"])
    def add_route(self, req, **_):
        return rest.json_response(self.app.add_route(rest.parse_json_body(req)), 201)

    @rest.api("router_route_delete", "/v1/router/routes/{address}/{length}",
              methods=["DELETE"])
    def delete_route(self, req, address, length, **_):
        return self.app.delete_route(address, length)

    @rest.api("router_floating_post", "/v1/router/floating_ips", methods=["POST"])
    def add_floating_ip(self, req, **_):
        return rest.json_response(self.app.add_floating_ip(rest.parse_json_body(req)), 201)

    @rest.api("router_floating_delete", "/v1/router/floating_ips/{external}",
              methods=["DELETE"])
    def delete_floating_ip(self, req, external, **_):
        return self.app.delete_floating_ip(external)


Router.REST = RouterRest
