"""VLAN access and trunk ports with Open vSwitch's semantics (OpenFlow 1.3).

    ryu-manager apps/l2_switch.py apps/vlan.py     # VLAN-aware learning switch
    ryu-manager apps/vlan.py                       # alone: VLAN isolation, flooding only

Config section `vlan` (ports by switch name or dpid, port name or number):

    vlan:
      ports:
        - {switch: br0, port: vm1, tag: 101}
        - {switch: br0, port: second_br}                    # trunk of every VLAN
        - {switch: 1, port: 6, trunks: [101, 102]}
      flood_vlans: [999]                                    # flood, never learn

REST (a PUT or DELETE takes effect at once and survives a restart):
    GET/PUT/DELETE /v1/switches/{dpid}/ports/{port}/vlan
    GET            /v1/vlans                                 members per VLAN
"""
from ryu.controller.handler import set_ev_cls

from controller import events, rest, southbound
from controller.port_plans import PortPlans
from flows import vlan


class Vlan(PortPlans, southbound.SdnApp):
    _EVENTS = [events.EventPortVlans]
    APP, SETTINGS, STATE = vlan.APP, vlan.VlanSettings, "by_switch"
    FORGET = vlan.forget_everything()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)   # self.overrides: {dpid: {"port": body or None}}
        self.plans = {}     # dpid -> the plan last pushed
        self.fabric = None  # set when the topology app runs: flood along its tree only

    def apply_settings(self, settings):
        """A reloaded config: every switch gets its new plan (only what differs)."""
        self.settings = settings
        for switch in list(self.switches.values()):
            if switch.datapath.id in self.plans:
                self.program(switch)

    # --- desired state ------------------------------------------------------------

    def port_configs(self, switch):
        """{port number: PortVlan} of explicitly configured ports: file, then REST."""
        return vlan.configured_ports(
            self.settings.ports, switch.is_named, switch.resolve,
            self.overrides.get(switch.datapath.id, {}),
            lambda ref: self.logger.warning("vlan: %s has no port %r (config file)",
                                            switch.name, ref))

    def effective(self, switch):
        configured = self.port_configs(switch)
        return vlan.effective_ports(configured, switch.ports), configured

    def program(self, switch):
        """Push the switch's plan; tell the other apps which ports leave untagged."""
        dpid = switch.datapath.id
        ports, configured = self.effective(switch)
        flood_ports = None if self.fabric is None else self.fabric.flood_ports(dpid)
        plan = vlan.switch_plan(ports, configured, self.settings.flood_vlans, flood_ports)
        self.push_plan(switch, plan)
        self.send_event_to_observers(events.EventPortVlans(
            switch.datapath.id, vlan.untagged_egress_pairs(ports)))

    # --- switch events (the rest: controller/port_plans.py) ---------------------------

    @set_ev_cls(events.EventTopology)
    def _topology(self, ev):
        old, self.fabric = self.fabric, ev.fabric
        for dpid, switch in self.switches.items():
            if dpid in self.plans and (old is None or
                                       old.flood_ports(dpid) != ev.fabric.flood_ports(dpid)):
                self.program(switch)

    # --- what REST asks ------------------------------------------------------------

    def describe(self, switch, number):
        configured = self.port_configs(switch)
        cfg = configured.get(number, vlan.trunk_all(number))
        return dict(vlan.port_vlan_to_dict(cfg), dpid=rest.format_dpid(switch.datapath.id),
                    port=number, name=switch.ports[number], configured=number in configured)

    def change(self, switch, number, body):
        """Store and apply one port's settings (None: back to a trunk of every VLAN).
        Validation happens before anything changes."""
        if body is not None:
            try:
                vlan.port_vlan_from_dict(number, body)
            except ValueError as err:
                raise rest.ApiError(400, str(err)) from None
        overrides = {k: dict(v) for k, v in self.overrides.items()}
        overrides.setdefault(switch.datapath.id, {})[str(number)] = body
        self.save_state(overrides)
        self.overrides = overrides
        self.program(switch)

    def members(self):
        result = {}
        for dpid, switch in sorted(self.switches.items()):
            for vid, ports in vlan.members(self.effective(switch)[0]).items():
                result.setdefault(str(vid), []).extend(
                    {"dpid": rest.format_dpid(dpid), "port": port, "name": switch.ports[port],
                     "tagged": tagged} for port, tagged in ports)
        return result


class VlanRest(rest.AppController):
    @rest.api("vlan_get", "/v1/switches/{dpid}/ports/{port}/vlan", methods=["GET"])
    def get_port(self, req, dpid, port, **_):
        switch, number = self.app.switch_port(self.app.dpid_of(dpid), port)
        return self.app.describe(switch, number)

    @rest.api("vlan_put", "/v1/switches/{dpid}/ports/{port}/vlan", methods=["PUT"])
    def put_port(self, req, dpid, port, **_):
        switch, number = self.app.switch_port(self.app.dpid_of(dpid), port)
        self.app.change(switch, number, rest.parse_json_body(req))
        return self.app.describe(switch, number)

    @rest.api("vlan_delete", "/v1/switches/{dpid}/ports/{port}/vlan", methods=["DELETE"])
    def delete_port(self, req, dpid, port, **_):
        switch, number = self.app.switch_port(self.app.dpid_of(dpid), port)
        self.app.change(switch, number, None)
        return self.app.describe(switch, number)

    @rest.api("vlan_members", "/v1/vlans", methods=["GET"])
    def list_vlans(self, req, **_):
        return self.app.members()


Vlan.REST = VlanRest   # the app declares its REST controller (defined after it)
