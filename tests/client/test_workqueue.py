"""Tests of k8py.client.workqueue: dedup, processing exclusivity, delays, back-off."""

from __future__ import annotations

import asyncio

import pytest

from k8py.client.workqueue import ExponentialBackoff, QueueShutDown, WorkQueue
from k8py.clock import FakeClock


async def test_add_dedups_queued_keys() -> None:
    q: WorkQueue[str] = WorkQueue(FakeClock())
    for k in ["a", "b", "a", "c", "b"]:
        q.add(k)
    assert len(q) == 3
    assert [await q.get() for _ in range(3)] == ["a", "b", "c"]


async def test_key_in_processing_is_not_handed_out_twice_and_is_requeued_on_done() -> None:
    q: WorkQueue[str] = WorkQueue(FakeClock())
    q.add("a")
    assert await q.get() == "a"
    q.add("a")  # re-added while processing
    assert len(q) == 0
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    assert not getter.done()
    q.done("a")
    assert await asyncio.wait_for(getter, 1) == "a"


async def test_done_without_readd_does_not_requeue() -> None:
    q: WorkQueue[str] = WorkQueue(FakeClock())
    q.add("a")
    await q.get()
    q.done("a")
    assert len(q) == 0


async def test_get_blocks_until_add() -> None:
    q: WorkQueue[str] = WorkQueue(FakeClock())
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    assert not getter.done()
    q.add("x")
    assert await asyncio.wait_for(getter, 1) == "x"


async def test_add_after_waits_for_the_clock_and_keeps_the_earliest() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock)
    q.add_after("a", 10)
    q.add_after("a", 5)
    q.add_after("a", 20)
    await clock.advance(4.9)
    assert len(q) == 0
    await clock.advance(0.2)
    assert len(q) == 1
    await clock.advance(30)
    assert len(q) == 1  # the later delayed adds were dropped


@pytest.mark.parametrize("failures,expected", [(0, 0.005), (1, 0.01), (3, 0.04), (30, 1000.0), (100, 1000.0)])
def test_exponential_backoff(failures: int, expected: float) -> None:
    b: ExponentialBackoff[str] = ExponentialBackoff()
    for _ in range(failures):
        b.when("k")
    assert b.when("k") == pytest.approx(expected)
    assert b.num_requeues("k") == failures + 1
    b.forget("k")
    assert b.when("k") == pytest.approx(0.005)


async def test_add_rate_limited_and_forget() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock)
    q.add_rate_limited("a")
    assert len(q) == 0
    await clock.advance(0.005)
    assert len(q) == 1
    key = await q.get()
    q.done(key)
    q.add_rate_limited("a")  # second failure: 10 ms
    await clock.advance(0.006)
    assert len(q) == 0
    await clock.advance(0.005)
    assert len(q) == 1
    assert q.num_requeues("a") == 2
    q.forget("a")
    assert q.num_requeues("a") == 0


async def test_shutdown_wakes_getters_and_ignores_adds() -> None:
    q: WorkQueue[str] = WorkQueue(FakeClock())
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.shutdown()
    with pytest.raises(QueueShutDown):
        await asyncio.wait_for(getter, 1)
    q.add("a")
    assert len(q) == 0


async def test_cancelled_getter_does_not_swallow_a_key() -> None:
    q: WorkQueue[str] = WorkQueue(FakeClock())
    g1 = asyncio.create_task(q.get())
    g2 = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.add("a")
    g1.cancel()
    await asyncio.sleep(0)
    results = await asyncio.gather(g1, g2, return_exceptions=True)
    assert "a" in results
