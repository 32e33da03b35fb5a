"""QoS intent -> flows, OVSDB rows and tc filters: HTB queues per port, rules that
classify traffic into a queue or through a meter, and ingress policing.

Split by concern: flows/qos_model.py (a port's HTB tree and policing, and their
OVSDB form), flows/qos_rules.py (classification rules and the config section),
flows/qos_tc.py (the tc classifier of the userspace datapath). Here: the app's owners
and the flow builders. The parts' names are re-exported, so `from flows import qos`
stays the one import of the app's callers.

Rates are bit/s and bursts bits everywhere ("10M", "500k" are parsed at the door);
OVSDB's and OpenFlow's kbit/s appear only at the edges.

How a packet reaches its queue depends on the datapath (see docs/qos-design-notes.md):
- `system` (kernel): the rule's `set_queue` sets the packet's priority, the port's
  HTB tree (created by OVS from the QoS/Queue rows) puts it in that queue's class.
- `netdev` (userspace): OVS sends through an AF_PACKET socket without the priority, so
  `set_queue` is lost. The same rules are rendered as tc u32 filters on the egress
  device (`tc_plan`), each leaf class gets a short head-drop fifo so drops happen per
  class and not in OVS's shared socket buffer nor in the rest of OVS's send batch,
  and ingress policing becomes a meter.
"""
from typing import Dict, Iterable, List, Optional

from flows import egress, qos_rules
from flows.qos_model import (HTB_PRIORITIES, MAX_QUEUE_ID, Policing, PortQos,  # noqa: F401
                             Queue, as_int, ovsdb_policing, ovsdb_queue_configs, parse_rate,
                             policing_from_dict, port_qos_from_dict, port_qos_to_dict)
from flows.qos_rules import (DEFAULT_RULE_PRIORITY, IPV4, MATCH_FIELDS,  # noqa: F401
                             MAX_RULE_ID, NOT_VISIBLE_TO_TC, PROTOCOLS, QosSettings, Rule,
                             desired_state, match_from_dict, rule_from_dict, rule_to_dict,
                             same_slot, switch_bodies)
from flows.qos_tc import (LEAF_HANDLE_BASE, LEAF_KIND, SKB_TRUESIZE, TcFilter,  # noqa: F401
                          TcFilterId, TcPlan, htb_classid, leaf_limit, tc_batch, tc_in_place,
                          tc_plan, tc_tree_problems, u32_keys)
from flows.spec import FlowDelete, FlowSpec, Match, MeterDelete, MeterRef, MeterSpec, \
    Owner, SetQueue

APP = "qos"
RULES = Owner(APP, "rule")
EGRESS = Owner(APP, "egress")      # the redirects that carry a rule's port to the egress stage
POLICE = Owner(APP, "police")
POLICE_PRIORITY = 10


def _of_match(rule: Rule) -> Match:
    return qos_rules.match_spec(rule.match)


def rule_meter(rule: Rule) -> Optional[MeterSpec]:
    if rule.meter is None:
        return None
    return MeterSpec(MeterRef(RULES, rule.rule_id), rule.meter.rate, rule.meter.burst)


def rule_flows(rule: Rule) -> List:
    """The meter (if any), then the qos-table entry: set_queue and go on to the
    learning tables. A rule that names its port (enqueue) also directs the frame
    there (flows/egress.py): it still leaves from the egress stage, which pops the
    VLAN tag where it must and never sends a VLAN's frame to a port without it (an
    output here skipped both, issue 16 2b)."""
    meter = rule_meter(rule)
    actions = ()
    if rule.queue is not None:
        actions = (SetQueue(rule.queue),)
        if rule.port is not None:
            actions += (egress.direct_to(rule.port),)
    flow = FlowSpec("qos", rule.priority, _of_match(rule), RULES, actions=actions,
                    goto="l2_src", meter=None if meter is None else meter.ref)
    return ([meter] if meter else []) + [flow]


def directed_ports(rules: Iterable[Rule]) -> List[int]:
    return sorted({r.port for r in rules if r.queue is not None and r.port is not None})


def police_flows(port: int, policing: Policing) -> List:
    ref = MeterRef(POLICE, port)
    return [MeterSpec(ref, policing.rate, policing.burst),
            FlowSpec("police", POLICE_PRIORITY, Match.of(in_port=port), POLICE, meter=ref,
                     goto="sg")]


def switch_plan(ports: Dict[int, PortQos], rules: Iterable[Rule], meter_policing: bool) -> List:
    """Everything this app installs on a switch (after forgetting what it had):
    policing meters (when policing is done by meters) and rules in id order."""
    items = []
    if meter_policing:
        for port, qos in sorted(ports.items()):
            if qos.policing is not None:
                items += police_flows(port, qos.policing)
    rules = sorted(rules, key=lambda r: r.rule_id)
    # the redirects first: a directed frame must never meet a switch without them
    for port in directed_ports(rules):
        items += egress.redirect_and_fallback(EGRESS, port)
    for rule in rules:
        items += rule_flows(rule)
    return items


def forget(ports: Iterable[int], rules: Iterable[Rule]) -> List:
    """Deletes for every entry and meter this app may have on a switch. Meters are
    deleted by id (they have no cookie); deleting a meter deletes its flows."""
    items = [FlowDelete(Owner(APP))]
    items += [MeterDelete(MeterRef(POLICE, port)) for port in sorted(ports)]
    items += [MeterDelete(MeterRef(RULES, r.rule_id)) for r in sorted(rules,
                                                                      key=lambda r: r.rule_id)]
    return items


# --- the plan protocol (flows/app_plan.py): `sdn plan` finds the app through it -------

SETTINGS = QosSettings


def plan(settings: QosSettings, switch, facts):
    """The config's ports and rules on this switch (no REST overrides: those live in
    the controller) and the OVSDB rows a switch with none of ours gets
    (flows/qos_sync.py, which builds on this module and so is imported on use)."""
    from flows import qos_sync
    from flows.app_plan import TC_CLASSIFIED, SwitchPlan
    tc_classified = facts.get(TC_CLASSIFIED, False)
    ports, rules, problems = desired_state(settings, {}, switch.is_named, switch.resolve,
                                           switch.ports, tc_classified)
    return SwitchPlan(qos_sync.desired_flows(ports, rules.values(), tc_classified),
                      [qos_sync.describe(c) for c in qos_sync.fresh_ovsdb(ports, switch.ports)],
                      problems)
