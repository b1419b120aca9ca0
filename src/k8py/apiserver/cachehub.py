"""One store watch over every key, feeding all the watch caches of one store.

The hub follows `store.watch("", rev)` and hands each event to the sink registered
for its storage prefix (`/registry/<group>/<plural>/`). Because every store revision
is one event and the hub sees them all, `revision` is a progress mark: every event
with revision <= `revision` has been handed to the sinks, so a cache is exactly the
store at `revision` (Kubernetes gets this mark from etcd's progress notifications).
`wait_for(R)` waits until the hub has got there, which is how a consistent read
(R = the store's current revision) is served from the caches.
On a compaction the hub cannot resume from: every `on_reset` is called with the
revision it restarts from (the caches empty their history and reload).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from k8py.store.errors import Compacted
from k8py.store.protocol import Store, WatchEvent

log = logging.getLogger(__name__)


@dataclass
class Sink:
    on_event: Callable[[WatchEvent], None]
    on_reset: Callable[[int], None]


class CacheHub:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.sinks: dict[str, list[Sink]] = {}  # storage prefix -> its caches' sinks
        self.revision = 0  # every event up to here has been handed to the sinks
        self._task: asyncio.Task[None] | None = None
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    @property
    def running(self) -> bool:
        return self._task is not None

    def attach(self, prefix: str, sink: Sink, rev: int) -> int:
        """Register `sink` for the keys under `prefix` (a storage prefix); the hub starts
        following the store after `rev` if it does not yet. Returns the revision after
        which the sink gets every event. No await: attach several before any event flows."""
        self.sinks.setdefault(prefix, []).append(sink)
        if self._task is None:
            self.revision = rev
            self._task = asyncio.create_task(self._run(rev), name="watch cache hub")
        return self.revision

    async def detach(self, prefix: str, sink: Sink) -> None:
        sinks = self.sinks.get(prefix, [])
        if sink in sinks:
            sinks.remove(sink)
        if not sinks:
            self.sinks.pop(prefix, None)
        if not self.sinks and self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
            _HUBS.pop(self.store, None)

    def _route(self, key: str) -> list[Sink]:
        parts = key.split("/", 4)  # "", "registry", group, plural, rest
        if len(parts) < 5:
            return []
        return self.sinks.get(f"/{parts[1]}/{parts[2]}/{parts[3]}/", [])

    async def _run(self, rev: int) -> None:
        while True:
            try:
                async for ev in self.store.watch("", rev):
                    rev = ev.kv.mod_revision
                    for sink in self._route(ev.kv.key):
                        try:
                            sink.on_event(ev)
                        except Exception:
                            log.exception("watch cache failed on an event of %s", ev.kv.key)
                    self._progress(rev)
                return  # the store closed
            except asyncio.CancelledError:
                raise
            except Compacted:
                rev = await self.store.current_revision()
                log.warning("watch caches restarted at %d after a compaction", rev)
                for sinks in list(self.sinks.values()):
                    for sink in list(sinks):
                        sink.on_reset(rev)
                self._progress(rev)
            except Exception:
                log.exception("watch cache hub: store watch failed; restarting")
                await asyncio.sleep(0.5)

    def _progress(self, rev: int) -> None:
        self.revision = max(self.revision, rev)
        if not self._waiters:
            return
        keep = []
        for want, fut in self._waiters:
            if want <= self.revision:
                if not fut.done():
                    fut.set_result(None)
            else:
                keep.append((want, fut))
        self._waiters = keep

    async def wait_for(self, rev: int, timeout: float) -> bool:
        """True once every event up to `rev` has been handed out; False after `timeout`."""
        if self.revision >= rev:
            return True
        if self._task is None:
            return False
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((rev, fut))
        try:
            await asyncio.wait_for(fut, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._waiters = [(r, f) for r, f in self._waiters if f is not fut]


_HUBS: weakref.WeakKeyDictionary[Store, CacheHub] = weakref.WeakKeyDictionary()


def hub_for(store: Store) -> CacheHub:
    """The hub of `store` (one per store object)."""
    hub = _HUBS.get(store)
    if hub is None:
        hub = _HUBS[store] = CacheHub(store)
    return hub
