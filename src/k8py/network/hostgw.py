"""host-gw pod routing: every other node's podCIDR through that node's address.

As flannel's host-gw backend: the nodes share one link (here the host bridge of the
node hosts, `k8py.nodehost`), so a packet for a pod on another node is sent straight
to that node's InternalIP, which forwards it to its pod bridge. `desired_routes` turns
the Node objects into {podCIDR: InternalIP}; `HostGwRoutes` keeps the routes of one
device equal to it (level-triggered: any Node event recomputes the whole set).

Invariants (network safety): a route is only ever made through an address inside the
given node network (the local link), never for the node's own podCIDR, never for a
podCIDR that overlaps another one; the routes carry their own protocol number
(`ROUTE_PROTO`), and only routes of that protocol on the given device are ever deleted.
"""

from __future__ import annotations

import ipaddress
import json
import logging

from k8py.api.types import Obj
from k8py.client.client import Client
from k8py.clock import Clock
from k8py.network.nodesync import NodeSync, run_tool

log = logging.getLogger(__name__)

ROUTE_PROTO = "77"  # the rtnetlink protocol number marking k8py's host-gw routes


def internal_ip(node: Obj) -> str:
    for a in (node.get("status") or {}).get("addresses") or []:
        if a.get("type") == "InternalIP":
            return str(a.get("address") or "")
    return ""


def desired_routes(nodes: list[Obj], own_node: str, node_network: str) -> dict[str, str]:
    """{podCIDR: via} for every node but `own_node` having a podCIDR and an InternalIP
    inside `node_network`; of two overlapping podCIDRs neither is routed."""
    link = ipaddress.ip_network(node_network, strict=False)
    found: dict[str, str] = {}
    for node in sorted(nodes, key=lambda n: str(n["metadata"].get("name"))):
        if node["metadata"].get("name") == own_node:
            continue
        cidr, via = (node.get("spec") or {}).get("podCIDR") or "", internal_ip(node)
        try:
            net, addr = ipaddress.ip_network(cidr, strict=False), ipaddress.ip_address(via)
        except ValueError:
            continue
        if addr not in link or addr in (link.network_address, link.broadcast_address) or net.overlaps(link):
            continue
        found[str(net)] = via
    nets = [ipaddress.ip_network(c) for c in found]
    return {c: v for c, v in found.items()
            if not any(n != ipaddress.ip_network(c) and n.overlaps(ipaddress.ip_network(c)) for n in nets)}


def route_changes(current: dict[str, str], want: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """(routes to add or change, destinations to delete)."""
    put = {c: v for c, v in want.items() if current.get(c) != v}
    return put, sorted(c for c in current if c not in want)


async def _ip(*args: str) -> tuple[int, str]:
    return await run_tool("ip", *args)


async def link_of(node_network: str) -> str:
    """The device of this namespace holding an address inside `node_network` ("" if none)."""
    link = ipaddress.ip_network(node_network, strict=False)
    rc, out = await _ip("-j", "-4", "addr", "show")
    for dev in json.loads(out) if rc == 0 and out else []:
        for a in dev.get("addr_info") or []:
            if ipaddress.ip_address(a.get("local", "0.0.0.0")) in link:
                return str(dev.get("ifname"))
    return ""


class HostGwRoutes:
    """Keeps the host-gw routes on `dev` (in this process's network namespace)."""

    def __init__(self, client: Client, clock: Clock, own_node: str, dev: str, node_network: str) -> None:
        self.own_node = own_node
        self.dev = dev
        self.node_network = node_network
        self.clock = clock
        self.loop = NodeSync(client, clock, "host-gw")
        self.nodes = self.loop.nodes

    async def current(self) -> dict[str, str]:
        rc, out = await _ip("-j", "route", "show", "dev", self.dev, "proto", ROUTE_PROTO)
        if rc != 0 or not out:
            return {}
        return {r["dst"]: r.get("gateway", "") for r in json.loads(out) if "/" in r.get("dst", "")}

    async def sync(self) -> None:
        want = desired_routes(self.nodes.list(), self.own_node, self.node_network)
        put, delete = route_changes(await self.current(), want)
        for cidr in delete:
            await _ip("route", "del", cidr, "dev", self.dev, "proto", ROUTE_PROTO)
        for cidr, via in put.items():
            rc, err = await _ip("route", "add", cidr, "via", via, "dev", self.dev, "proto", ROUTE_PROTO)
            if rc != 0 and "File exists" in err and await self._ours(cidr):
                rc, err = await _ip("route", "replace", cidr, "via", via, "dev", self.dev, "proto", ROUTE_PROTO)
            if rc != 0:
                log.warning("host-gw: no route to %s via %s: %s", cidr, via, err)

    async def _ours(self, cidr: str) -> bool:
        """Whether the route already there for `cidr` is one of ours (never take another's)."""
        rc, out = await _ip("-j", "route", "show", "exact", cidr)
        return rc == 0 and bool(out) and all(r.get("dev") == self.dev and str(r.get("protocol")) == ROUTE_PROTO
                                             for r in json.loads(out))

    async def run(self) -> None:
        while not self.dev:  # the link comes with the node host: wait for it
            self.dev = await link_of(self.node_network)
            if not self.dev:
                await self.clock.sleep(0.5)
        await self.loop.run(self.sync, (OSError, ValueError))
