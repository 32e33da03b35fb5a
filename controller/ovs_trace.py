"""Reading what `ovs-appctl ofproto/trace` and `ovs-appctl dpif/show` print (OVS 2.8
and later), with no I/O: the text in, plain values out.

A trace names each OpenFlow entry a packet went through (table, match, priority,
cookie, the actions it ran) under the bridge it was on, and ends with the
*datapath actions*: what the packet really does, in datapath port numbers, with
every header rewrite before the output it applies to (`push_vlan(vid=10,pcp=0),3,
pop_vlan,4`). A conntrack action ends one pass; OVS then prints a separator and the
pass that resumes after the recirculation, with its own datapath actions. The
packet's fate is every pass's actions in order, without the ct/recirc steps.

Datapath port numbers are not OpenFlow port numbers: with the userspace datapath
every bridge shares one datapath, so `dpif/show` is what maps them back to (bridge,
OpenFlow port, name)."""
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from controller import pipeline

_BRIDGE = re.compile(r'^\s*bridge\("(?P<name>[^"]+)"\)\s*$')
# " 0. in_port=1,dl_vlan=10, priority 100, cookie 0x1000000000000001"; a miss is
# " 1. No match." The match is absent for an entry that matches everything.
_RULE = re.compile(r"^(?P<indent>\s*)(?P<table>\d+)\. (?P<rest>.*)$")
_PRIORITY = re.compile(r"(?:^|, )priority (?P<priority>\d+)")
_COOKIE = re.compile(r", cookie (?P<cookie>0x[0-9a-f]+)")
_DATAPATH = re.compile(r"^Datapath actions: (?P<actions>.*)$")
_DPIF_BRIDGE = re.compile(r"^ {2}(?P<name>\S+):\s*$")
_DPIF_PORT = re.compile(r"^ {4}(?P<name>\S+) (?P<ofport>\d+)/(?P<dpport>\d+|none):")
_KEY_VALUE = re.compile(r"(?P<key>[a-z_]+)=(?P<value>[^,()]+)")


@dataclass
class Rule:
    """One OpenFlow entry the packet went through."""
    bridge: str
    table: int
    match: Optional[str]          # None: a table miss
    priority: Optional[int]
    cookie: int
    actions: List[str] = field(default_factory=list)

    @property
    def owner(self) -> str:
        if self.match is None:
            return "table miss"
        return pipeline.owner_label(self.cookie)

    def as_dict(self) -> dict:
        return {"bridge": self.bridge, "table": self.table, "match": self.match,
                "priority": self.priority, "cookie": f"0x{self.cookie:x}",
                "owner": self.owner, "actions": self.actions}


@dataclass
class Trace:
    rules: List[Rule]
    datapath_actions: List[str]   # every pass's, in order, ct and recirc left out
    passes: int                   # 1, plus one per recirculation the trace followed


def parse_trace(text: str) -> Trace:
    rules: List[Rule] = []
    actions: List[str] = []
    passes, bridge, current = 0, "", None
    for line in text.splitlines():
        found = _BRIDGE.match(line)
        if found:
            bridge, current = found.group("name"), None
            continue
        found = _DATAPATH.match(line)
        if found:
            passes += 1
            actions.extend(a for a in split_actions(found.group("actions"))
                           if not a.startswith(("ct(", "recirc(")) and a not in ("ct", "drop"))
            current = None
            continue
        found = _RULE.match(line)
        if found and bridge:
            current = _rule(bridge, int(found.group("table")), found.group("rest"))
            rules.append(current)
            continue
        if current is not None and line.strip() and line.startswith("    "):
            if not line.strip().startswith("->"):   # OVS's comments on what an action did
                current.actions.append(line.strip())
        elif not line.strip() or line.startswith(("Final flow", "Megaflow", "Flow:", "=")):
            current = None
    return Trace(rules, actions, passes)


