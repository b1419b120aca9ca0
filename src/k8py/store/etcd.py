"""EtcdStore: the Store protocol on a real etcd (3.4+) cluster through its gRPC-gateway JSON API.

Uses aiohttp against `POST /v3/kv/range`, `/v3/kv/txn`, `/v3/kv/compaction` and the
streaming `/v3/watch`; keys and values travel base64-encoded, int64s as strings, and
fields at their default value (0, false, "", PUT) are left out of the JSON.

Invariants:
- Revisions are etcd's: every write through any client bumps the one global revision.
- create is a txn comparing create_revision == 0; update and delete compare
  create_revision > 0 (the key exists) and mod_revision == expected; a failed txn
  reads the key in the same transaction to tell NotFound from Conflict.
- watch(prefix, r) asks etcd for start_revision = r + 1 with prev_kv; etcd's
  "compacted" cancellation becomes `Compacted`.
- `compacted_revision` is the highest compaction this client has made or been told
  of (etcd 3.4 has no call that reports it).

Several members (`EtcdStore([url1, url2, url3])`, as etcd's own client takes them):
requests go to one member; one that cannot be reached, drops the connection, times
out or answers "unavailable" (no leader, leader changed, request timed out: HTTP 503)
makes the store move to the next member and retry there, until `timeout` has passed.
Reads are retried as they are. A write whose attempt may have been applied (the
request was sent, the answer was lost) is retried too, and its CAS failure is then
resolved from etcd's own history, so that a write applied once is reported once:
- create: KeyExists after an ambiguous attempt -> the key's value at its
  create_revision is ours (a value carries the object's uid) -> success;
- update: Conflict after an ambiguous attempt -> the key's current value is ours ->
  success (if another write followed ours, the caller sees a Conflict and re-reads);
- delete: NotFound after an ambiguous attempt -> the key's value at the expected
  revision is what was deleted -> success (its revision: the one the absence was read at).
A watch that loses its member resumes on the next from the last revision it delivered.

TLS (`EtcdTLS`, kube-apiserver's --etcd-cafile/--etcd-certfile/--etcd-keyfile): every
request and watch to every member goes over https, the members verified against the CA
file (the system's CAs without one), the client certificate presented when given. A
handshake the member refuses (bad CA, bad or missing client certificate) is a
configuration error: `EtcdTLSError` at once, never retried as an unreachable member.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import json
import logging
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from k8py.store.errors import Compacted, Conflict, EtcdError, EtcdTLSError, KeyExists, NotFound, StoreError
from k8py.store.keys import prefix_end
from k8py.store.protocol import KeyValue, ListResult, WatchEvent

log = logging.getLogger("k8py.store.etcd")


def _b64(s: str | bytes) -> str:
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode("ascii")


def _unb64(s: str | None) -> bytes:
    return base64.b64decode(s) if s else b""


def _kv(d: dict[str, Any]) -> KeyValue:
    return KeyValue(key=_unb64(d.get("key")).decode(), value=_unb64(d.get("value")),
                    mod_revision=int(d.get("mod_revision", 0)),
                    create_revision=int(d.get("create_revision", 0)))


def _range_key(prefix: str) -> str:
    return _b64(prefix) if prefix else _b64(b"\0")  # etcd refuses an empty key


def _range_end(prefix: str) -> str:
    end = prefix_end(prefix)
    return _b64(end) if end is not None else _b64(b"\0")  # "\0": every key >= key


# etcd's answers that mean "this member cannot serve it now; another may" (gRPC Unavailable).
_UNAVAILABLE = ("etcdserver: no leader", "etcdserver: leader changed", "etcdserver: request timed out",
                "etcdserver: too many requests", "etcdserver: unhealthy cluster", "etcdserver: not capable")
_RETRY_PAUSE = 0.2  # seconds between rounds over every member


class _Unreachable(Exception):
    """One member could not answer. `sent`: the request may have reached it (and been applied)."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


@dataclass(frozen=True)
class EtcdTLS:
    """Client TLS for etcd: the CA that signed the members' certificates (None: the
    system's), and the client certificate and key (both or neither)."""

    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None

    def __post_init__(self) -> None:
        if bool(self.certfile) != bool(self.keyfile):
            raise ValueError("etcd TLS: --etcd-certfile and --etcd-keyfile go together")

    def context(self) -> ssl.SSLContext:
        try:
            ctx = ssl.create_default_context(cafile=self.cafile)
            if self.certfile:
                ctx.load_cert_chain(self.certfile, self.keyfile)
        except (OSError, ssl.SSLError) as e:
            raise ValueError(f"etcd TLS: cannot load {e}") from e
        return ctx


