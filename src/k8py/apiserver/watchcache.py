"""Watch fan-out: ONE watch cache per storage prefix, shared by all watchers.

A `WatchCache` follows the store under its prefix from the revision it started at
(all the caches of a store share one store watch, the `CacheHub`) and keeps a
bounded history of recent events, and the current objects (`state`, a `CacheState`)
from which consistent lists are served: `reader()` waits until the hub has passed
the store's current revision. A watcher subscribes from a revision R: if every
event after R is still in the history (R >= `oldest`), it gets them replayed and
then live events, without gap or duplicate (replay and registration happen without
an await in between). Otherwise the caller falls back to a direct store watch
(`DirectSubscription`), which raises Compacted -> 410 when the store no longer has
R. Each event is decoded once, for every watcher's filters, and encoded once per
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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from k8py.api import jsonfast
from k8py.api.types import Obj
from k8py.apiserver.cachehub import CacheHub, Sink, hub_for
from k8py.apiserver.cachestate import CacheState
from k8py.apiserver.errors import StatusError
from k8py.store.errors import Compacted
from k8py.store.protocol import ListResult, Store, WatchEvent

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
        self._hub: CacheHub | None = None
        self._sink: Sink | None = None
        self._loading: asyncio.Task[None] | None = None
        self.state = CacheState()  # the current objects, for consistent lists
        self.listeners: list[Callable[[CacheEvent], None]] = []
        self.on_restart: list[Callable[[], None]] = []  # called when events may have been missed
        self._started = asyncio.Event()

    async def start(self, replay: int = 0) -> None:
        """Follow the store from now, or from up to `replay` revisions back (still in
        the store's history), so that watchers resuming after a restart are served
        from the cache rather than each opening its own store watch. All the caches of
        a store share one store watch (`CacheHub`); the first to start picks its start."""
        hub = hub_for(self.store)
        rev = 0
        if not hub.running:
            current = await self.store.current_revision()
            rev = max(current - replay, self.store.compacted_revision, 0)
        self._sink = Sink(self._on_store_event, self._on_reset)
        self.oldest = self.last = hub.attach(self.prefix, self._sink, rev)
        self._hub = hub
        self._load()
        self._started.set()

    def _load(self) -> None:
        """(Re)load the current objects in the background; lists use the store meanwhile."""
        self.state.begin_load()
        if self._loading is not None:
            self._loading.cancel()
        self._loading = asyncio.create_task(self._load_state(), name=f"watchcache list {self.prefix}")

    async def _load_state(self) -> None:
        try:
            res = await self.store.list(self.prefix)
        except asyncio.CancelledError:
            raise
        except StatusError as e:  # e.g. a value the encryption config cannot read: said, no traceback
            log.warning("watch cache %s: could not list (%s); lists are served by the store", self.prefix, e)
            self.state.reset()
            return
        except Exception:
            log.exception("watch cache %s: could not list; lists are served by the store", self.prefix)
            self.state.reset()
            return
        self.state.finish_load(res.items, res.revision)

    async def close(self) -> None:
        if self._hub is not None and self._sink is not None:
            await self._hub.detach(self.prefix, self._sink)
            self._hub = None
        if self._loading is not None:
            self._loading.cancel()
            self._loading = None
        self.state.reset()
        for s in self._all():
            s.close()

    def _all(self) -> list[Subscription]:
        out = list(self._subs)
        for by_value in self._indexed.values():
            for subs in by_value.values():
                out.extend(subs)
        return out

    def _on_store_event(self, ev: WatchEvent) -> None:
        self.state.apply(ev)
        if ev.kv.mod_revision > self.oldest:
            self._append(CacheEvent.from_store(ev))

    def _on_reset(self, rev: int) -> None:
        """The hub fell behind a compaction: restart empty at `rev`; watchers re-watch."""
        log.warning("watch cache %s restarted at %d after a compaction", self.prefix, rev)
        self._history.clear()
        self._revs.clear()
        self.oldest = self.last = rev
        for s in self._all():
            s.close()
        self._load()
        for fn in self.on_restart:
            fn()

    async def reader(self, timeout: float) -> Callable[[str, str | None, int], Awaitable[ListResult]] | None:
        """A consistent reader of this cache's objects: once the cache holds every change
        up to the store's current revision (waiting up to `timeout` for it), a function
        answering as `Store.list` does at that revision, or later (the hub's revision);
        None when the cache cannot (still loading, or behind): read the store then.
        The function does not suspend: pages read in a row see one state."""
        if self._hub is None or not self.state.loaded:
            return None
        rev = await self.store.current_revision()
        if not await self._hub.wait_for(rev, timeout) or not self.state.loaded or self._hub is None:
            return None
        hub, state = self._hub, self.state

        async def read(prefix: str, start_after: str | None, limit: int) -> ListResult:
            return state.list(prefix, start_after, limit, hub.revision)
        return read

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
        if after < self.oldest or self._hub is None:
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
