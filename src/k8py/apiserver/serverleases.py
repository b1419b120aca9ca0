"""Every live server of the cluster in the `kubernetes` Service's endpoints (Kubernetes' lease
endpoint reconciler, `--endpoint-reconciler-type=lease`).

Each API server keeps a record `/registry/masterleases/<address>:<port>` in the store and
rewrites it every `interval` (10 s, Kubernetes'); a record that stayed unchanged (same
mod_revision) for `ttl` (15 s, Kubernetes') on this server's own clock is a dead server's:
it is deleted (CAS on that revision, so a late renewal wins) and left out. After each pass
the `kubernetes` Endpoints and EndpointSlice(s) name exactly the live servers, sorted
(`bootstrap.write_endpoints`: one subset and one slice per port, as servers on one machine
differ by port). Judging staleness by each observer's clock, as leader election does,
needs no clock agreement between machines. A server stopping gracefully deletes its record
and rewrites the endpoints without itself (`remove`), as kube-apiserver does at shutdown.
"""

from __future__ import annotations

import asyncio
import json
import logging

from k8py.apiserver import bootstrap
from k8py.apiserver.config import ApiServerConfig
from k8py.apiserver.registry import Registry
from k8py.clock import Clock
from k8py.store.errors import Conflict, KeyExists, NotFound

log = logging.getLogger(__name__)
PREFIX = "/registry/masterleases/"
TTL = 15.0
INTERVAL = 10.0
REMOVE_TIMEOUT = 5.0  # a stop does not wait longer for a store that does not answer

Server = tuple[str, int]


class ServerLeases:
    """This server's record and the `kubernetes` endpoints of every live server."""

    def __init__(self, reg: Registry, config: ApiServerConfig, clock: Clock, *, ttl: float = TTL,
                 interval: float = INTERVAL) -> None:
        self.reg, self.config, self.clock = reg, config, clock
        self.ttl, self.interval = ttl, interval
        self._seen: dict[str, tuple[int, float]] = {}  # key -> (mod_revision, when this server saw it first)
        self._task: asyncio.Task[None] | None = None
        self.live: list[Server] = []

    @property
    def me(self) -> Server:
        return (self.config.advertise_address, self.config.port)

    def _key(self, s: Server) -> str:
        return f"{PREFIX}{s[0]}:{s[1]}"

    async def renew(self) -> None:
        """Rewrite this server's record (a new mod_revision is what tells the others it lives)."""
        key = self._key(self.me)
        value = json.dumps({"address": self.me[0], "port": self.me[1], "renewTime": self.clock.now()}).encode()
        store = self.reg.store
        for _ in range(5):
            kv = await store.get(key)
            try:
                if kv is None:
                    await store.create(key, value)
                else:
                    await store.update(key, value, kv.mod_revision)
                return
            except (KeyExists, Conflict, NotFound):
                continue

    async def live_servers(self) -> list[Server]:
        """The servers whose record changed within the TTL (this one always); stale records deleted."""
        now = self.clock.monotonic()
        out = {self.me}
        seen: dict[str, tuple[int, float]] = {}
        for kv in (await self.reg.store.list(PREFIX)).items:
            rev, since = self._seen.get(kv.key, (kv.mod_revision, now))
            if rev != kv.mod_revision:
                rev, since = kv.mod_revision, now
            seen[kv.key] = (rev, since)
            try:
                doc = json.loads(kv.value)
                server = (str(doc["address"]), int(doc["port"]))
            except (ValueError, KeyError, TypeError):
                continue
            if server != self.me and now - since >= self.ttl:
                await self._expire(kv.key, kv.mod_revision)
                continue
            out.add(server)
        self._seen = seen
        return sorted(out)

    async def _expire(self, key: str, rev: int) -> None:
        try:
            await self.reg.store.delete(key, expected_revision=rev)
            log.info("server record %s expired: out of the kubernetes endpoints", key.removeprefix(PREFIX))
        except (NotFound, Conflict):
            pass

    async def reconcile(self) -> None:
        """One pass: renew, find the live servers, write the endpoints if they changed."""
        await self.renew()
        live = await self.live_servers()
        await bootstrap.write_endpoints(self.reg, self.config, live)
        self.live = live

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="k8py-server-leases")

    async def _run(self) -> None:
        while True:
            try:
                await self.reconcile()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a store hiccup: the next pass tries again
                log.exception("reconciling the kubernetes endpoints failed; retrying")
            await self.clock.sleep(self.interval)

    async def remove(self) -> None:
        """Stop renewing; delete this server's record and leave the endpoints to the others."""
        if self._task is None:
            return
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        try:
            await asyncio.wait_for(self._leave(), REMOVE_TIMEOUT)
        except Exception:  # noqa: BLE001 - shutting down: the others expire this record anyway
            log.warning("could not remove this server from the kubernetes endpoints", exc_info=True)

    async def _leave(self) -> None:
        kv = await self.reg.store.get(self._key(self.me))
        if kv is not None:
            await self._expire(kv.key, kv.mod_revision)
        others = [s for s in await self.live_servers() if s != self.me]
        if others:
            await bootstrap.write_endpoints(self.reg, self.config, others)
