"""The node's pod network: one Linux bridge, one veth pair per pod.

Layout on a node: bridge `k8py0` holds the gateway address (first address of the
node's pod CIDR); each pod's network namespace gets `eth0`, the peer of a host
veth `k8pyv<hash>` enslaved to the bridge with hairpin on (so a pod reaching its
own Service is answered). The cluster CIDR and the service CIDR are routed to the
bridge, so a packet for a pod or service address never follows the default route
off the machine, even when no rule matches. With an `mtu` (from the backend,
`network.mtu`: 1450 for vxlan over a 1500-byte link) the bridge, both ends of every
pod's veth and so every pod's `eth0` get it; 0 leaves the kernel's 1500.

Invariants: every link this module creates is named `k8py...`; `setup` is
idempotent for a namespace; `teardown` tolerates a half-done setup.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import os
import socket
from pathlib import Path

from k8py.host import proc
from k8py.network.errors import NetworkError
from k8py.network.ipam import HostLocalIPAM
from k8py.network.podref import PodRef

BRIDGE = "k8py0"
VETH_PREFIX = "k8pyv"
SYSCTLS = {
    "net/ipv4/ip_forward": "1",
    # NodePort and LoadBalancer on 127.0.0.0/8 addresses need loopback packets routed.
    "net/ipv4/conf/all/route_localnet": "1",
}


async def ip(*args: str, check: bool = True) -> str:
    rc, out, err = await proc.run("ip", *args)
    if check and rc != 0:
        raise NetworkError(f"ip {' '.join(args)}: {err.decode().strip()}")
    return out.decode()


async def ip_batch(commands: list[list[str]], netns: str = "", check: bool = True) -> None:
    """Run several `ip` commands in one process (`ip [-n NS] -batch -`); stops at the first failure."""
    script = "".join(" ".join(c) + "\n" for c in commands).encode()
    rc, _, err = await proc.run("ip", *(["-n", netns] if netns else []), "-batch", "-", stdin=script)
    if check and rc != 0:
        raise NetworkError(f"ip {'-n ' + netns + ' ' if netns else ''}-batch: {err.decode().strip()}")


def veth_name(netns_path: str) -> str:
    """Host-side veth name for a namespace: stable, k8py-prefixed, <= 15 chars."""
    return VETH_PREFIX + hashlib.sha1(netns_path.encode()).hexdigest()[:8]


def link_exists(name: str) -> bool:
    """Whether this process's network namespace has a link `name` (not /sys/class/net, which
    shows the namespace that mounted sysfs: a node host's agent shares the machine's)."""
    try:
        socket.if_nametoindex(name)
        return True
    except OSError:
        return False


def set_sysctl(key: str, value: str) -> None:
    Path("/proc/sys", key).write_text(value)


class BridgeNetwork:
    """PodNetwork over a bridge; `ensure_node()` once before the first pod."""

    def __init__(self, pod_cidr: str, cluster_cidr: str, service_cidr: str,
                 state_dir: str | Path, bridge: str = BRIDGE, mtu: int = 0) -> None:
        self.bridge = bridge
        self.mtu = mtu
        self.pod_net = ipaddress.ip_network(pod_cidr, strict=False)
        self.cluster_cidr = cluster_cidr
        self.service_cidr = service_cidr
        self.ipam = HostLocalIPAM(pod_cidr, Path(state_dir) / "ipam")
        self._lock = asyncio.Lock()

    @property
    def gateway(self) -> str:
        return self.ipam.gateway

    async def ensure_node(self) -> None:
        for k, v in SYSCTLS.items():
            set_sysctl(k, v)
        links = await ip("-o", "link", "show")
        if f": {self.bridge}:" not in links:
            await ip("link", "add", self.bridge, "type", "bridge")
        await ip("addr", "replace", f"{self.gateway}/{self.pod_net.prefixlen}", "dev", self.bridge)
        if self.mtu:  # set, not followed from the ports: the node's own packets to pods use it too
            await ip("link", "set", self.bridge, "mtu", str(self.mtu))
        await ip("link", "set", self.bridge, "up")
        # Whole cluster and service ranges stay on this machine (see module docstring).
        await ip("route", "replace", self.cluster_cidr, "dev", self.bridge, "proto", "static")
        await ip("route", "replace", self.service_cidr, "dev", self.bridge, "proto", "static")

    async def setup(self, netns_path: str, pod: PodRef) -> str:
        ns = os.path.basename(netns_path)
        host = veth_name(netns_path)
        async with self._lock:
            addr = self.ipam.allocate(netns_path)
        try:
            # Two processes in all (not one per command): the host side, then the pod side.
            host_cmds = [] if link_exists(host) else [
                ["link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns]]
            mtu = [["link", "set", host, "mtu", str(self.mtu)]] if self.mtu else []
            host_cmds += [*mtu, ["link", "set", host, "master", self.bridge],
                          ["link", "set", host, "type", "bridge_slave", "hairpin", "on"],
                          ["link", "set", host, "up"],
                          # The address may have belonged to a pod that is gone: forget its old MAC.
                          ["neigh", "flush", "to", addr, "dev", self.bridge]]
            await ip_batch(host_cmds)
            await ip_batch([*([["link", "set", "eth0", "mtu", str(self.mtu)]] if self.mtu else []),
                            ["addr", "replace", f"{addr}/{self.pod_net.prefixlen}", "dev", "eth0"],
                            ["link", "set", "eth0", "up"],
                            ["route", "replace", "default", "via", self.gateway]], netns=ns)
        except NetworkError:
            await self.teardown(netns_path, pod)
            raise
        return addr

    async def teardown(self, netns_path: str, pod: PodRef) -> None:
        await ip("link", "del", veth_name(netns_path), check=False)
        async with self._lock:
            self.ipam.release(netns_path)


async def cleanup_links(bridge: str = BRIDGE, *, every_veth: bool = False) -> None:
    """Delete the bridge and the k8py veths plugged into it (its routes go with it).
    `every_veth` (for `k8py reset`) deletes every k8py veth on the machine, whichever
    cluster it belongs to."""
    out = await ip("-o", "link", "show", check=False)
    mine = await ip("-o", "link", "show", "master", bridge, check=False) if f": {bridge}:" in out else ""
    for line in (out if every_veth else mine).splitlines():
        name = line.split(":", 2)[1].strip().split("@")[0]
        if name.startswith(VETH_PREFIX):
            await ip("link", "del", name, check=False)
    if f": {bridge}:" in out:
        await ip("link", "del", bridge, check=False)
