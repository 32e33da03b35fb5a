"""Each app's whole desired state on one switch, written once: the app's reconcile on
connect sends it and `sdn plan` (controller/plan.py) prints it.

The app's own entries come from its flows/ module's desired(); this module only frames
them with what every app's reconcile covers too, the pipeline's table misses and the
app's canary (controller/pipeline.py, which flows/ may not import).
"""
from typing import Dict, Iterable, List, Optional, Tuple

from controller import pipeline
from flows import l2, lb, lb_health, learning, qos, qos_sync


def framed(app: str, items: Iterable) -> List:
    return pipeline.table_misses() + [pipeline.canary(app)] + list(items)


def l2_switch(settings: l2.L2Settings, untagged: Iterable[Tuple[int, int]] = (), fabric=None,
              dpid: Optional[int] = None) -> List:
    return framed(l2.APP, learning.desired(settings, untagged, fabric, dpid))



def lb_switch(wanted: lb_health.Desired) -> List:
    """`wanted`: lb_health.desired() for the switch (plan: no backends located yet)."""
    return framed(lb.APP, wanted.items())


def qos_switch(ports: Dict[int, qos.PortQos], rules: Iterable, tc_classified: bool) -> List:
    return framed(qos.APP, qos_sync.desired_flows(ports, rules, tc_classified))
