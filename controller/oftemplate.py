"""Precompiled flow-mods: the bytes a `flows/` builder compiles to, with its values
patched in, for the packet-in fast path (controller/fastpath.py).

Compiling specs (ofcompile -> ofwire) was half of our own cost per learned MAC. The
entries one builder makes for different values of one *layout* (say, l2.learn_host for
an untagged host) differ only in a few fixed places: the MAC, the port, the VLAN.
`FlowTemplate` finds those places by compiling the builder's output twice, with one
value changed each time, and afterwards renders new values by copying the bytes and
patching them in. The logic stays in the builder: a template is only a faster way to
get the same bytes, and it checks itself at construction against a third set of
values (tests/unit/test_fast_path.py checks it for many more). A builder whose
output a value changes in any other way (its length, another field) is not
templatable for that layout: TemplateError, and the caller compiles as before.
`Templated` keeps one template per layout, made when first needed.

Xids are taken from the datapath's counter as Ryu's `set_xid` takes them, and
`pack(out, datapath, items, barrier)` serializes specs and deletes into `out` in the
order `switch_sync.push` sends them (barriers included), so the fast path writes
exactly what the normal path would.
"""
import logging
import operator
import struct
from dataclasses import dataclass
from typing import Callable, List, Mapping, Optional

from ryu.ofproto import ofproto_protocol, ofproto_v1_3

from controller import ofcompile
from controller.switch_sync import BARRIER, in_order

LOG = logging.getLogger(__name__)
_XID = struct.Struct("!I")
_MAX_XID = 0xFFFFFFFF


class TemplateError(ValueError):
    """The builder's output does not vary only at fixed places for this shape."""


@dataclass(frozen=True)
class Slot:
    """A value the builder takes, how it appears in the message bytes, and a second
    value (differing from the sample in every encoded byte) to find where."""
    encode: Callable[[object], bytes]
    sample: object
    other: object


def mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def port_bytes(port: int) -> bytes:
    return port.to_bytes(4, "big")


def vid_bytes(vlan: int) -> bytes:
    return (0x1000 | vlan).to_bytes(2, "big")   # OFPVID_PRESENT | vid, as matched


def compiled(datapath, specs, first_xid: int = 0) -> List[bytes]:
    """The messages `specs` compile to, with xids first_xid, first_xid + 1, ..."""
    out = []
    for xid, message in enumerate(ofcompile.compile_all(datapath, specs), first_xid):
        message.xid = xid & _MAX_XID
        message.serialize()
        out.append(bytes(message.buf))
    return out


