"""StatefulSet controller: ordered creation and deletion, claims, rolling update."""

from __future__ import annotations

from typing import Any

from k8py.controllers.statefulset import StatefulSetController

from ctrl_helpers import Cluster, FakeKubelet, pod_template

Obj = dict[str, Any]


def statefulset(replicas: int = 3, **spec: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": replicas, "serviceName": "nginx", "selector": {"matchLabels": {"app": "nginx"}},
                     "template": pod_template({"app": "nginx"}),
                     "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {
                         "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
                     **spec}}


async def start(c: Cluster) -> tuple[StatefulSetController, FakeKubelet]:
    ctrl = StatefulSetController(c.client, c.factory, c.clock, c.recorder("statefulset-controller"))
    kubelet = FakeKubelet(c)
    kubelet.start()
    await c.start(ctrl)
    return ctrl, kubelet


async def pod_names(c: Cluster) -> list[str]:
    return sorted(p["metadata"]["name"] for p in await c.list("pods") if not p["metadata"].get("deletionTimestamp"))


async def has_pods(c: Cluster, names: list[str]) -> bool:
    return await pod_names(c) == names


async def test_ordered_creation_waits_for_each_pod_to_be_ready(cluster: Cluster) -> None:
    c = cluster
    ctrl, kubelet = await start(c)
    kubelet.hold = True
    await c.client.create("statefulsets", statefulset())
    await c.until(lambda: has_pods(c, ["web-0"]), "web-0 only")
    for _ in range(100):
        await c.clock.advance(0)
    assert await pod_names(c) == ["web-0"]  # web-1 waits for web-0 to be ready
    p0 = await c.client.get("pods", "web-0", "default")
    assert (p0["spec"]["hostname"], p0["spec"]["subdomain"]) == ("web-0", "nginx")
    assert p0["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == "web-0"
    assert p0["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == "0"
    assert {"name": "www", "persistentVolumeClaim": {"claimName": "www-web-0"}} in p0["spec"]["volumes"]
    claim = await c.client.get("persistentvolumeclaims", "www-web-0", "default")
    assert claim["metadata"]["labels"] == {"app": "nginx"}
    await kubelet.make_ready(p0)
    await c.until(lambda: has_pods(c, ["web-0", "web-1"]), "web-1 after web-0 is ready")
    await kubelet.release()
    await c.until(lambda: has_pods(c, ["web-0", "web-1", "web-2"]), "all three")
    await c.until(lambda: c.with_status("statefulsets", "web", replicas=3, readyReplicas=3), "ready")
    assert sorted(m for m in ctrl.recorder.for_reason("SuccessfulCreate") if m.startswith("create Pod")) == [
        f"create Pod web-{i} in StatefulSet web successful" for i in range(3)]


async def test_scale_down_from_the_highest_ordinal_and_rolling_update(cluster: Cluster) -> None:
    c = cluster
    _, kubelet = await start(c)
    await c.client.create("statefulsets", statefulset(replicas=4))
    await c.until(lambda: c.with_status("statefulsets", "web", replicas=4, readyReplicas=4), "4 ready")
    order: list[str] = []
    seen: set[str] = set()

    async def shrunk() -> bool:
        names = await pod_names(c)
        for n in ["web-3", "web-2"]:
            if n not in names and n not in seen:
                seen.add(n)
                order.append(n)
        return names == ["web-0", "web-1"]

    await c.client.patch("statefulsets", "web", {"spec": {"replicas": 2}}, "default")
    await c.until(shrunk, "scaled down to 2")
    assert order == ["web-3", "web-2"]
    assert await c.client.get_or_none("persistentvolumeclaims", "www-web-3", "default") is not None  # retained
    first = await c.until(lambda: c.with_status("statefulsets", "web", replicas=2, readyReplicas=2), "2 ready")
    old_rev = first["status"]["currentRevision"]
    await c.client.patch("statefulsets", "web", {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "nginx:1.26"}]}}}}, "default", patch_type="strategic")

    async def updated() -> Obj | None:
        o = await c.with_status("statefulsets", "web", replicas=2, readyReplicas=2, updatedReplicas=2)
        return o if o and o["status"]["currentRevision"] == o["status"]["updateRevision"] != old_rev else None

    await c.until(updated, "rolled out")
    pods = await c.list("pods")
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"nginx:1.26"}
    assert len(await c.list("controllerrevisions")) == 2


async def test_parallel_creates_all_at_once(cluster: Cluster) -> None:
    c = cluster
    _, kubelet = await start(c)
    kubelet.hold = True
    await c.client.create("statefulsets", statefulset(podManagementPolicy="Parallel"))
    await c.until(lambda: has_pods(c, ["web-0", "web-1", "web-2"]), "all three without readiness")


async def test_claim_retention_policy_delete(cluster: Cluster) -> None:
    from k8py.controllers.garbagecollector import GarbageCollector
    c = cluster
    gc = GarbageCollector(c.client, c.factory, c.clock, c.recorder("gc"))
    ctrl = StatefulSetController(c.client, c.factory, c.clock, c.recorder("statefulset-controller"))
    kubelet = FakeKubelet(c)
    kubelet.start()
    await c.start(ctrl, gc)
    await c.client.create("statefulsets", statefulset(
        replicas=2, persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete", "whenScaled": "Delete"}))
    await c.until(lambda: c.with_status("statefulsets", "web", replicas=2, readyReplicas=2), "2 ready")

    async def claims() -> list[str]:
        return sorted(x["metadata"]["name"] for x in await c.list("persistentvolumeclaims"))

    assert await claims() == ["www-web-0", "www-web-1"]
    await c.client.patch("statefulsets", "web", {"spec": {"replicas": 1}}, "default")

    async def scaled() -> bool:
        return await claims() == ["www-web-0"]

    await c.until(scaled, "the scaled-down pod's claim collected")
    await c.client.delete("statefulsets", "web", "default")

    async def all_gone() -> bool:
        return await claims() == []

    await c.until(all_gone, "claims collected with the set")
