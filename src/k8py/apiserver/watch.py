"""WATCH streams: resourceVersion semantics, selectors, bookmarks, timeouts.

- resourceVersion "" or "0" (or sendInitialEvents=true): synthetic ADDED events for
  the current state, then every change after the list's revision.
- resourceVersion N: every change after N; N compacted -> one ERROR event carrying a
  410 Expired Status (`too old resource version: N (M)`), then the stream ends.
- With selectors, an object that stops matching yields DELETED (its previous state
  at the event's revision), one that starts matching yields ADDED.
- allowWatchBookmarks: a BOOKMARK every `bookmark_interval` carrying the revision
  up to which this watcher has seen every event. timeoutSeconds ends the stream.
- resourceVersion N in the future: wait up to 3 s (kube-apiserver's watch cache
  blockTimeout) for the store to reach N; if it does not, one ERROR event carrying
  504 Timeout `Too large resource version: N, current: M` (cause ResourceVersionTooLarge,
  retryAfterSeconds 1), then the stream ends.
Timers use the injected Clock, so tests drive them with FakeClock.advance().
Each change event is encoded once per (resource, representation, event type) and the
bytes are shared by all watchers asking the same (`WatchStream.frames`, what the HTTP
front writes); iterating a WatchStream yields fresh objects per watcher instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from k8py.api import jsonfast
from k8py.api.resources import Resource
from k8py.api.types import Obj
from k8py.apiserver import listing, storage
from k8py.apiserver.codec import Accept
from k8py.apiserver.errors import StatusError, gone
from k8py.apiserver.selection import Selection
from k8py.apiserver.watchcache import (
    CacheEvent,
    DirectSubscription,
    Subscription,
    WatchCache,
)
from k8py.clock import Clock
from k8py.store.errors import Compacted
from k8py.store.protocol import Store


@dataclass
class WatchParams:
    resource: Resource
    namespace: str | None
    selection: Selection
    start: int | None  # None: send the current state first
    bookmarks: bool
    initial_events_end: bool  # sendInitialEvents=true: mark the end with a bookmark
    timeout: float | None
    render: Callable[[Obj], Obj]  # the object as the client asked (plain, Table, metadata)
    # Names `render` when its output depends on nothing but the object ("json",
    # "PartialObjectMetadata/v1"): events are then encoded once for all such watchers.
    encoding: str | None = None


# A watch stream's item: an event object of this watcher's own, or a shared encoded event
# (its JSON line, newline included: written as it is to every watcher).
Frame = Obj | bytes


def encoding_of(acc: Accept) -> str | None:
    """The shared-encoding name of a representation (None: a Table, which shows ages)."""
    if acc.as_kind == "":
        return "json"
    return f"PartialObjectMetadata/{acc.version}" if acc.as_kind.startswith("PartialObjectMetadata") else None


class WatchStream:
    """The events of one watch. Iterated, it yields event objects (fresh for every
    watcher: shared encodings are decoded); `frames()` yields the JSON lines to send."""

    def __init__(self, frames: AsyncIterator[Frame]) -> None:
        self._frames = frames

    def __aiter__(self) -> WatchStream:
        return self

    async def __anext__(self) -> Obj:
        f = await self._frames.__anext__()
        return jsonfast.loads(f) if isinstance(f, bytes) else f

    async def frames(self) -> AsyncIterator[bytes]:
        async for f in self._frames:
            yield f if isinstance(f, bytes) else jsonfast.dumps(f) + b"\n"

    async def aclose(self) -> None:
        aclose = getattr(self._frames, "aclose", None)
        if aclose is not None:
            await aclose()


async def _initial(store: Store, cache: WatchCache | None, p: WatchParams) -> tuple[list[Obj], int]:
    """The current state to send first, and its revision: a consistent list (from the
    watch cache when it has caught up with the store)."""
    items, rev, _ = await listing.list_objects(store, p.resource, p.namespace, p.selection, None, None, cache)
    return items, rev


def _classify(p: WatchParams, e: CacheEvent) -> tuple[str, bool] | None:
    """What the watcher sees of event e: (event type, whether the object is the previous
    value), or None when the event is not for it (selectors before and after)."""
    r, sel = p.resource, p.selection
    lazy = sel.field is None
    if e.type == "DELETE":
        return ("DELETED", False) if sel.matches(e.obj, None if lazy else e.fields(r)) else None
    new_match = sel.matches(e.obj, None if lazy else e.fields(r))
    if sel.label is None and sel.field is None:  # only the namespace, which never changes
        old_match = not e.created and new_match
    else:
        old_match = e.prev is not None and not e.created and sel.matches(e.prev, None if lazy else e.fields(r, True))
    if new_match and old_match:
        return "MODIFIED", False
    if new_match:
        return "ADDED", False
    if old_match and e.prev_value is not None:
        return "DELETED", True
    return None


def _event(p: WatchParams, e: CacheEvent, kind: str, prev: bool) -> Obj:
    value = e.prev_value if prev and e.prev_value is not None else e.value
    return {"type": kind, "object": p.render(storage.decode(p.resource, value, e.revision))}


def _frame(p: WatchParams, e: CacheEvent) -> Frame | None:
    """The event for this watcher: its encoded JSON, shared with every watcher of the same
    resource and encoding, or a fresh object when its rendering is its own (Table)."""
    c = _classify(p, e)
    if c is None:
        return None
    if p.encoding is None:
        return _event(p, e, *c)
    r = p.resource
    key = (r.group, r.version, r.plural, p.encoding, c[0], "prev" if c[1] else "")
    return e.encoded(key, lambda: jsonfast.dumps(_event(p, e, *c)) + b"\n")


def bookmark(r: Resource, rev: int, initial_end: bool = False) -> Obj:
    md: Obj = {"resourceVersion": str(rev)}
    if initial_end:
        md["annotations"] = {"k8s.io/initial-events-end": "true"}
    return {"type": "BOOKMARK", "object": {"kind": r.kind, "apiVersion": r.api_version, "metadata": md}}


FRESH_WAIT = 3.0  # seconds a watch from a future resourceVersion waits for the store to get there
FRESH_POLL = 0.05
TOO_LARGE_RETRY = 1  # retryAfterSeconds of "Too large resource version"


def too_large_resource_version(rv: int, current: int) -> StatusError:
    """kube-apiserver's storage.NewTooLargeResourceVersionError, as a Status."""
    return StatusError(504, "Timeout", f"Timeout: Too large resource version: {rv}, current: {current}",
                       {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                        "retryAfterSeconds": TOO_LARGE_RETRY})


