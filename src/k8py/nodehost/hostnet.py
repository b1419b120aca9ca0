"""The links of node hosts: the host bridge, and one network namespace per node joined
to it by a veth pair.

The host bridge `k8pyh<cid>` holds the first address of the node network (the API
server listens there too); each node's namespace has `eth0` with the node's address
and no default route, so nothing a node sends can leave the machine. The cluster and
service ranges are routed to the host bridge on the host (the host-gw routes to each
podCIDR are more specific), so a packet for a pod or service never follows the
machine's default route either.

Invariants: a node network that overlaps a route the machine already has (on another
device) is refused before anything is made; only links and namespaces named by
`layout` are created or deleted; routes are added, never replaced, on the host.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

from k8py.host import proc
from k8py.nodehost.errors import NodeHostError
from k8py.nodehost.layout import HostNetwork, NodeHost


async def _ip(*args: str, netns: str = "", check: bool = True) -> str:
    rc, out, err = await proc.run("ip", *(["-n", netns] if netns else []), *args)
    if check and rc != 0:
        raise NodeHostError(f"ip {' '.join(args)}: {err.decode(errors='replace').strip()}")
    return out.decode(errors="replace")


async def link_exists(name: str) -> bool:
    rc, _, _ = await proc.run("ip", "link", "show", "dev", name)
    return rc == 0


async def check_clash(cluster: HostNetwork) -> None:
    """Refuse a node network that overlaps a route of the machine on another device."""
    net = cluster.net
    for r in json.loads(await _ip("-j", "-4", "route", "show") or "[]"):
        dst = r.get("dst", "")
        if dst == "default" or r.get("dev") == cluster.bridge:
            continue
        try:
            other = ipaddress.ip_network(dst, strict=False)
        except ValueError:
            continue
        if other.overlaps(net):
            raise NodeHostError(f"node network {net} clashes with the route to {dst} on {r.get('dev')}")


async def ensure_bridge(cluster: HostNetwork) -> None:
    if not await link_exists(cluster.bridge):
        await check_clash(cluster)
        await _ip("link", "add", cluster.bridge, "type", "bridge")
    await _ip("addr", "replace", f"{cluster.host_ip}/{cluster.net.prefixlen}", "dev", cluster.bridge)
    await _ip("link", "set", cluster.bridge, "up")
    for cidr in (cluster.cluster_cidr, cluster.service_cidr):  # stay on this machine (see docstring)
        await _ip("route", "add", cidr, "dev", cluster.bridge, "proto", "static", check=False)
    # NodePort on 127.0.0.1 of the machine: the host's proxy DNATs loopback packets to pods.
    Path("/proc/sys/net/ipv4/conf/all/route_localnet").write_text("1")


async def remove_bridge(cluster: HostNetwork) -> None:
    if await link_exists(cluster.bridge):
        await _ip("link", "del", cluster.bridge, check=False)  # its routes go with it


async def create_netns(node: NodeHost) -> None:
    """The node's namespace with `eth0` (its address) on the host bridge; lo up."""
    ns, prefix = node.netns, node.cluster.net.prefixlen
    if Path("/run/netns", ns).exists():
        await delete_netns(node)  # a remnant of a node that was not removed
    await _ip("netns", "add", ns)
    try:
        await _ip("link", "add", node.veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        await _ip("link", "set", node.veth, "master", node.cluster.bridge)
        await _ip("link", "set", node.veth, "up")
        await _ip("addr", "add", f"{node.ip}/{prefix}", "dev", "eth0", netns=ns)
        await _ip("link", "set", "eth0", "up", netns=ns)
        await _ip("link", "set", "lo", "up", netns=ns)
    except NodeHostError:
        await delete_netns(node)
        raise


async def set_link(node: NodeHost, up: bool) -> None:
    """Plug the node's cable in or pull it out (the host side of its veth)."""
    await _ip("link", "set", node.veth, "up" if up else "down", check=False)


async def delete_netns(node: NodeHost) -> None:
    await _ip("netns", "del", node.netns, check=False)  # eth0 and its peer go with it
    await _ip("link", "del", node.veth, check=False)
