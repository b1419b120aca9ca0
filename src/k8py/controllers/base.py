"""The shape every controller shares: informers whose handlers only enqueue keys, a
work queue, and workers that call `sync(key)`.

Invariants: `sync` is level-triggered (reads current state from the informer
caches, makes the world match, is safe to run twice); a sync that raises is
retried with the queue's exponential back-off, one that returns resets it; one key
is never synced by two workers at once (the work queue guarantees it). `run()`
waits for the informers to sync before the first sync and owns its workers
(`client.workqueue.run_workers`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from k8py.api.types import Obj
from k8py.client.client import Client
from k8py.client.events import EventRecorder
from k8py.client.informer import Informer, SharedInformerFactory
from k8py.client.workqueue import WorkQueue, run_workers
from k8py.clock import Clock
from k8py.controllers.controllerutil import is_pod_ready, key_of


class Controller:
    name = "controller"

    def __init__(self, client: Client, factory: SharedInformerFactory, clock: Clock,
                 recorder: EventRecorder | None = None, workers: int = 2) -> None:
        self.client = client
        self.factory = factory
        self.clock = clock
        self.recorder = recorder or EventRecorder(client, self.name, clock)
        self.workers = workers
        self.queue: WorkQueue[str] = WorkQueue(clock, name=self.name)
        self._informers: list[Informer] = []
        self.syncs = 0  # number of completed syncs (for tests and metrics)

    def informer(self, resource: str) -> Informer:
        inf = self.factory.informer(resource)
        if inf not in self._informers:
            self._informers.append(inf)
        return inf

    def watch(self, inf: Informer, on_change: Callable[[Obj], None],
              on_delete: Callable[[Obj], None] | None = None) -> None:
        """Call on_change with each object added or updated (its new version), on_delete
        with each one deleted: handlers that only care about the current state."""
        inf.add_event_handler(on_change, lambda _old, new: on_change(new), on_delete)

    def enqueue(self, obj: Obj | str) -> None:
        self.queue.add(obj if isinstance(obj, str) else key_of(obj))

    def enqueue_after(self, obj: Obj | str, delay: float) -> None:
        self.queue.add_after(obj if isinstance(obj, str) else key_of(obj), delay)

    def enqueue_when_available(self, owner: Obj, old_pod: Obj, new_pod: Obj) -> None:
        """A pod of the owner just became ready: sync the owner again once the pod counts
        as available (spec.minReadySeconds later)."""
        mrs = int((owner.get("spec") or {}).get("minReadySeconds") or 0)
        if mrs > 0 and not is_pod_ready(old_pod) and is_pod_ready(new_pod):
            self.enqueue_after(owner, mrs + 1)

    async def sync(self, key: str) -> None:
        raise NotImplementedError

    async def on_start(self) -> None:
        """Called once after the informers synced, before the workers start."""

    async def wait_synced(self) -> None:
        await asyncio.gather(*(i.wait_synced() for i in self._informers))

    async def run(self) -> None:
        if self.queue.shutting_down:  # run again after a crash: a fresh queue
            self.queue = WorkQueue(self.clock, name=self.name)
        await self.wait_synced()
        await self.on_start()
        await run_workers(self.queue, self._counted_sync, self.workers)

    async def _counted_sync(self, key: str) -> None:
        try:
            await self.sync(key)
        finally:
            self.syncs += 1
