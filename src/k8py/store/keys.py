"""Key-range helpers shared by the store implementations.

Keys are `str`; they order by code point, which is the order of their UTF-8 bytes,
so SQLite's BINARY collation, etcd's byte order and Python's `<` all agree.
"""

from __future__ import annotations


def prefix_end(prefix: str) -> str | None:
    """The smallest key greater than every key that starts with `prefix`
    (None when there is none: the empty prefix, or one of only U+10FFFF)."""
    p = prefix.rstrip(chr(0x10FFFF))
    if not p:
        return None
    return p[:-1] + chr(ord(p[-1]) + 1)


def in_prefix(key: str, prefix: str) -> bool:
    return key.startswith(prefix)
