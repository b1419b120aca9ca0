"""Watch fan-out: ONE store watch per storage prefix, shared by all watchers.

A `WatchCache` follows `store.watch(prefix)` from the revision it started at and
keeps a bounded history of recent events. A watcher subscribes from a revision R:
if every event after R is still in the history (R >= `oldest`), it gets them
replayed and then live events, without gap or duplicate (replay and registration
happen without an await in between). Otherwise the caller falls back to a direct
store watch (`DirectSubscription`), which raises Compacted -> 410 when the store
no longer has R. Each event is decoded once, for every watcher's filters, and encoded once per
(resource, encoding, event type) for every watcher that asks the same (`encoded`).
Invariant: `oldest` <= every revision in the history - 1; all events under the
prefix with revision in (oldest, last] are in the history, in order.
A watcher that falls more than `queue_size` events behind is dropped (its stream
ends; clients re-watch from their last resourceVersion), as Kubernetes does.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from k8py.api import jsonfast
from k8py.api.types import Obj
from k8py.store.errors import Compacted
from k8py.store.protocol import Store, WatchEvent

log = logging.getLogger(__name__)
DECODED_WINDOW = 256  # newest events keep their decoded objects and encodings for the watchers


@dataclass
class CacheEvent:
    type: str  # "PUT" | "DELETE"
    key: str
    revision: int
    value: bytes  # new value (PUT) or deleted value (DELETE)
    prev_value: bytes | None
    created: bool
    _obj: Obj | None = field(default=None, repr=False)
    _prev: Obj | None = field(default=None, repr=False)
    _fields: dict[tuple[str, str, bool], Obj] = field(default_factory=dict, repr=False)
    _encoded: dict[tuple[str, ...], bytes] = field(default_factory=dict, repr=False)

    @classmethod
    def from_store(cls, ev: WatchEvent) -> CacheEvent:
        return cls(ev.type, ev.kv.key, ev.kv.mod_revision, ev.kv.value,
                   ev.prev.value if ev.prev is not None else None, ev.created)

    @property
    def obj(self) -> Obj:
        """The decoded value, shared by all watchers: read it, never mutate it."""
        if self._obj is None:
            self._obj = jsonfast.loads(self.value)
        return self._obj

    @property
    def prev(self) -> Obj | None:
        if self._prev is None and self.prev_value is not None:
            self._prev = jsonfast.loads(self.prev_value)
        return self._prev

    def fields(self, r: Any, prev: bool = False) -> Obj:
        """Field-selector values of the (previous) object for resource r, computed once."""
        k = (r.group, r.plural, prev)
        f = self._fields.get(k)
        if f is None:
            from k8py.apiserver.selection import nested_field_set
            obj = self.prev if prev else self.obj
            f = self._fields[k] = nested_field_set(r, obj or {})
        return f

    def encoded(self, key: tuple[str, ...], make: Callable[[], bytes]) -> bytes:
        """The watch event as `key` (resource, encoding, event type, which value) names
        it, encoded once by `make` and shared by every watcher asking the same."""
        data = self._encoded.get(key)
        if data is None:
            data = self._encoded[key] = make()
        return data

    def forget(self) -> None:
        """Drop the decoded and encoded forms (kept only while the event is fresh)."""
        self._obj = self._prev = None
        self._fields = {}
        self._encoded = {}

    def index_values(self, kind: str) -> set[str]:
        """Values of a watch index ("nodeName", "name", "namespace") before and after."""
        if kind == "nodeName":
            return {((o or {}).get("spec") or {}).get("nodeName") or "" for o in (self.obj, self.prev) if o is not None}
        parts = self.key.rsplit("/", 2)
        if kind == "name":
            return {parts[-1]}
        return {parts[-2]} if len(parts) == 3 else set()


class Subscription:
    """A watcher's queue of CacheEvents. `get()` returns None once closed and drained."""

    def __init__(self, after: int, max_size: int, on_close: Callable[[Subscription], None] | None = None,
                 index: tuple[str, str] | None = None) -> None:
        self.after = after  # deliver only events with revision > after
        self.index = index  # (kind, value): the cache sends only events whose index value matches
        self.max_size = max_size
        self._buf: collections.deque[CacheEvent] = collections.deque()
        self._wake = asyncio.Event()
        self.closed = False
        self.error: Compacted | None = None
        self._on_close = on_close

    def push(self, e: CacheEvent) -> None:
        if self.closed or e.revision <= self.after:
            return
        if len(self._buf) >= self.max_size:
            log.info("dropping a watcher that fell %d events behind", len(self._buf))
            self.close()
            return
        self._buf.append(e)
        self._wake.set()

    def fail(self, err: Compacted) -> None:
        self.error = err
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._wake.set()
            if self._on_close is not None:
                self._on_close(self)

    @property
    def pending(self) -> int:
        return len(self._buf)

    async def get(self) -> CacheEvent | None:
        while not self._buf:
            if self.closed:
                return None
            self._wake.clear()
            await self._wake.wait()
        return self._buf.popleft()


