"""Pod GC: orphaned pods of deleted nodes, terminated pods beyond the threshold."""

from __future__ import annotations

from typing import Any

from k8py.controllers.podgc import PodGC

from ctrl_helpers import Cluster, node, pod_template, set_pod_state

Obj = dict[str, Any]


async def make_pod(c: Cluster, name: str, node_name: str | None = None) -> Obj:
    p = await c.client.create("pods", {"metadata": {"name": name, "namespace": "default"},
                                       "spec": pod_template({})["spec"]})
    if node_name:
        p = await set_pod_state(c.client, p, ready=True, node_name=node_name)
    return p


async def names(c: Cluster) -> set[str]:
    return {p["metadata"]["name"] for p in await c.list("pods")}


async def test_pods_of_a_deleted_node_are_force_deleted_after_quarantine(cluster: Cluster) -> None:
    c = cluster
    await c.client.create("nodes", node("n1"))
    await c.client.create("nodes", node("n2"))
    await make_pod(c, "on-n1", "n1")
    await make_pod(c, "on-n2", "n2")
    await c.start(PodGC(c.client, c.factory, c.clock, period=20, quarantine=40))
    await c.client.delete("nodes", "n1")
    for _ in range(100):
        await c.clock.advance(0.1)  # 10 s: still in quarantine
    assert await names(c) == {"on-n1", "on-n2"}

    async def collected() -> bool:
        return await names(c) == {"on-n2"}

    await c.clock.advance(31)
    await c.until(collected, "orphaned pod force-deleted")


async def test_terminated_pods_beyond_the_threshold_go_oldest_first(cluster: Cluster) -> None:
    c = cluster
    for i in range(4):
        p = await make_pod(c, f"done-{i}")
        p["status"] = {"phase": "Succeeded"}
        await c.client.update_status("pods", p)
        await c.clock.advance(1)  # distinct creation times
    await make_pod(c, "running")
    await c.start(PodGC(c.client, c.factory, c.clock, terminated_threshold=2))

    async def trimmed() -> bool:
        return await names(c) == {"done-2", "done-3", "running"}

    await c.until(trimmed, "two oldest terminated pods deleted")
