"""Node IPAM over the real ApiServer: /24s from the cluster CIDR, existing CIDRs kept
and never handed out twice, exhaustion reported and resolved when a node goes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from k8py.clock import FakeClock
from k8py.controllers.nodeipam import CidrSet, NodeIpamController

from helpers.api import eventually, start_api


def node(name: str, cidr: str | None = None) -> dict[str, Any]:
    spec = {"podCIDR": cidr, "podCIDRs": [cidr]} if cidr else {}
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": spec}


@pytest.mark.parametrize("cluster,mask,used,expected", [
    ("10.42.0.0/16", 24, [], ["10.42.0.0/24", "10.42.1.0/24", "10.42.2.0/24"]),
    ("10.42.0.0/16", 24, ["10.42.1.0/24"], ["10.42.0.0/24", "10.42.2.0/24", "10.42.3.0/24"]),
    ("10.42.0.0/16", 26, [], ["10.42.0.0/26", "10.42.0.64/26", "10.42.0.128/26"]),
    ("10.42.0.0/23", 24, [], ["10.42.0.0/24", "10.42.1.0/24", None]),
    ("10.42.0.0/16", 24, ["192.168.0.0/24"], ["10.42.0.0/24", "10.42.1.0/24", "10.42.2.0/24"]),
    ("10.42.0.0/16", 24, ["10.42.0.64/26", "10.42.2.0/23"], ["10.42.1.0/24", "10.42.4.0/24", "10.42.5.0/24"]),
])
def test_cidr_set(cluster: str, mask: int, used: list[str], expected: list[str | None]) -> None:
    s = CidrSet(cluster, mask)
    for c in used:
        s.occupy(c)
    assert [s.allocate() for _ in expected] == expected


@pytest.fixture
async def env() -> AsyncIterator[tuple[Any, FakeClock]]:
    clock = FakeClock()
    api, client = await start_api(clock)
    yield client, clock
    await api.close()


async def cidr_of(client: Any, name: str) -> str | None:
    n = await client.get("nodes", name)
    assert n["spec"].get("podCIDRs", [n["spec"].get("podCIDR")])[0] == n["spec"].get("podCIDR")
    return n["spec"].get("podCIDR")


async def test_allocates_and_keeps_existing(env: Any) -> None:
    client, clock = env
    await client.create("nodes", node("a"))
    await client.create("nodes", node("b", "10.42.0.0/24"))
    ctrl = NodeIpamController(client, clock)
    task = asyncio.create_task(ctrl.run())
    try:
        assert await eventually(lambda: cidr_of(client, "a")) == "10.42.1.0/24"
        assert await cidr_of(client, "b") == "10.42.0.0/24"
        await client.create("nodes", node("c"))
        assert await eventually(lambda: cidr_of(client, "c")) == "10.42.2.0/24"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_exhaustion_then_release(env: Any) -> None:
    client, clock = env
    ctrl = NodeIpamController(client, clock, cluster_cidr="10.42.0.0/23")
    task = asyncio.create_task(ctrl.run())
    try:
        for name in ("a", "b"):
            await client.create("nodes", node(name))
            await eventually(lambda name=name: cidr_of(client, name))
        await client.create("nodes", node("c"))

        async def no_room_event() -> bool:
            evs = (await client.list("events", "default"))["items"]
            return any(e["reason"] == "CIDRNotAvailable" and e["involvedObject"]["name"] == "c" for e in evs)

        await eventually(no_room_event)
        assert await cidr_of(client, "c") is None
        freed = await cidr_of(client, "a")
        await client.delete("nodes", "a")
        assert await eventually(lambda: cidr_of(client, "c")) == freed
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize("nodes,mask", [(1, 24), (256, 24), (257, 25), (1001, 26), (100_000, 28)])
def test_mask_for_node_count(nodes: int, mask: int) -> None:
    from k8py.controllers.nodeipam import mask_for
    assert mask_for(nodes) == mask
