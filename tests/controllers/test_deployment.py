"""Deployment controller (with the ReplicaSet controller and a fake kubelet) against the
real API server."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from k8py.controllers.controllerutil import POD_TEMPLATE_HASH_LABEL, is_pod_ready
from k8py.controllers.deployment import DeploymentController, resolve_fenceposts
from k8py.controllers.replicaset import ReplicaSetController

from ctrl_helpers import Cluster, FakeKubelet, pod_template

Obj = dict[str, Any]


def deployment(name: str, replicas: int, image: str = "nginx:1.25", **spec: Any) -> Obj:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": pod_template(labels, image=image), **spec}}


async def start(c: Cluster, observe: Any = None) -> tuple[DeploymentController, FakeKubelet]:
    dc = DeploymentController(c.client, c.factory, c.clock, c.recorder("deployment-controller"))
    rsc = ReplicaSetController(c.client, c.factory, c.clock, c.recorder("replicaset-controller"))
    kubelet = FakeKubelet(c, observe)
    kubelet.start()
    await c.start(dc, rsc)
    return dc, kubelet


async def rollout_done(c: Cluster, name: str, image: str | None = None) -> Obj | None:
    """What `kubectl rollout status` waits for."""
    d = await c.client.get("deployments", name, "default")
    st = d.get("status") or {}
    want = d["spec"]["replicas"]
    if image and d["spec"]["template"]["spec"]["containers"][0]["image"] != image:
        return None
    done = (st.get("observedGeneration", 0) >= d["metadata"]["generation"]
            and st.get("updatedReplicas", 0) == want and st.get("replicas", 0) == want
            and st.get("availableReplicas", 0) == want)
    return d if done else None


async def replica_sets(c: Cluster) -> list[Obj]:
    return sorted(await c.list("replicasets"),
                  key=lambda r: int(r["metadata"]["annotations"]["deployment.kubernetes.io/revision"]))


def cond(d: Obj, t: str) -> Obj:
    return next(x for x in d["status"]["conditions"] if x["type"] == t)


async def test_creates_hashed_replica_set_with_revision_and_completes(cluster: Cluster) -> None:
    c = cluster
    dc, _ = await start(c)
    await c.client.create("deployments", deployment("web", 3))
    d = await c.until(lambda: rollout_done(c, "web"), "rollout")
    (rs,) = await replica_sets(c)
    h = rs["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL]
    assert rs["metadata"]["name"] == f"web-{h}" and re.fullmatch(r"[bcdfghjklmnpqrstvwxz2456789]+", h)
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", POD_TEMPLATE_HASH_LABEL: h}
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    assert all(p["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL] == h for p in await c.list("pods"))
    d = await c.until(lambda: _with_cond(c, "web", "Progressing", "NewReplicaSetAvailable"), "complete")
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert cond(d, "Available")["reason"] == "MinimumReplicasAvailable"
    assert cond(d, "Available")["status"] == "True"
    assert cond(d, "Progressing")["message"] == f'ReplicaSet "web-{h}" has successfully progressed.'
    st = d["status"]
    assert (st["replicas"], st["updatedReplicas"], st["readyReplicas"], st["availableReplicas"]) == (3, 3, 3, 3)
    assert not st.get("unavailableReplicas")
    assert dc.recorder.for_reason("ScalingReplicaSet") == [f"Scaled up replica set web-{h} from 0 to 3"]
    assert await c.events("ScalingReplicaSet") == [f"Scaled up replica set web-{h} from 0 to 3"]


async def _with_cond(c: Cluster, name: str, ctype: str, reason: str) -> Obj | None:
    d = await c.client.get("deployments", name, "default")
    for x in (d.get("status") or {}).get("conditions") or []:
        if x["type"] == ctype and x.get("reason") == reason:
            return d
    return None


@pytest.mark.parametrize("replicas,surge,unavailable", [
    (4, "25%", "25%"),
    (4, 0, 1),
    (3, 1, 0),
    (5, "50%", "20%"),
])
async def test_rolling_update_respects_surge_and_unavailability(cluster: Cluster, replicas: int,
                                                                surge: Any, unavailable: Any) -> None:
    c = cluster
    d0 = deployment("web", replicas, strategy={"type": "RollingUpdate",
                                               "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}})
    max_surge, max_unavailable = resolve_fenceposts(d0)
    seen: dict[str, int] = {"min_ready": replicas, "max_total": 0}
    tracking = {"on": False}

    def observe(pods: list[Obj]) -> None:
        if not tracking["on"]:
            return
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        seen["min_ready"] = min(seen["min_ready"], sum(1 for p in live if is_pod_ready(p)))
        seen["max_total"] = max(seen["max_total"], len(live))

    dc, kubelet = await start(c, observe)
    await c.client.create("deployments", d0)
    await c.until(lambda: rollout_done(c, "web"), "first rollout")
    tracking["on"] = True
    await c.client.patch("deployments", "web", {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "nginx:1.26"}]}}}}, "default", patch_type="strategic")
    await c.until(lambda: rollout_done(c, "web", "nginx:1.26"), "second rollout")
    assert seen["min_ready"] >= replicas - max_unavailable
    assert seen["max_total"] <= replicas + max_surge
    rss = await replica_sets(c)
    assert len(rss) == 2
    old, new = rss
    assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (0, replicas)
    assert new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    pods = [p for p in await c.list("pods") if not p["metadata"].get("deletionTimestamp")]
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"nginx:1.26"}
    msgs = dc.recorder.for_reason("ScalingReplicaSet")
    assert any(m.startswith(f"Scaled down replica set {old['metadata']['name']} from ") for m in msgs)
    assert msgs[-1].endswith("to 0") or any(m.endswith(f"to {replicas}") for m in msgs)


async def test_recreate_never_runs_old_and_new_pods_together(cluster: Cluster) -> None:
    c = cluster
    mixed = {"seen": False}

    def observe(pods: list[Obj]) -> None:
        hashes = {p["metadata"]["labels"].get(POD_TEMPLATE_HASH_LABEL) for p in pods}
        if len(hashes) > 1:
            mixed["seen"] = True

    await start(c, observe)
    await c.client.create("deployments", deployment("db", 2, strategy={"type": "Recreate"}))
    await c.until(lambda: rollout_done(c, "db"), "first rollout")
    await c.client.patch("deployments", "db", {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "nginx:1.26"}]}}}}, "default", patch_type="strategic")
    await c.until(lambda: rollout_done(c, "db", "nginx:1.26"), "recreate rollout")
    assert not mixed["seen"]
    old, new = await replica_sets(c)
    assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (0, 2)


async def test_undo_by_patching_the_old_template_reuses_the_old_replica_set(cluster: Cluster) -> None:
    c = cluster
    await start(c)
    await c.client.create("deployments", deployment("web", 2))
    await c.until(lambda: rollout_done(c, "web"), "v1")
    await c.client.patch("deployments", "web", {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "nginx:1.26"}]}}}}, "default", patch_type="strategic")
    await c.until(lambda: rollout_done(c, "web", "nginx:1.26"), "v2")
    v1 = next(r for r in await replica_sets(c)
              if r["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1")
    # what `kubectl rollout undo` sends: the old template without the hash label
    template = copy.deepcopy(v1["spec"]["template"])
    del template["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL]
    await c.client.patch("deployments", "web", [{"op": "replace", "path": "/spec/template", "value": template}],
                         "default", patch_type="json")
    d = await c.until(lambda: rollout_done(c, "web", "nginx:1.25"), "undo")
    rss = await replica_sets(c)
    assert len(rss) == 2
    again = next(r for r in rss if r["metadata"]["name"] == v1["metadata"]["name"])
    assert again["spec"]["replicas"] == 2
    assert again["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    d = await c.until(lambda: _revision(c, "web", "3"), "deployment revision 3")
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"


async def _revision(c: Cluster, name: str, rev: str) -> Obj | None:
    d = await c.client.get("deployments", name, "default")
    return d if (d["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision") == rev else None


async def test_restart_pause_resume_and_history_limit(cluster: Cluster) -> None:
    c = cluster
    await start(c)
    await c.client.create("deployments", deployment("web", 2, revisionHistoryLimit=1))
    await c.until(lambda: rollout_done(c, "web"), "v1")
    await c.client.patch("deployments", "web", {"spec": {"paused": True}}, "default")
    await c.until(lambda: _with_cond(c, "web", "Progressing", "DeploymentPaused"), "paused condition")
    restarted = {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"}}}}}
    await c.client.patch("deployments", "web", restarted, "default", patch_type="strategic")
    for _ in range(200):  # give it every chance to (wrongly) roll out
        await c.clock.advance(0)
    assert len(await replica_sets(c)) == 1
    await c.client.patch("deployments", "web", {"spec": {"paused": False}}, "default")
    await c.until(lambda: rollout_done(c, "web"), "restart rollout")
    await c.until(lambda: _n_rs(c, 2), "2 replica sets")
    await c.client.patch("deployments", "web", {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "nginx:1.27"}]}}}}, "default", patch_type="strategic")
    await c.until(lambda: rollout_done(c, "web", "nginx:1.27"), "v3")
    rss = await c.until(lambda: _n_rs(c, 2), "history trimmed to 1 old replica set")
    revs = sorted(int(r["metadata"]["annotations"]["deployment.kubernetes.io/revision"]) for r in rss)
    assert revs == [2, 3]


async def _n_rs(c: Cluster, n: int) -> list[Obj] | None:
    rss = [r for r in await replica_sets(c) if not r["metadata"].get("deletionTimestamp")]
    return rss if len(rss) == n else None


async def test_scale_and_progress_deadline(cluster: Cluster) -> None:
    c = cluster
    dc, kubelet = await start(c)
    await c.client.create("deployments", deployment("web", 2, progressDeadlineSeconds=60))
    await c.until(lambda: rollout_done(c, "web"), "v1")
    (rs,) = await replica_sets(c)
    await c.client.patch("deployments", "web", {"spec": {"replicas": 4}}, "default")
    await c.until(lambda: rollout_done(c, "web"), "scaled")
    assert f"Scaled up replica set {rs['metadata']['name']} from 2 to 4" in dc.recorder.for_reason(
        "ScalingReplicaSet")
    kubelet.hold = True  # new pods never become ready
    await c.client.patch("deployments", "web", {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "nginx:1.26"}]}}}}, "default", patch_type="strategic")
    await c.until(lambda: _with_cond(c, "web", "Progressing", "ReplicaSetUpdated"), "progressing")
    d = await c.client.get("deployments", "web", "default")
    assert d["status"]["availableReplicas"] >= 3  # 4 - 25% may be unavailable
    await c.clock.advance(61)
    d = await c.until(lambda: _with_cond(c, "web", "Progressing", "ProgressDeadlineExceeded"), "deadline")
    assert cond(d, "Progressing")["status"] == "False"
    assert "has timed out progressing" in cond(d, "Progressing")["message"]
    await kubelet.release()
    await c.until(lambda: rollout_done(c, "web", "nginx:1.26"), "recovered")
    await c.until(lambda: _with_cond(c, "web", "Progressing", "NewReplicaSetAvailable"), "complete again")


async def test_proportional_scaling_of_a_stuck_rollout_as_the_docs_show(cluster: Cluster) -> None:
    """kubernetes.io "Proportional scaling": 10 replicas, maxSurge 3, maxUnavailable 2, a
    rollout stuck on a bad image (old 8, new 5); scaling to 15 adds 3 to the old set and
    2 to the new one."""
    c = cluster
    _, kubelet = await start(c)
    await c.client.create("deployments", deployment(
        "web", 10, strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}}))
    await c.until(lambda: rollout_done(c, "web"), "v1")
    kubelet.hold = True  # the new image never starts
    await c.client.patch("deployments", "web", {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "nginx:sometag"}]}}}}, "default", patch_type="strategic")
    await c.until(lambda: _sizes(c, [8, 5]), "stuck at 8 old / 5 new")
    await c.client.patch("deployments", "web", {"spec": {"replicas": 15}}, "default")
    await c.until(lambda: _sizes(c, [11, 7]), "11 old / 7 new")


async def _sizes(c: Cluster, want: list[int]) -> bool:
    return [r["spec"]["replicas"] for r in await replica_sets(c)] == want


@pytest.mark.parametrize("a,b,equal", [
    ({"spec": {"hostIPC": False, "containers": [{"name": "c", "stdin": False}]}},
     {"spec": {"containers": [{"name": "c"}]}}, True),                        # protobuf zero values
    ({"metadata": {"generation": 0, "labels": {"app": "x", POD_TEMPLATE_HASH_LABEL: "abc"}}},
     {"metadata": {"labels": {"app": "x"}}}, True),                           # the hash label is ignored
    ({"spec": {"containers": [{"name": "c", "image": "a"}]}},
     {"spec": {"containers": [{"name": "c", "image": "b"}]}}, False),
])
def test_template_equality_and_hash(a: Obj, b: Obj, equal: bool) -> None:
    from k8py.controllers.controllerutil import compute_hash, equal_ignore_hash, template_without_hash
    assert equal_ignore_hash(a, b) is equal
    assert (compute_hash(template_without_hash(a)) == compute_hash(template_without_hash(b))) is equal


async def test_pod_creation_failures_surface_as_replica_failure(cluster: Cluster) -> None:
    from k8py.client.client import Client
    from k8py.client.errors import ApiError

    class QuotaClient(Client):
        """Pods are refused, as a full ResourceQuota refuses them."""

        async def create(self, resource: Any, obj: Obj, namespace: str | None = None) -> Obj:
            if resource == "pods":
                raise ApiError(403, {"reason": "Forbidden", "message": 'pods "web-x" is forbidden: '
                                     "exceeded quota: compute, requested: pods=1, used: pods=0, limited: pods=0"})
            return await super().create(resource, obj, namespace)

    c = cluster
    dc = DeploymentController(c.client, c.factory, c.clock, c.recorder("deployment-controller"))
    rsc = ReplicaSetController(QuotaClient(c.client.transport), c.factory, c.clock, c.recorder("rs"))
    await c.start(dc, rsc)
    await c.client.create("deployments", deployment("web", 2))
    d = await c.until(lambda: _with_cond(c, "web", "ReplicaFailure", "FailedCreate"), "replica failure")
    assert cond(d, "ReplicaFailure")["status"] == "True"
    assert "exceeded quota" in cond(d, "ReplicaFailure")["message"]
    assert rsc.recorder.for_reason("FailedCreate")[0].startswith('Error creating: pods "web-x" is forbidden')


async def test_terminating_replicas_add_up_from_the_replica_sets(cluster: Cluster) -> None:
    # status.terminatingReplicas (1.33+, beta and on by default): the sum of its ReplicaSets'.
    c = cluster
    await start(c)
    await c.client.create("deployments", deployment("web", 2))
    await c.until(lambda: rollout_done(c, "web"), "rollout")
    victim = (await c.list("pods"))[0]
    await c.client.bind(victim, "n1")  # a bound pod's deletion is graceful: it stays terminating
    await c.client.delete("pods", victim["metadata"]["name"], "default")
    await c.until(lambda: c.with_status("deployments", "web", terminatingReplicas=1, availableReplicas=2),
                  "one terminating, its replacement available")
    await c.client.delete("pods", victim["metadata"]["name"], "default", grace_period_seconds=0)
    d = await c.until(lambda: c.with_status("deployments", "web", terminatingReplicas=0), "none terminating")
    assert d["status"]["terminatingReplicas"] == 0


async def test_old_set_just_scaled_down_does_not_count_its_leaving_pods_as_available(cluster: Cluster) -> None:
    """replicas 4, maxUnavailable 1: the old set was just scaled 4 -> 3 but its status still says 4
    available (its controller has not caught up), the new set has 1 of 2 available. Only 3 + 1 pods
    can be available, so at most one more old pod may go (not two: that would leave 2 ready)."""
    dc = DeploymentController(cluster.client, cluster.factory, cluster.clock)
    d = deployment("web", 4)
    old = {"metadata": {"name": "old", "namespace": "default", "creationTimestamp": "2026-01-01T00:00:00Z"},
           "spec": {"replicas": 3}, "status": {"availableReplicas": 4}}
    new = {"metadata": {"name": "new", "namespace": "default", "creationTimestamp": "2026-01-02T00:00:00Z"},
           "spec": {"replicas": 2}, "status": {"availableReplicas": 1}}
    scaled: list[tuple[str, int]] = []

    async def scale_rs(rs: Obj, n: int, _d: Obj) -> tuple[bool, Obj]:
        scaled.append((rs["metadata"]["name"], n))
        return True, {**rs, "spec": {"replicas": n}}
    dc.scale_rs = scale_rs  # type: ignore[method-assign]  # record, do not write
    await dc.reconcile_old_rss([old], new, d)
    assert scaled == [("old", 2)]
