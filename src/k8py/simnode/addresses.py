"""Addresses of simulated nodes and their pods; nothing ever sends traffic to them.

- node InternalIPs come only from the documentation ranges (192.0.2.0/24,
  198.51.100.0/24, 203.0.113.0/24: TEST-NET, never routed): `documentation_address(i)`;
- pod CIDRs for many nodes are carved from the top of the cluster CIDR down
  (`top_down_cidrs`), clear of node IPAM's /24s from the bottom up;
- `PodIPs` hands out the host addresses of a node's podCIDR to its pods.
Invariant: an address handed out to a pod is not handed out again until released.
"""

from __future__ import annotations

import ipaddress

DOC_NETWORKS = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")


def documentation_address(index: int) -> str | None:
    """The index-th host address of the TEST-NET ranges (762 of them), else None."""
    for net in DOC_NETWORKS:
        n = ipaddress.ip_network(net)
        if index < 254:
            return str(n.network_address + 1 + index)
        index -= 254
    return None


def top_down_cidrs(cluster_cidr: str, n: int) -> list[str]:
    """Pod CIDRs for n simulated nodes, carved from the top of the cluster CIDR down
    with the smallest mask that fits (node IPAM allocates /24s from the bottom up and
    skips every block a node already uses). 1,000 nodes in a /16 get /26s (61 pods)."""
    net = ipaddress.ip_network(cluster_cidr)
    mask = 24
    while 2 ** (mask - net.prefixlen) < n + 16 and mask < 28:  # leave some for node IPAM
        mask += 1
    step = 2 ** (net.max_prefixlen - mask)
    top = int(net.broadcast_address) + 1
    return [f"{ipaddress.ip_address(top - (i + 1) * step)}/{mask}" for i in range(n)]


class PodIPs:
    """Host addresses of a podCIDR handed out to pods (.1 is left for a gateway)."""

    def __init__(self, cidr: str) -> None:
        self.network = ipaddress.ip_network(cidr, strict=False)
        self._by_uid: dict[str, str] = {}
        self._used: set[str] = set()
        self._next = 2

    def reserve(self, uid: str, ip: str) -> None:
        self._by_uid[uid] = ip
        self._used.add(ip)

    def allocate(self, uid: str) -> str | None:
        if uid in self._by_uid:
            return self._by_uid[uid]
        size = self.network.num_addresses
        for _ in range(size):
            if self._next >= size - 1:
                self._next = 2
            ip = str(self.network.network_address + self._next)
            self._next += 1
            if ip not in self._used:
                self.reserve(uid, ip)
                return ip
        return None

    def release(self, uid: str) -> None:
        ip = self._by_uid.pop(uid, None)
        if ip is not None:
            self._used.discard(ip)
