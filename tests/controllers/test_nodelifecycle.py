"""Node lifecycle controller over the real ApiServer with simulated nodes and a
FakeClock: a paused heartbeat -> Ready Unknown + unreachable taints -> eviction after
the configured timeout; DaemonSet pods stay; the taints go when the node is back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from k8py.api.taints import TAINT_NODE_NOT_READY, TAINT_NODE_UNREACHABLE
from k8py.api.wellknown import ANNOTATION_SIMULATED_HEARTBEAT
from k8py.clock import FakeClock
from k8py.controllers.nodelifecycle import (
    NodeLifecycleController,
    desired_condition_taints,
    eviction_time,
)
from k8py.simnode.node import SimulatedNode

from helpers.api import eventually, start_api

Obj = dict[str, Any]
T0 = 1_700_000_000.0


def pod(name: str, node: str, **extra: Any) -> Obj:
    p: Obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
              "spec": {"nodeName": node, "containers": [{"name": "app", "image": "nginx"}]}}
    p["metadata"].update(extra.pop("metadata", {}))
    p["spec"].update(extra)
    return p


def daemon_pod(name: str, node: str) -> Obj:
    return pod(name, node, metadata={"ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "uid": "ds-uid", "controller": True}]},
        tolerations=[{"key": TAINT_NODE_UNREACHABLE, "operator": "Exists", "effect": "NoExecute"},
                     {"key": TAINT_NODE_NOT_READY, "operator": "Exists", "effect": "NoExecute"}])


def unreachable(added: float = T0) -> list[Obj]:
    from k8py.clock import rfc3339
    return [{"key": TAINT_NODE_UNREACHABLE, "effect": "NoExecute", "timeAdded": rfc3339(added)}]


DEFAULT_TOL = {"key": TAINT_NODE_UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
EVICTION_CASES = [
    ("no taints", pod("p", "n"), [], 30, None),
    ("default toleration uses the eviction timeout", pod("p", "n", tolerations=[DEFAULT_TOL]), unreachable(), 30,
     T0 + 30),
    ("no toleration at all gets the default", pod("p", "n"), unreachable(), 30, T0 + 30),
    ("explicit shorter toleration", pod("p", "n", tolerations=[dict(DEFAULT_TOL, tolerationSeconds=10)]),
     unreachable(), 30, T0 + 10),
    ("explicit forever",
     pod("p", "n", tolerations=[{"key": TAINT_NODE_UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}]),
     unreachable(), 30, None),
    ("daemonset pod stays", daemon_pod("p", "n"), unreachable(), 30, None),
    ("untolerated custom NoExecute taint evicts now", pod("p", "n"),
     [{"key": "maintenance", "effect": "NoExecute"}], 30, T0 + 100),
    ("tolerate everything", pod("p", "n", tolerations=[{"operator": "Exists"}]),
     [{"key": "maintenance", "effect": "NoExecute"}], 30, None),
]


@pytest.mark.parametrize("name,p,taints,timeout,expected", EVICTION_CASES, ids=[c[0] for c in EVICTION_CASES])
def test_eviction_time(name: str, p: Obj, taints: list[Obj], timeout: float, expected: float | None) -> None:
    assert eviction_time(p, taints, timeout, T0 + 100) == expected


@pytest.mark.parametrize("status,taints", [
    ("True", []), (None, []), ("False", [(TAINT_NODE_NOT_READY, "NoSchedule"), (TAINT_NODE_NOT_READY, "NoExecute")]),
    ("Unknown", [(TAINT_NODE_UNREACHABLE, "NoSchedule"), (TAINT_NODE_UNREACHABLE, "NoExecute")]),
])
def test_desired_condition_taints(status: str | None, taints: list[tuple[str, str]]) -> None:
    assert desired_condition_taints(status) == taints


@pytest.fixture
async def env() -> AsyncIterator[tuple[Any, FakeClock, NodeLifecycleController, list[SimulatedNode]]]:
    clock = FakeClock(T0)
    api, client = await start_api(clock)
    sims = [SimulatedNode(client, f"sim-{i}", None, clock, pod_cidr=f"10.42.{i}.0/24") for i in (1, 2)]
    tasks = [asyncio.create_task(s.run()) for s in sims]
    ctrl = NodeLifecycleController(client, clock, pod_eviction_timeout=30)
    ctrl.factory.start()
    await ctrl.nodes.wait_synced()
    await ctrl.pods.wait_synced()
    await ctrl.leases.wait_synced()
    yield client, clock, ctrl, sims
    ctrl.factory.stop()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await api.close()


def cached(inf: Any, ns: str | None, name: str) -> Obj:
    return inf.get(ns, name) or {}


def ready_status(node: Obj) -> str | None:
    return next((c["status"] for c in node.get("status", {}).get("conditions") or [] if c["type"] == "Ready"), None)


def taint_keys(node: Obj) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in node.get("spec", {}).get("taints") or []}


async def test_paused_node_goes_unknown_tainted_and_its_pods_are_evicted(env: Any) -> None:
    client, clock, ctrl, sims = env
    await client.create("pods", pod("web", "sim-1"), "default")
    await client.create("pods", daemon_pod("agent", "sim-1"), "default")
    await client.create("pods", pod("other", "sim-2"), "default")
    for name in ("web", "agent", "other"):
        await eventually(
            lambda name=name: cached(ctrl.pods, "default", name).get("status", {}).get("phase") == "Running")
    await eventually(
        lambda: ctrl.leases.get("kube-node-lease", "sim-1") and ctrl.leases.get("kube-node-lease", "sim-2"))
    await ctrl.monitor_once()
    assert taint_keys(await client.get("nodes", "sim-1")) == set()

    await client.patch("nodes", "sim-1", {"metadata": {"annotations": {ANNOTATION_SIMULATED_HEARTBEAT: "paused"}}})
    await eventually(lambda: sims[0].paused)
    await ctrl.monitor_once()  # last heard now
    for _ in range(8):  # 40 s: still within the grace period
        await clock.advance(5)
        await ctrl.monitor_once()
    assert ready_status(await client.get("nodes", "sim-1")) == "True"

    await clock.advance(5)
    await ctrl.monitor_once()
    node = await client.get("nodes", "sim-1")
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
    assert taint_keys(node) == {(TAINT_NODE_UNREACHABLE, "NoSchedule"), (TAINT_NODE_UNREACHABLE, "NoExecute")}
    assert ready_status(await client.get("nodes", "sim-2")) == "True"
    assert taint_keys(await client.get("nodes", "sim-2")) == set()
    web = await client.get("pods", "web", "default")
    assert next(c for c in web["status"]["conditions"] if c["type"] == "Ready")["status"] == "False"

    await eventually(lambda: (TAINT_NODE_UNREACHABLE, "NoExecute") in taint_keys(cached(ctrl.nodes, None, "sim-1")))
    await clock.advance(25)  # 25 s of the 30 s eviction timeout
    await ctrl.monitor_once()
    assert "deletionTimestamp" not in (await client.get("pods", "web", "default"))["metadata"]

    await clock.advance(5)
    await ctrl.monitor_once()
    assert "deletionTimestamp" in (await client.get("pods", "web", "default"))["metadata"]  # Terminating
    assert "deletionTimestamp" not in (await client.get("pods", "agent", "default"))["metadata"]
    assert "deletionTimestamp" not in (await client.get("pods", "other", "default"))["metadata"]
    assert ctrl.evictions == 1

    # the kubelet comes back: Ready again, taints removed, the evicted pod finished
    await client.patch("nodes", "sim-1", {"metadata": {"annotations": {ANNOTATION_SIMULATED_HEARTBEAT: "running"}}})
    await eventually(lambda: ready_status(cached(ctrl.nodes, None, "sim-1")) == "True")
    await ctrl.monitor_once()
    assert taint_keys(await client.get("nodes", "sim-1")) == set()
    await eventually(lambda: _gone(client, "web"))
    assert (await client.get("pods", "agent", "default"))["status"]["phase"] == "Running"


async def _gone(client: Any, name: str) -> bool:
    return await client.get_or_none("pods", name, "default") is None


async def test_run_loop_marks_unknown_on_its_own(env: Any) -> None:
    client, clock, ctrl, sims = env
    task = asyncio.create_task(ctrl.run())
    try:
        sims[1].pause()
        start = clock.now()
        for _ in range(100):  # advance time while waiting for the controller to act
            if ready_status(cached(ctrl.nodes, None, "sim-2")) == "Unknown":
                break
            await clock.advance(5)
            await asyncio.sleep(0.002)
        assert ready_status(cached(ctrl.nodes, None, "sim-2")) == "Unknown"
        assert clock.now() - start > 40
        assert ready_status(cached(ctrl.nodes, None, "sim-1")) == "True"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
