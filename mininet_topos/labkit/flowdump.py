"""`ovs-ofctl dump-flows` output read with the `ovs.flow` parser OVS's own Python package
ships, instead of regular expressions over its text: a dump's entries as objects whose
cookie, table, counters, match and actions are fields.

    for flow in flowdump.parse(out):
        flow.cookie, flow.table, flow.n_packets, flow.match["dl_vlan"], flow.actions
"""
import re
from dataclasses import dataclass
from typing import Dict, List, Tuple

from ovs.flow.ofp import OFPFlow

# What OVS prints that the ovs.flow parser (ovs 4.0.0) refuses: `importance=N` among the
# counters, and an entry of the default priority with an empty match, whose line has no
# match section at all ("n_bytes=0, actions=NORMAL").
_IMPORTANCE = re.compile(r"\bimportance=(\d+), ")
_NO_MATCH = re.compile(r", actions=")
DEFAULT_PRIORITY = 32768

# What changes while an entry sits in the table (or differs by when it was added): left
# out of `Flow.key`, so two dumps compare by what the entries are.
COUNTERS = ("duration", "n_packets", "n_bytes", "idle_age", "hard_age", "packet_count",
            "byte_count", "reset_counts")


@dataclass(frozen=True)
class Flow:
    text: str                 # the line as ovs-ofctl printed it (stripped)
    cookie: int
    table: int
    priority: int
    n_packets: int
    duration: float
    match: Dict[str, object]  # as the ovs.flow parser decodes it (priority left out)
    match_text: str
    actions: Tuple[Dict[str, object], ...]
    actions_text: str
    info: Dict[str, object]   # cookie, table, the counters, timeouts

    @property
    def app_id(self) -> int:
        """The top byte of the cookie: the app, in this project's cookie scheme."""
        return self.cookie >> 56

    @property
    def key(self) -> str:
        """The entry without its counters: cookie, table, timeouts, match, actions."""
        kept = [f"{name}={value}" for name, value in self.info.items() if name not in COUNTERS]
        return " ".join(kept + [f"priority={self.priority}"] + [self.match_text] * bool(
            self.match_text) + [f"actions={self.actions_text}"])

    def has_action(self, name: str) -> bool:
        return any(name in action for action in self.actions)

    def outputs(self) -> List[object]:
        """The ports it outputs to: numbers, or names such as "NORMAL" and "CONTROLLER"
        (the parser reads a bare NORMAL as an output to the NORMAL port)."""
        return [a["output"]["port"] for a in self.actions if "output" in a]

    def loads(self) -> Dict[str, int]:
        """{field: constant} of its `load:` actions (NXM names, e.g. NXM_NX_TUN_ID)."""
        return {a["load"]["dst"]["field"]: a["load"]["value"] for a in self.actions
                if "load" in a and "value" in a["load"]}

    def action(self, name: str):
        """The value of the first action called `name` (None when there is none)."""
        return next((action[name] for action in self.actions if name in action), None)

    def __str__(self):
        return self.text


def _flow(line: str) -> Flow:
    importance = _IMPORTANCE.search(line)
    readable = _NO_MATCH.sub(f", priority={DEFAULT_PRIORITY} actions=",
                             _IMPORTANCE.sub("", line), count=1)
    parsed = OFPFlow(readable)
    sections = {section.name: section.string for section in parsed.sections}
    info = {k: (f"{v:#x}" if k == "cookie" else v) for k, v in parsed.info.items()}
    if importance:
        info["importance"] = int(importance.group(1))
    return Flow(
        text=line.strip(), cookie=parsed.info.get("cookie", 0), table=parsed.info.get("table", 0),
        priority=parsed.match.get("priority", DEFAULT_PRIORITY),
        n_packets=parsed.info.get("n_packets", 0), duration=parsed.info.get("duration", 0.0),
        match={k: v for k, v in parsed.match.items() if k != "priority"},
        match_text=",".join(p for p in sections.get("match", "").split(",")
                            if p and not p.startswith("priority=")),
        actions=tuple(parsed.actions), actions_text=sections.get("actions", ""), info=info)


def parse(dump) -> List[Flow]:
    """The entries of a dump: its text, or its lines (the reply header left out)."""
    lines = dump.splitlines() if isinstance(dump, str) else dump
    return [_flow(line) for line in lines
            if line.strip() and not line.lstrip().startswith(("OFPST_", "NXST_"))]
