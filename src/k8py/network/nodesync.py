"""A level-triggered loop over the Node objects, shared by the pod-routing backends.

`NodeSync` watches the nodes (`nodes`, an informer); any Node event marks it dirty, and
`run(sync)` calls `sync()` (which reads `nodes.list()` and makes the host match) once the
informer has synced, then again after every event, and at least every 30 s. A failed sync
(`errors`) is logged and retried after a pause, never in a busy loop. `run_tool` runs
`ip`/`bridge` and gives (exit code, stdout or stderr as text).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from k8py.client.client import Client
from k8py.client.informer import Informer
from k8py.clock import Clock
from k8py.host import proc

log = logging.getLogger(__name__)

RESYNC = 30.0  # seconds: a sync at least this often, events or not
RETRY = 0.5  # seconds after a failed sync


async def run_tool(tool: str, *args: str) -> tuple[int, str]:
    rc, out, err = await proc.run(tool, *args)
    return rc, (out if rc == 0 else err).decode(errors="replace").strip()


class NodeSync:
    def __init__(self, client: Client, clock: Clock, what: str) -> None:
        self.clock, self.what = clock, what
        self.nodes = Informer(client, "nodes", clock=clock)
        self._dirty = asyncio.Event()
        self.nodes.add_event_handler(on_add=lambda _o: self._dirty.set(), on_update=lambda _o, _n: self._dirty.set(),
                                     on_delete=lambda _o: self._dirty.set())

    async def run(self, sync: Callable[[], Awaitable[None]], errors: tuple[type[Exception], ...]) -> None:
        task = asyncio.create_task(self.nodes.run(), name=f"k8py-{self.what}-nodes")
        try:
            await self.nodes.wait_synced()
            while True:
                self._dirty.clear()
                try:
                    await sync()
                except errors as e:
                    log.warning("%s: sync failed: %s", self.what, e)
                    self._dirty.set()
                    await self.clock.sleep(RETRY)
                try:
                    await asyncio.wait_for(self._dirty.wait(), RESYNC)
                except TimeoutError:
                    pass
                await self.clock.sleep(0.05)  # let a burst of Node events settle into one sync
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
