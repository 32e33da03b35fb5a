"""HTB queues, classification rules, ingress policing and meters (OpenFlow 1.3 + OVSDB).

    ryu-manager apps/l2_switch.py apps/qos.py

Where each piece goes (docs/qos-design-notes.md says why):
- a port's HTB tree: OVSDB QoS/Queue rows, from which OVS builds the tc tree;
- rules: entries in the `qos` table, set_queue (+ output: the lab's enqueue) and/or
  a meter with a drop band;
- on the userspace datapath (`netdev`) set_queue is lost on the way out, so the same
  rules also become tc u32 filters on the egress device, and ingress policing is an
  OpenFlow meter in the `police` table (OVS's tc policer there sees packets only
  after the userspace datapath has taken them).
A watcher samples queue stats and checks every QoS port's tc tree against OVSDB
(something like Mininet's TCLink(bw=...) replacing it is reported, lost filters
are put back).

Config section `qos`: see flows/qos.py QosSettings. REST (changes persist):
    GET             /v1/qos                          every switch: mechanisms, ports, rules
    GET/PUT/DELETE  /v1/qos/{dpid}/{port}            a port's HTB tree and ingress policing
    GET             /v1/qos/{dpid}/{port}/stats      per-queue tx bytes/packets and rate
    GET/POST/DELETE /v1/qos/{dpid}/rules             classification rules
    GET/DELETE      /v1/qos/{dpid}/rules/{id}
"""
import collections
import time

from prometheus_client.core import CounterMetricFamily
from ryu.controller import ofp_event
from ryu.controller.handler import (CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER,
                                    set_ev_cls)
from ryu.lib import hub

from controller import datapath as datapaths, desired_state, metrics, ofcompile, ovsdb, pipeline, \
    rest, southbound, tc
from controller.ports import SwitchPorts
from flows import qos, qos_report, qos_sync
from flows.spec import Owner

QUEUE_MECHANISM = {
    datapaths.SYSTEM: "set_queue: OVS gives the packet the queue's priority, HTB classifies by it",
    datapaths.NETDEV: "tc u32 filters on the egress device: the userspace datapath drops "
                      "set_queue's priority when it sends",
}
POLICING_MECHANISM = {
    datapaths.SYSTEM: "OVSDB ingress_policing (tc policer)",
    datapaths.NETDEV: "OpenFlow meter in the police table (OVSDB ingress_policing is set too, "
                      "but its tc policer runs after the userspace datapath has the packet)",
}
TREE_WAIT = 5.0     # seconds OVS may take to rebuild a port's HTB tree after an OVSDB change
PORT_PATH = r"(?!rules(?:/|$))[^/]+"


class QosSwitch(SwitchPorts):
    def __init__(self, datapath):
        super().__init__(datapath)
        self.kind = None             # datapaths.SYSTEM or NETDEV, once OVSDB said
        self.ready = False           # ports known and programmed once
        self.problems = []           # config entries that could not be applied
        self.tree_problems = {}      # port -> how its tc tree differs from OVSDB
        self.samples = {}            # port -> last two (time, {queue: (bytes, packets, errors)})
        self.tc_applied = 0          # tc filter/leaf (re)installs

    @property
    def tc_classified(self):
        return self.kind == datapaths.NETDEV