async def _wait_fresh(store: Store, clock: Clock, rv: int) -> int | None:
    """None once the store has reached revision `rv`; its revision if it has not within FRESH_WAIT."""
    deadline = clock.monotonic() + FRESH_WAIT
    while True:
        current = await store.current_revision()
        if current >= rv:
            return None
        if clock.monotonic() >= deadline:
            return current
        await clock.sleep(FRESH_POLL)


async def _error(err: StatusError) -> AsyncIterator[Frame]:
    yield {"type": "ERROR", "object": err.status()}


async def stream(store: Store, cache: WatchCache | None, clock: Clock, bookmark_interval: float,
                 queue_size: int, p: WatchParams) -> WatchStream:
    initial: list[Obj] = []
    if p.start is None:
        initial, start = await _initial(store, cache, p)
    else:
        start = p.start
        behind = None if cache is not None and start <= cache.last else await _wait_fresh(store, clock, start)
        if behind is not None:
            return WatchStream(_error(too_large_resource_version(start, behind)))
    sub: Subscription | None = None
    if start < store.compacted_revision:
        sub = Subscription(start, 1)
        sub.fail(Compacted(start, store.compacted_revision))
    elif cache is not None:
        sub = cache.subscribe(start, p.selection.index())
    if sub is None:
        sub = DirectSubscription(store, storage.prefix(p.resource), start, queue_size)
    return WatchStream(_run(sub, initial, start, cache, clock, bookmark_interval, p))


async def _run(sub: Subscription, initial: list[Obj], start: int, cache: WatchCache | None,
               clock: Clock, interval: float, p: WatchParams) -> AsyncIterator[Frame]:
    seen = start
    timers: dict[str, asyncio.Task[None]] = {}
    get_task: asyncio.Task[CacheEvent | None] | None = None
    t0 = clock.monotonic()
    try:
        for obj in initial:
            yield {"type": "ADDED", "object": p.render(obj)}
        if p.initial_events_end and p.bookmarks:
            yield bookmark(p.resource, seen, initial_end=True)
        if p.timeout is not None:
            timers["timeout"] = asyncio.ensure_future(clock.sleep(p.timeout))
        while True:
            if p.bookmarks and "bookmark" not in timers:
                timers["bookmark"] = asyncio.ensure_future(clock.sleep(interval))
            if get_task is None:
                get_task = asyncio.ensure_future(sub.get())
            done, _ = await asyncio.wait([get_task, *timers.values()], return_when=asyncio.FIRST_COMPLETED)
            if get_task in done:
                e = get_task.result()
                get_task = None
                if e is None:
                    if sub.error is not None:
                        err = gone(f"too old resource version: {start} ({sub.error.compacted})")
                        yield {"type": "ERROR", "object": err.status()}
                    return
                seen = max(seen, e.revision)
                frame = _frame(p, e)
                if frame is not None:
                    yield frame
                continue
            if "timeout" in timers and timers["timeout"] in done:
                return
            if "bookmark" in timers and timers["bookmark"] in done:
                del timers["bookmark"]
                if sub.pending == 0 and cache is not None and not isinstance(sub, DirectSubscription):
                    seen = max(seen, cache.last)
                yield bookmark(p.resource, seen)
    finally:
        del t0
        for t in [get_task, *timers.values()]:
            if t is not None and not t.done():
                t.cancel()
        sub.close()
