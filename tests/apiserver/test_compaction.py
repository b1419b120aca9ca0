"""Periodic compaction: to the revision observed one interval earlier, as kube-apiserver."""

from __future__ import annotations

import asyncio

import pytest

from k8py.apiserver.compaction import Compactor, parse_duration
from k8py.clock import FakeClock
from k8py.store.errors import Compacted
from k8py.store.memory import MemoryStore


@pytest.mark.parametrize("text,seconds", [("0", 0.0), ("300", 300.0), ("5m", 300.0), ("1m30s", 90.0),
                                          ("1h", 3600.0), ("250ms", 0.25), ("2.5s", 2.5)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "m", "-1", "5m junk", "s5"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


async def _write(store: MemoryStore, n: int) -> int:
    for i in range(n):
        kv = await store.get("/registry/configmaps/default/c")
        if kv is None:
            await store.create("/registry/configmaps/default/c", b'{"n": 0}')
        else:
            await store.update("/registry/configmaps/default/c", f'{{"n": {i}}}'.encode(), kv.mod_revision)
    return await store.current_revision()


async def test_compacts_to_the_previous_ticks_revision() -> None:
    store = MemoryStore()
    await store.start()
    c = Compactor(store, FakeClock(), 300)
    first = await _write(store, 3)
    await c.tick()  # observes only: nothing is compacted at the first tick (as kube-apiserver)
    assert store.compacted_revision == 0 and c.compactions == 0
    second = await _write(store, 4)
    await c.tick()
    assert store.compacted_revision == first and c.compactions == 1
    with pytest.raises(Compacted):
        async for _ in store.watch("/registry/", first - 1):
            break
    await c.tick()  # no writes since: compacts up to what the previous tick saw
    assert store.compacted_revision == second
    await c.tick()  # nothing new: no compaction call
    assert c.compactions == 2
    await store.close()


async def test_run_ticks_on_the_clock() -> None:
    store = MemoryStore()
    await store.start()
    clock = FakeClock()
    c = Compactor(store, clock, 300)
    task = asyncio.create_task(c.run())
    try:
        while clock.sleepers == 0:
            await asyncio.sleep(0)
        first = await _write(store, 2)
        await clock.advance(300)
        while c.observed != first:
            await asyncio.sleep(0)
        await _write(store, 2)
        await clock.advance(299)
        assert store.compacted_revision == 0
        await clock.advance(1)
        while store.compacted_revision != first:
            await asyncio.sleep(0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()


async def test_zero_interval_disables() -> None:
    store = MemoryStore()
    await store.start()
    clock = FakeClock()
    await _write(store, 2)
    await asyncio.wait_for(Compactor(store, clock, 0).run(), 5)  # returns at once: nothing scheduled
    assert clock.sleepers == 0 and store.compacted_revision == 0
    await store.close()
