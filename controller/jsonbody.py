"""Bounded JSON for REST bodies: what a client may send before any app looks at it.

`json.loads` alone accepts what no app here needs and some it cannot survive: a body
nested 2000 deep raises RecursionError (not ValueError), `1e999` becomes infinity,
`NaN` is accepted, a 4000-digit integer is parsed at some cost. Every REST body of
ours is a small object of a few levels (a VIP with backends, a QoS rule with a
match), so the limits below are generous for real use and tight for abuse.

`loads(raw)` returns the document or raises BodyError with a message meant for the
client (the REST layer answers 400 with it).
"""
import json
import math
import re

MAX_DEPTH = 32            # objects/arrays inside each other
MAX_STRING = 4096         # characters in any string, keys included
MAX_ITEMS = 10000         # members of one object or array
MAX_INT_DIGITS = 20       # enough for any 64-bit value (a datapath id, a cookie)
MAX_INT = 1 << 64

# Brackets outside strings: a string token is consumed whole so its brackets do not
# count. Scanning only these tokens keeps the depth check linear and cheap.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)
_SURROGATE = re.compile("[\ud800-\udfff]")  # "\ud800" escapes decode to lone surrogates


class BodyError(ValueError):
    pass


def _depth_of(text: str) -> int:
    depth = deepest = 0
    for token in _TOKENS.finditer(text):
        char = token.group()[0]
        if char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    return deepest
        elif char in "]}":
            depth -= 1
    return deepest


def _int(text: str) -> int:
    digits = text.lstrip("-")
    if len(digits) > MAX_INT_DIGITS:
        raise BodyError(f"number {text[:24]}... has more than {MAX_INT_DIGITS} digits")
    value = int(text)
    if abs(value) >= MAX_INT:
        raise BodyError(f"number {text} out of range (at most 64 bits)")
    return value


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BodyError(f"number {text[:24]} out of range")
    return value


def _constant(text: str):
    raise BodyError(f"{text} is not a JSON number")


def _check(document) -> None:
    """Walk without recursion: string lengths and container sizes."""
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if len(item) > MAX_STRING:
                raise BodyError(f"a string of {len(item)} characters (at most {MAX_STRING})")
            if _SURROGATE.search(item):
                raise BodyError("a string with a lone surrogate escape (not Unicode text)")
        elif isinstance(item, dict):
            if len(item) > MAX_ITEMS:
                raise BodyError(f"an object with {len(item)} members (at most {MAX_ITEMS})")
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            if len(item) > MAX_ITEMS:
                raise BodyError(f"an array with {len(item)} items (at most {MAX_ITEMS})")
            stack.extend(item)


def loads(raw: bytes):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BodyError(f"body is not UTF-8: {err}") from None
    depth = _depth_of(text)
    if depth > MAX_DEPTH:
        raise BodyError(f"JSON nested more than {MAX_DEPTH} levels deep")
    try:
        document = json.loads(text, parse_int=_int, parse_float=_float,
                              parse_constant=_constant)
    except BodyError:
        raise
    except (ValueError, RecursionError) as err:  # RecursionError: a depth the scan missed
        raise BodyError(f"malformed JSON: {err}") from None
    _check(document)
    return document