class Qos(southbound.SdnApp):
    # STATE: {dpid: {"ports": {"4": body or None}, "rules": {"3": body or None}}}
    APP, SETTINGS, STATE = qos.APP, qos.QosSettings, "by_switch"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ovsdb = ovsdb.Ovsdb()
        self.tc = tc
        self.spawn = hub.spawn       # unit tests run it inline
        self.clock = time.monotonic
        self.lock = hub.Semaphore(1)     # one change to a switch's QoS at a time
        self.watcher = None

    def metric_families(self):
        """Queue counters as last sampled (every check_interval)."""
        sent = CounterMetricFamily("sdn_qos_queue_tx_bytes", "Bytes a port's queue sent",
                                   labels=["dpid", "dp_name", "port", "queue"])
        for dpid, switch in sorted(self.switches.items()):
            for number, samples in sorted(switch.samples.items()):
                for queue, (tx_bytes, _, _) in sorted(samples[-1][1].items()):
                    sent.add_metric(metrics.switch_labels(dpid) + [
                        switch.ports.get(number, str(number)), str(queue)], tx_bytes)
        yield sent

    def repair(self, datapath):
        switch = self.current_switch(self.switches, datapath)
        if switch is not None:
            self.program(switch, sync_ovsdb=False)

    def apply_settings(self, settings):
        """A reloaded config: OVSDB, flows, meters and tc of every switch follow it."""
        self.settings = settings
        for switch in list(self.switches.values()):
            if switch.ready:
                self.spawn(self.program, switch)

    # --- desired state: config file, then REST ------------------------------------

    def bodies(self, switch, overrides, problems=None):
        """({port: body}, {rule id: body}) for `switch`, file first, REST over it."""
        return qos.switch_bodies(self.settings, overrides.get(switch.datapath.id, {}),
                                 switch.is_named, switch.resolve, problems)

    def desired(self, switch, overrides=None):
        """({port: PortQos}, {rule id: Rule}, [problems]): what should be on `switch`."""
        mine = (self.overrides if overrides is None else overrides).get(switch.datapath.id, {})
        return qos.desired_state(self.settings, mine, switch.is_named, switch.resolve,
                                 switch.ports, switch.tc_classified)

    # --- programming a switch ---------------------------------------------------------

    def program(self, switch, sync_ovsdb=True):
        """Bring OVSDB, the switch's flows and meters, and tc in line with the desired
        state (OVSDB rows are rewritten only where they differ: a rewrite makes OVS
        rebuild the port's tc tree; flows and meters are read back and only what
        differs is changed, so a restart or an edit leaves the rest of the traffic be)."""
        with self.lock:
            ports, rules, problems = self.desired(switch)
            switch.problems = problems
            for problem in problems:
                self.logger.warning("qos %s: %s", switch.dpid(), problem)
            if sync_ovsdb:
                try:
                    self.sync_ovsdb(switch, ports)
                except ovsdb.OvsdbError as err:
                    switch.problems.append(f"OVSDB: {err}")
                    self.logger.error("qos %s: %s", switch.dpid(), err)
            self.converge(switch.datapath, [Owner(qos.APP), pipeline.MISSES],
                          desired_state.framed(qos.APP, qos_sync.desired_flows(
                              ports, rules.values(), switch.tc_classified)),
                          forget=qos.forget(switch.ports, rules.values()), meters=True)
        self.spawn(self.sync_tc, switch, TREE_WAIT)

    def sync_ovsdb(self, switch, ports, only=None, rebuild=()):
        """OVSDB QoS rows and policing for the switch's ports (or port `only`); ports in
        `rebuild` get their QoS removed and created again, so OVS builds a fresh tc tree."""
        if only is None:
            self.ovsdb.destroy_orphans(qos.APP)  # QoS of bridges deleted meanwhile
        changes = qos_sync.ovsdb_changes(
            ports, switch.ports, set(self.ovsdb.ports_with_qos(qos.APP)),
            set(self.ovsdb.policed_interfaces(qos.APP)), self.ovsdb.read_port_qos,
            self.ovsdb.read_ingress_policing, only, rebuild)
        for change in changes:
            if isinstance(change, qos_sync.SetQos) and change.clears:
                self.ovsdb.clear_port_qos(change.port, qos.APP)
            elif isinstance(change, qos_sync.SetQos):
                self.ovsdb.set_port_qos(change.port, change.max_rate, change.queues, qos.APP)
            else:
                self.ovsdb.set_ingress_policing(change.interface, change.rate, change.burst,
                                                qos.APP)

    def sync_tc(self, switch, wait=0.0):
        """Check each QoS port's tc tree against OVSDB and, on the userspace datapath,
        put our leaves and filters on it where they are missing or out of date."""
        ports, rules, _ = self.desired(switch)
        for number, want in sorted(ports.items()):
            if not want.queues or number not in switch.ports:
                continue
            try:
                self.sync_port_tc(switch, number, want, rules.values(), wait)
            except tc.TcError as err:
                switch.tree_problems[number] = [str(err)]
                self.logger.error("qos %s port %s: %s", switch.dpid(), number, err)
        for number in set(switch.tree_problems) - {n for n, q in ports.items() if q.queues}:
            del switch.tree_problems[number]

    def sync_port_tc(self, switch, number, want, rules, wait):
        device = switch.ports[number]
        if not self.tc.is_local(device):
            switch.tree_problems[number] = []
            return  # a switch on another host: its tc is not ours to see
        deadline = time.monotonic() + wait
        tree = self.tc.read_tree(device)
        problems = qos.tc_tree_problems(want, tree.root, tree.classes)
        while problems and time.monotonic() < deadline:
            hub.sleep(0.1)
            tree = self.tc.read_tree(device)
            problems = qos.tc_tree_problems(want, tree.root, tree.classes)
        if problems != switch.tree_problems.get(number, []):
            for problem in problems:
                self.logger.warning("qos %s port %s (%s): %s", switch.dpid(), number, device,
                                    problem)
        switch.tree_problems[number] = problems
        if problems or not switch.tc_classified:
            return
        plan = qos.tc_plan(number, want, rules, self.tc.socket_buffer_bytes())
        if not qos.tc_in_place(plan, tree.filters, tree.leaves):
            self.tc.apply(qos.tc_batch(device, plan))
            switch.tc_applied += 1

    # --- switch events ---------------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _switch_connected(self, ev):
        datapath = ev.msg.datapath
        self.switches[datapath.id] = QosSwitch(datapath)
        if self.watcher is None:
            self.watcher = self.spawn(self._watch)

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _port_desc(self, ev):
        switch = self.switches.get(ev.msg.datapath.id)
        if switch is not None and switch.update_from_desc(ev.msg):
            self.spawn(self._bring_up, switch)  # OVSDB calls: off the event loop

    def _bring_up(self, switch):
        try:
            switch.kind = self.ovsdb.datapath_type(switch.datapath.id)
        except ovsdb.OvsdbError as err:
            switch.kind = datapaths.choose_datapath()
            self.logger.error("qos %s: %s; assuming the %s datapath", switch.dpid(), err,
                              switch.kind)
        self.program(switch)
        switch.ready = True

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def _port_status(self, ev):
        switch = self.switches.get(ev.msg.datapath.id)
        if switch is not None and switch.update_from_status(ev.msg) and switch.ready:
            self.spawn(self.program, switch)  # a port came or went: its QoS with it

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def _switch_gone(self, ev):
        self.forget_switch(self.switches, ev.datapath)

    def _watch(self):
        while True:
            hub.sleep(self.settings.check_interval)
            for switch in list(self.switches.values()):
                if switch.ready:
                    self.watch(switch)

    def watch(self, switch):
        """One round: queue-stats samples and a tc tree check of every QoS port."""
        ports, _, _ = self.desired(switch)
        for number, want in sorted(ports.items()):
            if want.queues and number in switch.ports:
                try:
                    self.sample(switch, number)
                except southbound.SwitchTimeout as err:
                    self.logger.warning("qos %s: %s", switch.dpid(), err)
        self.sync_tc(switch)

    def sample(self, switch, number):
        counters = ofcompile.decode_queue_stats(self.request(
            switch.datapath, ofcompile.queue_stats_request(switch.datapath, number)))
        samples = switch.samples.setdefault(number, collections.deque(maxlen=2))
        samples.append((self.clock(), counters))
        return counters

    # --- what REST asks ----------------------------------------------------------------

    def describe_port(self, switch, number, ports=None):
        ports = self.desired(switch)[0] if ports is None else ports
        return qos_report.port_report(ports.get(number), switch.dpid(), number,
                                      switch.ports[number], QUEUE_MECHANISM.get(switch.kind),
                                      POLICING_MECHANISM.get(switch.kind),
                                      switch.tree_problems.get(number, []))

    def describe_switch(self, switch):
        ports, rules, problems = self.desired(switch)
        return {"dpid": switch.dpid(), "name": switch.name, "datapath": switch.kind,
                "queue_mechanism": QUEUE_MECHANISM.get(switch.kind),
                "policing_mechanism": POLICING_MECHANISM.get(switch.kind),
                "ports": [self.describe_port(switch, n, ports) for n in sorted(ports)],
                "rules": [qos.rule_to_dict(r) for _, r in sorted(rules.items())],
                "problems": switch.problems or problems, "tc_applied": switch.tc_applied}

    def overrides_with(self, switch, key, changes):
        return qos_report.with_changes(self.overrides, switch.datapath.id, key, changes)

    def check_rules_survive(self, switch, trial):
        """409 unless every rule in force now is still valid under `trial`."""
        _, before, _ = self.desired(switch)
        _, after, problems = self.desired(switch, trial)
        lost = sorted(set(before) - set(after))
        if lost:
            why = [p for p in problems if any(p.startswith(f"rule {i}:") for i in lost)]
            raise rest.ApiError(409, f"rule(s) {', '.join(map(str, lost))} would no longer "
                                     f"fit: {'; '.join(why)}; delete or change them first")

    def save(self, trial, based_on=None):
        self.save_state(trial, based_on)
        self.overrides = trial

    def change_port(self, switch, number, body):
        """Set (body) or remove (None) a port's QoS: validate, OVSDB, save, program.
        A failure at any step leaves the previous state in force."""
        if body is not None:
            try:
                qos.port_qos_from_dict(body)
            except ValueError as err:
                raise rest.ApiError(400, str(err)) from None
        trial, based_on = self.overrides_with(switch, "ports", {number: body}), self.revision
        self.check_rules_survive(switch, trial)
        with self.lock:
            try:
                broken = [number] if switch.tree_problems.get(number) else []
                self.sync_ovsdb(switch, self.desired(switch, trial)[0], only=number,
                                rebuild=broken)
            except ovsdb.OvsdbError as err:
                status = 409 if isinstance(err, ovsdb.OvsdbConflict) else 502
                self._put_back(switch, number)
                raise rest.ApiError(status, f"OVSDB refused the change: {err}") from None
            try:   # the lock and OVSDB let other greenlets run: another writer's state
                self.save(trial, based_on)   # taken meanwhile makes this a 409
            except rest.ApiError:   # not saved: OVSDB goes back to what the state says
                self._put_back(switch, number)
                raise
        self.program(switch, sync_ovsdb=False)

    def _put_back(self, switch, number):
        """The port's OVSDB rows as the saved state says, after a change failed."""
        try:
            self.sync_ovsdb(switch, self.desired(switch)[0], only=number)
        except ovsdb.OvsdbError:
            pass  # already reported: OVSDB is not taking changes

    def add_rule(self, switch, body):
        body = dict(body)
        ports, rules, _ = self.desired(switch)
        taken = set(self.bodies(switch, self.overrides)[1])
        rule_id = body.pop("id", None)
        try:
            rule_id = max(taken, default=0) + 1 if rule_id is None else \
                qos.as_int(rule_id, "id", 1, qos.MAX_RULE_ID)
        except ValueError as err:
            raise rest.ApiError(400, str(err)) from None
        if rule_id in taken:
            raise rest.ApiError(409, f"rule {rule_id} exists; delete it first or leave out id")
        try:
            rule = qos.rule_from_dict(rule_id, body, switch.port_resolver(), ports,
                                      switch.tc_classified)
        except ValueError as err:
            raise rest.ApiError(400, str(err)) from None
        clash = next((r for r in rules.values() if qos.same_slot(r, rule)), None)
        if clash is not None:
            raise rest.ApiError(409, f"rule {clash.rule_id} has the same match and priority")
        with self.lock:
            self.save(self.overrides_with(switch, "rules", {rule_id: body}))
        self.program(switch, sync_ovsdb=False)
        return qos.rule_to_dict(rule)

    def rule(self, switch, rule_id):
        try:
            rule_id = int(rule_id)
        except ValueError:
            raise rest.ApiError(400, f"bad rule id {rule_id!r}: a number") from None
        rule = self.desired(switch)[1].get(rule_id)
        if rule is None:
            raise rest.ApiError(404, f"switch {switch.dpid()} has no rule {rule_id}")
        return rule

    def delete_rules(self, switch, rule_ids):
        with self.lock:
            self.save(self.overrides_with(switch, "rules", dict.fromkeys(rule_ids)))
        self.program(switch, sync_ovsdb=False)

    def queue_stats(self, switch, number):
        ports, _, _ = self.desired(switch)
        want = ports.get(number)
        if want is None or not want.queues:
            raise rest.ApiError(404, f"port {number} of {switch.dpid()} has no queues")
        try:
            counters = self.sample(switch, number)
        except southbound.SwitchTimeout as err:
            raise rest.ApiError(504, str(err)) from None
        queues, interval = qos_report.queue_report(want, counters, switch.samples[number][0],
                                                   switch.samples[number][-1])
        return {"dpid": switch.dpid(), "port": number, "name": switch.ports[number],
                "queues": queues, "rate_interval_s": interval}


