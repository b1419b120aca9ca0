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

`run_workers(queue, sync, n)` is the one worker loop over such a queue: a key is
synced by one worker at a time; a sync that returns resets the key's back-off, one
that raises is logged and retried after it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from k8py.client.delayqueue import DelayQueue
from k8py.client.errors import ApiError, QueueShutDown
from k8py.clock import Clock, RealClock

__all__ = ["ExponentialBackoff", "QueueShutDown", "WorkQueue", "run_workers"]

log = logging.getLogger(__name__)

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


async def run_workers(queue: WorkQueue[K], sync: Callable[[K], Awaitable[None]], n: int) -> None:
    """Run `n` workers on the queue until it is shut down and drained, or until this
    is cancelled; either way the queue is shut down on the way out.

    A worker gets a key and awaits `sync(key)`: when it returns the key's back-off is
    reset (`forget`), when it raises the error is logged and the key re-added after
    its back-off (`add_rate_limited`); the key is `done` in every case, also when the
    worker is cancelled mid-sync."""
    workers = [asyncio.ensure_future(_work(queue, sync)) for _ in range(n)]
    try:
        await asyncio.gather(*workers)
    finally:
        queue.shutdown()
        running = [w for w in workers if not w.done()]
        for w in running:
            w.cancel()
        if running:  # cancelled mid-sync: wait until each worker has marked its key done
            await asyncio.gather(*running, return_exceptions=True)


async def _work(queue: WorkQueue[K], sync: Callable[[K], Awaitable[None]]) -> None:
    while True:
        try:
            key = await queue.get()
        except QueueShutDown:
            return
        try:
            await sync(key)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            _log_failure(queue.name, key, e)
            queue.add_rate_limited(key)
        else:
            queue.forget(key)
        finally:
            queue.done(key)


def _log_failure(name: str, key: object, error: Exception) -> None:
    """An API error is expected now and then (a stale cache: a conflict, an object gone
    or already there), anything else with its traceback."""
    if isinstance(error, ApiError):
        expected = error.conflict or error.already_exists or error.not_found
        log.log(logging.DEBUG if expected else logging.WARNING, "%s: sync %s: %s", name, key, error)
    else:
        log.error("%s: sync %s failed", name, key, exc_info=error)
