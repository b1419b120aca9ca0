"""Keys that come due after a delay on the injected Clock: the one "re-add after a
delay" behind the controllers' work queue and the scheduler's back-off.

`schedule(key, deadline)` arranges for `on_due(key)` to be called once the clock's
monotonic time reaches `deadline`.

Invariants:
- A key has at most one pending deadline: `schedule` replaces any earlier one (a
  caller that wants the earliest to win checks `deadline(key)` first).
- `on_due(key)` is called once per deadline that passes, and never for a deadline
  that was replaced or cancelled meanwhile; the key is no longer pending when it is
  called.
- The wait is measured from the deadline, so time that passed before the timer ran
  counts.
- `close()` cancels every timer and forgets every pending key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from k8py.clock import Clock

__all__ = ["DelayQueue"]

K = TypeVar("K", bound=Hashable)


class DelayQueue(Generic[K]):
    def __init__(self, clock: Clock, on_due: Callable[[K], None]) -> None:
        self.clock = clock
        self._on_due = on_due
        self._deadlines: dict[K, float] = {}  # key -> its pending deadline
        self._timers: set[asyncio.Task[None]] = set()

    def schedule(self, key: K, deadline: float) -> None:
        """Call `on_due(key)` at `deadline` (clock.monotonic() time), instead of at any
        deadline the key had."""
        self._deadlines[key] = deadline
        timer = asyncio.get_running_loop().create_task(self._wait(key, deadline))
        self._timers.add(timer)
        timer.add_done_callback(self._timers.discard)

    def deadline(self, key: K) -> float | None:
        """The key's pending deadline, if it has one."""
        return self._deadlines.get(key)

    def cancel(self, key: K) -> None:
        """Forget the key's pending deadline (its timer then does nothing)."""
        self._deadlines.pop(key, None)

    def close(self) -> None:
        for timer in list(self._timers):
            timer.cancel()
        self._deadlines.clear()

    def __contains__(self, key: object) -> bool:
        return key in self._deadlines

    def __len__(self) -> int:
        return len(self._deadlines)

    async def _wait(self, key: K, deadline: float) -> None:
        await self.clock.sleep(deadline - self.clock.monotonic())
        if self._deadlines.get(key) == deadline:
            del self._deadlines[key]
            self._on_due(key)
