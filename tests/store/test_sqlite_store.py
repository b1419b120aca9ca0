"""SqliteStore beyond the shared contract: restarts, kill -9 durability, several
connections on one file, slow watchers, and the log's schema."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import textwrap
from pathlib import Path

import pytest

from k8py.store.errors import Compacted, Conflict
from k8py.store.protocol import KeyValue, WatchEvent
from k8py.store.sqlite import SqliteStore

WAIT = 30.0  # guard against hangs only


async def test_reopen_keeps_keys_revisions_and_compaction(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    s = SqliteStore(path)
    await s.start()
    a = await s.create("/a", b"1")
    a = await s.update("/a", b"2", a.mod_revision)
    b = await s.create("/b", b"b")
    await s.delete("/b", b.mod_revision)
    c = await s.create("/c", b"c")
    gone = await s.create("/gone", b"x")
    await s.compact(c.mod_revision)
    last = await s.delete("/gone", gone.mod_revision)  # the newest row is a tombstone ...
    await s.compact(last.mod_revision)                  # ... and compaction removes it
    rev = await s.current_revision()
    assert rev == last.mod_revision
    listed = await s.list("/")
    await s.close()

    s2 = SqliteStore(path)
    await s2.start()
    try:
        assert await s2.current_revision() == rev  # revisions never go back, even so
        assert s2.compacted_revision == last.mod_revision
        assert await s2.list("/") == listed
        assert [kv.key for kv in listed.items] == ["/a", "/c"]
        assert await s2.get("/a") == a
        with pytest.raises(Compacted):
            await s2.watch("/", c.mod_revision - 1).__anext__()
        nxt = await s2.create("/gone", b"again")
        assert nxt.mod_revision == rev + 1
    finally:
        await s2.close()


_WRITER = textwrap.dedent("""
    import asyncio, sys
    from k8py.store.sqlite import SqliteStore

    async def main() -> None:
        s = SqliteStore(sys.argv[1])
        await s.start()
        i = 0
        while True:
            key = f"/dur/{i:06d}"
            await s.create(key, b"v" * 200)
            print(key, flush=True)
            i += 1

    asyncio.run(main())
""")


async def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _WRITER, path, stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    acked: list[str] = []
    try:
        async with asyncio.timeout(WAIT):
            while len(acked) < 300:
                line = await proc.stdout.readline()
                assert line, "writer died"
                acked.append(line.decode().strip())
    finally:
        proc.send_signal(signal.SIGKILL)  # mid-stream: it is still writing
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    async for line in proc.stdout:  # acknowledgements printed before the kill also count
        acked.append(line.decode().strip())

    s = SqliteStore(path)
    await s.start()
    try:
        present = {kv.key for kv in (await s.list("/dur/")).items}
        missing = [k for k in acked if k not in present]
        assert not missing, f"{len(missing)} acknowledged keys lost, e.g. {missing[:5]}"
        assert await s.current_revision() >= len(acked)
    finally:
        await s.close()


async def test_two_stores_on_one_file_race_and_see_each_other(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    s1 = SqliteStore(path, poll_interval=0.05)
    s2 = SqliteStore(path, poll_interval=0.05)
    await s1.start()
    await s2.start()
    try:
        kv = await s1.create("/k", b"0")
        it = s2.watch("/", kv.mod_revision)  # s2 learns of s1's writes by polling the log
        for rnd in range(5):
            results = await asyncio.gather(
                *(st.update("/k", f"{rnd}-{i}".encode(), kv.mod_revision)
                  for i, st in enumerate([s1, s2, s1, s2])),
                return_exceptions=True)
            winners = [r for r in results if isinstance(r, KeyValue)]
            assert len(winners) == 1, results
            assert sum(isinstance(r, Conflict) for r in results) == 3
            kv = winners[0]
        async with asyncio.timeout(WAIT):
            seen = [await it.__anext__() for _ in range(5)]
        assert [e.kv.mod_revision for e in seen] == list(range(kv.mod_revision - 4, kv.mod_revision + 1))
        assert seen[-1].kv == kv == await s2.get("/k")
        await it.aclose()  # type: ignore[attr-defined]
    finally:
        await s1.close()
        await s2.close()


async def test_slow_watcher_catches_up_from_the_log(tmp_path: Path) -> None:
    s = SqliteStore(str(tmp_path / "state.db"), max_watch_queue=5, read_batch=4)
    await s.start()
    try:
        start = await s.current_revision()
        it = s.watch("/", start)
        first = asyncio.ensure_future(it.__anext__())
        kvs = [await s.create(f"/k{i:03d}", b"x") for i in range(60)]  # overflows its queue
        got: list[WatchEvent] = [await first]
        async with asyncio.timeout(WAIT):
            while len(got) < len(kvs):
                got.append(await it.__anext__())
        assert [e.kv for e in got] == kvs
        assert s.lagged_watches > 0  # the queue did overflow: the log filled the gap
        await it.aclose()  # type: ignore[attr-defined]
    finally:
        await s.close()


async def test_log_schema_refuses_a_second_writer_on_the_same_previous_row(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    s = SqliteStore(path)
    await s.start()
    kv = await s.create("/k", b"1")
    await s.close()
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("SELECT name, prev_revision FROM log WHERE id = ?", (kv.mod_revision,)).fetchone()
        assert row == ("/k", 0)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("INSERT INTO log (name, created, deleted, create_revision, prev_revision, value) "
                         "VALUES ('/k', 1, 0, 0, 0, x'00')")
    finally:
        conn.close()


async def test_live_watch_fails_when_another_connection_compacts_past_it(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    writer = SqliteStore(path)
    watcher = SqliteStore(path, poll_interval=3600)  # learns of others' writes only when woken
    await writer.start()
    await watcher.start()
    try:
        it = watcher.watch("/", await watcher.current_revision())
        pending = asyncio.ensure_future(it.__anext__())
        kv = await writer.create("/k", b"1")
        for i in range(3):
            kv = await writer.update("/k", str(i).encode(), kv.mod_revision)
        await writer.delete("/k")
        await writer.compact(await writer.current_revision())  # the watcher has read none of it
        await watcher.create("/wake", b"")  # a local write wakes its broadcaster
        with pytest.raises(Compacted):
            async with asyncio.timeout(WAIT):
                await pending
        assert watcher.compacted_revision == writer.compacted_revision
    finally:
        await writer.close()
        await watcher.close()


async def test_wal_stays_bounded_under_a_steady_stream_of_writes(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    s = SqliteStore(str(path), checkpoint_every=50, wal_frames_limit=200)
    await s.start()
    try:
        for i in range(600):  # about 3,000 WAL pages (12 MiB) if nothing checkpointed
            await s.create(f"/k/{i:04d}", b"x" * 1000)
        wal_pages = os.path.getsize(str(path) + "-wal") // 4096
        assert wal_pages < 1000, wal_pages
        assert await s.count("/k/") == 600
    finally:
        await s.close()
