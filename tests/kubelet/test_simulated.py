"""Simulated nodes over the real ApiServer (MemoryStore, FakeClock): registration,
lease renewal, pods Pending -> Running -> deleted, pause/resume by annotation, and a
cluster of several nodes on shared informers."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any, AsyncIterator

import pytest
from sim_helpers import eventually, start_api

from k8py.api.wellknown import ANNOTATION_SIMULATED, ANNOTATION_SIMULATED_HEARTBEAT
from k8py.clock import FakeClock
from k8py.kubelet.lease import parse_micro_time
from k8py.kubelet.simulated import (
    KUBELET_VERSION,
    SimulatedCluster,
    SimulatedNode,
    documentation_address,
)

Obj = dict[str, Any]


def pod(name: str, node: str, **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "containers": [{"name": "app", "image": "nginx"}], **spec}}


@pytest.fixture
async def api() -> AsyncIterator[tuple[Any, FakeClock]]:
    clock = FakeClock()
    server, client = await start_api(clock)
    yield client, clock
    await server.close()


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
    other = await eventually(lambda: _running_ip(client, "other"))
    assert other != st["podIP"]

    await client.delete("pods", "web", "default")  # graceful: the node finishes it
    await eventually(lambda: _gone(client, "web"))


async def _running_ip(client: Any, name: str) -> str | None:
    p = await client.get_or_none("pods", name, "default")
    return (p or {}).get("status", {}).get("podIP")


async def _gone(client: Any, name: str) -> bool:
    return await client.get_or_none("pods", name, "default") is None


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
    await eventually(lambda: _running_ip(client, "late"))

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


@pytest.mark.parametrize("shared_factory", [False, True])
async def test_cluster_of_nodes_shares_informers(api: Any, shared_factory: bool) -> None:
    from k8py.client.informer import SharedInformerFactory
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
            ip = await eventually(lambda i=i: _running_ip(client, f"p{i}"))
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


def test_documentation_addresses_stay_in_test_nets() -> None:
    assert documentation_address(0) == "192.0.2.1"
    assert documentation_address(253) == "192.0.2.254"
    assert documentation_address(254) == "198.51.100.1"
    assert documentation_address(762) is None


@pytest.mark.parametrize("n,first,last", [
    (201, "10.42.255.0/24", "10.42.55.0/24"),
    (1000, "10.42.255.192/26", "10.42.6.0/26"),
])
def test_top_down_cidrs_for_many_nodes(n: int, first: str, last: str) -> None:
    from k8py.kubelet.simulated import top_down_cidrs
    cidrs = top_down_cidrs("10.42.0.0/16", n)
    assert (cidrs[0], cidrs[-1], len(set(cidrs))) == (first, last, n)
    nets = [ipaddress.ip_network(c) for c in cidrs]
    assert all(net.subnet_of(ipaddress.ip_network("10.42.0.0/16")) for net in nets)  # type: ignore[arg-type]