class WatchCache:
    def __init__(self, store: Store, prefix: str, history: int = 10_000, queue_size: int = 10_000) -> None:
        self.store = store
        self.prefix = prefix
        self.history_size = history
        self.queue_size = queue_size
        self._history: collections.deque[CacheEvent] = collections.deque()
        self._revs: collections.deque[int] = collections.deque()
        self.oldest = 0  # every event with revision > oldest is in the history
        self.last = 0  # revision of the newest event seen (or the start revision)
        self._subs: set[Subscription] = set()  # un-indexed subscriptions
        self._indexed: dict[str, dict[str, set[Subscription]]] = {}  # kind -> value -> subscriptions
        self._task: asyncio.Task[None] | None = None
        self.listeners: list[Callable[[CacheEvent], None]] = []
        self._started = asyncio.Event()

    async def start(self, replay: int = 0) -> None:
        """Follow the store from now, or from up to `replay` revisions back (still in
        the store's history), so that watchers resuming after a restart are served
        from the cache rather than each opening its own store watch."""
        current = await self.store.current_revision()
        rev = max(current - replay, self.store.compacted_revision, 0)
        self.oldest = self.last = rev
        self._task = asyncio.create_task(self._run(rev), name=f"watchcache {self.prefix}")
        self._started.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        for s in self._all():
            s.close()

    def _all(self) -> list[Subscription]:
        out = list(self._subs)
        for by_value in self._indexed.values():
            for subs in by_value.values():
                out.extend(subs)
        return out

    async def _run(self, rev: int) -> None:
        while True:
            try:
                async for ev in self.store.watch(self.prefix, rev):
                    self._append(CacheEvent.from_store(ev))
                    rev = ev.kv.mod_revision
                return  # the store closed
            except asyncio.CancelledError:
                raise
            except Compacted:
                # We fell behind a compaction: restart empty; watchers re-watch.
                rev = await self.store.current_revision()
                log.warning("watch cache %s restarted at %d after a compaction", self.prefix, rev)
                self._history.clear()
                self._revs.clear()
                self.oldest = self.last = rev
                for s in self._all():
                    s.close()
            except Exception:
                log.exception("watch cache %s: store watch failed; restarting", self.prefix)
                await asyncio.sleep(0.5)

    def _append(self, e: CacheEvent) -> None:
        self._history.append(e)
        self._revs.append(e.revision)
        while len(self._history) > self.history_size:
            old = self._history.popleft()
            self._revs.popleft()
            self.oldest = old.revision
        self.last = e.revision
        if len(self._history) > DECODED_WINDOW:
            self._history[-DECODED_WINDOW - 1].forget()
        for s in list(self._subs):
            s.push(e)
        for kind, by_value in self._indexed.items():
            for v in e.index_values(kind):
                for s in list(by_value.get(v, ())):
                    s.push(e)
        for fn in self.listeners:
            try:
                fn(e)
            except Exception:
                log.exception("watch cache listener failed")

    def subscribe(self, after: int, index: tuple[str, str] | None = None) -> Subscription | None:
        """A subscription to events with revision > after (only those whose index value,
        before or after, is index[1], when given); None if the history no longer
        reaches back to `after` (use a direct store watch then)."""
        if after < self.oldest or self._task is None:
            return None
        sub = Subscription(after, self.queue_size, self._unsubscribe, index)
        start = bisect.bisect_right(self._revs, after)
        for i in range(start, len(self._history)):
            e = self._history[i]
            if index is None or index[1] in e.index_values(index[0]):
                sub.push(e)
        if index is None:
            self._subs.add(sub)
        else:
            self._indexed.setdefault(index[0], {}).setdefault(index[1], set()).add(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        if sub.index is None:
            self._subs.discard(sub)
            return
        by_value = self._indexed.get(sub.index[0], {})
        subs = by_value.get(sub.index[1])
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del by_value[sub.index[1]]

    @property
    def watchers(self) -> int:
        return len(self._all())


class DirectSubscription(Subscription):
    """A Subscription fed by its own store watch (resuming from before the cache)."""

    def __init__(self, store: Store, prefix: str, after: int, max_size: int) -> None:
        super().__init__(after, max_size)
        self._task = asyncio.create_task(self._pump(store, prefix, after))

    async def _pump(self, store: Store, prefix: str, after: int) -> None:
        try:
            async for ev in store.watch(prefix, after):
                self.push(CacheEvent.from_store(ev))
                if self.closed:
                    return
        except Compacted as e:
            self.fail(e)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("direct watch of %s failed", prefix)
        self.close()

    def close(self) -> None:
        super().close()
        if not self._task.done() and asyncio.current_task() is not self._task:
            self._task.cancel()
