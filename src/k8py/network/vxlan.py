"""VXLAN pod routing (flannel's vxlan backend): pods of other nodes through a vxlan device.

Each node has a Linux vxlan device `VXLAN_DEV` (VNI 1, UDP port 8472, nolearning) on its
node address, with the node link's MTU less 50 (`network.mtu`: the pods get the same); its
VTEP address is the first address of its podCIDR (as flannel's `flannel.1`), and its VTEP
MAC is published in the Node annotation `VTEP_MAC_ANNOTATION`.
For every other node with a podCIDR, an InternalIP and a VTEP MAC, `desired_peers` gives
what the node keeps: a route podCIDR via that node's VTEP address (onlink, dev vxlan), a
permanent neighbour entry VTEP address -> MAC, and an FDB entry MAC -> node IP.

Invariants: no peer for the node itself, for a podCIDR overlapping another one, or for a
malformed MAC/address; everything is kept on the node's own device only, so removing the
device (teardown) removes every route, neighbour and FDB entry it carried.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from k8py.api.types import Obj
from k8py.client.client import Client
from k8py.clock import Clock
from k8py.network.hostgw import internal_ip
from k8py.network.mtu import mtu_for, node_link_mtu
from k8py.network.nodesync import NodeSync, run_tool

log = logging.getLogger(__name__)

VXLAN_DEV = "k8py.1"  # <= 15 characters (IFNAMSIZ)
VNI = 1
DSTPORT = 8472
VTEP_MAC_ANNOTATION = "k8py.io/vtep-mac"
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


@dataclass(frozen=True)
class Peer:
    """What one node keeps for another node `name`."""

    name: str
    pod_cidr: str  # routed via `vtep_ip` onlink on the vxlan device
    vtep_ip: str  # neighbour entry: vtep_ip -> vtep_mac (permanent)
    vtep_mac: str  # FDB entry: vtep_mac -> node_ip (permanent)
    node_ip: str


def vtep_ip(pod_cidr: str) -> str:
    """A node's VTEP address: its podCIDR's network address (flannel's x.y.z.0/32)."""
    return str(ipaddress.ip_network(pod_cidr, strict=False).network_address)


def _peer(node: Obj) -> Peer | None:
    meta = node.get("metadata") or {}
    cidr = str((node.get("spec") or {}).get("podCIDR") or "")
    mac = str((meta.get("annotations") or {}).get(VTEP_MAC_ANNOTATION) or "").lower()
    ip = internal_ip(node)
    try:
        net, _ = ipaddress.ip_network(cidr, strict=False), ipaddress.ip_address(ip)
    except ValueError:
        return None
    if not _MAC.match(mac) or net.version != 4:
        return None
    return Peer(str(meta.get("name")), str(net), str(net.network_address), mac, ip)


def desired_peers(nodes: list[Obj], own_node: str) -> list[Peer]:
    """The peers of `own_node` (every other complete node), sorted by name; of two
    overlapping podCIDRs neither is kept."""
    found = [p for n in nodes if (n.get("metadata") or {}).get("name") != own_node
             for p in [_peer(n)] if p is not None]
    nets = {p.name: ipaddress.ip_network(p.pod_cidr) for p in found}
    return sorted((p for p in found if not any(o != p.name and nets[o].overlaps(nets[p.name]) for o in nets)),
                  key=lambda p: p.name)


def commands(peers: list[Peer], dev: str = VXLAN_DEV) -> list[list[str]]:
    """The `ip` commands (idempotent: replace/append) that install `peers` on `dev`."""
    out: list[list[str]] = []
    for p in peers:
        out.append(["neigh", "replace", p.vtep_ip, "lladdr", p.vtep_mac, "dev", dev, "nud", "permanent"])
        out.append(["route", "replace", p.pod_cidr, "via", p.vtep_ip, "dev", dev, "onlink"])
    return out


def fdb_commands(peers: list[Peer], dev: str = VXLAN_DEV) -> list[list[str]]:
    """The `bridge fdb` commands that map each peer's VTEP MAC to its node address."""
    return [["fdb", "replace", p.vtep_mac, "dev", dev, "dst", p.node_ip, "self", "permanent"] for p in peers]


def device_commands(own_pod_cidr: str, node_ip: str, dev: str = VXLAN_DEV, mtu: int = 0) -> list[list[str]]:
    """The `ip` commands that make this node's vxlan device with its VTEP address and its MTU
    (`mtu`: the node link's MTU less the encapsulation, `network.mtu`; 0: the kernel's choice)."""
    return [["link", "add", dev, "type", "vxlan", "id", str(VNI), "local", node_ip, "dstport", str(DSTPORT),
             "nolearning"],
            *([["link", "set", dev, "mtu", str(mtu)]] if mtu > 0 else []),
            ["addr", "replace", f"{vtep_ip(own_pod_cidr)}/32", "dev", dev],
            ["link", "set", dev, "up"]]


def stale(current: list[dict[str, Any]], key: str, want: set[str]) -> list[str]:
    """The values of `key` in `current` (an `ip -j` listing) that are not wanted."""
    return sorted({str(e[key]) for e in current if e.get(key) and str(e[key]) not in want})


class VxlanNetwork:
    """Keeps this node's vxlan device, its published VTEP MAC and its peers' entries (in this
    process's network namespace); removes the device when cancelled."""

    def __init__(self, client: Client, clock: Clock, own_node: str, node_ip: str, dev: str = VXLAN_DEV) -> None:
        self.client, self.clock, self.own_node, self.node_ip, self.dev = client, clock, own_node, node_ip, dev
        self.loop = NodeSync(client, clock, "vxlan")
        self.nodes = self.loop.nodes
        self.mac = ""

    async def ensure_device(self, pod_cidr: str) -> None:
        rc, out = await run_tool("ip", "-j", "-d", "link", "show", self.dev)
        info = json.loads(out)[0] if rc == 0 and out else None
        if info is not None and (info.get("linkinfo") or {}).get("info_data", {}).get("local") != self.node_ip:
            await run_tool("ip", "link", "del", self.dev)
            info = None
        mtu = mtu_for("vxlan", await node_link_mtu(self.node_ip))  # the pods' MTU too (`kubelet`)
        for cmd in device_commands(pod_cidr, self.node_ip, self.dev, mtu)[0 if info is None else 1:]:
            rc, err = await run_tool("ip", *cmd)
            if rc != 0:
                raise OSError(f"vxlan: ip {' '.join(cmd)}: {err}")
        rc, out = await run_tool("ip", "-j", "link", "show", self.dev)
        self.mac = str(json.loads(out)[0]["address"]) if rc == 0 and out else ""

    async def publish(self, node: Obj) -> None:
        if ((node["metadata"].get("annotations") or {}).get(VTEP_MAC_ANNOTATION)) != self.mac:
            patch = {"metadata": {"annotations": {VTEP_MAC_ANNOTATION: self.mac}}}
            await self.client.patch("nodes", self.own_node, patch)

    async def sync(self) -> None:
        nodes = self.nodes.list()
        own = next((n for n in nodes if n["metadata"].get("name") == self.own_node), None)
        cidr = str(((own or {}).get("spec") or {}).get("podCIDR") or "")
        if own is None or not cidr or not self.node_ip:
            return  # not registered or no podCIDR yet: a later Node event brings it
        await self.ensure_device(cidr)
        await self.publish(own)
        peers = desired_peers(nodes, self.own_node)
        await self._remove_stale(peers)
        for cmd in commands(peers, self.dev):
            rc, err = await run_tool("ip", *cmd)
            if rc != 0:
                log.warning("vxlan: ip %s: %s", " ".join(cmd), err)
        for cmd in fdb_commands(peers, self.dev):
            rc, err = await run_tool("bridge", *cmd)
            if rc != 0:
                log.warning("vxlan: bridge %s: %s", " ".join(cmd), err)

    async def _remove_stale(self, peers: list[Peer]) -> None:
        for what, tool, key, want in (("route", "ip", "dst", {p.pod_cidr for p in peers}),
                                      ("neigh", "ip", "dst", {p.vtep_ip for p in peers}),
                                      ("fdb", "bridge", "mac", {p.vtep_mac for p in peers})):
            rc, out = await run_tool(tool, "-j", what, "show", "dev", self.dev)
            for value in stale(json.loads(out) if rc == 0 and out else [], key, want):
                if what != "route" or "/" in value:
                    await run_tool(tool, what, "del", value, "dev", self.dev)

    async def run(self) -> None:
        try:
            await self.loop.run(self.sync, (OSError, ValueError, KeyError))
        finally:
            await run_tool("ip", "link", "del", self.dev)
