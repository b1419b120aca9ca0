"""The Store protocol's contract, run against every implementation (memory, sqlite, etcd)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest

from k8py.store.errors import Compacted, Conflict, KeyExists, NotFound
from k8py.store.protocol import KeyValue, Store, WatchEvent

WAIT = 20.0  # seconds before a missing event fails the test (a guard, not a timing claim)


async def take(it: AsyncIterator[WatchEvent], n: int) -> list[WatchEvent]:
    out: list[WatchEvent] = []
    async with asyncio.timeout(WAIT):
        while len(out) < n:
            out.append(await it.__anext__())
    return out


def summary(events: list[WatchEvent]) -> list[tuple[str, str, bytes, int]]:
    return [(e.type, e.kv.key, e.kv.value, e.kv.mod_revision) for e in events]


async def test_create_get_exists(store: Store, pfx: str) -> None:
    assert await store.get(pfx + "a") is None
    kv = await store.create(pfx + "a", b"one")
    assert kv == KeyValue(key=pfx + "a", value=b"one", mod_revision=kv.mod_revision,
                          create_revision=kv.mod_revision)
    assert await store.get(pfx + "a") == kv
    with pytest.raises(KeyExists):
        await store.create(pfx + "a", b"two")
    assert await store.get(pfx + "a") == kv
    assert await store.get(pfx + "b") is None


async def test_update_is_compare_and_swap(store: Store, pfx: str) -> None:
    k = pfx + "cas"
    v1 = await store.create(k, b"1")
    v2 = await store.update(k, b"2", v1.mod_revision)
    assert v2.value == b"2" and v2.create_revision == v1.mod_revision
    assert v2.mod_revision > v1.mod_revision
    with pytest.raises(Conflict):
        await store.update(k, b"stale", v1.mod_revision)
    assert await store.get(k) == v2
    with pytest.raises(NotFound):
        await store.update(pfx + "missing", b"x", v2.mod_revision)
    with pytest.raises(NotFound):
        await store.update(pfx + "missing", b"x", 0)
    assert await store.get(pfx + "missing") is None


@pytest.mark.parametrize("expected, error", [
    ("none", None),          # unconditional delete
    ("current", None),       # CAS delete at the right revision
    ("stale", Conflict),     # CAS delete at a wrong revision
])
async def test_delete(store: Store, pfx: str, expected: str, error: type[Exception] | None) -> None:
    k = pfx + "d"
    v1 = await store.create(k, b"gone")
    v2 = await store.update(k, b"gone2", v1.mod_revision)
    exp = {"none": None, "current": v2.mod_revision, "stale": v1.mod_revision}[expected]
    if error is not None:
        with pytest.raises(error):
            await store.delete(k, exp)
        assert await store.get(k) == v2
        return
    before = await store.current_revision()
    deleted = await store.delete(k, exp)
    assert deleted.key == k and deleted.value == b"gone2"
    assert deleted.mod_revision == before + 1
    assert deleted.create_revision == v1.mod_revision
    assert await store.get(k) is None
    with pytest.raises(NotFound):
        await store.delete(k)
    with pytest.raises(NotFound):
        await store.delete(k, deleted.mod_revision)
    again = await store.create(k, b"back")  # a key can be created again after a delete
    assert again.create_revision == again.mod_revision > deleted.mod_revision


async def test_list_prefix_start_after_limit(store: Store, pfx: str) -> None:
    names = ["a/1", "a/2", "a/3", "a/4", "a/5", "ab/1", "b/1"]
    for n in names:
        await store.create(pfx + n, n.encode())
    await store.delete(pfx + "a/3")
    want = [pfx + n for n in ["a/1", "a/2", "a/4", "a/5"]]

    full = await store.list(pfx + "a/")
    assert [kv.key for kv in full.items] == want
    assert [kv.value for kv in full.items] == [k[len(pfx):].encode() for k in want]
    assert not full.more
    assert full.revision == await store.current_revision()
    assert await store.count(pfx + "a/") == 4
    assert await store.count(pfx) == 6
    assert [kv.key for kv in (await store.list(pfx)).items] == \
        sorted(pfx + n for n in names if n != "a/3")

    pages: list[list[str]] = []
    after: str | None = None
    while True:
        page = await store.list(pfx + "a/", start_after=after, limit=3)
        pages.append([kv.key for kv in page.items])
        if not page.more:
            break
        after = page.items[-1].key
    assert pages == [want[:3], want[3:]]

    exact = await store.list(pfx + "a/", limit=4)
    assert [kv.key for kv in exact.items] == want and not exact.more
    assert (await store.list(pfx + "a/", start_after=pfx + "a/5")).items == []
    assert (await store.list(pfx + "zzz/")).items == []


async def test_revision_is_plus_one_per_write(store: Store, pfx: str) -> None:
    k = pfx + "r"
    rev = await store.current_revision()
    kv = await store.create(k, b"1")
    assert kv.mod_revision == rev + 1 == await store.current_revision()
    kv = await store.update(k, b"2", kv.mod_revision)
    assert kv.mod_revision == rev + 2 == await store.current_revision()
    for failing in (store.create(k, b"x"), store.update(k, b"x", rev), store.delete(k, rev),
                    store.delete(pfx + "nope")):
        with pytest.raises((KeyExists, Conflict, NotFound)):
            await failing
    assert await store.current_revision() == rev + 2  # failed writes do not count
    d = await store.delete(k)
    assert d.mod_revision == rev + 3 == await store.current_revision()


async def test_watch_replays_then_goes_live(store: Store, pfx: str) -> None:
    start = await store.current_revision()
    written: list[tuple[str, str, bytes, int]] = []

    async def write(i: int) -> None:
        k = f"{pfx}w/{i % 3}"
        cur = await store.get(k)
        if cur is None:
            kv = await store.create(k, f"v{i}".encode())
        else:
            kv = await store.update(k, f"v{i}".encode(), cur.mod_revision)
        written.append(("PUT", k, kv.value, kv.mod_revision))

    for i in range(10):
        await write(i)
    await store.create(pfx + "other", b"not watched")
    gone = await store.delete(f"{pfx}w/0")
    written.append(("DELETE", gone.key, gone.value, gone.mod_revision))

    it = store.watch(pfx + "w/", start)
    replayed = await take(it, len(written))
    assert summary(replayed) == written
    assert replayed[0].created and replayed[0].prev is None
    assert not replayed[3].created and replayed[3].prev is not None
    assert replayed[3].prev.value == b"v0"

    # Live: writes made while the watch is open arrive in order, none missing or doubled.
    n_live = 8
    reader = asyncio.create_task(take(it, n_live))
    for i in range(10, 10 + n_live):
        await write(i)
    live = await reader
    assert summary(live) == written[-n_live:]
    revs = [e.kv.mod_revision for e in replayed + live]
    assert revs == sorted(set(revs))
    await it.aclose()  # type: ignore[attr-defined]


async def test_watch_from_current_revision_sees_only_new_events(store: Store, pfx: str) -> None:
    await store.create(pfx + "old", b"x")
    rev = await store.current_revision()
    it = store.watch(pfx, rev)
    reader = asyncio.create_task(take(it, 1))
    new = await store.create(pfx + "new", b"y")
    [ev] = await reader
    assert (ev.type, ev.kv, ev.created) == ("PUT", new, True)
    await it.aclose()  # type: ignore[attr-defined]


async def test_watch_of_delete_carries_previous_value(store: Store, pfx: str) -> None:
    k = pfx + "del"
    v1 = await store.create(k, b"first")
    v2 = await store.update(k, b"last", v1.mod_revision)
    rev = await store.current_revision()
    it = store.watch(pfx, rev)
    reader = asyncio.create_task(take(it, 1))
    d = await store.delete(k)
    [ev] = await reader
    assert ev.type == "DELETE"
    assert ev.kv == KeyValue(key=k, value=b"last", mod_revision=d.mod_revision,
                             create_revision=v1.mod_revision)
    assert ev.prev == v2
    await it.aclose()  # type: ignore[attr-defined]


async def test_watch_from_compacted_revision_raises(store: Store, pfx: str) -> None:
    k = pfx + "c"
    first = await store.create(k, b"0")
    kv = first
    for i in range(1, 5):
        kv = await store.update(k, str(i).encode(), kv.mod_revision)
    await store.compact(kv.mod_revision)
    assert store.compacted_revision >= kv.mod_revision
    with pytest.raises(Compacted):
        await take(store.watch(pfx, first.mod_revision - 1), 1)
    with pytest.raises(Compacted):
        await take(store.watch(pfx, first.mod_revision + 1), 1)
    # From the compaction revision on, history is whole.
    it = store.watch(pfx, kv.mod_revision)
    reader = asyncio.create_task(take(it, 1))
    nxt = await store.update(k, b"after", kv.mod_revision)
    [ev] = await reader
    assert ev.kv == nxt and ev.prev == kv
    await it.aclose()  # type: ignore[attr-defined]


async def test_compaction_keeps_latest_values(store: Store, pfx: str) -> None:
    latest: dict[str, KeyValue] = {}
    for name in ["x", "y", "z"]:
        kv = await store.create(pfx + name, b"0")
        for i in range(1, 4):
            kv = await store.update(pfx + name, f"{name}{i}".encode(), kv.mod_revision)
        latest[pfx + name] = kv
    await store.delete(pfx + "y")
    del latest[pfx + "y"]
    await store.create(pfx + "y", b"reborn")
    gone = await store.create(pfx + "gone", b"bye")
    await store.delete(pfx + "gone", gone.mod_revision)
    latest[pfx + "y"] = (await store.get(pfx + "y")) or KeyValue("", b"", 0, 0)
    rev = await store.current_revision()

    await store.compact(rev)
    await store.compact(rev)  # compacting again at the same revision is harmless

    assert await store.current_revision() == rev  # compaction is not a write
    listed = await store.list(pfx)
    assert {kv.key: kv for kv in listed.items} == latest
    for k, kv in latest.items():
        assert await store.get(k) == kv
    assert await store.get(pfx + "gone") is None
    # The keys still work: CAS against the kept revisions, re-creating a compacted delete.
    nx = await store.update(pfx + "x", b"x4", latest[pfx + "x"].mod_revision)
    assert nx.mod_revision == rev + 1 and nx.create_revision == latest[pfx + "x"].create_revision
    again = await store.create(pfx + "gone", b"again")
    assert again.mod_revision == rev + 2
    with pytest.raises(ValueError):
        await store.compact(rev + 1000)


async def test_racing_writers_one_wins_per_revision(store: Store, pfx: str) -> None:
    k = pfx + "race"
    kv = await store.create(k, b"start")
    for rnd in range(5):
        results = await asyncio.gather(
            *(store.update(k, f"{rnd}-{w}".encode(), kv.mod_revision) for w in range(6)),
            return_exceptions=True)
        winners = [r for r in results if isinstance(r, KeyValue)]
        losers = [r for r in results if isinstance(r, Conflict)]
        assert len(winners) == 1 and len(losers) == 5, results
        kv = winners[0]
        assert kv.mod_revision == await store.current_revision()
        assert await store.get(k) == kv
    created = await asyncio.gather(*(store.create(pfx + "new", str(w).encode()) for w in range(6)),
                                   return_exceptions=True)
    assert sum(isinstance(r, KeyValue) for r in created) == 1
    assert sum(isinstance(r, KeyExists) for r in created) == 5
    deleted = await asyncio.gather(*(store.delete(k, kv.mod_revision) for _ in range(4)),
                                   return_exceptions=True)
    assert sum(isinstance(r, KeyValue) for r in deleted) == 1
    assert all(isinstance(r, (KeyValue, NotFound, Conflict)) for r in deleted)


async def test_binary_empty_and_large_values_round_trip(store: Store, pfx: str) -> None:
    values = [b"", b"\x00\xff\x10binary", "ünïcode ✓".encode(), b"{" + b"x" * 300_000 + b"}"]
    start = await store.current_revision()
    for i, v in enumerate(values):
        kv = await store.create(f"{pfx}v{i}", v)
        assert (await store.get(kv.key)) == kv and kv.value == v
    it = store.watch(pfx, start)
    assert [e.kv.value for e in await take(it, len(values))] == values
    await it.aclose()  # type: ignore[attr-defined]


async def test_close_ends_open_watches(store: Store, pfx: str) -> None:
    it = store.watch(pfx, await store.current_revision())
    pending = asyncio.ensure_future(it.__anext__())
    await store.create(pfx + "seen", b"1")  # the watch is established once this arrives
    async with asyncio.timeout(WAIT):
        assert (await pending).kv.key == pfx + "seen"
    pending = asyncio.ensure_future(it.__anext__())
    await store.close()
    with pytest.raises(StopAsyncIteration):
        async with asyncio.timeout(WAIT):
            await pending


async def test_watch_replay_racing_new_writes_has_no_gap_or_duplicate(store: Store, pfx: str) -> None:
    start = await store.current_revision()
    for i in range(30):
        await store.create(f"{pfx}h/{i:03d}", b"old")

    async def more() -> list[int]:
        revs = []
        for i in range(30):
            revs.append((await store.create(f"{pfx}n/{i:03d}", b"new")).mod_revision)
        return revs

    it = store.watch(pfx, start)
    writer = asyncio.create_task(more())  # writes land while the watch is still replaying
    events = await take(it, 60)
    new_revs = await writer
    revs = [e.kv.mod_revision for e in events]
    assert revs == list(range(start + 1, start + 61))
    assert revs[30:] == new_revs
    assert [e.kv.key for e in events][:30] == [f"{pfx}h/{i:03d}" for i in range(30)]
    await it.aclose()  # type: ignore[attr-defined]


async def test_watchers_started_at_random_points_see_exactly_the_history(store: Store, pfx: str) -> None:
    rng = random.Random(7)
    truth: list[tuple[str, str, bytes, int]] = []  # every successful write, as a watch would show it
    start = await store.current_revision()

    async def writer(w: int) -> None:
        for i in range(30):
            k = f"{pfx}k{rng.randrange(6)}"
            cur = await store.get(k)
            try:
                if cur is None:
                    kv = await store.create(k, f"{w}-{i}".encode())
                    truth.append(("PUT", k, kv.value, kv.mod_revision))
                elif rng.random() < 0.25:
                    kv = await store.delete(k, cur.mod_revision)
                    truth.append(("DELETE", k, kv.value, kv.mod_revision))
                else:
                    kv = await store.update(k, f"{w}-{i}".encode(), cur.mod_revision)
                    truth.append(("PUT", k, kv.value, kv.mod_revision))
            except (Conflict, KeyExists, NotFound):
                pass  # lost a race: another writer got there first

    async def watcher(from_rev: int) -> tuple[int, list[WatchEvent]]:
        got: list[WatchEvent] = []
        it = store.watch(pfx, from_rev)
        async with asyncio.timeout(WAIT):
            async for ev in it:
                if ev.kv.key == pfx + "end":
                    break
                got.append(ev)
        await it.aclose()  # type: ignore[attr-defined]
        return from_rev, got

    writers = [asyncio.create_task(writer(w)) for w in range(4)]
    watchers = [asyncio.create_task(watcher(start))]
    for _ in range(4):  # join at random points, from revisions already in the past
        await asyncio.sleep(0)
        cur = await store.current_revision()
        watchers.append(asyncio.create_task(watcher(rng.randint(start, cur))))
    await asyncio.gather(*writers)
    await store.create(pfx + "end", b"")  # tells the watchers that history is complete
    truth.sort(key=lambda t: t[3])
    assert len(truth) > 20
    for from_rev, got in await asyncio.gather(*watchers):
        assert summary(got) == [t for t in truth if t[3] > from_rev], from_rev
