"""Config entries keyed by a switch: the list items of the `vlan`, `qos` and `bond`
sections that name a switch (a bridge name or a datapath id) and a port or a bond,

    ports: [{switch: s1, port: s1-eth4, ...}, {switch: 0x2, port: 3, ...}]

read in one place, so the three sections accept the same references and refuse bad
ones at the door with one message that names the bad key. References stay as given
(a switch only says its name and ports when it connects: controller/ports.py resolves
them then); this module only makes sure each one can ever resolve.

A switch reference is a datapath id in any spelling of flows/dpid.py (the one parser of
them) or else a bridge name. A bridge has a Linux network device of its name, so a name
follows the kernel's rules (1-15 characters, no '/', ':' or white space). Text that
reads as a number (digits with or without a sign or 0x) but is no datapath id (negative,
2**64 or more, a bad hex digit) is refused as a bad datapath id rather than taken for a
name that no bridge can have. A port reference is a port number 1..OFPP_MAX or a port
name.
"""
from contextlib import contextmanager
from typing import Iterator, Sequence, Tuple

from flows import dpid
from flows.egress import MAX_PORT

MAX_NAME = dpid.MAX_NAME   # the rules of a bridge name are flows/dpid.py's


def switch_ref(value, where: str):
    """`value` when it names a switch (see the module docstring); ValueError otherwise,
    its message starting with `where`."""
    try:
        dpid.parse(value)
        return value
    except dpid.DpidError as err:
        refused = err
    if dpid.looks_like_number(value):
        raise ValueError(f"{where}: {refused}") from None    # bools too: no switch is True
    if not dpid.is_bridge_name(value):
        raise ValueError(f"{where} must be a bridge name (1-{MAX_NAME} characters, no '/', "
                         f"':' or spaces) or a datapath id ({dpid.SPELLINGS}), not {value!r}")
    return value


def port_ref(value, where: str):
    """`value` when it names a port: a number 1..OFPP_MAX (an int, or decimal text as
    controller/ports.py reads it) or a name; ValueError otherwise."""
    if isinstance(value, str) and value and not value.isdigit():
        return value                                        # a port name
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.isdigit() and value.isascii():  # not "²": int() fails
        number = int(value)
    if number is None or not 0 < number <= MAX_PORT:
        raise ValueError(f"{where} must be a port number 1..{MAX_PORT} or a port name, "
                         f"not {value!r}")
    return value


_CHECKS = {"switch": switch_ref, "port": port_ref}


def keyed(items, list_name: str, keys: Sequence[str]) -> Iterator[Tuple[str, tuple, dict]]:
    """Each entry of the config list `items` (called `list_name` in messages) as
    (label, the values of `keys` in order, the rest of the entry), e.g.
    ("ports[0]", ("s1", "s1-eth4"), {"tag": 10}). Every entry must be an object with all
    of `keys`; a switch and a port are checked as the module docstring says, other keys
    are the caller's to check."""
    needs = f"a {keys[0]}" if len(keys) == 1 else " and ".join(keys)
    for index, entry in enumerate(items or ()):
        label = f"{list_name}[{index}]"
        if not isinstance(entry, dict) or any(key not in entry for key in keys):
            raise ValueError(f"{label} needs {needs}")
        for key in keys:
            if key in _CHECKS:
                _CHECKS[key](entry[key], f"{label} {key}")
        yield label, tuple(entry[key] for key in keys), \
            {k: v for k, v in entry.items() if k not in keys}


@contextmanager
def prefixed(where: str):
    """A ValueError raised inside comes out with `where: ` in front (which entry)."""
    try:
        yield
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


def port_entries(items, check) -> tuple:
    """A `ports` list ({switch, port, ...settings}) as ((switch, port, settings), ...);
    `check(settings)` raises ValueError for bad settings, which come out naming the entry
    ("ports[0] (s1 s1-eth4): ...")."""
    out = []
    for label, (switch, port), body in keyed(items, "ports", ("switch", "port")):
        with prefixed(f"{label} ({switch} {port})"):
            check(body)
        out.append((switch, port, body))
    return tuple(out)


def for_switch(entries, is_named, resolve, parse, overrides=None, missing=None) -> dict:
    """{port number: parse(number, body)} of one switch's configured ports: the config
    file's `entries` ((switch ref, port ref, body)) whose switch `is_named` this one, then
    `overrides` ({"port number": body or None}, from REST; None drops the port).
    `resolve(port ref)` gives a port number or None (then `missing(port ref)` is told)."""
    configured = {}
    for switch, port, body in entries:
        if not is_named(switch):
            continue
        number = resolve(port)
        if number is None:
            if missing is not None:
                missing(port)
            continue
        configured[number] = parse(number, body)
    for port, body in (overrides or {}).items():
        if body is None:
            configured.pop(int(port), None)
        else:
            configured[int(port)] = parse(int(port), body)
    return configured
