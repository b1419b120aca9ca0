"""MemoryStore: the Store protocol in memory, a fake for unit tests.

Invariants: the same as `protocol.Store` (checked by the shared suite in
tests/store/), except durability. State lives in one event loop; every method runs to
completion without awaiting, so no write interleaves with another. Each watcher
gets its own queue, filled synchronously at write time, so a watcher that has
started never misses an event, even across a later compaction.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import AsyncIterator

from k8py.store.errors import Compacted, Conflict, KeyExists, NotFound
from k8py.store.keys import in_prefix, prefix_end
from k8py.store.protocol import KeyValue, ListResult, WatchEvent


class _Watcher:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.queue: asyncio.Queue[WatchEvent | None] = asyncio.Queue()


class MemoryStore:
    def __init__(self) -> None:
        self._data: dict[str, KeyValue] = {}
        self._keys: list[str] = []  # the keys of _data, sorted
        self._revision = 0
        self._compacted = 0
        # History of events in revision order; _history_revs mirrors their revisions.
        self._history: list[WatchEvent] = []
        self._history_revs: list[int] = []
        self._watchers: set[_Watcher] = set()
        self._closed = False

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._closed = True
        for w in list(self._watchers):
            w.queue.put_nowait(None)
        self._watchers.clear()

    async def current_revision(self) -> int:
        return self._revision

    @property
    def compacted_revision(self) -> int:
        return self._compacted

    async def get(self, key: str) -> KeyValue | None:
        return self._data.get(key)

    async def list(self, prefix: str, *, start_after: str | None = None,
                   limit: int = 0) -> ListResult:
        if start_after is not None and start_after >= prefix:
            i = bisect.bisect_right(self._keys, start_after)
        else:
            i = bisect.bisect_left(self._keys, prefix)
        keys: list[str] = []
        more = False
        while i < len(self._keys) and in_prefix(self._keys[i], prefix):
            if limit > 0 and len(keys) == limit:
                more = True
                break
            keys.append(self._keys[i])
            i += 1
        return ListResult(items=[self._data[k] for k in keys], revision=self._revision, more=more)

    async def count(self, prefix: str) -> int:
        lo = bisect.bisect_left(self._keys, prefix)
        end = prefix_end(prefix)
        hi = len(self._keys) if end is None else bisect.bisect_left(self._keys, end)
        return hi - lo

    def _record(self, event: WatchEvent) -> None:
        self._history.append(event)
        self._history_revs.append(event.kv.mod_revision)
        for w in self._watchers:
            if in_prefix(event.kv.key, w.prefix):
                w.queue.put_nowait(event)

    async def create(self, key: str, value: bytes) -> KeyValue:
        if key in self._data:
            raise KeyExists(key)
        self._revision += 1
        kv = KeyValue(key=key, value=bytes(value), mod_revision=self._revision,
                      create_revision=self._revision)
        self._data[key] = kv
        bisect.insort(self._keys, key)
        self._record(WatchEvent(type="PUT", kv=kv, prev=None, created=True))
        return kv

    async def update(self, key: str, value: bytes, expected_revision: int) -> KeyValue:
        old = self._data.get(key)
        if old is None:
            raise NotFound(key)
        if old.mod_revision != expected_revision:
            raise Conflict(f"{key}: revision is {old.mod_revision}, expected {expected_revision}")
        self._revision += 1
        kv = KeyValue(key=key, value=bytes(value), mod_revision=self._revision,
                      create_revision=old.create_revision)
        self._data[key] = kv
        self._record(WatchEvent(type="PUT", kv=kv, prev=old))
        return kv

    async def delete(self, key: str, expected_revision: int | None = None) -> KeyValue:
        old = self._data.get(key)
        if old is None:
            raise NotFound(key)
        if expected_revision is not None and old.mod_revision != expected_revision:
            raise Conflict(f"{key}: revision is {old.mod_revision}, expected {expected_revision}")
        self._revision += 1
        kv = KeyValue(key=key, value=old.value, mod_revision=self._revision,
                      create_revision=old.create_revision)
        del self._data[key]
        del self._keys[bisect.bisect_left(self._keys, key)]
        self._record(WatchEvent(type="DELETE", kv=kv, prev=old))
        return kv

    async def compact(self, revision: int) -> None:
        if revision > self._revision:
            raise ValueError(f"cannot compact to {revision}: a future revision (current {self._revision})")
        if revision <= self._compacted:
            return
        cut = bisect.bisect_right(self._history_revs, revision)
        del self._history[:cut]
        del self._history_revs[:cut]
        self._compacted = revision

    def watch(self, prefix: str, revision: int) -> AsyncIterator[WatchEvent]:
        return self._watch(prefix, revision)

    async def _watch(self, prefix: str, revision: int) -> AsyncIterator[WatchEvent]:
        if revision < self._compacted:
            raise Compacted(revision, self._compacted)
        if self._closed:
            return
        # Replay and registration happen without an await between them: no gap.
        start = bisect.bisect_right(self._history_revs, revision)
        backlog = [e for e in self._history[start:] if in_prefix(e.kv.key, prefix)]
        w = _Watcher(prefix)
        self._watchers.add(w)
        try:
            for e in backlog:
                yield e
            while True:
                item = await w.queue.get()
                if item is None:
                    return
                if item.kv.mod_revision > revision:
                    yield item
        finally:
            self._watchers.discard(w)
