"""ReplicaSet controller against the real API server (MemoryStore, in-process, FakeClock)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from k8py.clock import rfc3339
from k8py.controllers.controllerutil import deletion_rank
from k8py.controllers.replicaset import ReplicaSetController, ReplicationControllerController

from ctrl_helpers import Cluster, pod_template, set_pod_state

Obj = dict[str, Any]


def rs(name: str, replicas: int, labels: dict[str, str] | None = None, **spec: Any) -> Obj:
    labels = labels or {"app": name}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": pod_template(labels), **spec}}


async def pods_of(c: Cluster, uid: str) -> list[Obj]:
    return [p for p in await c.list("pods")
            if any(r.get("uid") == uid and r.get("controller") for r in p["metadata"].get("ownerReferences") or [])
            and not p["metadata"].get("deletionTimestamp")]


async def start_rs(c: Cluster) -> ReplicaSetController:
    ctrl = ReplicaSetController(c.client, c.factory, c.clock, c.recorder("replicaset-controller"))
    await c.start(ctrl)
    return ctrl


async def test_creates_named_owned_pods_and_reports_status(cluster: Cluster) -> None:
    c = cluster
    ctrl = await start_rs(c)
    created = await c.client.create("replicasets", rs("web", 3))
    uid = created["metadata"]["uid"]
    pods = await c.until(lambda: _n_pods(c, uid, 3), "3 pods")
    for p in pods:
        assert re.fullmatch(r"web-[a-z0-9]{5}", p["metadata"]["name"])
        (ref,) = p["metadata"]["ownerReferences"]
        assert ref == {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": uid,
                       "controller": True, "blockOwnerDeletion": True}
        assert p["metadata"]["labels"] == {"app": "web"}
    got = await c.until(lambda: c.with_status("replicasets", "web", replicas=3, observedGeneration=1), "status")
    assert got["status"].get("readyReplicas", 0) == 0
    assert got["status"]["fullyLabeledReplicas"] == 3
    assert len(ctrl.recorder.for_reason("SuccessfulCreate")) == 3
    msgs = await c.events("SuccessfulCreate")
    assert sorted(msgs) == sorted(f"Created pod: {p['metadata']['name']}" for p in pods)


async def _n_pods(c: Cluster, uid: str, n: int) -> list[Obj] | None:
    pods = await pods_of(c, uid)
    return pods if len(pods) == n else None


async def test_scale_up_down_and_replace_deleted_pod(cluster: Cluster) -> None:
    c = cluster
    await start_rs(c)
    uid = (await c.client.create("replicasets", rs("web", 2)))["metadata"]["uid"]
    await c.until(lambda: _n_pods(c, uid, 2), "2 pods")
    await c.client.patch("replicasets", "web", {"spec": {"replicas": 5}}, "default")
    pods = await c.until(lambda: _n_pods(c, uid, 5), "5 pods")
    victim = pods[0]["metadata"]["name"]
    await c.client.delete("pods", victim, "default")
    pods = await c.until(lambda: _n_pods(c, uid, 5), "replacement")
    assert victim not in {p["metadata"]["name"] for p in pods}
    await c.client.patch("replicasets", "web", {"spec": {"replicas": 1}}, "default")
    await c.until(lambda: _n_pods(c, uid, 1), "1 pod")
    await c.until(lambda: c.with_status("replicasets", "web", replicas=1, observedGeneration=3),
                  "status after scale down")


async def test_scale_down_removes_least_valuable_pods_first(cluster: Cluster) -> None:
    c = cluster
    ctrl = await start_rs(c)
    for n in ("n1", "n2"):
        await c.client.create("nodes", {"metadata": {"name": n}})
    uid = (await c.client.create("replicasets", rs("web", 5)))["metadata"]["uid"]
    pods = sorted(await c.until(lambda: _n_pods(c, uid, 5), "5 pods"), key=lambda p: p["metadata"]["name"])
    # pods[0]: unscheduled; [1]: scheduled, not ready; [2]: ready with restarts; [3], [4]: ready
    # ([2] and [3] share n1: doubled-up pods go before the lone one on n2)
    await c.client.bind(pods[1], "n1")
    await set_pod_state(c.client, pods[2], ready=True, node_name="n1", restarts=3, when=c.clock.now() - 100)
    await set_pod_state(c.client, pods[3], ready=True, node_name="n1", when=c.clock.now() - 100)
    await set_pod_state(c.client, pods[4], ready=True, node_name="n2", when=c.clock.now() - 100)
    await c.until(lambda: c.with_status("replicasets", "web", readyReplicas=3), "3 ready")
    await c.client.patch("replicasets", "web", {"spec": {"replicas": 3}}, "default")
    left = await c.until(lambda: _n_pods(c, uid, 3), "3 pods")
    assert {p["metadata"]["name"] for p in left} == {p["metadata"]["name"] for p in pods[2:]}
    await c.client.patch("replicasets", "web", {"spec": {"replicas": 2}}, "default")
    left = await c.until(lambda: _n_pods(c, uid, 2), "2 pods")
    assert pods[2]["metadata"]["name"] not in {p["metadata"]["name"] for p in left}  # restarted first
    assert len(ctrl.recorder.for_reason("SuccessfulDelete")) == 3


def _pod(name: str, node: str = "", phase: str = "Pending", ready: bool | None = None, restarts: int = 0,
         created: float = 0.0, ready_at: float = 0.0) -> Obj:
    st: Obj = {"phase": phase}
    if ready is not None:
        st["conditions"] = [{"type": "Ready", "status": "True" if ready else "False",
                             "lastTransitionTime": rfc3339(ready_at)}]
    st["containerStatuses"] = [{"name": "c", "restartCount": restarts}]
    return {"metadata": {"name": name, "creationTimestamp": rfc3339(created)},
            "spec": {"nodeName": node} if node else {}, "status": st}


def _with_cost(pod: Obj, cost: int) -> Obj:
    pod["metadata"]["annotations"] = {"controller.kubernetes.io/pod-deletion-cost": str(cost)}
    return pod


@pytest.mark.parametrize("first,second", [
    (_pod("unscheduled"), _pod("scheduled", node="n")),
    (_pod("pending", node="n"), _pod("running", node="n", phase="Running")),
    (_pod("unknown", node="n", phase="Unknown"), _pod("running", node="n", phase="Running")),
    (_pod("notready", node="n", phase="Running", ready=False), _pod("ready", node="n", phase="Running", ready=True)),
    (_pod("recently-ready", node="n", phase="Running", ready=True, ready_at=2000),
     _pod("long-ready", node="n", phase="Running", ready=True, ready_at=1000)),
    (_pod("restarts", node="n", phase="Running", ready=True, restarts=5),
     _pod("stable", node="n", phase="Running", ready=True)),
    (_pod("newer", node="n", phase="Running", ready=True, created=2000),
     _pod("older", node="n", phase="Running", ready=True, created=1000)),
    (_with_cost(_pod("cheap", node="n", phase="Running", ready=True, created=1000), -5),
     _pod("default-cost", node="n", phase="Running", ready=True, restarts=9, created=2000)),
])
def test_deletion_order(first: Obj, second: Obj) -> None:
    assert deletion_rank(first) < deletion_rank(second)
    assert sorted([second, first], key=deletion_rank)[0] is first


async def synced_behind_the_watch(c: Cluster) -> tuple[ReplicaSetController, Obj]:
    """A controller whose cache has the 3-replica set "web" but stops there (informers
    stopped), after one sync: (controller, the replica set)."""
    ctrl = ReplicaSetController(c.client, c.factory, c.clock, c.recorder("rs"))
    c.factory.start()
    await c.factory.wait_synced()
    created = await c.client.create("replicasets", rs("web", 3))
    await c.until(lambda: ctrl.owners.get("default", "web") is not None, "rs in cache")
    c.factory.stop()  # the informers stop: the cache will not see the pods the sync creates
    await ctrl.sync("default/web")
    return ctrl, created


async def test_expectations_prevent_double_creation_before_watch_catches_up(cluster: Cluster) -> None:
    c = cluster
    ctrl, created = await synced_behind_the_watch(c)
    assert len(await pods_of(c, created["metadata"]["uid"])) == 3
    assert ctrl.expectations.pending("default/web") == (3, 0)
    await ctrl.sync("default/web")  # the cache still shows no pods
    assert len(await pods_of(c, created["metadata"]["uid"])) == 3
    c.factory.start()  # the watch catches up: the adds are observed
    await c.until(lambda: ctrl.expectations.pending("default/web") == (0, 0), "creations observed")
    await ctrl.sync("default/web")
    assert len(await pods_of(c, created["metadata"]["uid"])) == 3


async def test_adopts_matching_orphans_and_releases_relabelled_pods(cluster: Cluster) -> None:
    c = cluster
    orphan = {"metadata": {"name": "orphan", "namespace": "default", "labels": {"app": "web"}},
              "spec": pod_template({})["spec"]}
    await c.client.create("pods", orphan)
    await start_rs(c)
    uid = (await c.client.create("replicasets", rs("web", 2)))["metadata"]["uid"]
    pods = await c.until(lambda: _n_pods(c, uid, 2), "2 pods")
    assert "orphan" in {p["metadata"]["name"] for p in pods}
    await c.client.patch("pods", "orphan", {"metadata": {"labels": {"app": "other"}}}, "default")
    await c.until(lambda: _released(c, uid), "released and replaced")
    released = await c.client.get("pods", "orphan", "default")
    assert not released["metadata"].get("ownerReferences")


async def _released(c: Cluster, uid: str) -> list[Obj] | None:
    pods = await pods_of(c, uid)
    names = {p["metadata"]["name"] for p in pods}
    return pods if len(pods) == 2 and "orphan" not in names else None


async def test_ready_and_available_with_min_ready_seconds(cluster: Cluster) -> None:
    c = cluster
    await start_rs(c)
    uid = (await c.client.create("replicasets", rs("web", 2, minReadySeconds=30)))["metadata"]["uid"]
    pods = await c.until(lambda: _n_pods(c, uid, 2), "2 pods")
    for p in pods:
        await set_pod_state(c.client, p, ready=True, when=c.clock.now())
    o = await c.until(lambda: c.with_status("replicasets", "web", readyReplicas=2), "ready")
    assert o["status"].get("availableReplicas", 0) == 0
    await c.clock.advance(31)
    await c.until(lambda: c.with_status("replicasets", "web", readyReplicas=2, availableReplicas=2), "available")


async def test_replication_controller_keeps_replicas(cluster: Cluster) -> None:
    c = cluster
    ctrl = ReplicationControllerController(c.client, c.factory, c.clock, c.recorder("rc"))
    await c.start(ctrl)
    rc = await c.client.create("replicationcontrollers", {
        "metadata": {"name": "legacy", "namespace": "default"},
        "spec": {"replicas": 2, "selector": {"app": "legacy"}, "template": pod_template({"app": "legacy"})}})
    await c.until(lambda: _n_pods(c, rc["metadata"]["uid"], 2), "2 rc pods")
    o = await c.until(lambda: c.with_status("replicationcontrollers", "legacy", replicas=2), "rc status")
    assert o["status"]["replicas"] == 2


async def test_a_pod_deleted_before_the_watch_saw_it_alive_still_counts_as_created(cluster: Cluster) -> None:
    c = cluster
    ctrl, created = await synced_behind_the_watch(c)
    pods = await pods_of(c, created["metadata"]["uid"])
    assert len(pods) == 3
    evicted = await c.client.delete("pods", pods[0]["metadata"]["name"], "default", grace_period_seconds=0)
    c.factory.start()
    await c.until(lambda: len(ctrl.pods.by_index("controllers.controller-uid", created["metadata"]["uid"])) == 2,
                  "the two live pods in the cache")
    assert ctrl.expectations.pending("default/web") == (1, 0)
    ctrl._pod_deleted(evicted)  # the DELETED event of a pod never seen alive
    assert ctrl.expectations.satisfied("default/web")
    await ctrl.sync("default/web")
    assert len(await pods_of(c, created["metadata"]["uid"])) == 3  # replaced at once, not after the TTL


async def test_terminating_replicas_since_1_33(cluster: Cluster) -> None:
    # status.terminatingReplicas (beta, on by default since 1.33): pods being deleted that have
    # not finished. A bound pod's graceful deletion leaves it terminating until it is gone.
    c = cluster
    await start_rs(c)
    uid = (await c.client.create("replicasets", rs("web", 2)))["metadata"]["uid"]
    pods = await c.until(lambda: _n_pods(c, uid, 2), "2 pods")
    got = await c.until(lambda: c.with_status("replicasets", "web", replicas=2), "status")
    assert got["status"]["terminatingReplicas"] == 0  # reported, not absent (a pointer field in Go)
    victim = pods[0]
    await c.client.bind(victim, "n1")
    await c.client.delete("pods", victim["metadata"]["name"], "default")
    await c.until(lambda: _n_pods(c, uid, 2), "a replacement")
    await c.until(lambda: c.with_status("replicasets", "web", replicas=2, terminatingReplicas=1), "one terminating")
    await c.client.delete("pods", victim["metadata"]["name"], "default", grace_period_seconds=0)
    await c.until(lambda: c.with_status("replicasets", "web", replicas=2, terminatingReplicas=0), "gone")
    rc = ReplicationControllerController(c.client, c.factory, c.clock, c.recorder("rc"))
    await c.start(rc)
    await c.client.create("replicationcontrollers", {
        "metadata": {"name": "legacy", "namespace": "default"},
        "spec": {"replicas": 1, "selector": {"app": "legacy"}, "template": pod_template({"app": "legacy"})}})
    o = await c.until(lambda: c.with_status("replicationcontrollers", "legacy", replicas=1), "rc status")
    assert "terminatingReplicas" not in o["status"]  # not a field of ReplicationControllerStatus
