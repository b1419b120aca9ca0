"""The node hosts of `k8py server --nodes N`: what the server does for them.

`ServedNodeHosts.start` (before the ready line): clears remnants of an earlier run of
the data dir, makes the host bridge, listens on its address too (the agents join there),
lends the nodes the loopback registry (`nodehost.forward`) and saves the cluster's
`nodes/cluster.json` for `k8py node ...`. `add_nodes(n)` boots node-1..node-n; `close()`
(on shutdown, before the API stops) removes every node host of the data dir, those
added by `k8py node add` too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from k8py.nodehost import NodeHostError, NodeHosts, forward, hostnet
from k8py.nodehost.layout import HostNetwork

if TYPE_CHECKING:
    from k8py.apiserver.http import HttpFront

log = logging.getLogger("k8py.server")


@dataclass
class ServedNodeHosts:
    hosts: NodeHosts
    forwards: list[asyncio.Server] = field(default_factory=list)

    @classmethod
    async def start(cls, cluster: HostNetwork, front: HttpFront) -> ServedNodeHosts:
        hosts = NodeHosts(cluster)
        await hosts.remove_all()
        await hostnet.ensure_bridge(cluster)
        await front.listen_also(cluster.host_ip, cluster.server_port)
        regs = os.environ.get("K8PY_REGISTRIES", "/etc/k8py/registries.yaml")
        forwards = await forward.start(regs, cluster.host_ip, Path(cluster.registries))
        if not Path(cluster.registries).exists():
            cluster = replace(cluster, registries="")
        cluster.save()
        return cls(NodeHosts(cluster), forwards)

    async def add_nodes(self, n: int) -> None:
        for i in range(1, n + 1):
            try:
                await self.hosts.add(f"node-{i}")
            except NodeHostError as e:
                print(f"k8py: node-{i}: {e}", file=sys.stderr, flush=True)

    async def close(self) -> None:
        for s in self.forwards:
            s.close()
        try:
            await self.hosts.remove_all()
        except NodeHostError as e:
            log.warning("removing the node hosts: %s", e)
