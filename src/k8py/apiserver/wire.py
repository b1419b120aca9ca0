"""Protocol buffers wire format: just enough to read messages field by field.

`fields(buf)` yields (number, wire type, value): varints and fixed64/fixed32 as
unsigned int (fixed ones read little-endian), length-delimited as bytes. Raises
ValueError on truncated or malformed input, never anything else. Shared by the
protobuf body decoder (protobuf.py) and the descriptor reader (protobuf_gen.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

VARINT, FIXED64, LEN, FIXED32 = 0, 1, 2, 5


def varint(buf: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if i >= len(buf):
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7
        if shift > 70:
            raise ValueError("varint too long")


def fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    i = 0
    n = len(buf)
    while i < n:
        key, i = varint(buf, i)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise ValueError("field number 0")
        if wt == VARINT:
            v, i = varint(buf, i)
            yield num, wt, v
        elif wt == FIXED64:
            if i + 8 > n:
                raise ValueError("truncated fixed64")
            yield num, wt, int.from_bytes(buf[i:i + 8], "little")
            i += 8
        elif wt == LEN:
            ln, i = varint(buf, i)
            if i + ln > n:
                raise ValueError("truncated length-delimited field")
            yield num, wt, buf[i:i + ln]
            i += ln
        elif wt == FIXED32:
            if i + 4 > n:
                raise ValueError("truncated fixed32")
            yield num, wt, int.from_bytes(buf[i:i + 4], "little")
            i += 4
        else:
            raise ValueError(f"unsupported wire type {wt}")
