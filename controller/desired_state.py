"""Each app's whole desired state on one switch, written once: the app's reconcile on
connect sends it and `sdn plan` (controller/plan.py) prints it.

The app's own entries come from its flows/ module (desired(), or the plan hook of
flows/app_plan.py); this module only frames them with what every app's reconcile
covers too, the pipeline's table misses and the app's canary (controller/pipeline.py,
which flows/ may not import).
"""
from typing import Iterable, List

from controller import pipeline


def framed(app: str, items: Iterable, misses: bool = True, canary_last: bool = False) -> List:
    """`items` with the table misses first (`misses`: False for an app that runs a
    bridge alone without them or brings its own) and the app's canary, after the misses
    or (`canary_last`) after everything, in the order the app's reconcile pushes them."""
    head = pipeline.table_misses() if misses else []
    canary = [pipeline.canary(app)]
    return head + list(items) + canary if canary_last else head + canary + list(items)
