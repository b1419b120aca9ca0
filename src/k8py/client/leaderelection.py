"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it
(kube-scheduler and kube-controller-manager hold `kube-system/kube-scheduler` and
`kube-system/kube-controller-manager`).

`LeaderElector.run(lead)` runs until cancelled: it tries to take the Lease every
`retry_period`; once it holds it, it runs `lead()` as a task and renews the Lease every
`retry_period`; when it could not renew for `renew_deadline` (or `lead()` ended), it
cancels `lead()`, awaits it, and stands by again. Cancelled, it stops `lead()` and
releases the Lease (holderIdentity "", leaseDurationSeconds 1), so a successor need not
wait for it to expire. With a recorder, each change is an Event on the Lease, as
Kubernetes writes them (reason LeaderElection, "<identity> became leader" / "stopped leading").

Invariants:
- Every write is CAS on the Lease's resourceVersion: of two candidates, one wins.
- A Lease held by another is taken only once it has not changed for its
  leaseDurationSeconds, as measured on this process's own clock from when this
  elector last saw it change (client-go's observedTime: no trust in other clocks).
- lease_duration > renew_deadline > retry_period: a leader that cannot renew stops
  `lead()` before any other candidate may take the Lease.
- Each API attempt is bounded by the time left (on the injected clock), so a hung
  API call cannot keep a leader acting past its renew deadline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from k8py.api.types import Obj
from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.client.events import NORMAL, EventRecorder
from k8py.client.nodelease import micro_time
from k8py.clock import Clock

log = logging.getLogger("k8py.leaderelection")

T = TypeVar("T")

LEASE_NAMESPACE = "kube-system"


@dataclass(frozen=True)
class LeaderElectionConfig:
    """Kubernetes' defaults: --leader-elect-lease-duration 15s, --leader-elect-renew-deadline
    10s, --leader-elect-retry-period 2s."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def validate(self) -> None:
        if self.retry_period <= 0:
            raise ValueError("--leader-elect-retry-period must be greater than zero")
        if self.renew_deadline <= self.retry_period:
            raise ValueError("--leader-elect-renew-deadline must be greater than --leader-elect-retry-period")
        if self.lease_duration <= self.renew_deadline:
            raise ValueError("--leader-elect-lease-duration must be greater than --leader-elect-renew-deadline")


class LeaderElector:
    def __init__(self, client: Client, clock: Clock, name: str, identity: str,
                 config: LeaderElectionConfig | None = None, namespace: str = LEASE_NAMESPACE,
                 recorder: EventRecorder | None = None) -> None:
        self.recorder = recorder
        self.client = client
        self.clock = clock
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self.config = config or LeaderElectionConfig()
        self.config.validate()
        self.is_leader = False
        self._observed: dict[str, Any] | None = None  # the Lease's spec as last seen
        self._observed_at = 0.0  # clock.monotonic() when it last changed
        self._lease: Obj | None = None

    async def run(self, lead: Callable[[], Awaitable[None]]) -> None:
        """Stand by, lead while holding the Lease, stand by again; until cancelled."""
        try:
            while True:
                await self._acquire()
                log.info("%s: %s became leader", self.name, self.identity)
                self._event("became leader")
                task = asyncio.ensure_future(lead())
                try:
                    await self._renew_while(task)
                finally:
                    self.is_leader = False
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                log.warning("%s: %s stopped leading", self.name, self.identity)
                self._event("stopped leading")
        except asyncio.CancelledError:
            await self._release()
            raise

    def _event(self, what: str) -> None:
        if self.recorder is not None and self._lease is not None:
            self.recorder.event(self._lease, NORMAL, "LeaderElection", f"{self.identity} {what}")

    async def _acquire(self) -> None:
        while not await self._attempt(self.config.retry_period):
            await self.clock.sleep(self.config.retry_period)
        self.is_leader = True

    async def _renew_while(self, task: asyncio.Future[None]) -> None:
        """Renew every retry_period until a renewal is overdue by renew_deadline or `task` ends."""
        last = self.clock.monotonic()
        while not task.done():
            await self._sleep_unless_done(task, self.config.retry_period)
            if task.done():
                return
            left = last + self.config.renew_deadline - self.clock.monotonic()
            if left > 0 and await self._attempt(left):
                last = self.clock.monotonic()
            elif self.clock.monotonic() - last >= self.config.renew_deadline:
                log.warning("%s: %s could not renew within %.1fs", self.name, self.identity,
                            self.config.renew_deadline)
                return

    async def _sleep_unless_done(self, task: asyncio.Future[None], seconds: float) -> None:
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        try:
            await asyncio.wait([sleeper, task], return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()

    async def _attempt(self, budget: float) -> bool:
        """One try to take or renew the Lease, given up after `budget` seconds."""
        try:
            return await self._within(self._try_acquire_or_renew(), budget) is True
        except ApiError as e:
            log.info("%s: lease attempt failed: %s", self.name, e)
            return False
        except Exception as e:  # noqa: BLE001 - a store or transport error: retry on the next period
            log.warning("%s: lease attempt failed: %r", self.name, e)
            return False

    async def _within(self, aw: Awaitable[T], seconds: float) -> T | None:
        """`aw`'s result, or None when `seconds` pass first on the clock (it is cancelled)."""
        work = asyncio.ensure_future(aw)
        timer = asyncio.ensure_future(self.clock.sleep(seconds))
        try:
            await asyncio.wait([work, timer], return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
        if work.done():
            return work.result()
        work.cancel()
        await asyncio.gather(work, return_exceptions=True)
        return None

    def _observe(self, spec: dict[str, Any]) -> None:
        if spec != self._observed:
            self._observed, self._observed_at = dict(spec), self.clock.monotonic()

    def _held_by_other(self, spec: dict[str, Any]) -> bool:
        holder = spec.get("holderIdentity") or ""
        if not holder or holder == self.identity:
            return False
        duration = float(spec.get("leaseDurationSeconds") or self.config.lease_duration)
        return self._observed_at + duration > self.clock.monotonic()

    def _spec(self, old: dict[str, Any]) -> dict[str, Any]:
        now = micro_time(self.clock.now())
        mine = old.get("holderIdentity") == self.identity
        transitions = int(old.get("leaseTransitions") or 0)
        return {"holderIdentity": self.identity, "leaseDurationSeconds": int(self.config.lease_duration),
                "acquireTime": old.get("acquireTime", now) if mine else now, "renewTime": now,
                "leaseTransitions": transitions if mine or not old else transitions + 1}

    async def _try_acquire_or_renew(self) -> bool:
        cur = await self.client.get_or_none("leases", self.name, self.namespace)
        if cur is None:
            lease: Obj = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                          "metadata": {"name": self.name, "namespace": self.namespace}, "spec": self._spec({})}
            try:
                self._lease = await self.client.create("leases", lease, self.namespace)
            except ApiError as e:
                if e.already_exists:
                    return False
                raise
        else:
            spec = cur.get("spec") or {}
            self._observe(spec)
            if self._held_by_other(spec):
                return False
            try:
                self._lease = await self.client.update("leases", {**cur, "spec": self._spec(spec)})
            except ApiError as e:
                if e.conflict:
                    return False
                raise
        self._observe(self._lease.get("spec") or {})
        return True

    async def _release(self) -> None:
        """Give the Lease up (if this elector still holds it), so a successor takes it at once."""
        lease, self._lease = self._lease, None
        if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
            return
        now = micro_time(self.clock.now())
        spec = {**(lease.get("spec") or {}), "holderIdentity": "", "leaseDurationSeconds": 1,
                "acquireTime": now, "renewTime": now}
        try:
            await asyncio.wait_for(self.client.update("leases", {**lease, "spec": spec}), 5.0)
        except Exception as e:  # noqa: BLE001 - best effort: the Lease expires anyway
            log.info("%s: release failed: %r", self.name, e)
