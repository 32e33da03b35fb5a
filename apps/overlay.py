"""VXLAN/GRE overlay across hypervisors: the overlay lab's tunnel bridge, programmed.

    ryu-manager apps/overlay.py        # alone: it owns the hypervisors' bridges

Each hypervisor has an integration bridge (VM ports are access ports of their
network's local VLAN; flows/vlan + datapath learning from flows/l2) patched to a
tunnel bridge running the lab's tables 0/1/2/3/10/20/21 (flows/overlay.py). The
controller creates the full mesh of tunnel ports through each hypervisor's OVSDB,
chooses local VLANs per hypervisor, and pushes a bridge's flows only when they change.

Config section `overlay` (flows/overlay.py OverlaySettings). REST (changes persist):
    GET             /v1/overlay                              everything, with status
    POST            /v1/overlay/hypervisors                  {name, int_dpid, tun_dpid,
                                                              underlay_ip, ovsdb}
    GET/DELETE      /v1/overlay/hypervisors/{name}
    POST            /v1/overlay/networks                     {vni, name, tunnel_type}
    GET/DELETE      /v1/overlay/networks/{vni}
    GET/POST        /v1/overlay/ports                        {hypervisor, port, vni, mac, ip}
    DELETE          /v1/overlay/ports/{hypervisor}/{port}
"""
from ryu.controller import ofp_event
from ryu.controller.handler import (CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER,
                                    set_ev_cls)
from ryu.lib import hub

from controller import ovsdb, pipeline, rest, southbound
from controller.ports import SwitchPorts
from flows import diff, overlay
from flows.dpid import of_ref

KINDS = ("hypervisors", "networks", "ports")
_PARSE = {"hypervisors": overlay.hypervisor_from_dict, "networks": overlay.network_from_dict,
          "ports": overlay.vm_port_from_dict}
_ADD = {"hypervisors": "with_hypervisor", "networks": "with_network", "ports": "with_port"}


def key_of(kind, item) -> str:
    """The state-file key of a hypervisor, network or port."""
    if kind == "hypervisors":
        return item.name
    if kind == "networks":
        return str(item.vni)
    return f"{item.hypervisor}/{item.port}"


