"""The controller manager with the real scheduler and simulated nodes: the workloads
of a small cluster, end to end (still in one process, on a FakeClock)."""

from __future__ import annotations

import asyncio
from typing import Any

from k8py.controllers.daemonset import target_node
from k8py.controllers.manager import ControllerManager, ControllerManagerOptions
from k8py.scheduler.scheduler import Scheduler
from k8py.simnode.cluster import SimulatedCluster

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


async def test_pods_of_a_dead_node_are_replaced_elsewhere(cluster: Cluster, tmp_path: Any) -> None:
    """The course's self-healing: a node dies, its pods are evicted (NoExecute taint after
    the default 300 s toleration) and the ReplicaSet recreates them on the other node;
    the service's endpoints follow."""
    c = cluster
    mgr = ControllerManager(c.client, c.clock, ControllerManagerOptions(storage_base_dir=str(tmp_path)))
    c.tasks.append(asyncio.ensure_future(mgr.run()))
    c.tasks.append(asyncio.ensure_future(Scheduler(c.client, c.clock).run()))
    sims = SimulatedCluster(c.client, 2, clock=c.clock)
    c.tasks.append(asyncio.ensure_future(sims.run()))

    async def nodes_ready(n: int) -> bool:
        nodes = await c.list("nodes", None)
        return sum(1 for x in nodes for k in x["status"].get("conditions") or []
                   if k["type"] == "Ready" and k["status"] == "True") == n

    await c.until(lambda: nodes_ready(2), "two ready nodes")
    await c.client.create("deployments", {
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}},
                 "template": pod_template({"app": "web"})}})
    await c.client.create("services", {"metadata": {"name": "web", "namespace": "default"},
                                       "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
    pods = await c.until(lambda: running(c, 4, "web-"), "four pods")
    victim = pods[0]["spec"]["nodeName"]
    survivor = "sim-2" if victim == "sim-1" else "sim-1"
    sims.node(victim).pause()
    for _ in range(400):  # 40 s of node grace, then 300 s of toleration
        await c.clock.advance(1)

    async def healed() -> bool:
        live = await running(c, 4, "web-")
        if not live or any(p["spec"]["nodeName"] != survivor for p in live):
            return False
        ep = await c.client.get("endpoints", "web", "default")
        ready = {a["targetRef"]["name"] for s in ep.get("subsets") or [] for a in s.get("addresses") or []}
        return ready == {p["metadata"]["name"] for p in live}

    await c.until(healed, "pods recreated on the surviving node", steps=6000, tick=0.5)
