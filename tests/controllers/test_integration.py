"""The controller manager with the real scheduler and simulated nodes: the workloads
of a small cluster, end to end (still in one process, on a FakeClock)."""

from __future__ import annotations

import asyncio
from typing import Any

from k8py.controllers.daemonset import target_node
from k8py.controllers.manager import ControllerManager, ControllerManagerOptions
from k8py.kubelet.simulated import SimulatedCluster
from k8py.scheduler.scheduler import Scheduler

from ctrl_helpers import Cluster, pod_template

Obj = dict[str, Any]


async def start(c: Cluster, tmp: str) -> None:
    mgr = ControllerManager(c.client, c.clock, ControllerManagerOptions(storage_base_dir=tmp))
    c.tasks.append(asyncio.ensure_future(mgr.run()))
    c.tasks.append(asyncio.ensure_future(Scheduler(c.client, c.clock).run()))
    c.tasks.append(asyncio.ensure_future(SimulatedCluster(c.client, 2, clock=c.clock).run()))

    async def nodes_ready() -> bool:
        nodes = await c.list("nodes", None)
        return len(nodes) == 2 and all(
            any(x["type"] == "Ready" and x["status"] == "True" for x in n["status"].get("conditions") or [])
            for n in nodes)

    await c.until(nodes_ready, "two ready simulated nodes")


async def running(c: Cluster, n: int, prefix: str) -> list[Obj] | None:
    pods = [p for p in await c.list("pods") if p["metadata"]["name"].startswith(prefix)
            and not p["metadata"].get("deletionTimestamp")]
    ok = len(pods) == n and all((p.get("status") or {}).get("phase") == "Running" for p in pods)
    return pods if ok else None


async def test_daemonset_deployment_and_volume_on_simulated_nodes(cluster: Cluster, tmp_path: Any) -> None:
    c = cluster
    await start(c, str(tmp_path))
    # a DaemonSet: one running pod per node, bound by the scheduler to the pinned node
    await c.client.create("daemonsets", {
        "metadata": {"name": "agent", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": pod_template({"app": "agent"})}})
    pods = await c.until(lambda: running(c, 2, "agent-"), "daemon pods running")
    assert sorted(p["spec"]["nodeName"] for p in pods) == ["sim-1", "sim-2"]
    assert all(p["spec"]["nodeName"] == target_node({"spec": {"affinity": p["spec"]["affinity"]}}) for p in pods)

    async def ds_ready() -> bool:
        st = (await c.client.get("daemonsets", "agent", "default")).get("status") or {}
        return st.get("numberReady") == 2 and st.get("desiredNumberScheduled") == 2

    await c.until(ds_ready, "daemonset status")

    # a Deployment rolls out, updates, and goes with its pods
    await c.client.create("deployments", {
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": pod_template({"app": "web"})}})
    await c.until(lambda: running(c, 3, "web-"), "web pods running")
    await c.client.patch("deployments", "web", {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "nginx:1.26"}]}}}}, "default", patch_type="strategic")

    async def updated() -> bool:
        d = await c.client.get("deployments", "web", "default")
        st = d.get("status") or {}
        return (st.get("observedGeneration") == d["metadata"]["generation"] and st.get("updatedReplicas") == 3
                and st.get("availableReplicas") == 3 and st.get("replicas") == 3)

    await c.until(updated, "rolling update done", steps=6000)
    await c.client.delete("deployments", "web", "default")

    async def web_gone() -> bool:
        return not [p for p in await c.list("pods") if p["metadata"]["name"].startswith("web-")]

    await c.until(web_gone, "web pods gone", steps=6000)

    # a claim of the default class is provisioned on the node the pod is scheduled to
    await c.client.create("persistentvolumeclaims", {
        "metadata": {"name": "data", "namespace": "default"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    spec = pod_template({"app": "db"})["spec"]
    spec["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
    await c.client.create("pods", {"metadata": {"name": "db", "namespace": "default"}, "spec": spec})

    async def db_running() -> Obj | None:
        p = await c.client.get("pods", "db", "default")
        return p if (p.get("status") or {}).get("phase") == "Running" else None

    db = await c.until(db_running, "db pod running", steps=6000)
    claim = await c.client.get("persistentvolumeclaims", "data", "default")
    assert claim["status"]["phase"] == "Bound"
    pv = await c.client.get("persistentvolumes", claim["spec"]["volumeName"])
    terms = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0]["values"] == [db["spec"]["nodeName"]]


async def test_workload_objects_are_not_rewritten_once_settled(cluster: Cluster, tmp_path: Any) -> None:
    c = cluster
    await start(c, str(tmp_path))
    await c.client.create("daemonsets", {
        "metadata": {"name": "agent", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": pod_template({"app": "agent"})}})
    await c.client.create("deployments", {
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": pod_template({"app": "web"})}})
    await c.client.create("services", {"metadata": {"name": "web", "namespace": "default"},
                                       "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
    await c.until(lambda: running(c, 2, "web-"), "web running")
    await c.until(lambda: running(c, 2, "agent-"), "agents running")
    kinds = ("deployments", "replicasets", "daemonsets", "endpoints", "endpointslices", "controllerrevisions")

    async def versions() -> dict[str, str]:
        out = {}
        for k in kinds:
            for o in await c.list(k):
                out[f"{k}/{o['metadata']['name']}"] = o["metadata"]["resourceVersion"]
        return out

    for _ in range(30):  # let everything settle
        await c.clock.advance(1)
    before = await versions()
    for _ in range(60):
        await c.clock.advance(1)
    assert await versions() == before
