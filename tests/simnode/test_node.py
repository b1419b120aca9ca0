"""Simulated nodes over the real ApiServer (MemoryStore, FakeClock): registration,
lease renewal, pods Pending -> Running -> deleted, pause/resume by annotation."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from typing import Any

import pytest

from k8py.api.wellknown import ANNOTATION_SIMULATED, ANNOTATION_SIMULATED_HEARTBEAT
from k8py.client.nodelease import parse_micro_time
from k8py.clock import FakeClock
from k8py.simnode.names import KUBELET_VERSION
from k8py.simnode.node import SimulatedNode

from helpers.api import eventually
from simnode_helpers import Obj, gone, pod, running_ip


@pytest.fixture
async def sim(api: Any) -> AsyncIterator[tuple[Any, FakeClock, SimulatedNode]]:
    client, clock = api
    node = SimulatedNode(client, "sim-1", {"cpu": "8", "memory": "16Gi"}, clock, pod_cidr="10.42.7.0/24")
    task = asyncio.create_task(node.run())
    await eventually(lambda: client.get_or_none("leases", "sim-1", "kube-node-lease"))
    yield client, clock, node
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_registers_a_node_that_says_it_is_simulated(sim: Any) -> None:
    client, clock, _ = sim
    n = await client.get("nodes", "sim-1")
    labels = n["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == "sim-1"
    assert labels["kubernetes.io/os"] == "linux" and labels["kubernetes.io/arch"] == "amd64"
    assert labels["k8py.io/simulated"] == "true"
    assert "simulated" in n["metadata"]["annotations"][ANNOTATION_SIMULATED]
    assert n["spec"]["podCIDR"] == "10.42.7.0/24"
    st = n["status"]
    assert st["capacity"]["cpu"] == "8" and st["allocatable"]["memory"] == "16Gi"
    assert st["allocatable"]["pods"] == "110"
    ready = next(c for c in st["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and ready["reason"] == "KubeletReady" and ready["lastHeartbeatTime"]
    assert st["nodeInfo"]["kubeletVersion"] == KUBELET_VERSION
    assert all(not a["address"].startswith("127.") for a in st["addresses"])
    assert {"type": "Hostname", "address": "sim-1"} in st["addresses"]


async def test_renews_its_lease_every_10_seconds(sim: Any) -> None:
    client, clock, _ = sim
    lease = await client.get("leases", "sim-1", "kube-node-lease")
    assert lease["spec"]["holderIdentity"] == "sim-1"
    assert lease["spec"]["leaseDurationSeconds"] == 40
    assert lease["metadata"]["ownerReferences"][0]["kind"] == "Node"
    first = parse_micro_time(lease["spec"]["renewTime"])
    await clock.advance(10)

    async def renewed() -> bool:
        le = await client.get("leases", "sim-1", "kube-node-lease")
        return parse_micro_time(le["spec"]["renewTime"]) >= first + 10

    await eventually(renewed)


async def test_pods_run_and_are_deleted(sim: Any) -> None:
    client, clock, _ = sim
    await client.create("pods", pod("web", "sim-1", initContainers=[{"name": "init", "image": "busybox"}]),
                        "default")

    async def running() -> Obj | None:
        p = await client.get("pods", "web", "default")
        return p if p.get("status", {}).get("phase") == "Running" else None

    p = await eventually(running)
    st = p["status"]
    assert ipaddress.ip_address(st["podIP"]) in ipaddress.ip_network("10.42.7.0/24")
    assert st["podIPs"] == [{"ip": st["podIP"]}]
    assert {c["type"]: c["status"] for c in st["conditions"]} == {
        "PodReadyToStartContainers": "True", "Initialized": "True", "Ready": "True",
        "ContainersReady": "True", "PodScheduled": "True"}
    cs = st["containerStatuses"][0]
    assert cs["name"] == "app" and cs["ready"] and cs["state"]["running"]["startedAt"]
    assert st["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    assert st["startTime"]

    await client.create("pods", pod("other", "sim-1"), "default")
    other = await eventually(lambda: running_ip(client, "other"))
    assert other != st["podIP"]

    await client.delete("pods", "web", "default")  # graceful: the node finishes it
    await eventually(lambda: gone(client, "web"))


async def test_pause_and_resume_by_annotation(sim: Any) -> None:
    client, clock, node = sim
    await client.patch("nodes", "sim-1", {"metadata": {"annotations": {ANNOTATION_SIMULATED_HEARTBEAT: "paused"}}})
    await eventually(lambda: node.paused)
    before = (await client.get("leases", "sim-1", "kube-node-lease"))["spec"]["renewTime"]
    await client.create("pods", pod("late", "sim-1"), "default")
    for _ in range(3):
        await clock.advance(10)
    engine = node._engine
    assert engine is not None
    await eventually(lambda: engine.pods.get("default", "late") is not None and len(engine.queue) == 0)
    assert (await client.get("leases", "sim-1", "kube-node-lease"))["spec"]["renewTime"] == before
    assert (await client.get("pods", "late", "default")).get("status", {}).get("phase") != "Running"

    await client.patch("nodes", "sim-1", {"metadata": {"annotations": {ANNOTATION_SIMULATED_HEARTBEAT: "running"}}})
    await eventually(lambda: not node.paused)
    await eventually(lambda: running_ip(client, "late"))

    async def renewed() -> bool:
        le = await client.get("leases", "sim-1", "kube-node-lease")
        return le["spec"]["renewTime"] != before

    await eventually(renewed)


async def test_reports_ready_again_when_marked_unknown(sim: Any) -> None:
    client, clock, node = sim
    n = await client.get("nodes", "sim-1")
    conds = [dict(c, status="Unknown", reason="NodeStatusUnknown") if c["type"] == "Ready" else c
             for c in n["status"]["conditions"]]
    await client.patch("nodes", "sim-1", {"status": {"conditions": conds}}, subresource="status")

    async def ready() -> bool:
        n = await client.get("nodes", "sim-1")
        return any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])

    await eventually(ready)
