"""The current objects under one storage prefix, kept by its watch cache for lists.

`CacheState` is loaded from a store list at revision L and then follows the cache's
events: an event with revision <= L is already in the list and is skipped, later ones
are applied in order. While the list is being read (`loading`), events are buffered
and applied once it is in. Invariant once loaded: the state equals the store's
contents under the prefix at `revision` (the newest event applied, or L).
Values are the stored bytes; a list decodes them as the store's would be decoded.
Keys are kept sorted, in the store's order (code points), so pages and continue
tokens match the store's.
"""

from __future__ import annotations

import bisect

from k8py.store.keys import prefix_end
from k8py.store.protocol import KeyValue, ListResult, WatchEvent


class CacheState:
    def __init__(self) -> None:
        self._values: dict[str, KeyValue] = {}
        self._keys: list[str] = []  # sorted
        self.revision = 0  # the state is the store's at this revision (when loaded)
        self.loaded = False
        self._buffer: list[WatchEvent] | None = None  # events seen while the list is read

    def begin_load(self) -> None:
        """Start buffering events: a list of the store is about to be read."""
        self.loaded = False
        self._buffer = []
        self._values, self._keys = {}, []

    def finish_load(self, items: list[KeyValue], revision: int) -> None:
        """The store's list at `revision`; buffered events after it are applied."""
        self._values = {kv.key: kv for kv in items}
        self._keys = sorted(self._values)
        self.revision = revision
        buffered, self._buffer = self._buffer or [], None
        self.loaded = True
        for ev in buffered:
            self.apply(ev)

    def reset(self) -> None:
        """Forget everything (a compaction cut the cache off): not loaded until reloaded."""
        self.loaded = False
        self._buffer = None
        self._values, self._keys = {}, []

    def apply(self, ev: WatchEvent) -> None:
        if self._buffer is not None:
            self._buffer.append(ev)
            return
        if not self.loaded or ev.kv.mod_revision <= self.revision:
            return
        self.revision = ev.kv.mod_revision
        key = ev.kv.key
        if ev.type == "DELETE":
            if self._values.pop(key, None) is not None:
                i = bisect.bisect_left(self._keys, key)
                del self._keys[i]
            return
        if key not in self._values:
            bisect.insort(self._keys, key)
        self._values[key] = ev.kv

    def list(self, prefix: str, start_after: str | None = None, limit: int = 0,
             revision: int | None = None) -> ListResult:
        """As `Store.list` would answer at `self.revision`, or at a later `revision` up to
        which the caller knows nothing under the prefix changed."""
        lo = bisect.bisect_left(self._keys, prefix)
        if start_after is not None and start_after >= prefix:
            lo = bisect.bisect_right(self._keys, start_after)
        end = prefix_end(prefix)
        hi = len(self._keys) if end is None else bisect.bisect_left(self._keys, end)
        more = False
        if limit and hi - lo > limit:
            hi, more = lo + limit, True
        return ListResult([self._values[k] for k in self._keys[lo:hi]], max(self.revision, revision or 0), more)

    def __len__(self) -> int:
        return len(self._keys)
