"""Garbage collector: background, foreground and orphan deletion, uid matching."""

from __future__ import annotations

from typing import Any

import pytest

from k8py.controllers.deployment import DeploymentController
from k8py.controllers.garbagecollector import GarbageCollector
from k8py.controllers.replicaset import ReplicaSetController

from ctrl_helpers import Cluster, pod_template

Obj = dict[str, Any]


def deployment(name: str, replicas: int) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": pod_template({"app": name})}}


async def start(c: Cluster) -> GarbageCollector:
    gc = GarbageCollector(c.client, c.factory, c.clock, c.recorder("gc"))
    dc = DeploymentController(c.client, c.factory, c.clock, c.recorder("deployment-controller"))
    rsc = ReplicaSetController(c.client, c.factory, c.clock, c.recorder("replicaset-controller"))
    await c.start(gc, dc, rsc)
    return gc


async def counts(c: Cluster) -> tuple[int, int]:
    return len(await c.list("replicasets")), len(await c.list("pods"))


async def has(c: Cluster, want: tuple[int, int]) -> bool:
    return await counts(c) == want


@pytest.mark.parametrize("policy", [None, "Background", "Foreground"])
async def test_deleting_a_deployment_cascades(cluster: Cluster, policy: str | None) -> None:
    c = cluster
    await start(c)
    await c.client.create("deployments", deployment("web", 3))
    await c.until(lambda: has(c, (1, 3)), "rs and 3 pods")
    await c.client.delete("deployments", "web", "default", propagation_policy=policy)
    await c.until(lambda: has(c, (0, 0)), "dependents gone")
    await c.until(lambda: _gone(c, "deployments", "web"), "deployment gone")


async def _gone(c: Cluster, resource: str, name: str) -> bool:
    return await c.client.get_or_none(resource, name, "default") is None


async def test_foreground_waits_for_dependents_before_the_owner_goes(cluster: Cluster) -> None:
    c = cluster
    await start(c)
    await c.client.create("deployments", deployment("web", 2))
    await c.until(lambda: has(c, (1, 2)), "rs and pods")
    # a pod that does not go at once: a finalizer of our own keeps it
    (p, _) = await c.list("pods")
    await c.client.patch("pods", p["metadata"]["name"], {"metadata": {"finalizers": ["test/hold"]}}, "default")
    await c.client.delete("deployments", "web", "default", propagation_policy="Foreground")
    await c.until(lambda: _pods_left(c, 1), "the other pod gone")
    d = await c.client.get("deployments", "web", "default")
    assert d["metadata"].get("deletionTimestamp") and "foregroundDeletion" in d["metadata"]["finalizers"]
    await c.client.patch("pods", p["metadata"]["name"], {"metadata": {"finalizers": None}}, "default")
    await c.until(lambda: _gone(c, "deployments", "web"), "deployment gone")
    assert await counts(c) == (0, 0)


async def _pods_left(c: Cluster, n: int) -> bool:
    return len(await c.list("pods")) == n


async def test_orphan_keeps_dependents_and_drops_their_owner_references(cluster: Cluster) -> None:
    c = cluster
    await start(c)
    await c.client.create("deployments", deployment("web", 2))
    await c.until(lambda: has(c, (1, 2)), "rs and pods")
    await c.client.delete("deployments", "web", "default", propagation_policy="Orphan")
    await c.until(lambda: _gone(c, "deployments", "web"), "deployment gone")
    (rs,) = await c.list("replicasets")
    assert not rs["metadata"].get("ownerReferences")
    assert len(await c.list("pods")) == 2
    # the pods keep their (living) replica set as owner
    assert all(p["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"] for p in await c.list("pods"))


