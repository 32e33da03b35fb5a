"""Stateful security groups: ports bound to groups of rules, enforced with conntrack.

    ryu-manager apps/l2_switch.py apps/security.py            # with any other apps too

What goes on the switch is in flows/security.py (three tables before the load
balancer's: tracking, the source's egress rules, the destination's ingress rules). A
bound port takes in only what an ingress rule of its groups allows, gets the replies
of what it opened, and may send what its egress rules allow (everything, without
any). Removing a rule cuts the connections it let in; adding it back lets them live.

Config section `security` (flows/security_model.py). REST (changes persist):
    GET              /v1/security                              groups, rules, bound ports
    POST             /v1/security/groups/{group}/rules         a rule (the group is made)
    GET/DELETE       /v1/security/rules/{rule_id}              GET: with its counters
    GET/PUT/DELETE   /v1/switches/{dpid}/ports/{port}/security a port's binding
    POST             /v1/security/plan                         the live connections a
                                                               change would cut
    POST             /v1/security/acls                         a stateless ACL
    GET/DELETE       /v1/security/acls/{acl_id}                GET: with its counters
"""
from prometheus_client.core import CounterMetricFamily
from ryu.lib import hub

from controller import config, metrics, ofcompile, pipeline, rest, southbound, trace
from controller.port_plans import PortPlans
from flows import lb, security, security_cuts
from flows.body import only_keys
from flows.security_model import (APP, MAX_RULE_ID, acl_from_dict, binding_from_dict,
                                  effective_acls, effective_groups, group_name,
                                  rule_from_dict, stored_acl, stored_rule)
from flows.spec import Owner

COUNTER_POLL_S = 10.0   # how old the rule counters on /metrics may be

RULES = Owner(APP, "rule")   # every rule's entries (one instance per rule id)
ACLS = Owner(APP, "acl")     # every ACL's entry (one instance per ACL id)


def _stored_binding(port, body):
    int(port)
    if body is not None:
        binding_from_dict(body)


