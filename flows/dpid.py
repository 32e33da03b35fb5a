"""Datapath ids: an int inside, text only at the edges.

Every edge (REST paths and bodies, the `sdn` CLI, config files, the state documents,
OVSDB queries, log lines, metric labels, LLDP chassis ids) turns text into a datapath id
with `parse` and a datapath id into text with `format`, so they all accept the same
spellings and refuse the same ones with the same message.

`parse` accepts exactly these, and nothing else:
  - an int 0 .. 2**64-1 (not a bool): a YAML or JSON number;
  - 16 hex digits, either case: "00000000000000ff", the form Ryu, ovs-ofctl, OVSDB's
    `datapath_id` column and this controller's output use;
  - "0x" or "0X" and 1 to 16 hex digits: "0xff";
  - 1 to 20 decimal digits: "255".
A string of exactly 16 characters is always read as hex (the form everything prints),
so "0000000000000010" is 16, not 10. Signs, spaces, underscores, an empty string and
values of 2**64 or more are refused (Python's int() would take " 1_0 ").

`format` gives the 16-lowercase-hex-digit form, the one REST output and logs show.

`resolve` reads a switch reference (REST paths and bodies, the CLI through REST): a
datapath id in those spellings, or the name of a connected bridge (the name OVS gives
the bridge's LOCAL port), against a name -> datapath ids mapping the caller supplies.
"""
import re
from typing import Iterable, Mapping, Optional

MAX = 2 ** 64 - 1

# One pattern per spelling; fullmatch, so no surrounding space or sign gets through.
_HEX16 = re.compile(r"[0-9a-fA-F]{16}")
_PREFIXED = re.compile(r"0[xX][0-9a-fA-F]{1,16}")
_DECIMAL = re.compile(r"[0-9]{1,20}")

SPELLINGS = "16 hex digits, 0x and up to 16 hex digits, or a decimal number below 2**64"


# A bridge has a Linux network device of its name (its LOCAL port: OpenFlow's port name
# field is 16 bytes with the NUL), so a name follows the kernel's rules: 1-15
# characters, no '/', ':' or white space. Text that reads as a number (digits with or
# without a sign or 0x) is meant as a datapath id, never a name.
MAX_NAME = 15  # IFNAMSIZ - 1
_NUMBER_LIKE = re.compile(r"[+-]?[0-9]+|[+-]?0[xX].*")
_BAD_NAME_CHARS = re.compile(r"[/:\s]")
REFERENCES = f"a connected bridge's name or a datapath id ({SPELLINGS})"


class DpidError(ValueError):
    pass


class UnknownSwitchName(DpidError):
    """A well-formed bridge name that no connected switch has (REST: 404)."""


class AmbiguousSwitchName(DpidError):
    """A reference two connected switches answer to (REST: 409)."""


def _refuse(value):
    return DpidError(f"bad datapath id {value!r}: give {SPELLINGS}")


def parse(value) -> int:
    """The datapath id `value` names (an int or text, in the module docstring's
    spellings); DpidError (a ValueError) for anything else."""
    if isinstance(value, bool):
        raise _refuse(value)
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _HEX16.fullmatch(value):
        number = int(value, 16)
    elif isinstance(value, str) and _PREFIXED.fullmatch(value):
        number = int(value[2:], 16)
    elif isinstance(value, str) and _DECIMAL.fullmatch(value):
        number = int(value)
    else:
        raise _refuse(value)
    if not 0 <= number <= MAX:
        raise _refuse(value)
    return number


def format(dpid: int) -> str:  # shadows the builtin in this module only
    """16 lowercase hex digits: "00000000000000ff"."""
    if isinstance(dpid, bool) or not isinstance(dpid, int) or not 0 <= dpid <= MAX:
        raise DpidError(f"not a datapath id: {dpid!r}")
    return "%016x" % dpid


def of_ref(ref) -> Optional[int]:
    """A switch reference (config files, the CLI: a bridge name or a datapath id) as a
    datapath id; None when it is none (a bridge name: text that `parse` refuses)."""
    try:
        return parse(ref)
    except DpidError:
        return None


def looks_like_number(value) -> bool:
    """An int, or text meant as a datapath id (a bad one too: "-1", "0xzz")."""
    return isinstance(value, int) or (isinstance(value, str) and
                                      _NUMBER_LIKE.fullmatch(value) is not None)


def is_bridge_name(value) -> bool:
    """Whether `value` can be a bridge's name (see MAX_NAME)."""
    return isinstance(value, str) and not looks_like_number(value) and \
        0 < len(value) <= MAX_NAME and not _BAD_NAME_CHARS.search(value)


def resolve(ref, names: Mapping[str, Iterable[int]]) -> int:
    """The datapath id switch reference `ref` names. `names` maps the bridge name of each
    connected switch to the datapath ids of those called so (two OVS hosts may both have
    an "s1" or a "br-int").

    A datapath id spelling is that id (connected or not: the caller says whether it
    knows it), unless a connected bridge of another id is called exactly that (a bridge
    named "1"): then AmbiguousSwitchName, as for a name two switches have, naming
    them. A name no connected switch has is UnknownSwitchName; text that is neither
    a datapath id nor a possible bridge name ("0xzz", "a/b") is DpidError."""
    number = of_ref(ref)
    if number is None and not isinstance(ref, str):
        raise _refuse(ref)
    candidates = set(names.get(ref, ())) if isinstance(ref, str) else set()
    if number is not None:
        candidates.add(number)
    if len(candidates) > 1:
        listed = ", ".join(format(c) for c in sorted(candidates))
        raise AmbiguousSwitchName(f"switch {ref!r} is ambiguous: it names {listed}; give "
                                  f"the datapath id")
    if candidates:
        return candidates.pop()
    if not is_bridge_name(ref):
        raise DpidError(f"bad switch {ref!r}: give {REFERENCES}")
    raise UnknownSwitchName(f"no connected switch is named {ref!r}; give {REFERENCES}")


def int_keys(document: Mapping) -> dict:
    """A document keyed by datapath ids as text (a stored REST document, in any
    spelling `parse` takes) keyed by ints; DpidError names the first bad key."""
    out = {}
    for key, value in document.items():
        number = parse(key)
        if number in out:
            raise DpidError(f"datapath id {format(number)} is given twice ({key!r})")
        out[number] = value
    return out


def text_keys(document: Mapping) -> dict:
    """The inverse of int_keys: int keys as 16 hex digits, for JSON."""
    return {format(key): value for key, value in document.items()}