def _rule(bridge: str, table: int, rest: str) -> Rule:
    if rest.startswith("No match"):
        return Rule(bridge, table, None, None, 0)
    priority = _PRIORITY.search(rest)
    cookie = _COOKIE.search(rest)
    match = rest[:priority.start()] if priority else rest
    return Rule(bridge, table, match.strip(" ,"),
                int(priority.group("priority")) if priority else None,
                int(cookie.group("cookie"), 16) if cookie else 0)


def split_actions(text: str) -> List[str]:
    """`a,b(c,d),e` -> ["a", "b(c,d)", "e"]: commas at the top level only."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(depth - 1, 0)
        elif char == "," and depth == 0:
            parts.append(text[start:index].strip())
            start = index + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


# A datapath set() of these headers rewrites these packet fields (OVS's names -> ours).
_SET_FIELDS = {"eth": {"src": "dl_src", "dst": "dl_dst"},
               "ipv4": {"src": "nw_src", "dst": "nw_dst", "ttl": "nw_ttl"},
               "ipv6": {"src": "nw_src", "dst": "nw_dst", "hlimit": "nw_ttl"},
               "tcp": {"src": "tp_src", "dst": "tp_dst"},
               "udp": {"src": "tp_src", "dst": "tp_dst"}}
_SET = re.compile(r"^set\((?P<header>[a-z0-9_]+)\((?P<fields>.*)\)\)$")


@dataclass
class Output:
    dp_port: int
    fields: Dict[str, object]     # the packet's fields as it leaves


@dataclass
class Fate:
    outputs: List[Output]
    to_controller: bool
    others: List[str]             # actions not followed (tunnels, clones, meters, ...)


def fate(actions: List[str], packet: Dict[str, object]) -> Fate:
    """Where the packet goes, and as what, from its datapath actions."""
    fields = dict(packet)
    outputs, others, to_controller = [], [], False
    for action in actions:
        if action.isascii() and action.isdigit():
            outputs.append(Output(int(action), dict(fields)))
        elif action == "pop_vlan":
            fields.pop("dl_vlan", None)
        elif action.startswith("push_vlan("):
            vid = dict(_pairs(action[len("push_vlan("):-1])).get("vid")
            if vid is not None and vid.isdigit():
                fields["dl_vlan"] = int(vid)
        elif action.startswith("set("):
            if not _apply_set(action, fields):
                others.append(action)
        elif action.startswith("userspace(") and "controller(" in action:
            to_controller = True
        else:
            others.append(action)
    return Fate(outputs, to_controller, others)


def _pairs(text: str) -> List[Tuple[str, str]]:
    return [(m.group("key"), m.group("value")) for m in _KEY_VALUE.finditer(text)]


def _apply_set(action: str, fields: Dict[str, object]) -> bool:
    """Apply a set(header(field=value[/mask],...)) the trace follows; False for one it
    does not (a partial mask, a header it does not model)."""
    found = _SET.match(action)
    names = _SET_FIELDS.get(found.group("header")) if found else None
    if names is None:
        return False
    changes = {}
    for key, value in _pairs(found.group("fields")):
        if key not in names:
            continue
        value, _, mask = value.partition("/")
        if mask and mask not in ("ff:ff:ff:ff:ff:ff", "255.255.255.255", "0xffff",
                                 "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"):
            return False
        if names[key].startswith("tp_") or names[key] == "nw_ttl":
            if not (value.isascii() and value.isdigit()):
                return False
            value = int(value)
        changes[names[key]] = value
    fields.update(changes)
    return True


@dataclass(frozen=True)
class DpPort:
    bridge: str
    ofport: int
    name: str


def datapath_ports(text: str) -> Dict[int, DpPort]:
    """`dpif/show` as datapath port -> (bridge, OpenFlow port, name). Patch ports have
    no datapath port and are left out (a trace crosses them inside one bridge pass)."""
    ports, bridge = {}, None
    for line in text.splitlines():
        found = _DPIF_BRIDGE.match(line)
        if found:
            bridge = found.group("name")
            continue
        found = _DPIF_PORT.match(line)
        if found and bridge and found.group("dpport") != "none":
            ports[int(found.group("dpport"))] = DpPort(bridge, int(found.group("ofport")),
                                                       found.group("name"))
    return ports
