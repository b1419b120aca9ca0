"""The scheduling queue: active pods by priority (then arrival), unschedulable pods
parked until the cluster changes, and a per-pod back-off (1 s doubling to 10 s).

Invariants:
- A pod key is in at most one of active / backoff / unschedulable.
- `move_all_to_active` (a node or pod changed) sends every parked pod to active, or
  to back-off first while its back-off since the last attempt has not expired.
- `flush_unschedulable` sends pods parked longer than `max_unschedulable_duration`
  (5 min, as Kubernetes) back to be retried; `run()` calls it every 30 s.
Times come from the injected Clock.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools

from k8py.client.delayqueue import DelayQueue
from k8py.clock import Clock

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0
MAX_UNSCHEDULABLE_DURATION = 300.0
FLUSH_INTERVAL = 30.0


class SchedulingQueue:
    def __init__(self, clock: Clock, *, initial_backoff: float = INITIAL_BACKOFF,
                 max_backoff: float = MAX_BACKOFF,
                 max_unschedulable_duration: float = MAX_UNSCHEDULABLE_DURATION) -> None:
        self.clock = clock
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_unschedulable_duration = max_unschedulable_duration
        self._heap: list[tuple[int, int, str]] = []
        self._active: dict[str, int] = {}  # key -> priority
        self._seq = itertools.count()
        self._unschedulable: dict[str, float] = {}  # key -> time parked
        self._backoff: DelayQueue[str] = DelayQueue(clock, self._backoff_over)  # key -> time the back-off ends
        self._attempts: dict[str, int] = {}
        self._last_attempt: dict[str, float] = {}
        self._priority: dict[str, int] = {}
        self._waiter: asyncio.Future[None] | None = None

    # -- adding -------------------------------------------------------------
    def add(self, key: str, priority: int = 0) -> None:
        """A new or changed pod: straight to active."""
        self._priority[key] = priority
        self._unschedulable.pop(key, None)
        self._backoff.cancel(key)
        if key in self._active:
            return
        self._active[key] = priority
        heapq.heappush(self._heap, (-priority, next(self._seq), key))
        self._wake()

    def add_unschedulable(self, key: str) -> None:
        """A pod that fit nowhere: park it until something changes."""
        self._note_attempt(key)
        self._unschedulable[key] = self.clock.monotonic()

    def add_backoff(self, key: str) -> None:
        """A pod whose attempt failed for another reason (binding): retry after back-off."""
        self._note_attempt(key)
        self._to_backoff(key)

    def _note_attempt(self, key: str) -> None:
        self._attempts[key] = self._attempts.get(key, 0) + 1
        self._last_attempt[key] = self.clock.monotonic()

    def backoff_duration(self, key: str) -> float:
        n = self._attempts.get(key, 0)
        if n <= 0:
            return 0.0
        return min(self.max_backoff, self.initial_backoff * 2.0 ** min(n - 1, 30))

    def _to_backoff(self, key: str) -> None:
        end = self._last_attempt.get(key, 0.0) + self.backoff_duration(key)
        remaining = end - self.clock.monotonic()
        if remaining <= 0:
            self.add(key, self._priority.get(key, 0))
            return
        self._backoff.schedule(key, end)

    def _backoff_over(self, key: str) -> None:
        self.add(key, self._priority.get(key, 0))

    def move_all_to_active(self) -> None:
        """The cluster changed: retry every parked pod (after its back-off)."""
        parked = list(self._unschedulable)
        self._unschedulable.clear()
        for key in parked:
            self._to_backoff(key)

    def flush_unschedulable(self) -> None:
        now = self.clock.monotonic()
        old = [k for k, t in self._unschedulable.items() if now - t >= self.max_unschedulable_duration]
        for key in old:
            del self._unschedulable[key]
            self._to_backoff(key)

    def delete(self, key: str) -> None:
        """The pod is gone or no longer needs scheduling."""
        self._active.pop(key, None)  # its heap entry is skipped when popped
        self._unschedulable.pop(key, None)
        self._backoff.cancel(key)
        self._attempts.pop(key, None)
        self._last_attempt.pop(key, None)
        self._priority.pop(key, None)

    def done(self, key: str) -> None:
        """The pod was scheduled: forget its attempts."""
        self._attempts.pop(key, None)
        self._last_attempt.pop(key, None)
        self._priority.pop(key, None)

    # -- taking -------------------------------------------------------------
    async def pop(self) -> str:
        while True:
            while self._heap:
                _, _, key = heapq.heappop(self._heap)
                if self._active.pop(key, None) is not None:
                    return key
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def pop_nowait(self) -> str | None:
        """The next active pod, or None when there is none right now."""
        while self._heap:
            _, _, key = heapq.heappop(self._heap)
            if self._active.pop(key, None) is not None:
                return key
        return None

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    # -- introspection --------------------------------------------------------
    def is_unschedulable(self, key: str) -> bool:
        return key in self._unschedulable

    def in_backoff(self, key: str) -> bool:
        return key in self._backoff

    def pending(self) -> dict[str, int]:
        return {"active": len(self._active), "backoff": len(self._backoff),
                "unschedulable": len(self._unschedulable)}

    async def run(self) -> None:
        """Periodically flush pods parked too long."""
        while True:
            await self.clock.sleep(FLUSH_INTERVAL)
            self.flush_unschedulable()

    def close(self) -> None:
        self._backoff.close()
