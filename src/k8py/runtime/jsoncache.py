"""Parsed JSON files, re-read only when the file changed (the runtime's status reads).

The kubelet relists every sandbox and container often (after each pod's change), and
each relist used to open and parse every record. A cache entry is keyed by the file's
(inode, mtime_ns, size): records are replaced atomically (write tmp + rename gives a new
inode), so a changed file is never served stale. One stat per read instead of
open + read + parse.

Invariant: values returned are shared between callers and must be treated as
read-only (copy before changing).
"""
from __future__ import annotations

import json
import os
from typing import Any

MAX_ENTRIES = 8192


class JsonFileCache:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: dict[str, tuple[tuple[int, int, int], Any]] = {}

    def read(self, path: str | os.PathLike[str]) -> Any:
        """The parsed content of `path`; OSError / ValueError as json.loads(open(path)) would."""
        p = os.fspath(path)
        st = os.stat(p)
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        hit = self._entries.get(p)
        if hit is not None and hit[0] == key:
            return hit[1]
        with open(p, "rb") as f:
            value = json.loads(f.read())
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[p] = (key, value)
        return value

    def forget(self, path: str | os.PathLike[str]) -> None:
        self._entries.pop(os.fspath(path), None)
