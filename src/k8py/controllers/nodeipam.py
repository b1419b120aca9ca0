"""Node IPAM controller: gives every Node without one a pod subnet (spec.podCIDR and
spec.podCIDRs) cut from the cluster CIDR (10.42.0.0/16, /24 per node by default), as
kube-controller-manager's range allocator.

Invariants: after the first full list every CIDR already on a node is marked used
before anything is handed out, so no two nodes share a subnet; a CIDR is freed when
its node is deleted; a node that already has a podCIDR is never changed. When the
range is exhausted the node gets a Warning `CIDRNotAvailable` event and is retried
when a node goes away.
"""

from __future__ import annotations

import ipaddress

from k8py.api.types import Obj
from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.client.events import WARNING, EventRecorder
from k8py.client.informer import Informer, SharedInformerFactory
from k8py.client.workqueue import WorkQueue, run_workers
from k8py.clock import Clock, RealClock

CLUSTER_CIDR = "10.42.0.0/16"
NODE_CIDR_MASK_SIZE = 24


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _subnet_of(net: Network, of: Network) -> bool:
    """Whether `net` lies inside `of` (False for networks of different IP versions)."""
    if isinstance(net, ipaddress.IPv4Network) and isinstance(of, ipaddress.IPv4Network):
        return net.subnet_of(of)
    if isinstance(net, ipaddress.IPv6Network) and isinstance(of, ipaddress.IPv6Network):
        return net.subnet_of(of)
    return False


class CidrSet:
    """The /mask subnets of a cluster CIDR, each free or used."""

    def __init__(self, cluster_cidr: str, mask: int) -> None:
        self.network = ipaddress.ip_network(cluster_cidr)
        if mask < self.network.prefixlen:
            raise ValueError(f"node mask /{mask} is larger than the cluster CIDR {cluster_cidr}")
        self.mask = mask
        self.size: int = 2 ** (mask - self.network.prefixlen)
        self._step: int = 2 ** (self.network.max_prefixlen - mask)
        self._used: set[int] = set()
        self._next = 0

    def _index(self, cidr: str) -> int | None:
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return None
        if net.prefixlen != self.mask or not _subnet_of(net, self.network):
            return None
        return (int(net.network_address) - int(self.network.network_address)) // self._step

    def occupy(self, cidr: str) -> bool:
        """Mark used every block that overlaps `cidr` (of any prefix length)."""
        i = self._index(cidr)
        if i is not None:
            self._used.add(i)
            return True
        for j in self._overlapping(cidr):
            self._used.add(j)
        return False

    def _overlapping(self, cidr: str) -> range:
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return range(0)
        if net.version != self.network.version:
            return range(0)
        lo = max(int(net.network_address), int(self.network.network_address))
        hi = min(int(net.broadcast_address), int(self.network.broadcast_address))
        if lo > hi:
            return range(0)
        base = int(self.network.network_address)
        return range((lo - base) // self._step, (hi - base) // self._step + 1)

    def release(self, cidr: str) -> None:
        i = self._index(cidr)
        if i is not None:
            self._used.discard(i)

    def allocate(self) -> str | None:
        for k in range(self.size):
            i = (self._next + k) % self.size
            if i not in self._used:
                self._used.add(i)
                self._next = (i + 1) % self.size
                addr = ipaddress.ip_address(int(self.network.network_address) + i * self._step)
                return f"{addr}/{self.mask}"
        return None


class NodeIpamController:
    def __init__(self, client: Client, clock: Clock | None = None, *, cluster_cidr: str = CLUSTER_CIDR,
                 node_cidr_mask_size: int = NODE_CIDR_MASK_SIZE,
                 factory: SharedInformerFactory | None = None) -> None:
        self.client = client
        self.clock: Clock = clock or RealClock()
        self.cidrs = CidrSet(cluster_cidr, node_cidr_mask_size)
        self.factory = factory or SharedInformerFactory(client, self.clock)
        self.nodes: Informer = self.factory.informer("nodes")
        self.queue: WorkQueue[str] = WorkQueue(self.clock, name="nodeipam")
        self.recorder = EventRecorder(client, "node-controller", self.clock)
        self._assigned: dict[str, str] = {}  # node -> cidr we know it has
        self.nodes.add_event_handler(self._on_node, lambda old, new: self._on_node(new), self._on_delete)

    def _on_node(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        cidr = (node.get("spec") or {}).get("podCIDR")
        if cidr:
            if self._assigned.get(name) != cidr:
                self.cidrs.occupy(cidr)
                self._assigned[name] = cidr
        else:
            self.queue.add(name)

    def _on_delete(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        cidr = self._assigned.pop(name, None) or (node.get("spec") or {}).get("podCIDR")
        if cidr:
            self.cidrs.release(cidr)
            for other in self.nodes.list():  # someone may have been waiting for room
                if not (other.get("spec") or {}).get("podCIDR"):
                    self.queue.add(other["metadata"]["name"])

    async def sync(self, name: str) -> None:
        node = self.nodes.get(None, name)
        if node is None or (node.get("spec") or {}).get("podCIDR") or name in self._assigned:
            return
        cidr = self.cidrs.allocate()
        if cidr is None:
            self.recorder.event(node, WARNING, "CIDRNotAvailable",
                                f"Node {name} status is now: CIDRNotAvailable")
            return
        try:
            await self.client.patch("nodes", name, {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})
            self._assigned[name] = cidr
        except ApiError as e:
            self.cidrs.release(cidr)
            if not e.not_found:
                raise

    async def run(self) -> None:
        if self.queue.shutting_down:  # run again after a crash: a fresh queue
            self.queue = WorkQueue(self.clock, name="nodeipam")
        self.factory.start()
        await self.nodes.wait_synced()
        await run_workers(self.queue, self.sync, 1)


def mask_for(nodes: int, cluster_cidr: str = CLUSTER_CIDR, preferred: int = NODE_CIDR_MASK_SIZE) -> int:
    """The per-node mask: /24 unless the cluster needs more subnets than that allows
    (e.g. 1,000 simulated nodes in a /16 get /26s, 62 pod IPs each)."""
    base = ipaddress.ip_network(cluster_cidr).prefixlen
    mask = preferred
    while 2 ** (mask - base) < nodes and mask < 28:
        mask += 1
    return mask
