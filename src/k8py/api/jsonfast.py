"""Fast JSON (orjson) with the meaning the standard library gave, for the hot paths.

`dumps` writes compact UTF-8 JSON (no spaces, non-ASCII unescaped, dict insertion
order kept), the bytes `json.dumps(v, separators=(",", ":"), ensure_ascii=False)`
wrote, except that floats are spelled as Go spells them (`1e-7`, not `1e-07`) and
NaN/Infinity (never in a JSON body) become null. `loads` returns what `json.loads`
returned. Invariants, kept by falling back to the standard library:
- integers beyond 64 bits are written and read exactly (orjson refuses to write them
  and reads them as floats, so any run of 19 digits sends `loads` to `json`);
- non-string dict keys are written as `json` writes them (`{1: 2}` -> `{"1":2}`);
- input orjson refuses (e.g. `1e400`) is read by `json` (same value or same error).
`loads_unique` is the request-body fast path: it answers only when the body is
exactly `dumps` of its value, which proves it has no duplicate keys.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

# Digits to "0": a run of 19 zeros in the translation is a run of 19 digits in the text
# (bytes.translate and `in` run at memory speed, several times faster than a regex).
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 19


def _long_number(data: bytes | bytearray) -> bool:
    """Whether `data` has a run of 19 digits (a number orjson might not read exactly)."""
    return _LONG_RUN in data.translate(_DIGITS_TO_ZERO)


JSONDecodeError = ValueError  # what both json and orjson raise on bad input (orjson's is a subclass)


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON of `value`."""
    try:
        return orjson.dumps(value)
    except TypeError:  # an integer beyond 64 bits, a non-string key, or a type JSON lacks
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """The value of a JSON document (as `json.loads` reads it)."""
    if isinstance(data, memoryview):
        data = bytes(data)
    if _long_number(data.encode() if isinstance(data, str) else data):
        return json.loads(data)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


class NotCanonical(Exception):
    """The body is not exactly `dumps` of its value: decode it the slow, exact way."""


def loads_unique(data: bytes) -> Any:
    """The value of `data` if it is exactly `dumps(value)` (hence free of duplicate keys
    and of numbers orjson would round); else raise NotCanonical."""
    if _long_number(data):
        raise NotCanonical
    try:
        value = orjson.loads(data)
        same = orjson.dumps(value) == data
    except (orjson.JSONDecodeError, TypeError):
        raise NotCanonical from None
    if not same:
        raise NotCanonical
    return value


def clone(value: Any) -> Any:
    """A deep copy of a JSON value."""
    return loads(dumps(value))


__all__ = ["JSONDecodeError", "NotCanonical", "clone", "dumps", "loads", "loads_unique"]
