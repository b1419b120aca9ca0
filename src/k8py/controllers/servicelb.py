"""LoadBalancer addresses: every Service of type LoadBalancer gets its own address
from a pool (as MetalLB does; k3s's servicelb instead shares node addresses, which
allows only one service per port).

The default pool is a block of loopback addresses (127.0.100.1-254): on a single
machine they are local, so the service proxy's rules answer on them, and two
LoadBalancer services can both use port 80. Invariants: an address belongs to at
most one service (the lowest free one is handed out, under one worker so two
services never race for it); a service that stops being a LoadBalancer releases
its address; addresses outside the pool (set by someone else) are left alone.
"""

from __future__ import annotations

import copy
import ipaddress

from k8py.api.types import Obj
from k8py.client.client import Client
from k8py.client.events import EventRecorder
from k8py.client.informer import SharedInformerFactory, split_key
from k8py.clock import Clock
from k8py.controllers.base import Controller

DEFAULT_POOL = "127.0.100.0/24"


class ServiceLoadBalancerController(Controller):
    name = "service-lb-controller"

    def __init__(self, client: Client, factory: SharedInformerFactory, clock: Clock,
                 recorder: EventRecorder | None = None, pool: str = DEFAULT_POOL) -> None:
        super().__init__(client, factory, clock, recorder, workers=1)  # one worker: no allocation races
        self.pool = ipaddress.ip_network(pool, strict=False)
        # Addresses this controller handed out, by service key: the informer cache may
        # not show a write yet, and the next sync must not hand the same address out.
        self._assigned: dict[str, str] = {}
        self._written_rv: dict[str, int] = {}  # resourceVersion of our last status write, by key
        self.services = self.informer("services")
        self.watch(self.services, self.enqueue, self.enqueue)

    def _pool_ips(self, svc: Obj) -> list[str]:
        ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        return [i["ip"] for i in ingress if i.get("ip") and ipaddress.ip_address(i["ip"]) in self.pool]

    def _used(self, except_key: str) -> set[str]:
        used: set[str] = set()
        for s in self.services.list():
            md = s["metadata"]
            if f"{md['namespace']}/{md['name']}" != except_key:
                used.update(self._pool_ips(s))
        used.update(ip for k, ip in self._assigned.items() if k != except_key)
        return used

    async def sync(self, key: str) -> None:
        ns, name = split_key(key)
        svc = self.services.get(ns, name)
        if svc is None:
            self._assigned.pop(key, None)
            self._written_rv.pop(key, None)
            return
        is_lb = (svc.get("spec") or {}).get("type") == "LoadBalancer"
        mine = self._pool_ips(svc)
        used = self._used(key)
        if is_lb and mine and not (set(mine) & used):
            self._assigned[key] = mine[0]
            return
        if is_lb and key in self._assigned and not mine:
            if int(svc["metadata"].get("resourceVersion") or 0) < self._written_rv.get(key, 0):
                return  # our write is not in the cache yet; its update event will come
            self._assigned.pop(key)  # someone removed the address since: allocate again
        new = copy.deepcopy(svc)
        status = new.setdefault("status", {})
        if not is_lb:
            self._assigned.pop(key, None)
            if not mine:
                return
            status["loadBalancer"] = {}
            await self.client.update_status("services", new)
            return
        free = next((str(ip) for ip in self.pool.hosts() if str(ip) not in used), None)
        if free is None:
            self.recorder.event(svc, "Warning", "AllocationFailed",
                                      f"no free address left in the LoadBalancer pool {self.pool}")
            return
        status["loadBalancer"] = {"ingress": [{"ip": free, "ipMode": "VIP"}]}
        written = await self.client.update_status("services", new)
        self._assigned[key] = free
        self._written_rv[key] = int(written["metadata"]["resourceVersion"])
        self.recorder.event(svc, "Normal", "IPAllocated", f"Assigned IP [\"{free}\"]")
