"""In-place pod resize in the kubelet (kubelet/resize.py) over FakeRuntime and FakeClock:
update in place, restart per resizePolicy, Infeasible/Deferred, memory decrease below usage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from k8py.runtime.protocol import ContainerResources, ContainerState, ContainerStats

from agent_helpers import Harness, cstatus, harness_fixture

MI = 1 << 20


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    async for x in harness_fixture(tmp_path):
        yield x


def main(cpu: str = "100m", mem: str = "128Mi", **extra: Any) -> dict[str, Any]:
    return {"name": "main", "image": "busybox:1.28", "command": ["sleep", "3600"],
            "resources": {"requests": {"cpu": cpu, "memory": mem}, "limits": {"cpu": cpu, "memory": mem}}, **extra}


async def running(h: Harness, name: str) -> dict:
    async def ok() -> dict | None:
        p = await h.pod(name)
        return p if (p.get("status") or {}).get("phase") == "Running" else None
    return await h.until(ok)


async def resize(h: Harness, name: str, cpu: str, mem: str, container: str = "main") -> None:
    res = {"requests": {"cpu": cpu, "memory": mem}, "limits": {"cpu": cpu, "memory": mem}}
    await h.client.patch("pods", name, {"spec": {"containers": [{"name": container, "resources": res}]}},
                         "default", subresource="resize", patch_type="strategic")


def conditions(p: dict) -> dict[str, dict]:
    return {c["type"]: c for c in p["status"].get("conditions") or []}


def updates(h: Harness) -> list[tuple[Any, ...]]:
    return [args for m, args in h.runtime.calls if m == "update_container_resources"]


async def test_resize_in_place_updates_the_running_container(h: Harness) -> None:
    await h.create_pod("p", [main()])
    p = await running(h, "p")
    assert cstatus(p)["resources"]["limits"] == {"cpu": "100m", "memory": "128Mi"}
    assert cstatus(p)["allocatedResources"] == {"cpu": "100m", "memory": "128Mi"}
    (before,) = h.containers("main")
    await resize(h, "p", "200m", "256Mi")

    async def reported() -> dict | None:
        q = await h.pod("p")
        return q if cstatus(q).get("resources", {}).get("limits", {}).get("memory") == "256Mi" else None
    q = await h.until(reported, step=0.1)
    assert updates(h) == [(before.id, ContainerResources(256 * MI, 200, 200))]
    (after,) = h.containers("main")
    assert after.id == before.id and after.state == ContainerState.RUNNING and after.attempt == 0
    cs = cstatus(q)
    assert cs["restartCount"] == 0 and cs["allocatedResources"] == {"cpu": "200m", "memory": "256Mi"}
    assert cs["resources"] == {"requests": {"cpu": "200m", "memory": "256Mi"},
                               "limits": {"cpu": "200m", "memory": "256Mi"}}
    assert not {"PodResizePending", "PodResizeInProgress"} & set(conditions(q))
    assert q["status"]["qosClass"] == "Guaranteed"


async def test_restart_container_policy_restarts_with_the_new_limit(h: Harness) -> None:
    policy = [{"resourceName": "memory", "restartPolicy": "RestartContainer"},
              {"resourceName": "cpu", "restartPolicy": "NotRequired"}]
    await h.create_pod("p", [main(resizePolicy=policy)])
    await running(h, "p")
    (before,) = h.containers("main")
    await resize(h, "p", "100m", "256Mi")
    await h.until(lambda: len(h.containers("main")) == 2, step=0.1)
    old, new = h.containers("main")
    assert old.id == before.id and old.state == ContainerState.EXITED
    assert new.attempt == 1 and h.runtime.containers[new.id][0].memory_limit_bytes == 256 * MI
    assert updates(h) == []
    killing = [e["message"] for e in await h.events("Killing")]
    assert "Container main resize requires restart" in killing

    async def restarted() -> dict | None:
        q = await h.pod("p")
        return q if cstatus(q).get("restartCount") == 1 and cstatus(q).get("ready") else None
    q = await h.until(restarted, step=0.1)
    assert cstatus(q)["resources"]["limits"]["memory"] == "256Mi"


async def test_infeasible_resize_is_pending_and_leaves_the_pod_running(h: Harness) -> None:
    await h.create_pod("p", [main()])
    await running(h, "p")
    (before,) = h.containers("main")
    await resize(h, "p", "100m", "100Ti")

    async def pending() -> dict | None:
        q = await h.pod("p")
        return q if "PodResizePending" in conditions(q) else None
    q = await h.until(pending, step=0.1)
    c = conditions(q)["PodResizePending"]
    assert c["status"] == "True" and c["reason"] == "Infeasible"
    assert c["message"].startswith("Node didn't have enough capacity: memory, requested: 109951162777600, capacity: ")
    assert q["status"]["phase"] == "Running" and cstatus(q)["allocatedResources"]["memory"] == "128Mi"
    assert updates(h) == [] and [x.id for x in h.containers("main")] == [before.id]
    # A crash now restarts the container with what was allocated, not with the spec.
    h.runtime.finish(before.id, 1)
    await h.until(lambda: len(h.containers("main")) == 2, step=0.5)
    assert h.runtime.containers[h.containers("main")[1].id][0].memory_limit_bytes == 128 * MI
    # Back to a size that fits: the condition goes away.
    await resize(h, "p", "100m", "128Mi")

    async def cleared() -> bool:
        return "PodResizePending" not in conditions(await h.pod("p"))
    await h.until(cleared, step=0.1)


async def test_resize_deferred_while_other_pods_hold_the_node(h: Harness) -> None:
    node = await h.client.get("nodes", "node-1")
    cap = node["status"]["allocatable"]["cpu"]
    from k8py.api.quantity import to_milli
    big = to_milli(cap) - 100
    await h.create_pod("big", [main(f"{big}m", "64Mi")])
    await h.create_pod("p", [main("50m", "64Mi")])
    await running(h, "big")
    await running(h, "p")
    await resize(h, "p", "200m", "64Mi")

    async def deferred() -> dict | None:
        q = await h.pod("p")
        return q if "PodResizePending" in conditions(q) else None
    c = conditions(await h.until(deferred, step=0.1))["PodResizePending"]
    assert c["reason"] == "Deferred"
    assert c["message"] == f"Node didn't have enough resource: cpu, requested: 200, used: {big}, capacity: " \
                           f"{to_milli(cap)}"
    await h.client.delete("pods", "big", "default", grace_period_seconds=0)

    async def applied() -> bool:
        q = await h.pod("p")
        return "PodResizePending" not in conditions(q) and cstatus(q)["allocatedResources"]["cpu"] == "200m"
    await h.until(applied, step=0.5, timeout=10)


async def test_memory_limit_below_usage_is_not_applied(h: Harness) -> None:
    await h.create_pod("p", [main("100m", "256Mi")])
    await running(h, "p")
    (c,) = h.containers("main")
    h.runtime.stats[c.id] = ContainerStats(0.0, 0, 200 * MI, 210 * MI)
    await resize(h, "p", "100m", "128Mi")

    async def in_progress() -> dict | None:
        q = await h.pod("p")
        return q if "PodResizeInProgress" in conditions(q) else None
    q = await h.until(in_progress, step=0.1)
    cond = conditions(q)["PodResizeInProgress"]
    assert cond["reason"] == "Error"
    assert cond["message"] == (f'attempting to set container "main" memory limit ({128 * MI}) below current '
                               f"usage ({200 * MI})")
    assert updates(h) == [] and h.runtime.containers[c.id][1].state == ContainerState.RUNNING
    assert cstatus(q)["allocatedResources"]["memory"] == "128Mi"
    assert cstatus(q)["resources"]["limits"]["memory"] == "256Mi"  # what the container really has
    h.runtime.stats[c.id] = ContainerStats(0.0, 0, 50 * MI, 60 * MI)

    async def done() -> bool:
        q = await h.pod("p")
        return "PodResizeInProgress" not in conditions(q) and cstatus(q)["resources"]["limits"]["memory"] == "128Mi"
    await h.until(done, step=0.5, timeout=10)
    assert updates(h) == [(c.id, ContainerResources(128 * MI, 100, 100))]