class QosRest(rest.AppController):
    @rest.api("qos_list", "/v1/qos", methods=["GET"])
    def list_all(self, req, **_):
        return [self.app.describe_switch(s) for _, s in sorted(self.app.switches.items())
                if s.ready]

    @rest.api("qos_port_get", "/v1/qos/{dpid}/{port}", methods=["GET"],
              requirements={"port": PORT_PATH})
    def get_port(self, req, dpid, port, **_):
        return self.app.describe_port(*self.app.switch_port(self.app.dpid_of(dpid), port))

    @rest.api("qos_port_put", "/v1/qos/{dpid}/{port}", methods=["PUT"],
              requirements={"port": PORT_PATH})
    def put_port(self, req, dpid, port, **_):
        switch, number = self.app.switch_port(self.app.dpid_of(dpid), port)
        self.app.change_port(switch, number, rest.parse_json_body(req))
        return self.app.describe_port(switch, number)

    @rest.api("qos_port_delete", "/v1/qos/{dpid}/{port}", methods=["DELETE"],
              requirements={"port": PORT_PATH})
    def delete_port(self, req, dpid, port, **_):
        switch, number = self.app.switch_port(self.app.dpid_of(dpid), port)
        self.app.change_port(switch, number, None)
        return self.app.describe_port(switch, number)

    @rest.api("qos_port_stats", "/v1/qos/{dpid}/{port}/stats", methods=["GET"],
              requirements={"port": PORT_PATH})
    def port_stats(self, req, dpid, port, **_):
        return self.app.queue_stats(*self.app.switch_port(self.app.dpid_of(dpid), port))

    @rest.api("qos_rules_get", "/v1/qos/{dpid}/rules", methods=["GET"])
    def list_rules(self, req, dpid, **_):
        _, rules, _ = self.app.desired(self.app.switch(self.app.dpid_of(dpid)))
        return [qos.rule_to_dict(r) for _, r in sorted(rules.items())]

    @rest.api("qos_rules_post", "/v1/qos/{dpid}/rules", methods=["POST"])
    def add_rule(self, req, dpid, **_):
        switch = self.app.switch(self.app.dpid_of(dpid))
        return rest.json_response(self.app.add_rule(switch, rest.parse_json_body(req)), 201)

    @rest.api("qos_rules_delete", "/v1/qos/{dpid}/rules", methods=["DELETE"])
    def delete_rules(self, req, dpid, **_):
        switch = self.app.switch(self.app.dpid_of(dpid))
        ids = sorted(self.app.bodies(switch, self.app.overrides)[1])
        self.app.delete_rules(switch, ids)
        return {"deleted": ids}

    @rest.api("qos_rule_get", "/v1/qos/{dpid}/rules/{rule_id}", methods=["GET"])
    def get_rule(self, req, dpid, rule_id, **_):
        switch = self.app.switch(self.app.dpid_of(dpid))
        return qos.rule_to_dict(self.app.rule(switch, rule_id))

    @rest.api("qos_rule_delete", "/v1/qos/{dpid}/rules/{rule_id}", methods=["DELETE"])
    def delete_rule(self, req, dpid, rule_id, **_):
        switch = self.app.switch(self.app.dpid_of(dpid))
        rule = self.app.rule(switch, rule_id)
        self.app.delete_rules(switch, [rule.rule_id])
        return qos.rule_to_dict(rule)


Qos.REST = QosRest   # the app declares its REST controller (defined after it)
