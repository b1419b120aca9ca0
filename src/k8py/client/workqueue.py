"""A work queue of keys for level-triggered controllers, as client-go's workqueue.

Invariants:
- A key is queued at most once at a time (`add` of a queued key is a no-op).
- A key being processed (handed out by `get`, not yet `done`) is never handed out
  again; if it is added meanwhile it is marked dirty and re-queued on `done`.
- `add_after` waits on the injected Clock (FakeClock in tests); of several pending
  delayed adds of one key only the earliest counts.
- `add_rate_limited` delays a key by base * 2**failures (5 ms .. 1000 s by default);
  `forget` resets the key's failure count.
- After `shutdown`, `add` is ignored and `get` raises `QueueShutDown` once the queue
  has drained.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, Hashable, TypeVar

from k8py.client.delayqueue import DelayQueue
from k8py.client.errors import QueueShutDown
from k8py.clock import Clock, RealClock

__all__ = ["ExponentialBackoff", "QueueShutDown", "WorkQueue"]

K = TypeVar("K", bound=Hashable)


class ExponentialBackoff(Generic[K]):
    """Per-item exponential back-off: base * 2**failures, capped at `cap`."""

    def __init__(self, base: float = 0.005, cap: float = 1000.0) -> None:
        self.base = base
        self.cap = cap
        self._failures: dict[K, int] = {}

    def when(self, key: K) -> float:
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        if n > 60:  # 2**n would overflow the float range long before this matters
            return self.cap
        return min(self.cap, self.base * 2.0 ** n)

    def num_requeues(self, key: K) -> int:
        return self._failures.get(key, 0)

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)


class WorkQueue(Generic[K]):
    def __init__(self, clock: Clock | None = None, *, name: str = "",
                 rate_limiter: ExponentialBackoff[K] | None = None) -> None:
        self.clock: Clock = clock or RealClock()
        self.name = name
        self.rate_limiter: ExponentialBackoff[K] = rate_limiter or ExponentialBackoff()
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._delayed: DelayQueue[K] = DelayQueue(self.clock, self.add)  # the earliest deadline of each key
        self._shutting_down = False

    # -- adding -------------------------------------------------------------
    def add(self, key: K) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return
        self._queue.append(key)
        self._wake_one()

    def add_after(self, key: K, delay: float) -> None:
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        deadline = self.clock.monotonic() + delay
        current = self._delayed.deadline(key)
        if current is not None and current <= deadline:
            return
        self._delayed.schedule(key, deadline)

    def add_rate_limited(self, key: K) -> None:
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: K) -> None:
        self.rate_limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        return self.rate_limiter.num_requeues(key)

    # -- processing ---------------------------------------------------------
    async def get(self) -> K:
        """The next key to process; blocks while the queue is empty."""
        while not self._queue:
            if self._shutting_down:
                raise QueueShutDown(self.name)
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self._wake_one()  # pass the wake-up we were given on
                else:
                    try:
                        self._waiters.remove(fut)
                    except ValueError:
                        pass
                raise
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        return key

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._wake_one()

    def shutdown(self) -> None:
        self._shutting_down = True
        self._delayed.close()
        while self._waiters:
            f = self._waiters.popleft()
            if not f.done():
                f.set_result(None)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def __len__(self) -> int:
        return len(self._queue)

    def _wake_one(self) -> None:
        while self._waiters:
            f = self._waiters.popleft()
            if not f.done():
                f.set_result(None)
                return
