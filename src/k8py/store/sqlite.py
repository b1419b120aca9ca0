"""SqliteStore: the Store protocol as an append-only revision log in SQLite (kine's design).

Schema: one table `log`; each row is one write and its id (AUTOINCREMENT) is the
write's revision. A key's current value is its row with the largest id; a delete
appends a tombstone (`deleted` = 1). `prev_revision` is the id of the key's previous
row (0 for none) and UNIQUE(name, prev_revision) refuses a second writer that
raced on the same previous row. `old_value` keeps the previous value so that watch
events can be rebuilt from one row. `meta.compact_rev` survives restarts.

Invariants:
- Revisions come from AUTOINCREMENT (sqlite_sequence), so they never repeat, even
  after compaction deletes the newest rows; the current revision is that sequence.
- All writes run in one dedicated thread with one connection. Writes queued together
  commit in one transaction (group commit: one fsync). A write checks first and then
  runs at most one modifying statement (compaction uses a savepoint), so a write that
  fails changes nothing and leaves the others in its transaction alone. A write's
  future resolves only after COMMIT with journal_mode=WAL and synchronous=FULL: an
  acknowledged write survives kill -9 and power loss.
- WAL checkpoints run in another thread, off the commit path; only when the WAL passes
  `wal_frames_limit` pages (a steady stream of writes never lets a concurrent
  checkpoint finish) does the writer thread checkpoint, between batches.
- Reads run in a small pool of reader threads with their own connections (WAL lets
  them read while the writer writes); the event loop never touches the disk.
- Compaction to C deletes rows at or below C that a later row at or below C
  superseded, and tombstones at or below C; rows with id > C are never touched, so
  every event with revision > C can still be rebuilt. Watching from a revision below
  C raises Compacted.
- One broadcaster per store fans events out to watchers in revision order: a local
  commit that directly follows what it has delivered is handed over at once; anything
  else (other processes' writes) it reads from the log, woken or polling. A watcher
  first replays the log from its revision up to the broadcaster's position, then takes
  live events: no gap, no duplicate. A watcher too slow to drain its queue goes back
  to replaying the log.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from k8py.store.errors import Compacted, Conflict, KeyExists, NotFound, StoreError
from k8py.store.keys import in_prefix, prefix_end
from k8py.store.protocol import KeyValue, ListResult, WatchEvent

_SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    value BLOB,
    old_value BLOB,
    UNIQUE (name, prev_revision)
);
CREATE INDEX IF NOT EXISTS log_name_id ON log (name, id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

log = logging.getLogger(__name__)

_ROW = "id, name, created, deleted, create_revision, prev_revision, value, old_value"
_MAX_BATCH_WRITES = 256
_COMPACT_CHUNK = 5000

Row = tuple[int, str, int, int, int, int, bytes | None, bytes | None]


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def _owner_only(path: str, *, create: bool = True) -> None:
    """Make `path` (created empty if missing and `create`) readable by its owner only (0600):
    the database holds every object of the cluster."""
    try:
        fd = os.open(path, os.O_RDONLY | (os.O_CREAT if create else 0), 0o600)
    except FileNotFoundError:
        return
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _seq(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'log'").fetchone()
    return int(row[0]) if row else 0


def _compact_rev(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = 'compact_rev'").fetchone()
    return int(row[0]) if row else 0


def _range_sql(prefix: str, start_after: str | None = None) -> tuple[str, list[Any]]:
    """SQL condition and parameters selecting names under prefix (after start_after)."""
    conds = ["name >= ?"]
    params: list[Any] = [prefix]
    end = prefix_end(prefix)
    if end is not None:
        conds.append("name < ?")
        params.append(end)
    if start_after is not None:
        conds.append("name > ?")
        params.append(start_after)
    return " AND ".join(conds), params


def _kv(row: tuple[Any, ...]) -> KeyValue:
    """KeyValue of a live row given as (id, name, created, create_revision, value)."""
    rid, name, created, crev, value = row
    return KeyValue(key=name, value=bytes(value or b""), mod_revision=rid,
                    create_revision=rid if created else crev)


def _event(row: Row) -> WatchEvent:
    rid, name, created, deleted, crev, prev_rev, value, old_value = row
    create_rev = rid if created else crev
    val = bytes(value or b"")
    if deleted:
        return WatchEvent(type="DELETE",
                          kv=KeyValue(key=name, value=val, mod_revision=rid, create_revision=create_rev),
                          prev=KeyValue(key=name, value=val, mod_revision=prev_rev,
                                        create_revision=create_rev))
    kv = KeyValue(key=name, value=val, mod_revision=rid, create_revision=create_rev)
    if created:
        return WatchEvent(type="PUT", kv=kv, prev=None, created=True)
    return WatchEvent(type="PUT", kv=kv,
                      prev=KeyValue(key=name, value=bytes(old_value or b""), mod_revision=prev_rev,
                                    create_revision=create_rev))


# ---- write operations: run in the writer thread, inside a transaction ----------------

def _latest(conn: sqlite3.Connection, key: str) -> tuple[Any, ...] | None:
    row: tuple[Any, ...] | None = conn.execute(
        "SELECT id, created, deleted, create_revision, value FROM log "
        "WHERE name = ? ORDER BY id DESC LIMIT 1", (key,)).fetchone()
    return row


def _op_create(conn: sqlite3.Connection, key: str, value: bytes) -> WatchEvent:
    row = _latest(conn, key)
    if row is not None and not row[2]:
        raise KeyExists(key)
    prev = row[0] if row is not None else 0
    cur = conn.execute(
        "INSERT INTO log (name, created, deleted, create_revision, prev_revision, value, old_value) "
        "VALUES (?, 1, 0, 0, ?, ?, NULL)", (key, prev, value))
    rid = int(cur.lastrowid or 0)
    return WatchEvent(type="PUT", kv=KeyValue(key=key, value=value, mod_revision=rid, create_revision=rid),
                      prev=None, created=True)


def _op_update(conn: sqlite3.Connection, key: str, value: bytes, expected: int) -> WatchEvent:
    row = _latest(conn, key)
    if row is None or row[2]:
        raise NotFound(key)
    rid, created, _deleted, crev, old_value = row
    if rid != expected:
        raise Conflict(f"{key}: revision is {rid}, expected {expected}")
    create_rev = rid if created else crev
    cur = conn.execute(
        "INSERT INTO log (name, created, deleted, create_revision, prev_revision, value, old_value) "
        "VALUES (?, 0, 0, ?, ?, ?, ?)", (key, create_rev, rid, value, old_value))
    return WatchEvent(
        type="PUT",
        kv=KeyValue(key=key, value=value, mod_revision=int(cur.lastrowid or 0), create_revision=create_rev),
        prev=KeyValue(key=key, value=bytes(old_value or b""), mod_revision=rid, create_revision=create_rev))


def _op_delete(conn: sqlite3.Connection, key: str, expected: int | None) -> WatchEvent:
    row = _latest(conn, key)
    if row is None or row[2]:
        raise NotFound(key)
    rid, created, _deleted, crev, old_value = row
    if expected is not None and rid != expected:
        raise Conflict(f"{key}: revision is {rid}, expected {expected}")
    create_rev = rid if created else crev
    cur = conn.execute(
        "INSERT INTO log (name, created, deleted, create_revision, prev_revision, value, old_value) "
        "VALUES (?, 0, 1, ?, ?, ?, NULL)", (key, create_rev, rid, old_value))
    old = bytes(old_value or b"")
    return WatchEvent(
        type="DELETE",
        kv=KeyValue(key=key, value=old, mod_revision=int(cur.lastrowid or 0), create_revision=create_rev),
        prev=KeyValue(key=key, value=old, mod_revision=rid, create_revision=create_rev))


def _op_compact(conn: sqlite3.Connection, target: int) -> int:
    """Compact one chunk towards `target`; returns the new compact revision."""
    old = _compact_rev(conn)
    current = _seq(conn)
    if target > current:
        raise ValueError(f"cannot compact to {target}: a future revision (current {current})")
    if target <= old:
        return old
    hi = min(target, old + _COMPACT_CHUNK)
    conn.execute("SAVEPOINT compact")  # three statements: all or none
    try:
        # Rows superseded by a row in (old, hi]: those superseded by rows <= old are gone already.
        conn.execute("DELETE FROM log WHERE id IN (SELECT prev_revision FROM log "
                     "WHERE id > ? AND id <= ? AND prev_revision != 0)", (old, hi))
        conn.execute("DELETE FROM log WHERE id > ? AND id <= ? AND deleted = 1", (old, hi))
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('compact_rev', ?)", (hi,))
    except BaseException:
        conn.execute("ROLLBACK TO compact")
        conn.execute("RELEASE compact")
        raise
    conn.execute("RELEASE compact")
    return hi


# ---- read operations: run in reader threads ------------------------------------------

def _rd_get(conn: sqlite3.Connection, key: str) -> KeyValue | None:
    row = conn.execute("SELECT id, created, deleted, create_revision, value FROM log "
                       "WHERE name = ? ORDER BY id DESC LIMIT 1", (key,)).fetchone()
    if row is None or row[2]:
        return None
    return _kv((row[0], key, row[1], row[3], row[4]))


def _rd_list(conn: sqlite3.Connection, prefix: str, start_after: str | None,
             limit: int) -> ListResult:
    cond, params = _range_sql(prefix, start_after)
    # Walks the (name, id) index in name order and keeps each name's newest row, so a
    # LIMIT stops the scan early instead of grouping the whole range first.
    sql = ("SELECT id, name, created, create_revision, value FROM log AS l "
           f"WHERE {cond} AND id = (SELECT MAX(id) FROM log WHERE name = l.name) "
           "AND deleted = 0 ORDER BY name")
    if limit > 0:
        sql += " LIMIT ?"
        params.append(limit + 1)
    conn.execute("BEGIN")
    try:
        rows = conn.execute(sql, params).fetchall()
        revision = _seq(conn)
    finally:
        conn.execute("COMMIT")
    more = limit > 0 and len(rows) > limit
    if more:
        rows = rows[:limit]
    return ListResult(items=[_kv(r) for r in rows], revision=revision, more=more)


def _rd_count(conn: sqlite3.Connection, prefix: str) -> int:
    cond, params = _range_sql(prefix)
    row = conn.execute(
        "SELECT COUNT(*) FROM log l "
        f"JOIN (SELECT MAX(id) AS id FROM log WHERE {cond} GROUP BY name) m ON l.id = m.id "
        "WHERE l.deleted = 0", params).fetchone()
    return int(row[0])


def _rd_revisions(conn: sqlite3.Connection) -> tuple[int, int]:
    conn.execute("BEGIN")
    try:
        return _seq(conn), _compact_rev(conn)
    finally:
        conn.execute("COMMIT")


def _rd_rows(conn: sqlite3.Connection, after: int, upto: int | None, prefix: str,
             limit: int) -> tuple[list[Row], int, int]:
    """Rows with after < id (<= upto) under prefix, in id order; with the compact
    revision and current revision read in the same snapshot."""
    cond, params = _range_sql(prefix)
    sql = f"SELECT {_ROW} FROM log WHERE id > ?"
    args: list[Any] = [after]
    if upto is not None:
        sql += " AND id <= ?"
        args.append(upto)
    if prefix:
        sql += f" AND {cond}"
        args.extend(params)
    sql += " ORDER BY id LIMIT ?"
    args.append(limit)
    conn.execute("BEGIN")
    try:
        rows = conn.execute(sql, args).fetchall()
        return rows, _compact_rev(conn), _seq(conn)
    finally:
        conn.execute("COMMIT")


class _Lagged:
    """Queued to a watcher whose queue overflowed: it must catch up from the log."""


_LAGGED = _Lagged()
_Item = WatchEvent | Exception | _Lagged | None


class _Watcher:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.queue: asyncio.Queue[_Item] = asyncio.Queue()


class SqliteStore:
    def __init__(self, path: str, *, poll_interval: float = 1.0, read_batch: int = 1000,
                 max_watch_queue: int = 10000, readers: int = 2,
                 checkpoint_every: int = 500, wal_frames_limit: int = 4096) -> None:
        self.path = path
        self._poll_interval = poll_interval
        self._read_batch = read_batch
        self._max_watch_queue = max_watch_queue
        self._n_readers = readers
        self._checkpoint_every = checkpoint_every
        self._wal_frames_limit = wal_frames_limit
        self._since_checkpoint = 0
        self._checkpointing: asyncio.Task[None] | None = None
        self._ckpt_conn: sqlite3.Connection | None = None
        self._checkpoint_in_writer = False  # set by _checkpoint, read by the writer thread
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writes: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any]] | None] \
            = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._reader_conns: list[sqlite3.Connection] = []
        self._local = threading.local()
        self._conn_lock = threading.Lock()
        self._compacted = 0
        # Broadcaster state: every row with id <= _pos has been given to the watchers.
        self._pos = 0
        self._watchers: set[_Watcher] = set()
        self._wake = asyncio.Event()
        self._pos_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._bcast_task: asyncio.Task[None] | None = None
        self._closed = False
        self.lagged_watches = 0  # how often a slow watcher fell back to reading the log

    # ---- lifecycle ----

    async def start(self) -> None:
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        d = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(d, mode=0o700, exist_ok=True)
        _owner_only(self.path)  # before SQLite opens it: its -wal and -shm files take the database's mode
        ready: asyncio.Future[None] = self._loop.create_future()
        self._writer = threading.Thread(target=self._writer_main, args=(ready,),
                                        name=f"k8py-sqlite-writer:{self.path}", daemon=True)
        self._writer.start()
        await ready
        for suffix in ("", "-wal", "-shm"):
            _owner_only(self.path + suffix, create=False)
        self._readers = ThreadPoolExecutor(max_workers=self._n_readers,
                                           thread_name_prefix="k8py-sqlite-reader")
        self._pos, self._compacted = await self._read(_rd_revisions)
        self._bcast_task = self._loop.create_task(self._broadcast())

    async def close(self) -> None:
        if self._loop is None or self._closed:
            return
        self._closed = True
        if self._bcast_task is not None:
            self._wake.set()  # the broadcaster sees _closed and returns
            try:
                await self._bcast_task
            except Exception:
                pass
        self._advance(self._pos)  # releases anyone waiting in _caught_up
        for w in list(self._watchers):
            w.queue.put_nowait(None)
        self._watchers.clear()
        if self._checkpointing is not None:
            await asyncio.gather(self._checkpointing, return_exceptions=True)
        if self._ckpt_conn is not None:
            self._ckpt_conn.close()
        self._writes.put(None)
        if self._writer is not None:
            await asyncio.to_thread(self._writer.join)
        if self._readers is not None:
            await asyncio.to_thread(self._readers.shutdown, True)
        with self._conn_lock:
            for c in self._reader_conns:
                c.close()
            self._reader_conns.clear()

    # ---- writer thread ----

    def _writer_main(self, ready: asyncio.Future[None]) -> None:
        loop = self._loop
        assert loop is not None
        try:
            conn = _connect(self.path)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            # Checkpoints (copying the WAL into the database, with fsyncs) run in another
            # thread (_checkpoint), off the commit path: see _committed.
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.execute(f"PRAGMA journal_size_limit = {int(self._wal_frames_limit) * 4096}")
            conn.executescript(_SCHEMA)
        except BaseException as e:  # report the failure to start()
            loop.call_soon_threadsafe(_settle, ready, e)
            return
        loop.call_soon_threadsafe(_settle, ready, None)
        try:
            while True:
                first = self._writes.get()
                if first is None:
                    return
                batch = [first]
                stop = False
                while len(batch) < _MAX_BATCH_WRITES:
                    try:
                        nxt = self._writes.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stop = True
                        break
                    batch.append(nxt)
                self._commit_batch(conn, batch)
                if self._checkpoint_in_writer:
                    # The WAL keeps growing: background checkpoints never catch up with a
                    # steady stream of writes. One here, with no writer running beside it,
                    # completes, and the next write starts the WAL over.
                    self._checkpoint_in_writer = False
                    try:
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    except sqlite3.Error:
                        log.exception("sqlite store %s: WAL checkpoint failed", self.path)
                if stop:
                    return
        finally:
            conn.close()

    def _commit_batch(self, conn: sqlite3.Connection,
                      batch: list[tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        results: list[Any] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for fn, args, _fut in batch:
                try:
                    results.append(fn(conn, *args))
                except sqlite3.IntegrityError as e:  # a racing writer (another process)
                    results.append(Conflict(f"concurrent write: {e}"))
                except (StoreError, ValueError) as e:
                    results.append(e)
                except sqlite3.Error as e:
                    if not conn.in_transaction:
                        raise  # SQLite rolled the whole transaction back (disk full, I/O error)
                    results.append(StoreError(f"sqlite: {e}"))
                except Exception as e:  # a bug: fail this write, keep the writer alive
                    results.append(StoreError(f"write failed: {e!r}"))
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            results = [StoreError(f"sqlite commit failed: {e}")] * len(batch)
        loop = self._loop
        assert loop is not None
        try:
            loop.call_soon_threadsafe(self._committed, [fut for _fn, _args, fut in batch], results)
        except RuntimeError:  # the event loop is closed: nobody waits any more
            pass

    async def _write(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._loop is None or self._closed:
            raise StoreError("store is not started" if self._loop is None else "store is closed")
        fut: asyncio.Future[Any] = self._loop.create_future()
        self._writes.put((fn, args, fut))
        return await fut

    # ---- reader threads ----

    def _reader_conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path)
            self._local.conn = conn
            with self._conn_lock:
                self._reader_conns.append(conn)
        return conn

    async def _read(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._loop is None or self._readers is None:
            raise StoreError("store is not started")
        if self._closed:
            raise StoreError("store is closed")

        def run() -> Any:
            try:
                return fn(self._reader_conn(), *args)
            except sqlite3.Error as e:
                raise StoreError(f"sqlite: {e}") from e
        return await self._loop.run_in_executor(self._readers, run)

    # ---- Store protocol ----

    async def current_revision(self) -> int:
        rev, _ = await self._read(_rd_revisions)
        return int(rev)

    @property
    def compacted_revision(self) -> int:
        return self._compacted

    async def get(self, key: str) -> KeyValue | None:
        result: KeyValue | None = await self._read(_rd_get, key)
        return result

    async def list(self, prefix: str, *, start_after: str | None = None,
                   limit: int = 0) -> ListResult:
        result: ListResult = await self._read(_rd_list, prefix, start_after, limit)
        return result

    async def count(self, prefix: str) -> int:
        return int(await self._read(_rd_count, prefix))

    async def create(self, key: str, value: bytes) -> KeyValue:
        ev: WatchEvent = await self._write(_op_create, key, bytes(value))
        return ev.kv

    async def update(self, key: str, value: bytes, expected_revision: int) -> KeyValue:
        ev: WatchEvent = await self._write(_op_update, key, bytes(value), expected_revision)
        return ev.kv

    async def delete(self, key: str, expected_revision: int | None = None) -> KeyValue:
        ev: WatchEvent = await self._write(_op_delete, key, expected_revision)
        return ev.kv

    async def compact(self, revision: int) -> None:
        # Let live watchers receive everything up to `revision` before it is forgotten.
        await self._caught_up(min(revision, await self.current_revision()))
        while True:
            done = int(await self._write(_op_compact, revision))
            self._compacted = max(self._compacted, done)
            if done >= revision:
                return

    def watch(self, prefix: str, revision: int) -> AsyncIterator[WatchEvent]:
        return self._watch(prefix, revision)

    # ---- watch ----

    async def _caught_up(self, revision: int) -> None:
        if self._pos >= revision or self._closed:
            return
        assert self._loop is not None
        fut: asyncio.Future[None] = self._loop.create_future()
        self._pos_waiters.append((revision, fut))
        self._wake.set()
        await fut

    def _advance(self, pos: int) -> None:
        self._pos = pos
        if not self._pos_waiters:
            return
        keep: list[tuple[int, asyncio.Future[None]]] = []
        for rev, fut in self._pos_waiters:
            if rev <= pos or self._closed:
                if not fut.done():
                    fut.set_result(None)
            else:
                keep.append((rev, fut))
        self._pos_waiters = keep

    def _committed(self, futures: builtins.list[asyncio.Future[Any]], results: builtins.list[Any]) -> None:
        """In the loop, after a COMMIT: hand the new events straight to the watchers when
        they follow on from what the broadcaster has delivered (else it reads the log),
        then answer the writers."""
        events = [r for r in results if isinstance(r, WatchEvent)]
        if events and not self._closed:
            if events[0].kv.mod_revision == self._pos + 1:
                for ev in events:
                    self._deliver(ev)
                self._advance(events[-1].kv.mod_revision)
            else:
                self._wake.set()  # other writers got in between: read the log
        for fut, res in zip(futures, results):
            _settle(fut, res)
        self._since_checkpoint += len(results)
        if (self._since_checkpoint >= self._checkpoint_every and self._checkpointing is None
                and not self._closed and self._loop is not None):
            self._since_checkpoint = 0
            self._checkpointing = self._loop.create_task(self._run_checkpoint())

    async def _run_checkpoint(self) -> None:
        try:
            await asyncio.to_thread(self._checkpoint)
        except Exception:  # the next one retries; the WAL only grows meanwhile
            log.exception("sqlite store %s: WAL checkpoint failed", self.path)
        finally:
            self._checkpointing = None

    def _checkpoint(self) -> None:
        """Copy the WAL into the database without blocking readers or the writer."""
        if self._ckpt_conn is None:
            self._ckpt_conn = _connect(self.path)
            self._ckpt_conn.execute("PRAGMA synchronous = FULL")
        _busy, frames, _done = self._ckpt_conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if frames >= self._wal_frames_limit:
            self._checkpoint_in_writer = True

    async def _broadcast(self) -> None:
        while not self._closed:
            try:
                async with asyncio.timeout(self._poll_interval):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            if self._closed:
                return
            try:
                await self._drain()
            except asyncio.CancelledError:
                raise
            except StoreError as e:  # the database failed: end every watch with the error
                for w in list(self._watchers):
                    w.queue.put_nowait(e)
                self._watchers.clear()

    async def _drain(self) -> None:
        while True:
            rows, compact, current = await self._read(_rd_rows, self._pos, None, "", self._read_batch)
            full = len(rows) == self._read_batch
            self._compacted = max(self._compacted, compact)
            # Rows up to _pos may have been delivered by _committed while we read.
            rows = [r for r in rows if r[0] > self._pos]
            if compact > self._pos:
                # Another process compacted past rows we had not read: watchers would miss them.
                err = Compacted(self._pos, compact)
                for w in list(self._watchers):
                    w.queue.put_nowait(err)
                self._watchers.clear()
                self._pos = current
                rows = []
            for row in rows:
                self._deliver(_event(row))
                self._pos = row[0]
            self._advance(self._pos)
            if not full:
                return

    def _deliver(self, ev: WatchEvent) -> None:
        for w in list(self._watchers):
            if not in_prefix(ev.kv.key, w.prefix):
                continue
            if w.queue.qsize() >= self._max_watch_queue:
                # Too slow a reader: drop it from live delivery; it catches up from the log.
                self._watchers.discard(w)
                w.queue.put_nowait(_LAGGED)
                self.lagged_watches += 1
            else:
                w.queue.put_nowait(ev)

    async def _watch(self, prefix: str, revision: int) -> AsyncIterator[WatchEvent]:
        if self._loop is None:
            raise StoreError("store is not started")
        if revision < self._compacted:
            raise Compacted(revision, self._compacted)
        pos = revision
        while not self._closed:
            w = _Watcher(prefix)
            upto = self._pos  # read and registered with no await between: no gap
            self._watchers.add(w)
            try:
                # Replay the log in (pos, upto] ...
                while pos < upto:
                    rows, compact, _cur = await self._read(_rd_rows, pos, upto, prefix, self._read_batch)
                    if compact > pos:
                        raise Compacted(pos, compact)
                    for row in rows:
                        yield _event(row)
                        pos = row[0]
                    if len(rows) < self._read_batch:
                        pos = upto
                # ... then live events, which all have revisions > upto.
                while True:
                    item = await w.queue.get()
                    if item is None:
                        return
                    if isinstance(item, _Lagged):
                        break  # catch up from the log, starting after pos
                    if isinstance(item, Exception):
                        raise item
                    if item.kv.mod_revision > pos:
                        yield item
                        pos = item.kv.mod_revision
            finally:
                self._watchers.discard(w)


def _settle(fut: asyncio.Future[Any], result: Any) -> None:
    if fut.done():
        return
    if isinstance(result, BaseException):
        fut.set_exception(result)
    else:
        fut.set_result(result)
