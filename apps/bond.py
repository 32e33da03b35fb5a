"""Link bonds, configured through OVSDB, forwarded by OVS's NORMAL switching
(logic in flows/bond.py).

A bridge with bonds is this app's alone (OVS runs bonds in NORMAL switching, which
the other apps' pipelines would bypass): it claims the bridge (controller/claims.py),
removes the other apps' entries there, and, when the claim starts or ends while
other apps run, closes the bridge's connection once so that every app sees the
switch again, or not, from its next connection on.

With the topology app in the same ryu-manager (a fabric that may have loops) the
bond app claims nothing and installs no NORMAL entry: NORMAL floods out of every
port, so on a ring it storms. Its bonded bridges stay in the fabric, whose shared
pipeline forwards over a bond's members as parallel links (flows/bond.switch_plan);
OVSDB still holds the bonds (OVS runs LACP on them).

Config (`bond` section) and REST say which ports of a bridge form a bond, its mode
and LACP; the app makes OVSDB hold exactly that (a Port with the members as its
Interfaces, rows marked as ours) and gives a bonded bridge its NORMAL entry.

REST:
    GET    /v1/bonds                       every bond: settings and what OVSDB holds
    PUT    /v1/bonds/{dpid}/{name}         {"members": [..], "mode": .., "lacp": ..}
    DELETE /v1/bonds/{dpid}/{name}         the members become plain ports again
"""
from prometheus_client.core import GaugeMetricFamily
from ryu.base import app_manager
from ryu.controller import ofp_event
from ryu.controller.handler import (CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER,
                                    set_ev_cls)
from ryu.lib import hub

from controller import metrics, ovsdb, pipeline, rest, southbound
from controller.ports import SwitchPorts
from flows import bond
from flows.spec import FlowDelete, Owner


class BondSwitch(SwitchPorts):
    def __init__(self, datapath):
        super().__init__(datapath)
        self.ready = False      # ports known and bonds applied once
        self.problems = []      # what OVSDB refused


