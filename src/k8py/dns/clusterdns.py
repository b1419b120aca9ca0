"""Cluster DNS as a node component: serves the cluster zone on the node and
publishes itself as the `kube-dns` Service of kube-system.

The Service has the conventional address (the service CIDR's .10) and no
selector; this component writes its EndpointSlice (and Endpoints) pointing at the
address it listens on, so the service proxy carries pods' queries for
10.43.0.10:53 to it. Invariants: only objects named kube-dns / kube-dns-<node>
are written; writes are create-or-compare-and-swap. The server's kept answers are
dropped on every Service or EndpointSlice event, so a change answers at once.
"""

from __future__ import annotations

import asyncio
import logging

from k8py.api.types import Obj
from k8py.api.wellknown import LABEL_MANAGED_BY, LABEL_SERVICE_NAME, NAMESPACE_SYSTEM
from k8py.client.client import Client, retry_on_conflict
from k8py.client.errors import ApiError
from k8py.client.informer import Informer
from k8py.clock import Clock, RealClock
from k8py.dns.records import ClusterZone
from k8py.dns.server import DnsServer

log = logging.getLogger(__name__)
LABELS = {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS", "kubernetes.io/cluster-service": "true"}


class ClusterDNS:
    def __init__(self, client: Client, node_name: str, listen_ip: str, *, port: int = 53,
                 service_ip: str = "10.43.0.10", zone: str = "cluster.local",
                 upstreams: list[str] | None = None, clock: Clock | None = None, workers: int = 0) -> None:
        self.client = client
        self.node = node_name
        self.listen_ip = listen_ip
        self.port = port
        self.service_ip = service_ip
        clock = clock or RealClock()
        self.services = Informer(client, "services", clock=clock)
        self.slices = Informer(client, "endpointslices", clock=clock)
        self.slices.add_index("service", lambda o: [
            f"{o['metadata'].get('namespace')}/{(o['metadata'].get('labels') or {}).get(LABEL_SERVICE_NAME, '')}"])
        self.services.add_index("ip", lambda o: [(o.get("spec") or {}).get("clusterIP") or ""])
        self.zone = ClusterZone(
            lambda ns, name: self.services.get(ns, name),
            lambda ns, name: self.slices.by_index("service", f"{ns}/{name}"),
            self._reverse, zone)
        self.server = DnsServer(self.zone, upstreams, workers=workers)
        for inf in (self.services, self.slices):  # the informer's cache is already updated when these run
            inf.add_event_handler(on_add=self._changed, on_update=lambda _old, _new: self.server.invalidate(),
                                  on_delete=self._changed)

    def _changed(self, _obj: Obj) -> None:
        self.server.invalidate()

    def _reverse(self, ip: str) -> str | None:
        for svc in self.services.by_index("ip", ip):
            md = svc["metadata"]
            return f"{md['name']}.{md['namespace']}.svc.{self.zone.zone}."
        return None

    async def publish(self) -> None:
        """Create or update the kube-dns Service, EndpointSlice and Endpoints."""
        svc = {"metadata": {"name": "kube-dns", "namespace": NAMESPACE_SYSTEM, "labels": LABELS},
               "spec": {"clusterIP": self.service_ip, "ports": [
                   {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                   {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]}}
        try:
            await self.client.create("services", svc)
        except ApiError as e:
            if not e.already_exists:
                raise
        ports = [{"name": "dns", "port": self.port, "protocol": "UDP"},
                 {"name": "dns-tcp", "port": self.port, "protocol": "TCP"}]
        slice_ = {"metadata": {"name": f"kube-dns-{self.node}", "namespace": NAMESPACE_SYSTEM,
                               "labels": {LABEL_SERVICE_NAME: "kube-dns", LABEL_MANAGED_BY: "k8py-dns"}},
                  "addressType": "IPv4", "ports": ports,
                  "endpoints": [{"addresses": [self.listen_ip], "nodeName": self.node,
                                 "conditions": {"ready": True, "serving": True, "terminating": False}}]}
        await self._put("endpointslices", slice_)
        eps = {"metadata": {"name": "kube-dns", "namespace": NAMESPACE_SYSTEM, "labels": LABELS},
               "subsets": [{"addresses": [{"ip": self.listen_ip, "nodeName": self.node}], "ports": ports}]}
        await self._put("endpoints", eps)

    async def _put(self, resource: str, obj: Obj) -> None:
        async def write() -> None:
            cur = await self.client.get_or_none(resource, obj["metadata"]["name"], NAMESPACE_SYSTEM)
            if cur is None:
                try:
                    await self.client.create(resource, obj)
                    return
                except ApiError as e:
                    if not e.already_exists:  # another node's DNS created it first: update that one
                        raise
                cur = await self.client.get(resource, obj["metadata"]["name"], NAMESPACE_SYSTEM)
            new = {**cur, **{k: v for k, v in obj.items() if k != "metadata"}}
            new["metadata"] = {**cur["metadata"], "labels": obj["metadata"]["labels"]}
            if new != cur:
                await self.client.update(resource, new)
        await retry_on_conflict(write)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.services.run())
            tg.create_task(self.slices.run())
            await self.services.wait_synced()
            await self.slices.wait_synced()
            tg.create_task(self.server.serve(self.listen_ip, self.port))
            await retry_on_conflict(self.publish)
