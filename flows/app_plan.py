"""The plan protocol: what each app's flows/ module tells `sdn plan` (controller/plan.py)
about one switch, so that the plan finds every app declared in controller/pipeline.py
(APP_LOGIC) and needs no code of its own per app.

A module that takes part defines, at its end:

    SETTINGS                      the class of its config section's settings
    plan(settings, switch, facts) -> SwitchPlan

and where it applies:

    owns(settings, switch, facts) -> bool
                                  True when the app owns this switch outright (the
                                  other apps leave it alone: pipeline.SOLE_OWNERS)
    CONFIGURED_FACTS = {...}      what a section of this app in the config tells the
                                  other apps, whatever it holds (topology: in_fabric)
    PLANNED_BY_DEFAULT = True     planned when the config has no planned app's section
    NOT_PLANNED = "why"           instead of SETTINGS/plan: an app that cannot be
                                  planned from a config file alone

`switch` is a switch as the apps see it once connected (controller/ports.py):
`name`, `ports` ({number: name}), `datapath.id`, `is_named(ref)`, `resolve(ref)`.
`facts` holds what is known about the switch before this app: the datapath's
`tc_classified`, `in_fabric` and what the apps declared before this one left in
their SwitchPlan.facts (the VLAN app's `untagged` egress pairs). An app reads a
fact with a default, as the app it comes from may not be configured.

The hooks import this module and what they build on when called: the modules they
need often import the app's module themselves (flows/learning.py imports flows/l2.py,
flows/lb_health.py flows/lb.py, flows/qos_sync.py flows/qos.py).
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional

# the facts apps exchange today (one name per fact, read with these defaults)
TC_CLASSIFIED = "tc_classified"  # the datapath classifies into queues by tc (userspace)
IN_FABRIC = "in_fabric"          # the topology app runs: every switch is in its fabric
UNTAGGED = "untagged"            # (port, VLAN) pairs whose frames leave untagged
CONTROLLER_ADDRESSES = "controller_addresses"  # IPs the controller itself speaks from (LB)


@dataclass
class SwitchPlan:
    """One app's plan for one switch.

    items: the app's own entries (FlowSpec, GroupSpec, MeterSpec); the controller
    frames them with the pipeline's table misses and the app's canary
    (controller/desired_state.framed) as the app's reconcile does. None: nothing can
    be planned here (`problems` says why), and the app is left out of the plan."""
    items: Optional[List] = field(default_factory=list)
    ovsdb: List[str] = field(default_factory=list)      # OVSDB rows, as text for people
    problems: List[str] = field(default_factory=list)   # the app's name is prefixed
    facts: Dict[str, object] = field(default_factory=dict)  # for the apps after this one
    misses: bool = True        # framed with the table misses (False: the app has its own)
    canary_last: bool = False  # the canary after the entries, as the app pushes them
