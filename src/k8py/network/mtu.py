"""The pods' MTU from the node's backend, as flannel writes it in subnet.env for its CNI.

host-gw: pods' packets cross the node's link as they are, so pods get the link's MTU (the
link holding the node's address). vxlan: each packet gains an outer IPv4, UDP and VXLAN
header and an inner Ethernet header (`VXLAN_OVERHEAD`, 50 bytes), so the vxlan device and the
pods get the link's MTU minus 50 (1450 on a 1500-byte link): a pod never sends a frame the
vxlan device must drop (without it, TCP across nodes crawls on path-MTU discovery).
Without a backend (one node, `--flannel-backend none`) or when the link is not found: 0,
the kernel's default (1500).
"""

from __future__ import annotations

import json

from k8py.network.nodesync import run_tool

VXLAN_OVERHEAD = 50  # outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14


def mtu_for(backend: str, link_mtu: int) -> int:
    """The pods' MTU for `backend` over a link of `link_mtu` bytes (0: the kernel's default)."""
    if link_mtu <= 0 or backend not in ("host-gw", "vxlan"):
        return 0
    return link_mtu - VXLAN_OVERHEAD if backend == "vxlan" else link_mtu


def link_mtu(addresses: list[dict[str, object]], address: str) -> int:
    """The MTU of the link that holds `address` in an `ip -j addr show` listing (0: none)."""
    for link in addresses:
        infos = link.get("addr_info")
        if isinstance(infos, list) and any(isinstance(a, dict) and a.get("local") == address for a in infos):
            mtu = link.get("mtu")
            return mtu if isinstance(mtu, int) else 0
    return 0


async def node_link_mtu(node_ip: str) -> int:
    """The MTU of the link of this network namespace that holds `node_ip` (0: not found)."""
    if not node_ip:
        return 0
    rc, out = await run_tool("ip", "-j", "addr", "show")
    try:
        listing = json.loads(out) if rc == 0 and out else []
    except ValueError:
        return 0
    return link_mtu(listing if isinstance(listing, list) else [], node_ip)


async def pod_mtu(backend: str, node_ip: str) -> int:
    """The MTU of this node's pods' interfaces (and of its pod bridge); 0: the kernel's default."""
    return mtu_for(backend, await node_link_mtu(node_ip)) if backend in ("host-gw", "vxlan") else 0