class Security(PortPlans, southbound.SdnApp):
    # {"rules": {"id": {"group": g, ...rule} or None}, "acls": {"id": body or None},
    #  "ports": {"dpid": {"port": binding or None}}}
    APP, SETTINGS, STATE = APP, security.SecuritySettings, "document"
    FORGET = security.forget_everything()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.plans = {}     # dpid -> the entries last pushed
        self.counted = {}   # dpid -> {rule id: (packets, bytes)} as last read
        self.known_members = None   # {group: addresses} the switches were last given
        self.seen = {}   # dpid -> the switch as last connected (names its ports after)
        self.trusted = self.controller_addresses()
        hub.spawn(self._poll_counters)

    @staticmethod
    def controller_addresses(data=None):
        """The load balancer's probe source when it runs here: its probes leave the
        controller as packet-outs that conntrack never sees, so their answers would be
        invalid; nothing but the controller lives at that address."""
        if not southbound.app_loaded(lb.APP):
            return ()
        try:
            return lb.controller_addresses(config.section(lb.LbSettings, lb.APP, data))
        except config.ConfigError:
            return ()   # the LB app itself refuses such a section

    def metric_families(self):
        """Each rule's packets and bytes per switch, as last read (every COUNTER_POLL_S
        and on each GET of the rule): a scrape asks no switch."""
        rules = {r.rule_id: r for rs in self.groups().values() for r in rs}
        labels = ["dpid", "dp_name", "rule", "group", "direction"]
        packets = CounterMetricFamily("sdn_security_rule_packets",
                                      "Packets a security group rule's entries matched",
                                      labels=labels)
        octets = CounterMetricFamily("sdn_security_rule_bytes",
                                     "Bytes a security group rule's entries matched",
                                     labels=labels)
        for dpid, counted in sorted(self.counted.items()):
            if dpid not in self.plans:
                continue    # gone (or not programmed again yet)
            for rule_id, (n, size) in sorted(counted.items()):
                rule = rules.get(rule_id)
                if rule is None:
                    continue
                values = metrics.switch_labels(dpid) + [str(rule_id), rule.group, rule.direction]
                packets.add_metric(values, n)
                octets.add_metric(values, size)
        yield packets
        yield octets

    def _poll_counters(self):
        while True:
            hub.sleep(COUNTER_POLL_S)
            for datapath in self.programmed_datapaths():
                if self.plans.get(datapath.id):
                    try:
                        self.read_counters(datapath)
                    except southbound.SwitchTimeout as err:
                        self.logger.warning("security: counters: %s", err)

    def restore_state(self, document):
        """The REST-made state as stored. What does not parse (written by another
        version or node) is left out and logged, so it neither breaks programming nor
        blocks the next change; the next save drops it."""
        document = document if isinstance(document, dict) else {}

        def kept(what, entries, parse):
            entries = entries if isinstance(entries, dict) else {}
            return {key: body for key, body in entries.items()
                    if self._parses(f"{what} {key!r}", lambda: parse(key, body))}
        ports = document.get("ports")
        self.overrides = {
            "rules": kept("rule", document.get("rules"), stored_rule),
            "acls": kept("ACL", document.get("acls"), stored_acl),
            "ports": {dpid: kept(f"binding of {dpid} port", by_port, _stored_binding)
                      for dpid, by_port in (ports.items() if isinstance(ports, dict) else ())
                      if isinstance(by_port, dict)}}

    def _parses(self, what, parse):
        try:
            parse()
            return True
        except (ValueError, TypeError) as err:
            self.logger.error("security: stored %s left out: %s", what, err)
            return False

    def apply_settings(self, settings):
        """A reloaded config (or another writer's state): every switch gets its new plan."""
        self.settings = settings
        self.trusted = self.controller_addresses()
        self.program_all()

    # --- desired state ------------------------------------------------------------

    def groups(self, overrides=None):
        """{group: (Rule, ...)} (ValueError for a rule that does not parse: a REST
        change's 400)."""
        return effective_groups(self.settings.groups, (overrides or self.overrides)["rules"])

    def acls(self, overrides=None):
        """{id: Acl}: the config file's, then REST's."""
        return effective_acls(self.settings.acls, (overrides or self.overrides)["acls"])

    def bindings(self, switch, overrides=None, warn=True):
        """{port: Binding} of the switch: the config file's, then REST's."""
        dpid = rest.format_dpid(switch.datapath.id)
        return security.bound_ports(
            self.settings.ports, switch.is_named, switch.resolve,
            (overrides or self.overrides)["ports"].get(dpid, {}),
            lambda ref: warn and self.logger.warning(
                "security: %s has no port %r (config file)", switch.name, ref))

    def members(self, overrides=None):
        """{group: addresses} of every port bound to it (a rule's remote_group)."""
        return security.group_members(self.all_bindings(overrides))

    def all_bindings(self, overrides=None):
        """Every binding: on the switches connected here (or connected once: their port
        names as they were) as they resolve, with REST's changes; on switches never
        seen, as the config file and REST bind them."""
        overrides = overrides or self.overrides
        known = list({**self.seen, **{s.datapath.id: s for s in self.switches.values()}}
                     .values())
        bound = [b for switch in known
                 for b in self.bindings(switch, overrides, warn=False).values()]
        here = {rest.format_dpid(switch.datapath.id) for switch in known}
        bound += [binding_from_dict(body) for switch_ref, _, body in self.settings.ports
                  if not any(switch.is_named(switch_ref) for switch in known)]
        bound += [binding_from_dict(body) for dpid, by_port in overrides["ports"].items()
                  if dpid not in here for body in by_port.values() if body is not None]
        return bound

    def program(self, switch):
        self.seen[switch.datapath.id] = switch
        members = self.members()
        if members != self.known_members:
            # a port joined or left a group: every switch's remote-group entries follow
            self.known_members = members
            self.program_all()
            if switch.datapath.id in self.plans:
                return
        acls = security.acls_here(
            self.acls().values(), switch.is_named, switch.resolve,
            lambda ref: self.logger.warning("security: %s has no port %r (an ACL)",
                                            switch.name, ref))
        plan = security.desired(self.bindings(switch), self.groups(), self.trusted, acls,
                                members)
        self.push_plan(switch, plan)

    # --- what REST asks ------------------------------------------------------------

    def _commit(self, overrides):
        """Check the new state whole, save it, then switch to it (a bad one changes
        nothing: 400). A port bound to a group whose last rule goes stays bound: an empty
        group lets nothing in."""
        try:
            self.groups(overrides)
            self.acls(overrides)
            for switch in self.switches.values():
                self.bindings(switch, overrides)
        except ValueError as err:
            raise rest.ApiError(400, str(err)) from None
        self.save_state(overrides)
        self.overrides = overrides
        self.program_all()

    def _copy(self):
        return {"rules": dict(self.overrides["rules"]), "acls": dict(self.overrides["acls"]),
                "ports": {k: dict(v) for k, v in self.overrides["ports"].items()}}

    def describe(self):
        ports = []
        for dpid, switch in sorted(self.switches.items()):
            for number, binding in sorted(self.bindings(switch).items()):
                ports.append(dict(binding.to_dict(), dpid=rest.format_dpid(dpid), port=number,
                                  name=switch.ports.get(number), bound=True))
        return {"groups": {name: [r.to_dict() for r in rules]
                           for name, rules in self.groups().items()}, "ports": ports,
                "acls": [a.to_dict() for a in self.acls().values()]}

    def add_rule(self, group, body):
        try:
            group_name(group)
        except ValueError as err:
            raise rest.ApiError(400, str(err)) from None
        rule_id = self._next_id("rules", {r.rule_id for rs in self.groups().values()
                                           for r in rs})
        try:
            rule = rule_from_dict(body, group, rule_id)
        except ValueError as err:
            raise rest.ApiError(400, str(err)) from None
        overrides = self._copy()
        overrides["rules"][str(rule_id)] = dict(body, group=group)
        if rule.remote_group not in (None, group, *self.groups()):
            raise rest.ApiError(400, f"no group {rule.remote_group!r} (remote_group)")
        self._commit(overrides)
        return rule.to_dict()

    def plan_change(self, body):
        """The live connections (conntrack on this host) that deleting `delete_rules`
        and adding `add_rules` ({"group": g, ...a rule}) would cut; nothing changes."""
        try:
            only_keys(body, ("delete_rules", "add_rules"), "plan")
        except ValueError as err:
            raise rest.ApiError(400, str(err)) from None
        deletes, adds = body.get("delete_rules", []), body.get("add_rules", [])
        if not isinstance(deletes, list) or not isinstance(adds, list) or \
                len(deletes) + len(adds) > 1000:
            raise rest.ApiError(400, "delete_rules and add_rules are lists (at most 1000)")
        overrides = self._copy()
        for ref in deletes:
            overrides["rules"][str(self.rule(str(ref)).rule_id)] = None
        taken = {r.rule_id for rs in self.groups().values() for r in rs}
        for item in adds:
            if not isinstance(item, dict):
                raise rest.ApiError(400, f"add_rules lists rules, not {item!r}")
            rule_id = self._next_id("rules", taken | {int(k) for k in overrides["rules"]})
            overrides["rules"][str(rule_id)] = dict(item)
            taken.add(rule_id)
        try:
            after = self.groups(overrides)
        except ValueError as err:
            raise rest.ApiError(400, str(err)) from None
        try:
            status, text = trace.run_appctl(["dpctl/dump-conntrack"])
        except trace.TraceError as err:
            raise rest.ApiError(err.status, str(err).replace("cannot trace", "cannot read "
                                                               "conntrack")) from None
        if status != 0:
            raise rest.ApiError(503, f"cannot read conntrack: {text}")
        return security_cuts.preview(security_cuts.parse_conntrack(text), self.all_bindings(),
                                     self.groups(), after, self.members(),
                                     self.members(overrides))

    def _next_id(self, kind, taken):
        """The next id of a rule or ACL: above every one there is or was (a deleted id
        is not given again while the store remembers it)."""
        number = max(taken | {int(k) for k in self.overrides[kind]}, default=0) + 1
        if number > MAX_RULE_ID:
            raise rest.ApiError(409, f"no {kind[:-1]} id left (at most {MAX_RULE_ID})")
        return number

    @staticmethod
    def _find(kind, ref, items):
        """items[int(ref)], or the 400/404 a REST path deserves."""
        try:
            number = int(ref)
        except ValueError:
            raise rest.ApiError(400, f"bad {kind} id {ref!r}: a number") from None
        if number not in items:
            raise rest.ApiError(404, f"no {kind} {ref}")
        return items[number]

    def rule(self, rule_id):
        return self._find("rule", rule_id, {r.rule_id: r for rs in self.groups().values()
                                            for r in rs})

    def delete_rule(self, rule_id):
        rule = self.rule(rule_id)
        overrides = self._copy()
        overrides["rules"][str(rule.rule_id)] = None
        self._commit(overrides)
        return rule.to_dict()

    def read_counters(self, datapath, owner=RULES):
        """One flow-stats request for every rule's (or ACL's) entries on the switch,
        summed per rule."""
        bodies = self.request(datapath, ofcompile.flow_stats_request(datapath, owner))
        counted = {}
        for body in bodies:
            entry = pipeline.owner_of(body.cookie)
            if entry is not None and entry.instance is not None:
                n, size = counted.get(entry.instance, (0, 0))
                counted[entry.instance] = (n + body.packet_count, size + body.byte_count)
        if owner == RULES:
            self.counted[datapath.id] = counted
        return counted

    def counters(self, number, owner=RULES):
        """Packets and bytes of a rule's (or an ACL's) entries, read now from every
        programmed switch."""
        packets = octets = 0
        for datapath in self.programmed_datapaths():
            try:
                n, size = self.read_counters(datapath, owner).get(number, (0, 0))
            except southbound.SwitchTimeout as err:
                raise rest.ApiError(504, str(err)) from None
            packets, octets = packets + n, octets + size
        return {"packets": packets, "bytes": octets}

    def add_acl(self, body):
        acl_id = self._next_id("acls", set(self.acls()))
        try:
            acl = acl_from_dict(body, acl_id)
        except ValueError as err:
            raise rest.ApiError(400, str(err)) from None
        overrides = self._copy()
        overrides["acls"][str(acl_id)] = body
        self._commit(overrides)
        return acl.to_dict()

    def acl(self, acl_id):
        return self._find("ACL", acl_id, self.acls())

    def delete_acl(self, acl_id):
        acl = self.acl(acl_id)
        overrides = self._copy()
        overrides["acls"][str(acl.acl_id)] = None
        self._commit(overrides)
        return acl.to_dict()

    def describe_port(self, switch, number):
        binding = self.bindings(switch).get(number)
        return dict(binding.to_dict() if binding else {"addresses": [], "groups": [],
                                                       "network": 0},
                    dpid=switch.dpid(), port=number, name=switch.ports.get(number),
                    bound=binding is not None)

    def change_port(self, switch, number, body):
        if body is not None:
            try:
                binding = binding_from_dict(body)
            except ValueError as err:
                raise rest.ApiError(400, str(err)) from None
            unknown = set(binding.groups) - set(self.groups())
            if unknown:
                raise rest.ApiError(400, f"unknown group(s) {', '.join(sorted(unknown))}")
        overrides = self._copy()
        overrides["ports"].setdefault(switch.dpid(), {})[str(number)] = body
        self._commit(overrides)


