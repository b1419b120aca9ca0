"""The service proxy of a node: keeps the `k8py` nftables table equal to what the
Services and EndpointSlices say.

Level-triggered: informer events only mark the state dirty; the sync loop
recomputes the whole model from the caches, diffs it against what it last
applied, and applies the difference in one atomic `nft` transaction (the first
sync, and any sync after a failure, rewrites the table whole). Syncs are spaced
by at least `min_sync_interval` so a burst of changes costs one transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time

from k8py.api.types import Obj
from k8py.api.wellknown import LABEL_SERVICE_NAME
from k8py.client.client import Client
from k8py.client.informer import Informer
from k8py.clock import Clock, RealClock
from k8py.proxy import nft, rules
from k8py.proxy.model import ServicePort, service_ports

log = logging.getLogger(__name__)


class Proxier:
    def __init__(self, client: Client, node_name: str, cluster_cidr: str, *,
                 clock: Clock | None = None, table: str = rules.TABLE,
                 min_sync_interval: float = 0.05, resync_period: float = 30.0) -> None:
        self.client = client
        self.node = node_name
        self.cluster_cidr = cluster_cidr
        self.clock = clock or RealClock()
        self.table = table
        self.min_sync_interval = min_sync_interval
        self.resync_period = resync_period
        self.services = Informer(client, "services", clock=self.clock)
        self.slices = Informer(client, "endpointslices", clock=self.clock)
        self.slices.add_index("service", lambda o: [
            f"{o['metadata'].get('namespace')}/{(o['metadata'].get('labels') or {}).get(LABEL_SERVICE_NAME, '')}"])
        self._dirty = asyncio.Event()
        self._applied: rules.Ruleset | None = None
        self._rendered: dict[ServicePort, rules.Ruleset] = {}  # per ServicePort, reused between syncs
        self.last_sync_seconds = 0.0
        self.syncs = 0
        for inf in (self.services, self.slices):
            inf.add_event_handler(on_add=self._mark, on_update=lambda o, n: self._mark(n),
                                  on_delete=self._mark)

    def _mark(self, _obj: Obj) -> None:
        self._dirty.set()

    def desired(self) -> rules.Ruleset:
        ports = []
        for svc in self.services.list():
            md = svc["metadata"]
            slices = self.slices.by_index("service", f"{md['namespace']}/{md['name']}")
            ports += service_ports(svc, slices)
        return rules.build(ports, self.node, self.cluster_cidr, self._rendered)

    async def sync(self) -> None:
        want = self.desired()
        t0 = time.perf_counter()
        if self._applied is None:
            await nft.apply(rules.full(want, self.table))
        else:
            try:
                await nft.apply(rules.diff(self._applied, want, self.table))
            except Exception:
                log.exception("proxy: incremental sync failed; rewriting the table")
                self._applied = None
                await nft.apply(rules.full(want, self.table))
        self._applied = want
        self.last_sync_seconds = time.perf_counter() - t0
        self.syncs += 1

    async def _resync_ticker(self) -> None:
        """Now and then, check that the table is still there (someone may have flushed
        the ruleset): if not, the next sync rewrites it whole."""
        while True:
            await self.clock.sleep(self.resync_period)
            if not await nft.table_exists(self.table):
                self._applied = None
                self._dirty.set()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.services.run())
            tg.create_task(self.slices.run())
            tg.create_task(self._resync_ticker())
            await self.services.wait_synced()
            await self.slices.wait_synced()
            self._dirty.set()
            while True:
                await self._dirty.wait()
                self._dirty.clear()
                try:
                    await self.sync()
                except Exception:
                    log.exception("proxy: sync failed")
                    self._applied = None
                    self._dirty.set()
                await self.clock.sleep(self.min_sync_interval)

