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
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from k8py.api.resources import Resource
from k8py.api.types import Obj
from k8py.apiserver import storage
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


async def _initial(store: Store, p: WatchParams) -> tuple[list[Obj], int]:
    prefix = storage.prefix(p.resource, p.namespace)
    items: list[Obj] = []
    start_after: str | None = None
    rev: int | None = None
    while True:
        res = await store.list(prefix, start_after=start_after, limit=500)
        if rev is None:
            rev = res.revision
        for kv in res.items:
            obj = storage.from_kv(p.resource, kv)
            if p.selection.matches(obj):
                items.append(obj)
        if not res.more or not res.items:
            return items, rev
        start_after = res.items[-1].key


def _to_event(p: WatchParams, e: CacheEvent) -> Obj | None:
    r, sel = p.resource, p.selection
    lazy = sel.field is None
    if e.type == "DELETE":
        if sel.matches(e.obj, None if lazy else e.fields(r)):
            return {"type": "DELETED", "object": storage.decode(r, e.value, e.revision)}
        return None
    new_match = sel.matches(e.obj, None if lazy else e.fields(r))
    if sel.label is None and sel.field is None:  # only the namespace, which never changes
        old_match = not e.created and new_match
    else:
        old_match = e.prev is not None and not e.created and sel.matches(e.prev, None if lazy else e.fields(r, True))
    if new_match and old_match:
        return {"type": "MODIFIED", "object": storage.decode(r, e.value, e.revision)}
    if new_match:
        return {"type": "ADDED", "object": storage.decode(r, e.value, e.revision)}
    if old_match and e.prev_value is not None:
        return {"type": "DELETED", "object": storage.decode(r, e.prev_value, e.revision)}
    return None


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


async def _error(err: StatusError) -> AsyncIterator[Obj]:
    yield {"type": "ERROR", "object": err.status()}


async def stream(store: Store, cache: WatchCache | None, clock: Clock, bookmark_interval: float,
                 queue_size: int, p: WatchParams) -> AsyncIterator[Obj]:
    initial: list[Obj] = []
    if p.start is None:
        initial, start = await _initial(store, p)
    else:
        start = p.start
        behind = None if cache is not None and start <= cache.last else await _wait_fresh(store, clock, start)
        if behind is not None:
            return _error(too_large_resource_version(start, behind))
    sub: Subscription | None = None
    if start < store.compacted_revision:
        sub = Subscription(start, 1)
        sub.fail(Compacted(start, store.compacted_revision))
    elif cache is not None:
        sub = cache.subscribe(start, p.selection.index())
    if sub is None:
        sub = DirectSubscription(store, storage.prefix(p.resource), start, queue_size)
    return _run(sub, initial, start, cache, clock, bookmark_interval, p)


async def _run(sub: Subscription, initial: list[Obj], start: int, cache: WatchCache | None,
               clock: Clock, interval: float, p: WatchParams) -> AsyncIterator[Obj]:
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
                ev = _to_event(p, e)
                if ev is not None:
                    ev["object"] = p.render(ev["object"])
                    yield ev
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