class FlowTemplate:
    """What `build(**values)` compiles to, for any values of the slots given."""

    def __init__(self, datapath, build: Callable[..., list], slots: Mapping[str, Slot],
                 check: Mapping[str, object]):
        specs = build(**{n: s.sample for n, s in slots.items()})
        self.owners = [getattr(spec, "owner", None) for spec in specs]
        base = compiled(datapath, specs)
        self.base = b"".join(base)
        self.starts = [sum(len(m) for m in base[:i]) for i in range(len(base))]
        self.count = len(base)   # messages
        self.writes = []   # (slot index, offset, size): where each slot's bytes go
        for index, (name, slot) in enumerate(slots.items()):
            values = {n: s.sample for n, s in slots.items()} | {name: slot.other}
            other = b"".join(compiled(datapath, build(**values)))
            size = len(slot.encode(slot.sample))
            self.writes += [(index, at, size) for at in self._places(name, slot, other)]
        self.encoders = [(name, slot.encode) for name, slot in slots.items()]
        self._plan()
        # the self-check: a third set of values, rendered and compiled
        rendered = self.render(check, 0)
        expected = b"".join(compiled(datapath, build(**check)))
        if rendered != expected:
            raise TemplateError("a rendering differs from the builder's own output")

    def _places(self, name, slot, other) -> List[int]:
        base, old, new = self.base, slot.encode(slot.sample), slot.encode(slot.other)
        if len(other) != len(base):
            raise TemplateError(f"{name} changes the length of the messages")
        if len(old) != len(new) or any(a == b for a, b in zip(old, new)):
            raise TemplateError(f"{name}: the two samples must differ in every byte")
        places, covered, at = [], set(), base.find(old)
        while at != -1:
            if other[at:at + len(new)] == new:
                places.append(at)
                covered.update(range(at, at + len(old)))
            at = base.find(old, at + 1)
        changed = {i for i, (a, b) in enumerate(zip(base, other)) if a != b}
        if not places or changed - covered:
            raise TemplateError(f"{name} changes more than its own encoded places")
        return places

    def _plan(self):
        """One struct.pack per rendering (a third of the cost of patching a copy): the
        constant runs between the holes, each hole a slot's bytes or an xid (an int).
        The pack's arguments are picked from (constants + xids + encoded slots: a
        caller may give more values than the layout has slots)."""
        holes = sorted([(at, size, "s", index) for index, at, size in self.writes] +
                       [(start + 4, 4, "x", k) for k, start in enumerate(self.starts)])
        fmt, constants, picks, previous = "!", [], [], 0
        for at, size, kind, index in holes:
            if at < previous:
                raise TemplateError("two values share bytes")
            fmt += f"{at - previous}s" + (f"{size}s" if kind == "s" else "I")
            picks.append(("c", len(constants)))
            constants.append(self.base[previous:at])
            picks.append((kind, index))
            previous = at + size
        fmt += f"{len(self.base) - previous}s"
        picks.append(("c", len(constants)))
        constants.append(self.base[previous:])
        offsets = {"c": 0, "x": len(constants), "s": len(constants) + len(self.starts)}
        self._struct, self._constants = struct.Struct(fmt), tuple(constants)
        self._pick = operator.itemgetter(*[offsets[kind] + index for kind, index in picks])

    def render(self, values: Mapping[str, object], first_xid: int) -> bytes:
        """The messages for `values` (by slot name), xids first_xid, first_xid + 1, ..."""
        return self.render_encoded(tuple(encode(values[name]) for name, encode in self.encoders),
                                   first_xid)

    def render_encoded(self, encoded: tuple, first_xid: int) -> bytes:
        """render() for values already encoded (a tuple, in the slots' order: the fast
        path has the MAC's bytes from the frame, no text to parse back)."""
        count = self.count
        xids = tuple(range(first_xid, first_xid + count)) if first_xid + count <= _MAX_XID \
            else tuple((first_xid + k) & _MAX_XID for k in range(count))
        return self._struct.pack(*self._pick(self._constants + xids + encoded))


def next_xids(datapath, count: int) -> int:
    """Take `count` xids from the datapath's counter (Ryu's set_xid, count times); the
    first of them."""
    first = (datapath.xid + 1) & _MAX_XID
    datapath.xid = (datapath.xid + count) & _MAX_XID
    return first


def pack(out: bytearray, datapath, items, barrier: bool) -> List:
    """Append specs and deletes to `out` as switch_sync.push would send them (barriers
    included, xids from the datapath's counter); returns the owners of the flow-mods
    written (for the counters)."""
    owners = []
    for item in in_order(items, barrier):
        if item is BARRIER:
            message = ofcompile.barrier(datapath)
        else:
            message = ofcompile.compile_all(datapath, [item])[0]
            owners.append(getattr(item, "owner", None))
        datapath.set_xid(message)
        message.serialize()
        out += message.buf
    return owners


_UNBUILT = object()


class Templated:
    """Templates of one builder, one per layout, made when first asked for.

    `layouts(key)` gives (build, slots, check) for layout `key`: `build(**values)`
    with only the slots left open, the slots, and the self-check's values."""

    def __init__(self, layouts):
        # compiled for a stand-in of an OpenFlow 1.3 switch: the bytes do not depend on
        # which switch, and no connection is kept alive by a template
        self._datapath = ofproto_protocol.ProtocolDesc(ofproto_v1_3.OFP_VERSION)
        self._layouts, self._templates = layouts, {}

    def get(self, key) -> Optional[FlowTemplate]:
        """The template of layout `key`; None when it cannot be templated (the caller
        uses the builder itself)."""
        template = self._templates.get(key, _UNBUILT)
        if template is _UNBUILT:
            build, slots, check = self._layouts(key)
            try:
                template = FlowTemplate(self._datapath, build, slots, check)
            except TemplateError as err:
                LOG.warning("no precompiled form for layout %s: %s", key, err)
                template = None
            self._templates[key] = template
        return template