class SecurityRest(rest.AppController):
    @rest.api("security_get", "/v1/security", methods=["GET"])
    def get_all(self, req, **_):
        return self.app.describe()

    @rest.api("security_rule_post", "/v1/security/groups/{group}/rules", methods=["POST"])
    def add_rule(self, req, group, **_):
        return rest.json_response(self.app.add_rule(group, rest.parse_json_body(req)), 201)

    @rest.api("security_plan", "/v1/security/plan", methods=["POST"])
    def plan(self, req, **_):
        return self.app.plan_change(rest.parse_json_body(req))

    @rest.api("security_rule_get", "/v1/security/rules/{rule_id}", methods=["GET"])
    def get_rule(self, req, rule_id, **_):
        rule = self.app.rule(rule_id)
        return dict(rule.to_dict(), **self.app.counters(rule.rule_id))

    @rest.api("security_rule_delete", "/v1/security/rules/{rule_id}", methods=["DELETE"])
    def delete_rule(self, req, rule_id, **_):
        return self.app.delete_rule(rule_id)

    @rest.api("security_acl_post", "/v1/security/acls", methods=["POST"])
    def add_acl(self, req, **_):
        return rest.json_response(self.app.add_acl(rest.parse_json_body(req)), 201)

    @rest.api("security_acl_get", "/v1/security/acls/{acl_id}", methods=["GET"])
    def get_acl(self, req, acl_id, **_):
        acl = self.app.acl(acl_id)
        return dict(acl.to_dict(), **self.app.counters(acl.acl_id, ACLS))

    @rest.api("security_acl_delete", "/v1/security/acls/{acl_id}", methods=["DELETE"])
    def delete_acl(self, req, acl_id, **_):
        return self.app.delete_acl(acl_id)

    @rest.api("security_port_get", "/v1/switches/{dpid}/ports/{port}/security", methods=["GET"])
    def get_port(self, req, dpid, port, **_):
        return self.app.describe_port(*self.app.switch_port(self.app.dpid_of(dpid), port))

    @rest.api("security_port_put", "/v1/switches/{dpid}/ports/{port}/security", methods=["PUT"])
    def put_port(self, req, dpid, port, **_):
        switch, number = self.app.switch_port(self.app.dpid_of(dpid), port)
        self.app.change_port(switch, number, rest.parse_json_body(req))
        return self.app.describe_port(switch, number)

    @rest.api("security_port_delete", "/v1/switches/{dpid}/ports/{port}/security",
              methods=["DELETE"])
    def delete_port(self, req, dpid, port, **_):
        switch, number = self.app.switch_port(self.app.dpid_of(dpid), port)
        self.app.change_port(switch, number, None)
        return self.app.describe_port(switch, number)


Security.REST = SecurityRest
