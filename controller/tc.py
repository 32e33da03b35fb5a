"""The one place that runs `tc` (iproute2): applies the userspace datapath's queue
classifier (`flows.qos_tc.tc_plan`) and reads a device's HTB tree back so the QoS app
can compare it with what OVSDB describes.

Only devices on the controller's own host can be seen or changed; with the
userspace datapath they always are (ovs-vswitchd drives the Linux devices here).
"""
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, FrozenSet, Optional, Tuple

from flows.qos_tc import TcFilterId

_CLASS = re.compile(r"^class htb (\S+) .*?\brate (\S+) ceil (\S+)")
_UNITS = {"bit": 1, "kbit": 10 ** 3, "mbit": 10 ** 6, "gbit": 10 ** 9, "tbit": 10 ** 12}
_RATE = re.compile(r"^([\d.]+)([a-z]*)$", re.IGNORECASE)


class TcError(RuntimeError):
    pass


@dataclass(frozen=True)
class TcTree:
    root: Optional[Tuple[str, str]]              # (kind, handle) of the root qdisc
    classes: Dict[str, Tuple[int, int]]          # HTB classid -> (rate, ceil) in bit/s
    leaves: Dict[str, Tuple[str, int]]           # parent classid -> (kind, limit)
    filters: FrozenSet[TcFilterId]               # the u32 filters on 1: (parse_filters)


def is_local(device: str) -> bool:
    return Path("/sys/class/net", device).exists()


def socket_buffer_bytes() -> int:
    """The default send buffer of new sockets, which OVS's AF_PACKET sockets get."""
    return int(Path("/proc/sys/net/core/wmem_default").read_text())


def _run(args, stdin=None):
    try:
        done = subprocess.run(["tc", *args], input=stdin, capture_output=True, text=True,
                              timeout=10)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise TcError(f"cannot run tc {' '.join(args)}: {err}") from None
    if done.returncode != 0:
        raise TcError(f"tc {' '.join(args)} failed: {(done.stderr or done.stdout).strip()}")
    return done.stdout


def apply(lines):
    """Run `tc -batch` lines (flows.qos_tc.tc_batch); -force goes on past a failing line
    (deleting filters that are not there) but the failure is still reported."""
    _run(["-force", "-batch", "-"], stdin="\n".join(lines) + "\n")


def parse_rate(text: str) -> int:
    found = _RATE.match(text.strip())
    if not found or found.group(2).lower() not in _UNITS:
        raise TcError(f"tc printed a rate we cannot read: {text!r}")
    return int(round(float(found.group(1)) * _UNITS[found.group(2).lower()]))


def parse_classes(text: str) -> Dict[str, Tuple[int, int]]:
    """`tc class show` output (htb classes have no JSON form in iproute2 6.1)."""
    classes = {}
    for line in text.splitlines():
        found = _CLASS.match(line.strip())
        if found:
            classes[found.group(1)] = (parse_rate(found.group(2)), parse_rate(found.group(3)))
    return classes


def parse_qdiscs(data):
    root, leaves = None, {}
    for qdisc in data:
        if qdisc.get("root"):
            root = (qdisc.get("kind"), qdisc.get("handle"))
        elif "parent" in qdisc:
            leaves[qdisc["parent"]] = (qdisc.get("kind"),
                                       (qdisc.get("options") or {}).get("limit"))
    return root, leaves


def _keep_matches(pairs):
    """u32 JSON repeats the "match" key: keep every one (a list) instead of the last."""
    out = {}
    for key, value in pairs:
        if key == "match":
            out.setdefault("match", []).append(value)
        else:
            out[key] = value
    return out


def parse_filters(text: str) -> FrozenSet[TcFilterId]:
    """`tc -j filter show` output: (pref, flowid, protocol, {(value, mask, offset)})
    per u32 filter with a flowid, comparable with flows.qos_tc.TcFilter.identity()."""
    filters = set()
    for item in json.loads(text or "[]", object_pairs_hook=_keep_matches):
        options = item.get("options") or {}
        if options.get("flowid") is None:
            continue
        keys = frozenset((int(m["value"], 16), int(m["mask"], 16), int(m["off"]))
                         for m in options.get("match", []))
        filters.add((item["pref"], options["flowid"], item.get("protocol"), keys))
    return frozenset(filters)


def read_tree(device: str) -> TcTree:
    root, leaves = parse_qdiscs(json.loads(_run(["-j", "qdisc", "show", "dev", device]) or "[]"))
    classes = parse_classes(_run(["class", "show", "dev", device]))
    filters = frozenset()
    if root == ("htb", "1:"):
        filters = parse_filters(_run(["-j", "filter", "show", "dev", device, "parent", "1:"]))
    return TcTree(root, classes, leaves, filters)