async def test_owner_recreated_with_same_name_is_another_owner(cluster: Cluster) -> None:
    c = cluster
    gc = GarbageCollector(c.client, c.factory, c.clock, c.recorder("gc"))
    await c.start(gc)
    cm = await c.client.create("configmaps", {"metadata": {"name": "owner", "namespace": "default"}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": cm["metadata"]["uid"]}
    await c.client.create("secrets", {"metadata": {"name": "dep", "namespace": "default",
                                                   "ownerReferences": [ref]}})
    await c.client.create("secrets", {"metadata": {"name": "free", "namespace": "default"}})
    await c.client.delete("configmaps", "owner", "default")
    await c.client.create("configmaps", {"metadata": {"name": "owner", "namespace": "default"}})
    await c.until(lambda: _gone(c, "secrets", "dep"), "dependent of the old owner collected")
    assert await c.client.get_or_none("secrets", "free", "default") is not None
    assert await c.client.get_or_none("configmaps", "owner", "default") is not None


async def test_dependent_with_a_living_second_owner_loses_only_the_dangling_reference(cluster: Cluster) -> None:
    c = cluster
    gc = GarbageCollector(c.client, c.factory, c.clock, c.recorder("gc"))
    await c.start(gc)
    a = await c.client.create("configmaps", {"metadata": {"name": "a", "namespace": "default"}})
    b = await c.client.create("configmaps", {"metadata": {"name": "b", "namespace": "default"}})
    refs = [{"apiVersion": "v1", "kind": "ConfigMap", "name": o["metadata"]["name"], "uid": o["metadata"]["uid"]}
            for o in (a, b)]
    await c.client.create("secrets", {"metadata": {"name": "dep", "namespace": "default", "ownerReferences": refs}})
    await c.client.delete("configmaps", "a", "default")
    s = await c.until(lambda: _refs(c, 1), "dangling reference removed")
    assert s["metadata"]["ownerReferences"][0]["name"] == "b"


async def _refs(c: Cluster, n: int) -> Obj | None:
    s = await c.client.get_or_none("secrets", "dep", "default")
    return s if s is not None and len(s["metadata"].get("ownerReferences") or []) == n else None


@pytest.mark.parametrize("api_version,kind,collected", [
    ("v1", "ConfigMap", True),
    ("apps/v1beta2", "Deployment", True),       # another version of a served kind
    ("example.com/v1", "Widget", False),        # an unknown kind is never assumed gone
])
async def test_owner_kinds(cluster: Cluster, api_version: str, kind: str, collected: bool) -> None:
    c = cluster
    gc = GarbageCollector(c.client, c.factory, c.clock, c.recorder("gc"))
    await c.start(gc)
    ref = {"apiVersion": api_version, "kind": kind, "name": "gone", "uid": "0000-gone"}
    await c.client.create("secrets", {"metadata": {"name": "dep", "namespace": "default", "ownerReferences": [ref]}})
    if collected:
        await c.until(lambda: _gone(c, "secrets", "dep"), "dependent of a vanished owner collected")
        return
    await c.until(lambda: gc.syncs >= 1 and len(gc.queue) == 0, "the GC looked at it")
    assert await c.client.get_or_none("secrets", "dep", "default") is not None


CRD: Obj = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {"group": "example.com", "scope": "Namespaced",
             "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
             "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                 "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
}


async def test_dependents_of_a_custom_resource_are_collected(cluster: Cluster) -> None:
    from k8py.api.resources import Resource
    c = cluster
    gc = GarbageCollector(c.client, c.factory, c.clock, c.recorder("gc"))
    await c.start(gc)
    await c.client.create("customresourcedefinitions", CRD)
    widgets = Resource("example.com", "v1", "Widget", "widgets", True)
    owner = await c.client.create(widgets, {"apiVersion": "example.com/v1", "kind": "Widget",
                                            "metadata": {"name": "w"}}, "default")
    ref = {"apiVersion": "example.com/v1", "kind": "Widget", "name": "w", "uid": owner["metadata"]["uid"]}
    await c.client.create("secrets", {"metadata": {"name": "dep", "namespace": "default", "ownerReferences": [ref]}})
    await c.until(lambda: ("example.com", "Widget") in gc.custom, "the GC watches widgets")
    await c.until(lambda: gc.syncs >= 1 and len(gc.queue) == 0, "the GC looked at the secret")
    assert await c.client.get_or_none("secrets", "dep", "default") is not None  # its owner lives
    await c.client.delete(widgets, "w", "default")
    await c.until(lambda: _gone(c, "secrets", "dep"), "dependent of the deleted widget collected")