class Overlay(southbound.SdnApp):
    APP, SETTINGS, STATE = overlay.APP, overlay.OverlaySettings, "document"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)   # self.switches: dpid -> SwitchPorts, all of them
        self.pushed = {}         # dpid -> the plan last pushed (pushed again only if changed)
        self.hv_problems = {}    # hypervisor -> what went wrong with its OVSDB
        self.ovsdbs = {}         # OVSDB remote -> Ovsdb
        self.spawn = hub.spawn   # unit tests run it inline
        self.lock = hub.Semaphore(1)
        self.model = self.build_model(self.overrides)
        self.allocate_vlans()

    def restore_state(self, saved):
        # REST changes over the config file: {kind: {key: body or None}}
        self.overrides = {kind: dict(saved.get(kind, {})) for kind in KINDS}
        self.local_vlans = {hv: {int(vni): vid for vni, vid in vlans.items()}
                            for hv, vlans in saved.get("local_vlans", {}).items()}
        if hasattr(self, "_model"):   # another writer's state: the model follows it at
            self.model = self.build_model(self.overrides)   # once (VLANs of a VNI it
            self.allocate_vlans()                           # no longer has go with it)

    def programmed_datapaths(self):
        return [self.switches[d].datapath for d in self.pushed if d in self.switches]

    @property
    def model(self):
        return self._model

    @model.setter
    def model(self, model):
        """Every model change also claims the hypervisors' bridges from the other apps."""
        self.runtime.claims.claim(self.name, [d for hv in model.hypervisors
                                              for d in (hv.int_dpid, hv.tun_dpid)])
        self._model = model

    def repair(self, datapath):
        switch = self.current_switch(self.switches, datapath)
        if switch is not None:
            with self.lock:
                self.pushed.pop(datapath.id, None)
            self.program([datapath.id])

    def parse_settings(self, data):
        settings = super().parse_settings(data)
        if data is not None:   # a reload: each entry must parse (at start a bad one is
            for kind in KINDS:  # reported and left out; conflicts are reported either way)
                for body in getattr(settings, kind) or ():
                    _PARSE[kind](body)
        return settings

    def apply_settings(self, settings):
        """A reloaded config: the model rebuilt, tunnels and bridges brought in line."""
        with self.lock:
            self.settings = settings
            self.model = self.build_model(self.overrides)
            self.allocate_vlans()
        self.spawn(self.apply)

    # --- the model: config file, then REST -------------------------------------------

    def build_model(self, overrides):
        bodies = {kind: {} for kind in KINDS}
        for kind in KINDS:
            for body in getattr(self.settings, kind) or ():
                bodies[kind][key_of(kind, _PARSE[kind](body))] = body
            for key, body in overrides[kind].items():
                if body is None:
                    bodies[kind].pop(key, None)
                else:
                    bodies[kind][key] = body
        model = overlay.Model(tunnel_type=self.settings.tunnel_type,
                              l2_population=self.settings.l2_population)
        self.problems = []
        for kind in KINDS:
            for key, body in bodies[kind].items():
                try:
                    model = getattr(model, _ADD[kind])(_PARSE[kind](body))
                except ValueError as err:
                    self.problems.append(f"{kind} {key}: {err}")
                    self.logger.warning("overlay: %s %s left out: %s", kind, key, err)
        return model

    def allocate_vlans(self):
        """Local VLANs for every hypervisor's VNIs (kept where they are)."""
        self.local_vlans = {hv.name: overlay.allocate_vlans(self.local_vlans.get(hv.name, {}),
                                                            self.model.vnis_on(hv.name))
                            for hv in self.model.hypervisors}

    def save(self, overrides):
        data = dict(overrides, local_vlans={hv: {str(vni): vid for vni, vid in vlans.items()}
                                            for hv, vlans in self.local_vlans.items()})
        self.save_state(data)

    def ovsdb_of(self, hv):
        remote = hv.ovsdb or ovsdb.DEFAULT_REMOTE
        if remote not in self.ovsdbs:
            self.ovsdbs[remote] = ovsdb.Ovsdb(remote)
        return self.ovsdbs[remote]

    # --- programming ---------------------------------------------------------------------

    def plan_for(self, dpid):
        """What the bridge `dpid` should hold now; None when it cannot be computed yet
        (patch port not seen)."""
        role, switch = self.model.role_of(dpid), self.switches.get(dpid)
        if role is None or switch is None:
            return None
        return self.model.bridge_plan(dpid, self.local_vlans.get(role[0], {}), switch.resolve,
                                      pipeline.table_misses())

    def program(self, dpids=None):
        """Push every given (default: every connected) bridge whose plan changed."""
        with self.lock:
            for dpid in sorted(self.switches if dpids is None else dpids):
                plan = self.plan_for(dpid)
                previous = self.pushed.get(dpid)
                if plan is None or previous == plan:
                    continue
                datapath = self.switches[dpid].datapath
                canary = [pipeline.canary(overlay.APP)]
                if previous is None and self.model.role_of(dpid)[1] == "tun":
                    # first time since it connected: read back, reconcile
                    self.converge(datapath, overlay.TUNNEL_BRIDGE_OWNERS
                                  + (pipeline.canary_owner(overlay.APP),), plan + canary,
                                  overlay.forget_tunnel_bridge())
                elif previous is None:
                    self.converge(datapath, overlay.INTEGRATION_BRIDGE_OWNERS
                                  + (pipeline.MISSES, pipeline.canary_owner(overlay.APP)),
                                  plan + canary,
                                  overlay.forget_integration_bridge(),
                                  skip=[overlay.INTEGRATION_BRIDGE_LEARNED])
                else:
                    self.push(datapath, diff.plan_changes(previous, plan))
                self.pushed[dpid] = plan

    def sync_tunnels(self):
        """The full mesh of tunnel ports on every hypervisor, through its OVSDB (the
        ports' appearance then reprograms the tunnel bridges)."""
        for hv in self.model.hypervisors:
            try:
                db = self.ovsdb_of(hv)
                db.set_tunnel_ports(db.bridge_of(hv.tun_dpid), self.model.tunnel_ports(hv.name),
                                    overlay.APP)
                self.hv_problems.pop(hv.name, None)
            except ovsdb.OvsdbError as err:
                self.hv_problems[hv.name] = str(err)
                self.logger.error("overlay %s: %s", hv.name, err)

    def apply(self, tunnels=True):
        if tunnels:
            self.sync_tunnels()
        self.program()

    # --- switch events ---------------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _switch_connected(self, ev):
        datapath = ev.msg.datapath
        self.switches[datapath.id] = SwitchPorts(datapath)
        self.pushed.pop(datapath.id, None)

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _port_desc(self, ev):
        switch = self.switches.get(ev.msg.datapath.id)
        if switch is not None and switch.update_from_desc(ev.msg):
            role = self.model.role_of(switch.datapath.id)
            if role is None:
                self.logger.info("overlay: switch %s is no hypervisor's bridge; left alone",
                                 rest.format_dpid(switch.datapath.id))
                self.leave_alone(switch.datapath)
            elif role[1] == "tun":
                self.spawn(self.apply)      # its tunnel ports may be missing
            else:
                self.spawn(self.program, [switch.datapath.id])

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def _port_status(self, ev):
        switch = self.switches.get(ev.msg.datapath.id)
        if switch is not None and switch.update_from_status(ev.msg):
            self.spawn(self.program, [switch.datapath.id])

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def _switch_gone(self, ev):
        if self.forget_switch(self.switches, ev.datapath):
            self.pushed.pop(ev.datapath.id, None)

    # --- what REST asks ----------------------------------------------------------------

    def resolve_port(self, hypervisor, port):
        """Canonical name of a port on `hypervisor`'s integration bridge; the name as
        given while that bridge is not connected."""
        hv = self.model.hypervisor(hypervisor)
        switch = hv and self.switches.get(hv.int_dpid)
        if switch is None:
            return port
        number = switch.resolve(port)
        return None if number is None else switch.ports[number]

    def change(self, kind, body=None, key=None):
        """Add (body) or remove (key) a hypervisor, network or port: validated on the
        model first, then saved, then applied. Returns the added item."""
        try:
            if body is not None:
                item = _PARSE[kind](body)
                if kind == "ports":
                    model = self.model.with_port(item, self.resolve_port)
                    item = model.ports[-1]
                else:
                    model = getattr(self.model, _ADD[kind])(item)
                key, stored = key_of(kind, item), body if kind != "ports" else \
                    dict(body, port=item.port)
            else:
                if kind == "ports":   # by name or number: stored under its name
                    hypervisor, _, port = key.partition("/")
                    key = f"{hypervisor}/{self.resolve_port(hypervisor, port) or port}"
                model = self.remove(kind, key)
                stored = None
        except overlay.Conflict as err:
            raise rest.ApiError(409, str(err)) from None
        except LookupError as err:
            raise rest.ApiError(404, str(err).strip("'\"")) from None
        except ValueError as err:
            raise rest.ApiError(400, str(err)) from None
        overrides = {k: dict(v) for k, v in self.overrides.items()}
        overrides[kind][key] = stored
        previous, vlans = self.model, {hv: dict(v) for hv, v in self.local_vlans.items()}
        self.model = model
        self.allocate_vlans()
        before = self.overrides
        try:
            self.save(overrides)
        except rest.ApiError:
            if self.overrides is before:   # (a 409 took another writer's state: the
                self.model, self.local_vlans = previous, vlans   # model follows that)
            raise
        self.overrides = overrides
        self.spawn(self.apply, kind == "hypervisors" or
                   (kind == "networks" and body is not None and "tunnel_type" in body))
        return item if body is not None else None

    def remove(self, kind, key):
        if kind == "hypervisors":
            return self.model.without_hypervisor(key)
        if kind == "networks":
            return self.model.without_network(overlay.vni_of(key))
        hypervisor, _, port = key.partition("/")
        return self.model.without_port(hypervisor, port)

    def up_to_date(self, hv):
        """Both bridges connected, every tunnel port in place, and what they hold is
        what the model says now."""
        tun = self.switches.get(hv.tun_dpid)
        if tun is None or hv.int_dpid not in self.switches:
            return False
        if any(tun.resolve(name) is None for name in self.model.tunnel_ports(hv.name)):
            return False
        return all(self.pushed.get(d) is not None and self.pushed[d] == self.plan_for(d)
                   for d in (hv.int_dpid, hv.tun_dpid))

    def describe(self):
        model = self.model
        hypervisors = []
        for hv in model.hypervisors:
            out = overlay.hypervisor_to_dict(hv)
            out.update(connected={"int": hv.int_dpid in self.switches,
                                  "tun": hv.tun_dpid in self.switches},
                       local_vlans={str(v): vid for v, vid in
                                    sorted(self.local_vlans.get(hv.name, {}).items())},
                       tunnel_ports=sorted(model.tunnel_ports(hv.name)),
                       programmed=self.up_to_date(hv))
            if hv.name in self.hv_problems:
                out["problem"] = self.hv_problems[hv.name]
            hypervisors.append(out)
        return {"tunnel_type": model.tunnel_type, "l2_population": model.l2_population,
                "hypervisors": hypervisors,
                "networks": [dict(overlay.network_to_dict(n), hosts=model.hosts_of(n.vni))
                             for n in model.networks],
                "ports": [overlay.vm_port_to_dict(p) for p in model.ports],
                "problems": list(self.problems)}


