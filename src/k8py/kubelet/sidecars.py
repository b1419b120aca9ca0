"""Sidecar containers (init containers with `restartPolicy: Always`, KEP-753) as the kubelet
runs them: what counts as one, when the main containers are done, and the order in which a
pod's containers stop.

Termination order (the kubelet's terminationOrdering): every container's preStop hook runs at
once; main containers (and regular init containers) get their stop signal at once; a
sidecar gets its stop signal only after the main containers and every sidecar started after
it have stopped (reverse start order), or when the grace period has run out. Waiting takes
time from the sidecar's own grace period.
Invariants: waiting goes through the Clock; a container never waits for itself or for a
container that is not running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from k8py.api.types import Obj
from k8py.clock import Clock
from k8py.kubelet.status import ContainerView, is_sidecar
from k8py.runtime.protocol import ContainerState

__all__ = ["TerminationOrder", "is_sidecar", "mains_done"]


def mains_done(policy: str, mains: list[ContainerView]) -> bool:
    """Every main container exited for good under the pod's restartPolicy (never with Always):
    nothing keeps the pod alive, so its sidecars are stopped (Kubernetes' KillPod)."""
    if policy == "Always" or not mains:
        return False
    for v in mains:
        latest = v.latest
        if latest is None or latest.state != ContainerState.EXITED:
            return False
        if policy == "OnFailure" and latest.exit_code != 0:
            return False
    return True


class TerminationOrder:
    """Who waits for whom while one pod's running containers are stopped."""

    def __init__(self, spec: Obj, running: Iterable[str], clock: Clock) -> None:
        self.clock = clock
        self._done = {name: asyncio.Event() for name in running}
        sidecars = [c["name"] for c in spec.get("initContainers") or [] if is_sidecar(c)]
        mains = [c["name"] for c in spec.get("containers") or []]
        self._after: dict[str, list[str]] = {}
        for i, name in enumerate(sidecars):
            self._after[name] = [n for n in mains + sidecars[i + 1:] if n in self._done and n != name]

    def waits_for(self, name: str) -> list[str]:
        return list(self._after.get(name, []))

    async def wait_for_turn(self, name: str, timeout: float) -> float:
        """Until the containers `name` waits for have stopped, at most `timeout`; the time waited."""
        events = [self._done[n] for n in self._after.get(name, []) if not self._done[n].is_set()]
        if not events or timeout <= 0:
            return 0.0
        t0 = self.clock.monotonic()
        all_done = asyncio.ensure_future(self._all_set(events))
        deadline = asyncio.ensure_future(self.clock.sleep(timeout))
        try:
            await asyncio.wait({all_done, deadline}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            all_done.cancel()
            deadline.cancel()
        return self.clock.monotonic() - t0

    @staticmethod
    async def _all_set(events: list[asyncio.Event]) -> None:
        for e in events:
            await e.wait()

    def terminated(self, name: str) -> None:
        ev = self._done.get(name)
        if ev is not None:
            ev.set()
