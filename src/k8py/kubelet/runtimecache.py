"""A shared, short-lived snapshot of the runtime's sandboxes and containers (as the
kubelet's PLEG relist): pod workers read it instead of each listing the runtime, which
costs O(containers) file reads per call.

`get(max_age)` returns the snapshot, refreshing it when it is older than `max_age`
seconds (Clock time) or was invalidated; concurrent callers share one refresh.
Invariant: a worker that changed the runtime calls `invalidate()` before reading again,
so it never acts on a snapshot taken before its own change.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from k8py.clock import Clock
from k8py.runtime.protocol import ContainerRuntime, ContainerStatus, PodSandboxStatus


@dataclass
class Snapshot:
    sandboxes: list[PodSandboxStatus] = field(default_factory=list)
    containers: list[ContainerStatus] = field(default_factory=list)
    taken_at: float = 0.0

    def pod_sandboxes(self, uid: str) -> list[PodSandboxStatus]:
        return [s for s in self.sandboxes if s.uid == uid]

    def sandbox_containers(self, sandbox_id: str) -> list[ContainerStatus]:
        return [c for c in self.containers if c.sandbox_id == sandbox_id]


class RuntimeCache:
    def __init__(self, runtime: ContainerRuntime, clock: Clock) -> None:
        self.runtime = runtime
        self.clock = clock
        self._snap: Snapshot | None = None
        self._dirty = True
        self._lock = asyncio.Lock()
        self.refreshes = 0

    def invalidate(self) -> None:
        self._dirty = True

    def _fresh(self, max_age: float) -> bool:
        return (self._snap is not None and not self._dirty
                and self.clock.monotonic() - self._snap.taken_at < max_age)

    async def get(self, max_age: float = 0.5) -> Snapshot:
        if self._fresh(max_age):
            assert self._snap is not None
            return self._snap
        async with self._lock:
            if self._fresh(max_age):
                assert self._snap is not None
                return self._snap
            self._dirty = False
            taken = self.clock.monotonic()
            snap = Snapshot(await self.runtime.list_pod_sandboxes(), await self.runtime.list_containers(), taken)
            self._snap = snap
            self.refreshes += 1
            return snap