def _found(items, what):
    if not items:
        raise rest.ApiError(404, f"no {what}")
    return items[0]


class OverlayRest(rest.AppController):
    @rest.api("overlay_get", "/v1/overlay", methods=["GET"])
    def get_all(self, req, **_):
        return self.app.describe()

    @rest.api("overlay_hv_post", "/v1/overlay/hypervisors", methods=["POST"])
    def add_hypervisor(self, req, **_):
        body = rest.parse_json_body(req)
        for field in ("int_dpid", "tun_dpid"):   # a bridge name is stored as its dpid
            if isinstance(body.get(field), str) and of_ref(body[field]) is None:
                body[field] = rest.format_dpid(self.app.dpid_of(body[field]))
        hv = self.app.change("hypervisors", body)
        return rest.json_response(overlay.hypervisor_to_dict(hv), 201)

    @rest.api("overlay_hv_get", "/v1/overlay/hypervisors/{name}", methods=["GET"])
    def get_hypervisor(self, req, name, **_):
        return _found([h for h in self.app.describe()["hypervisors"] if h["name"] == name],
                      f"hypervisor {name!r}")

    @rest.api("overlay_hv_delete", "/v1/overlay/hypervisors/{name}", methods=["DELETE"])
    def delete_hypervisor(self, req, name, **_):
        self.app.change("hypervisors", key=name)
        return {"deleted": name}

    @rest.api("overlay_net_post", "/v1/overlay/networks", methods=["POST"])
    def add_network(self, req, **_):
        network = self.app.change("networks", rest.parse_json_body(req))
        return rest.json_response(overlay.network_to_dict(network), 201)

    @rest.api("overlay_net_get", "/v1/overlay/networks/{vni}", methods=["GET"])
    def get_network(self, req, vni, **_):
        return _found([n for n in self.app.describe()["networks"] if str(n["vni"]) == vni],
                      f"network with VNI {vni}")

    @rest.api("overlay_net_delete", "/v1/overlay/networks/{vni}", methods=["DELETE"])
    def delete_network(self, req, vni, **_):
        self.app.change("networks", key=vni)
        return {"deleted": vni}

    @rest.api("overlay_ports_get", "/v1/overlay/ports", methods=["GET"])
    def list_ports(self, req, **_):
        return self.app.describe()["ports"]

    @rest.api("overlay_ports_post", "/v1/overlay/ports", methods=["POST"])
    def add_port(self, req, **_):
        port = self.app.change("ports", rest.parse_json_body(req))
        return rest.json_response(overlay.vm_port_to_dict(port), 201)

    @rest.api("overlay_port_delete", "/v1/overlay/ports/{hypervisor}/{port}",
              methods=["DELETE"])
    def delete_port(self, req, hypervisor, port, **_):
        self.app.change("ports", key=f"{hypervisor}/{port}")
        return {"deleted": f"{hypervisor}/{port}"}


Overlay.REST = OverlayRest   # the app declares its REST controller (defined after it)
