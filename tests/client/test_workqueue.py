"""Tests of k8py.client.workqueue: dedup, processing exclusivity, delays, back-off, and
the worker loop (run_workers)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from k8py.client.errors import ApiError
from k8py.client.workqueue import (
    ExponentialBackoff,
    QueueShutDown,
    WorkQueue,
    run_workers,
)
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


# -- run_workers ----------------------------------------------------------------------

def _conflict() -> ApiError:
    return ApiError(409, {"reason": "Conflict", "message": "the object has been modified"})


# Case: what each successive sync of one key does (None: returns), and the log level of
# each failure, in order.
RUN_CASES: dict[str, tuple[list[Exception | None], list[int]]] = {
    "a sync that returns": ([None], []),
    "a conflict is retried, quietly": ([_conflict(), None], [logging.DEBUG]),
    "a missing object is retried, quietly": ([ApiError(404, {"reason": "NotFound"}), None], [logging.DEBUG]),
    "a server error is retried with a warning": ([ApiError(500, {"message": "boom"}), None], [logging.WARNING]),
    "any other error is retried, with its traceback": ([RuntimeError("boom"), None], [logging.ERROR]),
    "each failure backs off further": ([RuntimeError("1"), _conflict(), RuntimeError("3"), None],
                                       [logging.ERROR, logging.DEBUG, logging.ERROR]),
}


@pytest.mark.parametrize("outcomes,levels", RUN_CASES.values(), ids=RUN_CASES.keys())
async def test_run_workers_retries_with_backoff_and_forgets_on_success(
        outcomes: list[Exception | None], levels: list[int], caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock, name="test")
    requeues: list[int] = []  # the key's failure count as each sync starts

    async def sync(key: str) -> None:
        requeues.append(q.num_requeues(key))
        outcome = outcomes[len(requeues) - 1]
        if outcome is not None:
            raise outcome
        q.shutdown()  # the last sync: the workers finish once the queue is drained

    q.add("k")
    with caplog.at_level(logging.DEBUG, logger="k8py.client.workqueue"):
        run = asyncio.create_task(run_workers(q, sync, 2))
        for _ in range(len(outcomes)):
            await clock.advance(1.0)  # longer than any of these back-offs
        assert run.done()
        await run
    assert requeues == list(range(len(outcomes)))
    assert q.num_requeues("k") == 0  # forgotten after the sync that returned
    assert [r.levelno for r in caplog.records] == levels
    assert all("test: sync k" in r.getMessage() for r in caplog.records)
    assert [r.exc_info is not None for r in caplog.records] == [lv == logging.ERROR for lv in levels]


async def test_run_workers_returns_when_the_queue_shuts_down() -> None:
    q: WorkQueue[str] = WorkQueue(FakeClock())
    run = asyncio.create_task(run_workers(q, lambda key: asyncio.sleep(0), 3))
    q.shutdown()
    await asyncio.wait_for(run, 1)


async def test_run_workers_syncs_different_keys_at_once_and_one_key_once() -> None:
    q: WorkQueue[str] = WorkQueue(FakeClock())
    in_flight: list[str] = []
    counts = {2: asyncio.Event(), 3: asyncio.Event()}
    release = asyncio.Event()

    async def sync(key: str) -> None:
        in_flight.append(key)
        if len(in_flight) in counts:
            counts[len(in_flight)].set()
        await release.wait()

    for k in ("a", "b", "a"):
        q.add(k)
    run = asyncio.create_task(run_workers(q, sync, 3))
    await asyncio.wait_for(counts[2].wait(), 1)
    assert sorted(in_flight) == ["a", "b"]
    q.add("a")  # while "a" is synced: once more afterwards, not now
    assert len(q) == 0
    release.set()
    await asyncio.wait_for(counts[3].wait(), 1)
    assert sorted(in_flight) == ["a", "a", "b"]
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run


async def test_cancelled_run_workers_marks_the_key_done_and_shuts_the_queue_down() -> None:
    q: WorkQueue[str] = WorkQueue(FakeClock())
    started = asyncio.Event()

    async def sync(key: str) -> None:
        started.set()
        await asyncio.Event().wait()  # until cancelled

    q.add("k")
    run = asyncio.create_task(run_workers(q, sync, 1))
    await started.wait()
    q.add("k")  # dirty while processing: back in the queue once it is done
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert q.shutting_down
    assert len(q) == 1  # `done` ran, so the dirty key was queued again
