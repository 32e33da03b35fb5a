"""The words of the pipeline declaration (controller/pipeline.py, where they are used
and imported from): a table, a priority band of an app in a table, and the error a
spec that breaks the declaration raises."""
from dataclasses import dataclass
from typing import FrozenSet, Optional, Tuple


class PipelineError(ValueError):
    """A spec that the pipeline does not allow (unknown table, illegal goto, field)."""


@dataclass(frozen=True)
class Table:
    name: str
    table_id: int
    purpose: str
    matches: FrozenSet[str]
    next_tables: Tuple[str, ...]
    egress: bool = False     # may output to ports (the stage where VLAN egress happens)
    # apps whose entries here still output to ports directly: known exceptions, each
    # a bug of the same class waiting for its fix (controller/pipeline.py's docstring)
    direct_output_apps: FrozenSet[str] = frozenset()


@dataclass(frozen=True)
class Band:
    """Priorities `low`..`high` of one table that `app` writes. A band with a purpose
    holds only that purpose's entries (app None: every app's); the entries of a
    purpose that has a band of its own in a table go there and nowhere else."""
    app: Optional[str]
    low: int
    high: int
    why: str
    purpose: Optional[str] = None

    def holds(self, priority: int) -> bool:
        return self.low <= priority <= self.high
