"""The NetworkPolicy enforcer of a node: keeps the table `inet <table>` equal to what the
NetworkPolicies, Pods and Namespaces say (see `rules`).

Level-triggered: informer events only mark the state dirty; a sync builds the whole table
from the caches and, only when it differs from what was applied, applies the difference in
one atomic `nft -f` transaction (the first sync, and any after a failure or a vanished table,
replaces the table whole). Syncs are spaced by at least `min_sync_interval`, so a burst of
changes costs one transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time

from k8py.api.types import Obj
from k8py.api.wellknown import LABEL_METADATA_NAME, LABEL_SERVICE_NAME, NAMESPACE_SYSTEM
from k8py.client.client import Client
from k8py.client.informer import Informer
from k8py.clock import Clock, RealClock
from k8py.netpol import rules
from k8py.netpol.errors import NftError

log = logging.getLogger(__name__)

# The cluster DNS is served by each node's host, not by pods: its EndpointSlice addresses count
# as pods of kube-system labelled as CoreDNS's are, so `to: k8s-app=kube-dns` peers allow DNS.
DNS_SERVICE = "kube-dns"
DNS_POD_LABELS = {"k8s-app": "kube-dns"}


async def nft_apply(script: str) -> None:
    if not script:
        return
    proc = await asyncio.create_subprocess_exec(
        "nft", "-f", "-", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate(script.encode())
    if proc.returncode != 0:
        raise NftError(err.decode().strip()[:4000])


async def table_exists(table: str) -> bool:
    proc = await asyncio.create_subprocess_exec("nft", "list", "table", "inet", table,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    return await proc.wait() == 0


def dns_pods(slices: list[Obj]) -> list[rules.PodInfo]:
    """The cluster DNS's addresses as pods of kube-system (never this node's: not filtered)."""
    out = []
    for s in slices:
        for ep in s.get("endpoints") or []:
            for addr in (ep.get("addresses") or []) if isinstance(ep, dict) else []:
                out.append(rules.PodInfo(NAMESPACE_SYSTEM, f"{DNS_SERVICE}-{addr}", DNS_POD_LABELS, str(addr), ""))
    return out


class NetpolController:
    def __init__(self, client: Client, node_name: str, table: str, *, clock: Clock | None = None,
                 min_sync_interval: float = 0.05, resync_period: float = 30.0) -> None:
        self.node = node_name
        self.table = table
        self.clock = clock or RealClock()
        self.min_sync_interval = min_sync_interval
        self.resync_period = resync_period
        self.policies = Informer(client, "networkpolicies", clock=self.clock)
        self.pods = Informer(client, "pods", clock=self.clock)
        self.namespaces = Informer(client, "namespaces", clock=self.clock)
        self.dns = Informer(client, "endpointslices", NAMESPACE_SYSTEM, f"{LABEL_SERVICE_NAME}={DNS_SERVICE}",
                            clock=self.clock)
        self.informers = (self.policies, self.pods, self.namespaces, self.dns)
        self._dirty = asyncio.Event()
        self._applied: rules.Table | None = None
        self.last_sync_seconds = 0.0
        self.syncs = 0
        for inf in self.informers:
            inf.add_event_handler(on_add=self._mark, on_update=lambda o, n: self._mark(n), on_delete=self._mark)

    def _mark(self, _obj: Obj) -> None:
        self._dirty.set()

    def state(self) -> rules.State:
        pods = [p for p in (rules.pod_info(o) for o in self.pods.list()) if p is not None]
        namespaces = {str(n["metadata"]["name"]): {**(n["metadata"].get("labels") or {}),
                                                   LABEL_METADATA_NAME: str(n["metadata"]["name"])}
                      for n in self.namespaces.list()}
        return rules.State(self.policies.list(), pods + dns_pods(self.dns.list()), namespaces)

    async def sync(self) -> bool:
        """Build; apply what changed. True if it applied something."""
        t0 = time.perf_counter()
        want = rules.build(self.state(), self.node)
        if want == self._applied:
            return False
        if self._applied is None:
            await nft_apply(rules.full(want, self.table))
        else:
            try:
                await nft_apply(rules.diff(self._applied, want, self.table))
            except NftError:
                log.exception("netpol: incremental sync failed; replacing the table")
                self._applied = None
                await nft_apply(rules.full(want, self.table))
        self._applied = want
        self.last_sync_seconds = time.perf_counter() - t0
        self.syncs += 1
        return True

    async def _resync_ticker(self) -> None:
        """Now and then, check that the table is still there (someone may have flushed the
        ruleset): if not, the next sync applies it again."""
        while True:
            await self.clock.sleep(self.resync_period)
            if not await table_exists(self.table):
                self._applied = None
                self._dirty.set()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for inf in self.informers:
                tg.create_task(inf.run())
            tg.create_task(self._resync_ticker())
            for inf in self.informers:
                await inf.wait_synced()
            self._dirty.set()
            while True:
                await self._dirty.wait()
                self._dirty.clear()
                try:
                    await self.sync()
                except Exception:
                    log.exception("netpol: sync failed")
                    self._applied = None
                    self._dirty.set()
                await self.clock.sleep(self.min_sync_interval)
