"""Crash back-off: immediate first restart, then base doubling to the max, reset after 2*max."""

from __future__ import annotations

from k8py.clock import FakeClock
from k8py.kubelet.backoff import Backoff


async def test_backoff_doubles_and_caps_and_resets() -> None:
    clock = FakeClock()
    b = Backoff(clock, 10, 40)
    t = clock.now()
    assert not b.in_backoff_since("k", t)
    delays = [b.next("k", t) for _ in range(4)]
    assert delays == [10, 20, 40, 40]
    assert b.in_backoff_since("k", clock.now())
    await clock.advance(39)
    assert b.in_backoff_since("k", t)
    await clock.advance(2)
    assert not b.in_backoff_since("k", t)
    assert b.next("k", clock.now() + 81) == 10  # more than 2*max after the last update: forgotten