class Bond(southbound.SdnApp):
    APP, SETTINGS, STATE = bond.APP, bond.BondSettings, "by_switch"  # {dpid: {name: body}}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ovsdb = ovsdb.Ovsdb()
        self.in_fabric = southbound.fabric_loaded()
        if self.in_fabric:
            self.logger.info("bond: the topology app runs: bonded bridges stay in its "
                             "loop-free fabric (a bond's members are parallel links there; "
                             "no NORMAL switching)")
        # bridges with bonds, claimed from the other apps before they connect (by
        # datapath id, or by the name the config gives), so those never program them
        self.owned = bond.known_bonded(self.settings, self.overrides)
        self.released = set()   # config-named bridges found without bonds
        try:
            self.update_claims()
        except ValueError as err:
            raise SystemExit(f"bond: {err}") from None
        self.lock = hub.Semaphore(1)
        self.spawn = hub.spawn

    # --- desired state: config file, then REST --------------------------------------

    def bonds_of(self, switch, overrides=None):
        """{name: flows.bond.Bond} that should be on `switch`."""
        dpid = switch.datapath.id
        return bond.bonds_for(self.settings, (self.overrides if overrides is None
                                              else overrides).get(dpid, {}),
                              switch.is_named, dpid)

    def apply_settings(self, settings):
        self.settings = settings
        try:
            self.update_claims()
        except ValueError as err:
            self.logger.error("bond: %s", err)
        for switch in list(self.switches.values()):
            if switch.ready:
                self.spawn(self.program, switch)

    # --- programming ------------------------------------------------------------------------

    def program(self, switch):
        """OVSDB first (bonds as wanted, ours that are not wanted removed), then the
        bridge's entries."""
        with self.lock:
            wanted = self.bonds_of(switch)
            switch.problems = []
            try:
                for name, want in sorted(wanted.items()):
                    self.apply_bond(switch, want)
                for name in self.ovsdb.owned_ports(bond.APP):
                    if name not in wanted and self.on_switch(switch, name):
                        self.ovsdb.delete_bond(switch.name, name, bond.APP)
            except ovsdb.OvsdbError as err:
                switch.problems.append(str(err))
                self.logger.error("bond %s: %s", rest.format_dpid(switch.datapath.id), err)
            if self.claim(switch, bool(wanted)):
                return   # reconnecting; programmed on the new connection
            if wanted and not self.in_fabric:
                self.push(switch.datapath, pipeline.other_apps_removal(bond.APP))
            self.converge(switch.datapath, [Owner(bond.APP)],
                          bond.switch_plan(list(wanted.values()), self.in_fabric)
                          + [pipeline.canary(bond.APP)],
                          forget=[FlowDelete(Owner(bond.APP))])
            switch.ready = True

    def update_claims(self):
        """In the fabric (the topology app runs) the bonded bridges are everybody's."""
        self.runtime.claims.claim(self.name, () if self.in_fabric else self.owned)
        self.runtime.claims.claim_names(self.name, () if self.in_fabric else
                                        bond.named_bridges(self.settings) - self.released,
                                        lambda dpid: self.ovsdb.bridge_of(dpid))

    def claim(self, switch, bonded):
        """Claim a bridge with bonds, release one without; True when the change means
        the other apps must meet the switch anew (its connection is closed for that)."""
        if self.in_fabric:
            return False
        dpid = switch.datapath.id
        before = self.runtime.claims.owner(dpid) == self.name
        (self.owned.add if bonded else self.owned.discard)(dpid)
        (self.released.discard if bonded else self.released.add)(switch.name)
        try:
            self.update_claims()
        except ValueError as err:       # the overlay's bridge
            self.owned.discard(dpid)
            switch.problems.append(str(err))
            return False
        if before == bonded or not self.others_running():
            return False
        self.logger.info("bond %s: %s the other apps; reconnecting it", rest.format_dpid(dpid),
                         "taken from" if bonded else "given back to")
        switch.datapath.close()
        return True

    def others_running(self):
        return any(isinstance(app, southbound.SdnApp) and app is not self
                   for app in app_manager.SERVICE_BRICKS.values())

    def apply_bond(self, switch, want):
        settings = bond.ovsdb_settings(want)
        self.ovsdb.set_bond(switch.name, want.name, want.members, settings["mode"],
                            settings["lacp"], settings["other_config"], bond.APP)

    def on_switch(self, switch, name):
        """True when bond `name` (one of ours in OVSDB) is on this switch's bridge."""
        held = self.ovsdb.read_bond(name)
        return held is not None and set(held["members"]) <= set(switch.ports.values())

    def repair(self, datapath):
        switch = self.current_switch(self.switches, datapath)
        if switch is not None:
            self.program(switch)

    def metric_families(self):
        bonds = GaugeMetricFamily("sdn_bond_members", "Members of each bond the app manages",
                                  labels=["dpid", "dp_name", "bond", "mode"])
        for dpid, switch in sorted(self.switches.items()):
            for name, want in sorted(self.bonds_of(switch).items()):
                bonds.add_metric(metrics.switch_labels(dpid) + [name, want.mode],
                                 len(want.members))
        yield bonds

    # --- switch events -------------------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _switch_connected(self, ev):
        datapath = ev.msg.datapath
        self.switches[datapath.id] = BondSwitch(datapath)

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _port_desc(self, ev):
        switch = self.current_switch(self.switches, ev.msg.datapath)
        if switch is not None and switch.update_from_desc(ev.msg) and not switch.ready:
            self.spawn(self.program, switch)  # OVSDB and replies: off the event loop

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def _port_status(self, ev):
        switch = self.current_switch(self.switches, ev.msg.datapath)
        if switch is not None:
            switch.update_from_status(ev.msg)  # members come and go as bonds are made

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def _switch_gone(self, ev):
        self.forget_switch(self.switches, ev.datapath)

    # --- what REST asks -----------------------------------------------------------------

    def describe(self, switch, want):
        out = dict(bond.bond_to_dict(want), dpid=rest.format_dpid(switch.datapath.id),
                   bridge=switch.name, forwarding="fabric" if self.in_fabric else "normal")
        try:
            held = self.ovsdb.read_bond(want.name)
        except ovsdb.OvsdbError as err:
            held = {"problem": str(err)}
        out["ovsdb"] = held
        return out

    def change(self, switch, name, body):
        """Set (body) or remove (None) one bond: validated, applied through OVSDB, saved;
        a refusal anywhere leaves the previous bond as it was."""
        dpid = switch.datapath.id
        if body is not None:
            try:
                want = bond.bond_from_dict(dpid, name, body)
            except ValueError as err:
                raise rest.ApiError(400, str(err)) from None
            unknown = [m for m in want.members if m not in switch.ports.values()]
            if unknown:
                raise rest.ApiError(400, f"bond {name}: {switch.name} has no port(s) "
                                         f"{', '.join(unknown)}")
            taken = [other.name for other in self.bonds_of(switch).values()
                     if other.name != name and set(other.members) & set(want.members)]
            if taken:
                raise rest.ApiError(409, f"bond {name}: members already in bond {taken[0]}")
            elsewhere = [other.name for other in self.switches.values() if other is not switch
                         and other.ready and name in self.bonds_of(other)]
            if elsewhere or (name in switch.ports.values() and name not in self.bonds_of(switch)):
                raise rest.ApiError(409, f"bond {name}: OVS port names are unique across "
                                         f"bridges, and {name} is taken")
        elif name not in self.bonds_of(switch):
            raise rest.ApiError(404, f"{switch.name} has no bond {name}")
        overrides = {k: dict(v) for k, v in self.overrides.items()}
        overrides.setdefault(dpid, {})[name] = body
        previous, based_on = self.bonds_of(switch).get(name), self.revision
        with self.lock:
            try:
                if body is None:
                    self.ovsdb.delete_bond(switch.name, name, bond.APP)
                else:
                    self.apply_bond(switch, bond.bond_from_dict(dpid, name, body))
            except ovsdb.OvsdbError as err:
                try:
                    if previous is not None:
                        self.apply_bond(switch, previous)
                except ovsdb.OvsdbError:
                    pass  # already reported: OVSDB is not taking changes
                status = 409 if isinstance(err, ovsdb.OvsdbConflict) else 502
                raise rest.ApiError(status, f"OVSDB refused the change: {err}") from None
            try:   # the lock and OVSDB let other greenlets run: another writer's state
                self.save_state(overrides, based_on)   # taken meanwhile makes this a 409
            except rest.ApiError:
                self._put_back(switch, name, created=previous is None and body is not None)
                raise
            self.overrides = overrides
        self.program(switch)

    def _put_back(self, switch, name, created):
        """OVSDB as the saved state says, after a change it took could not be saved
        (a bond the change created goes again)."""
        try:
            want = self.bonds_of(switch).get(name)
            if want is not None:
                self.apply_bond(switch, want)
            elif created:
                self.ovsdb.delete_bond(switch.name, name, bond.APP)
        except ovsdb.OvsdbError as err:
            self.logger.error("bond: %s: cannot put bond %s back: %s", switch.name, name, err)


class BondRest(rest.AppController):
    @rest.api("bond_list", "/v1/bonds", methods=["GET"])
    def list_bonds(self, req, **_):
        return [self.app.describe(switch, want)
                for _, switch in sorted(self.app.switches.items()) if switch.ready
                for _, want in sorted(self.app.bonds_of(switch).items())]

    @rest.api("bond_put", "/v1/bonds/{dpid}/{name}", methods=["PUT"])
    def put_bond(self, req, dpid, name, **_):
        switch = self.app.switch(self.app.dpid_of(dpid))
        self.app.change(switch, name, rest.parse_json_body(req))
        return self.app.describe(switch, self.app.bonds_of(switch)[name])

    @rest.api("bond_delete", "/v1/bonds/{dpid}/{name}", methods=["DELETE"])
    def delete_bond(self, req, dpid, name, **_):
        switch = self.app.switch(self.app.dpid_of(dpid))
        self.app.change(switch, name, None)
        return {"deleted": name, "dpid": rest.format_dpid(switch.datapath.id)}


Bond.REST = BondRest   # the app declares its REST controller (defined after it)
