"""The shape every controller shares: informers whose handlers only enqueue keys, a
work queue, and workers that call `sync(key)`.

Invariants: `sync` is level-triggered (reads current state from the informer
caches, makes the world match, is safe to run twice); a sync that raises is
retried with the queue's exponential back-off, one that returns resets it; one key
is never synced by two workers at once (the work queue guarantees it). `run()`
waits for the informers to sync before the first sync and owns its workers.
"""

from __future__ import annotations

import asyncio
import logging

from k8py.api.types import Obj
from k8py.client.client import Client
from k8py.client.errors import ApiError, QueueShutDown
from k8py.client.events import EventRecorder
from k8py.client.informer import Informer, SharedInformerFactory
from k8py.client.workqueue import WorkQueue
from k8py.clock import Clock
from k8py.controllers.controllerutil import key_of

log = logging.getLogger(__name__)


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

    def enqueue(self, obj: Obj | str) -> None:
        self.queue.add(obj if isinstance(obj, str) else key_of(obj))

    def enqueue_after(self, obj: Obj | str, delay: float) -> None:
        self.queue.add_after(obj if isinstance(obj, str) else key_of(obj), delay)

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
        tasks = [asyncio.ensure_future(self._worker()) for _ in range(self.workers)]
        try:
            await asyncio.gather(*tasks)
        finally:
            self.queue.shutdown()
            for t in tasks:
                t.cancel()

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except QueueShutDown:
                return
            try:
                await self.sync(key)
                self.queue.forget(key)
            except asyncio.CancelledError:
                self.queue.done(key)
                raise
            except ApiError as e:
                level = logging.DEBUG if e.conflict or e.already_exists or e.not_found else logging.WARNING
                log.log(level, "%s: sync %s: %s", self.name, key, e)
                self.queue.add_rate_limited(key)
            except Exception:
                log.exception("%s: sync %s failed", self.name, key)
                self.queue.add_rate_limited(key)
            finally:
                self.syncs += 1
            self.queue.done(key)
