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
"""
import re
from typing import Mapping, Optional

MAX = 2 ** 64 - 1

# One pattern per spelling; fullmatch, so no surrounding space or sign gets through.
_HEX16 = re.compile(r"[0-9a-fA-F]{16}")
_PREFIXED = re.compile(r"0[xX][0-9a-fA-F]{1,16}")
_DECIMAL = re.compile(r"[0-9]{1,20}")

SPELLINGS = "16 hex digits, 0x and up to 16 hex digits, or a decimal number below 2**64"


class DpidError(ValueError):
    pass


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
