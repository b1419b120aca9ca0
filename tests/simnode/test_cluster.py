"""A cluster of simulated nodes on one engine, with its own informers or shared ones."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import pytest

from k8py.client.informer import SharedInformerFactory
from k8py.simnode.addresses import documentation_address
from k8py.simnode.cluster import SimulatedCluster

from helpers.api import eventually
from simnode_helpers import pod, running_ip


@pytest.mark.parametrize("shared_factory", [False, True])
async def test_cluster_of_nodes_shares_informers(api: Any, shared_factory: bool) -> None:
    client, clock = api
    factory = SharedInformerFactory(client, clock) if shared_factory else None
    cluster = SimulatedCluster(client, 5, {"cpu": "2", "memory": "4Gi"}, clock, factory=factory)
    for i, n in enumerate(cluster.nodes):
        n.set_pod_cidr(f"10.42.{i}.0/24")
    task = asyncio.create_task(cluster.run())
    try:
        async def registered() -> bool:
            return len((await client.list("nodes"))["items"]) == 5

        await eventually(registered)
        for i in range(1, 6):
            await client.create("pods", pod(f"p{i}", f"sim-{i}"), "default")
        for i in range(1, 6):
            ip = await eventually(lambda i=i: running_ip(client, f"p{i}"))
            assert ip.startswith(f"10.42.{i - 1}.")
        n = await client.get("nodes", "sim-3")
        internal = [a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP"]
        assert internal == [documentation_address(2)]
        assert ipaddress.ip_address(internal[0]) in ipaddress.ip_network("192.0.2.0/24")
        leases = (await client.list("leases", "kube-node-lease"))["items"]
        assert len(leases) == 5
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if factory is not None:
            factory.stop()