def _tls_refused(e: BaseException) -> bool:
    """Whether `e` (or its cause) is a TLS failure: a certificate not verified or refused."""
    seen: BaseException | None = e
    while seen is not None:
        if isinstance(seen, (ssl.SSLError, aiohttp.ClientSSLError)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class EtcdStore:
    def __init__(self, url: str | Sequence[str], *, timeout: float = 30.0,
                 attempt_timeout: float = 10.0, tls: EtcdTLS | None = None) -> None:
        urls = [url] if isinstance(url, str) else list(url)
        if not urls:
            raise ValueError("EtcdStore: no endpoint")
        self.urls = [u.rstrip("/") for u in urls]
        self._current = 0  # the member requests go to; moves on when it fails
        self._timeout = timeout
        self._attempt_timeout = min(attempt_timeout, timeout)
        self._session: aiohttp.ClientSession | None = None
        self._compacted = 0
        self._closing = False
        self._ssl: ssl.SSLContext | None = tls.context() if tls is not None else None

    @property
    def url(self) -> str:
        """The member requests go to now."""
        return self.urls[self._current]

    async def start(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0, ssl=self._ssl if self._ssl is not None else True)
            self._session = aiohttp.ClientSession(connector=connector)

    async def close(self) -> None:
        self._closing = True
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _sess(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise StoreError("store is not started")
        return self._session

    def _fail_over(self, index: int) -> None:
        """Member `index` failed: the next one takes the requests (unless another request moved on already)."""
        if self._current == index and len(self.urls) > 1:
            self._current = (index + 1) % len(self.urls)
            log.warning("etcd member %s failed; using %s", self.urls[index], self.urls[self._current])

    def _unreachable_or_refused(self, url: str, path: str, e: BaseException) -> Exception:
        """What a failed attempt means: EtcdTLSError for a refused TLS handshake (a
        configuration error no other member cures), else _Unreachable (sent: whether
        the request may have reached the member)."""
        if self._ssl is not None and _tls_refused(e):
            return EtcdTLSError(f"etcd {url}: TLS handshake failed ({e}); check --etcd-cafile, "
                                "--etcd-certfile and --etcd-keyfile")
        return _Unreachable(f"etcd {url}{path}: {e!r}", sent=not isinstance(e, aiohttp.ClientConnectorError))

    async def _post(self, url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """One attempt on one member: its answer, EtcdError for a definite error, or
        _Unreachable when another member may do better."""
        try:
            async with self._sess().post(url + path, json=body,
                                         timeout=aiohttp.ClientTimeout(total=self._attempt_timeout)) as resp:
                text = await resp.text()
        except (aiohttp.ClientError, TimeoutError) as e:
            raise self._unreachable_or_refused(url, path, e) from e
        try:
            data: dict[str, Any] = json.loads(text) if text else {}
        except ValueError as e:
            raise EtcdError(f"etcd {path}: HTTP {resp.status}: {text[:200]}") from e
        if resp.status != 200 or "error" in data:
            msg = str(data.get("message") or data.get("error") or text[:200])
            if resp.status == 503 or any(m in msg for m in _UNAVAILABLE):
                raise _Unreachable(f"etcd {url}{path}: HTTP {resp.status}: {msg}", sent=True)
            raise EtcdError(f"etcd {path}: HTTP {resp.status}: {msg}")
        return data

    async def _request(self, path: str, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """`body` to one member after another until one answers (or `timeout` passes).
        Returns the answer and whether an earlier attempt may have been applied."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        ambiguous = False
        failures = 0
        while True:
            index = self._current
            try:
                return await self._post(self.urls[index], path, body), ambiguous
            except _Unreachable as e:
                ambiguous = ambiguous or e.sent
                failures += 1
                self._fail_over(index)
                if loop.time() >= deadline or self._closing:
                    raise EtcdError(str(e)) from e
                if failures % len(self.urls) == 0:  # every member failed once: pause before the next round
                    await asyncio.sleep(_RETRY_PAUSE)

    async def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """A read (or an idempotent request), retried on the next member."""
        return (await self._request(path, body))[0]

    # ---- reads ----

    async def current_revision(self) -> int:
        data = await self._call("/v3/kv/range", {"key": _b64(b"\0"), "count_only": True})
        return int(data["header"]["revision"])

    @property
    def compacted_revision(self) -> int:
        return self._compacted

    async def get(self, key: str) -> KeyValue | None:
        return await self._get_at(key, 0)

    async def _get_at(self, key: str, revision: int) -> KeyValue | None:
        """The key as it was at `revision` (0: now); None if absent then or compacted away."""
        body: dict[str, Any] = {"key": _b64(key)}
        if revision:
            body["revision"] = str(revision)
        try:
            data = await self._call("/v3/kv/range", body)
        except EtcdError as e:
            if revision and "compacted" in str(e):
                return None
            raise
        kvs = data.get("kvs") or []
        return _kv(kvs[0]) if kvs else None

    async def list(self, prefix: str, *, start_after: str | None = None,
                   limit: int = 0) -> ListResult:
        start = prefix
        if start_after is not None and start_after >= prefix:
            start = start_after + "\0"  # the smallest key after start_after
        body: dict[str, Any] = {"key": _range_key(start), "range_end": _range_end(prefix)}
        if limit > 0:
            body["limit"] = str(limit)
        data = await self._call("/v3/kv/range", body)
        return ListResult(items=[_kv(d) for d in data.get("kvs") or []],
                          revision=int(data["header"]["revision"]),
                          more=bool(data.get("more", False)))

    async def count(self, prefix: str) -> int:
        data = await self._call("/v3/kv/range", {"key": _range_key(prefix), "range_end": _range_end(prefix),
                                                 "count_only": True})
        return int(data.get("count", 0))

    # ---- writes ----

    async def _txn(self, key: str, compare: builtins.list[dict[str, Any]],
                   success: dict[str, Any]) -> tuple[bool, dict[str, Any], bool]:
        """The txn's outcome, its answer, and whether an earlier attempt may have been applied."""
        data, ambiguous = await self._request("/v3/kv/txn", {
            "compare": compare,
            "success": [success],
            "failure": [{"request_range": {"key": _b64(key)}}],
        })
        return bool(data.get("succeeded", False)), data, ambiguous

    @staticmethod
    def _failed(key: str, data: dict[str, Any], expected: int | None) -> StoreError:
        resp = (data.get("responses") or [{}])[0].get("response_range", {})
        kvs = resp.get("kvs") or []
        if not kvs:
            return NotFound(key)
        return Conflict(f"{key}: revision is {_kv(kvs[0]).mod_revision}, expected {expected}")

    @staticmethod
    def _current_kv(data: dict[str, Any]) -> KeyValue | None:
        """The key as the failed txn read it."""
        kvs = (data.get("responses") or [{}])[0].get("response_range", {}).get("kvs") or []
        return _kv(kvs[0]) if kvs else None

    async def create(self, key: str, value: bytes) -> KeyValue:
        ok, data, ambiguous = await self._txn(
            key,
            [{"key": _b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"}],
            {"request_put": {"key": _b64(key), "value": _b64(value)}})
        if not ok:
            cur = self._current_kv(data)
            if ambiguous and cur is not None:  # did our lost attempt create it?
                first = await self._get_at(key, cur.create_revision)
                if first is not None and first.value == value:
                    return KeyValue(key=key, value=bytes(value), mod_revision=first.mod_revision,
                                    create_revision=first.create_revision)
            raise KeyExists(key)
        rev = int(data["header"]["revision"])
        return KeyValue(key=key, value=bytes(value), mod_revision=rev, create_revision=rev)

    @staticmethod
    def _exists_and_at(key: str, expected: int | None) -> builtins.list[dict[str, Any]]:
        cmp: list[dict[str, Any]] = [
            {"key": _b64(key), "target": "CREATE", "result": "GREATER", "create_revision": "0"}]
        if expected is not None:
            cmp.append({"key": _b64(key), "target": "MOD", "result": "EQUAL",
                        "mod_revision": str(expected)})
        return cmp

    async def update(self, key: str, value: bytes, expected_revision: int) -> KeyValue:
        ok, data, ambiguous = await self._txn(
            key, self._exists_and_at(key, expected_revision),
            {"request_put": {"key": _b64(key), "value": _b64(value), "prev_kv": True}})
        if not ok:
            cur = self._current_kv(data)
            if ambiguous and cur is not None and cur.mod_revision > expected_revision and cur.value == value:
                return cur  # our lost attempt was applied
            raise self._failed(key, data, expected_revision)
        rev = int(data["header"]["revision"])
        prev = _kv(data["responses"][0]["response_put"]["prev_kv"])
        return KeyValue(key=key, value=bytes(value), mod_revision=rev,
                        create_revision=prev.create_revision)

    async def delete(self, key: str, expected_revision: int | None = None) -> KeyValue:
        ok, data, ambiguous = await self._txn(
            key, self._exists_and_at(key, expected_revision),
            {"request_delete_range": {"key": _b64(key), "prev_kv": True}})
        if not ok:
            if ambiguous and expected_revision is not None and self._current_kv(data) is None:
                gone = await self._get_at(key, expected_revision)  # what our lost attempt deleted
                if gone is not None and gone.mod_revision == expected_revision:
                    return KeyValue(key=key, value=gone.value, mod_revision=int(data["header"]["revision"]),
                                    create_revision=gone.create_revision)
            raise self._failed(key, data, expected_revision)
        rev = int(data["header"]["revision"])
        prev = _kv(data["responses"][0]["response_delete_range"]["prev_kvs"][0])
        return KeyValue(key=key, value=prev.value, mod_revision=rev,
                        create_revision=prev.create_revision)

    async def compact(self, revision: int) -> None:
        try:
            await self._call("/v3/kv/compaction", {"revision": str(revision), "physical": True})
        except EtcdError as e:
            if "has been compacted" in str(e):
                self._compacted = max(self._compacted, revision)
                return  # already compacted at or past it: nothing to do
            if "future revision" in str(e):
                raise ValueError(f"cannot compact to {revision}: a future revision") from e
            raise
        self._compacted = max(self._compacted, revision)

    # ---- watch ----

    def watch(self, prefix: str, revision: int) -> AsyncIterator[WatchEvent]:
        return self._watch(prefix, revision)

    async def _watch(self, prefix: str, revision: int) -> AsyncIterator[WatchEvent]:
        """One member's watch after another, each resuming after the last revision delivered."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        failures = 0
        while True:
            index = self._current
            try:
                async for ev in self._watch_member(self.urls[index], prefix, revision):
                    yield ev
                    revision = ev.kv.mod_revision
                    deadline, failures = loop.time() + self._timeout, 0
                return
            except _Unreachable as e:
                if self._closing:
                    return
                failures += 1
                self._fail_over(index)
                if loop.time() >= deadline:
                    raise EtcdError(str(e)) from e
                if failures % len(self.urls) == 0:
                    await asyncio.sleep(_RETRY_PAUSE)

    async def _watch_member(self, url: str, prefix: str, revision: int) -> AsyncIterator[WatchEvent]:
        body = {"create_request": {"key": _range_key(prefix), "range_end": _range_end(prefix),
                                   "start_revision": str(revision + 1), "prev_kv": True}}
        try:
            resp = await self._sess().post(
                url + "/v3/watch", json=body,
                timeout=aiohttp.ClientTimeout(total=None, connect=self._attempt_timeout, sock_read=None))
        except (aiohttp.ClientError, TimeoutError) as e:
            refused = self._unreachable_or_refused(url, "/v3/watch", e)
            raise (refused if isinstance(refused, EtcdTLSError) else _Unreachable(str(refused), sent=False)) from e
        try:
            if resp.status != 200:
                text = (await resp.text())[:200]
                if resp.status == 503:
                    raise _Unreachable(f"etcd watch {url}: HTTP 503: {text}", sent=False)
                raise EtcdError(f"etcd watch: HTTP {resp.status}: {text}")
            parts: list[bytes] = []  # of the current line (one JSON message per line)
            async for chunk in resp.content.iter_any():
                while chunk:
                    i = chunk.find(b"\n")
                    if i < 0:
                        parts.append(chunk)
                        break
                    parts.append(chunk[:i])
                    line, parts, chunk = b"".join(parts), [], chunk[i + 1:]
                    if not line.strip():
                        continue
                    for ev in self._watch_message(json.loads(line), revision):
                        yield ev
                        revision = ev.kv.mod_revision
            if self._closing:
                return  # close() ended the stream, as it ends watches on every store
            raise _Unreachable(f"etcd watch {url}: stream ended", sent=False)
        except (aiohttp.ClientError, RuntimeError) as e:  # aiohttp: "Connection closed."
            if self._closing:
                return
            raise _Unreachable(f"etcd watch {url}: {e!r}", sent=False) from e
        finally:
            resp.close()

    def _watch_message(self, msg: dict[str, Any], revision: int) -> builtins.list[WatchEvent]:
        if "error" in msg:
            err = msg["error"]
            text = err.get("message", err) if isinstance(err, dict) else err
            raise EtcdError(f"etcd watch: {text}")
        result = msg.get("result", {})
        compact = int(result.get("compact_revision", 0))
        if compact:
            self._compacted = max(self._compacted, compact)
            raise Compacted(revision, compact)
        if result.get("canceled"):
            raise EtcdError(f"etcd watch canceled: {result.get('cancel_reason', '')}")
        events: list[WatchEvent] = []
        for e in result.get("events") or []:
            kv = _kv(e["kv"])
            prev = _kv(e["prev_kv"]) if e.get("prev_kv") else None
            if e.get("type") == "DELETE":
                events.append(WatchEvent(
                    type="DELETE",
                    kv=KeyValue(key=kv.key, value=prev.value if prev else b"",
                                mod_revision=kv.mod_revision,
                                create_revision=prev.create_revision if prev else 0),
                    prev=prev))
            else:
                events.append(WatchEvent(type="PUT", kv=kv, prev=prev,
                                         created=kv.create_revision == kv.mod_revision))
        return events
