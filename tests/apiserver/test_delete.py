"""DELETE: responses per kind, preconditions, finalizers, graceful pods, propagation,
deletecollection, namespace termination."""

from __future__ import annotations

import pytest

from k8py.apiserver.server import ApiServer
from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.store.memory import MemoryStore

from apiserver_helpers import call, deployment, pod
from helpers.api import eventually


async def test_delete_returns_status_for_most_kinds_and_object_for_pods(client: Client) -> None:
    cm = await client.create("configmaps", {"metadata": {"name": "c", "namespace": "default"}})
    out = await client.delete("configmaps", "c", "default")
    assert out["kind"] == "Status" and out["status"] == "Success"
    assert out["details"] == {"name": "c", "kind": "configmaps", "uid": cm["metadata"]["uid"]}
    await client.create("pods", pod("p"))
    out = await client.delete("pods", "p", "default")
    assert out["kind"] == "Pod" and out["metadata"]["name"] == "p"
    assert await client.get_or_none("pods", "p", "default") is None
    with pytest.raises(ApiError) as e:
        await client.delete("pods", "p", "default")
    assert e.value.not_found


async def test_preconditions(client: Client) -> None:
    cm = await client.create("configmaps", {"metadata": {"name": "c", "namespace": "default"}})
    with pytest.raises(ApiError) as e:
        await client.delete("configmaps", "c", "default", preconditions={"uid": "other"})
    assert e.value.conflict and "Precondition failed: UID in precondition: other" in e.value.body["message"]
    with pytest.raises(ApiError) as e:
        await client.delete("configmaps", "c", "default", preconditions={"resourceVersion": "1"})
    assert e.value.conflict
    await client.delete("configmaps", "c", "default", preconditions={"uid": cm["metadata"]["uid"]})


async def test_finalizers_hold_the_object_until_removed(client: Client) -> None:
    await client.create("configmaps", {"metadata": {"name": "c", "namespace": "default",
                                                    "finalizers": ["example.com/hold"]}})
    out = await client.delete("configmaps", "c", "default")
    assert out["kind"] == "ConfigMap" and out["metadata"]["deletionTimestamp"]
    cur = await client.get("configmaps", "c", "default")
    assert cur["metadata"]["deletionTimestamp"] and cur["metadata"]["deletionGracePeriodSeconds"] == 0
    # A second delete is a no-op answered with the object.
    again = await client.delete("configmaps", "c", "default")
    assert again["metadata"]["resourceVersion"] == cur["metadata"]["resourceVersion"]
    # No new finalizers while deleting.
    cur["metadata"]["finalizers"] = ["example.com/hold", "example.com/more"]
    with pytest.raises(ApiError) as e:
        await client.update("configmaps", cur)
    assert e.value.status == 422
    await client.patch("configmaps", "c", {"metadata": {"finalizers": None}}, "default")
    assert await client.get_or_none("configmaps", "c", "default") is None


@pytest.mark.parametrize("policy,finalizer", [("Foreground", "foregroundDeletion"), ("Orphan", "orphan")])
async def test_propagation_policy_finalizers(client: Client, policy: str, finalizer: str) -> None:
    await client.create("deployments", deployment("d"))
    out = await client.delete("deployments", "d", "default", propagation_policy=policy)
    assert out["metadata"]["finalizers"] == [finalizer] and out["metadata"]["deletionTimestamp"]
    assert (await client.get("deployments", "d", "default"))["metadata"]["finalizers"] == [finalizer]


async def test_background_deletes_at_once(client: Client) -> None:
    await client.create("deployments", deployment("d"))
    out = await client.delete("deployments", "d", "default", propagation_policy="Background")
    assert out["kind"] == "Status"
    assert await client.get_or_none("deployments", "d", "default") is None


async def test_bad_propagation_policy(client: Client) -> None:
    await client.create("deployments", deployment("d"))
    with pytest.raises(ApiError) as e:
        await client.delete("deployments", "d", "default", propagation_policy="Sideways")
    assert e.value.status == 400


async def test_graceful_pod_deletion(client: Client) -> None:
    await client.create("pods", pod("bound", nodeName="n1", terminationGracePeriodSeconds=20))
    out = await client.delete("pods", "bound", "default")
    assert out["metadata"]["deletionGracePeriodSeconds"] == 20 and out["metadata"]["deletionTimestamp"]
    assert await client.get_or_none("pods", "bound", "default") is not None
    # The kubelet finishes with grace 0.
    await client.delete("pods", "bound", "default", grace_period_seconds=0)
    assert await client.get_or_none("pods", "bound", "default") is None


async def test_unbound_pod_and_explicit_grace(client: Client, api: ApiServer) -> None:
    await client.create("pods", pod("unbound"))
    await client.delete("pods", "unbound", "default")
    assert await client.get_or_none("pods", "unbound", "default") is None
    await client.create("pods", pod("b", nodeName="n1"))
    resp = await call(api, "DELETE", "/api/v1/namespaces/default/pods/b", query={"gracePeriodSeconds": "5"})
    assert resp.body["metadata"]["deletionGracePeriodSeconds"] == 5
    resp = await call(api, "DELETE", "/api/v1/namespaces/default/pods/b", query={"gracePeriodSeconds": "0"})
    assert resp.status == 200
    assert await client.get_or_none("pods", "b", "default") is None


async def test_delete_dry_run(api: ApiServer, client: Client, store: MemoryStore) -> None:
    await client.create("configmaps", {"metadata": {"name": "c", "namespace": "default"}})
    rev = await store.current_revision()
    resp = await call(api, "DELETE", "/api/v1/namespaces/default/configmaps/c", query={"dryRun": "All"})
    assert resp.status == 200 and await store.current_revision() == rev


async def test_delete_collection_with_selector(api: ApiServer, client: Client) -> None:
    for i in range(4):
        await client.create("configmaps", {"metadata": {"name": f"c{i}", "namespace": "default",
                                                        "labels": {"del": "yes" if i % 2 else "no"}}})
    resp = await call(api, "DELETE", "/api/v1/namespaces/default/configmaps", query={"labelSelector": "del=yes"})
    assert resp.status == 200 and sorted(i["metadata"]["name"] for i in resp.body["items"]) == ["c1", "c3"]
    left = await client.list("configmaps", "default")
    assert sorted(i["metadata"]["name"] for i in left["items"]) == ["c0", "c2"]


@pytest.mark.parametrize("name", ["default", "kube-system", "kube-public"])
async def test_system_namespaces_cannot_be_deleted(client: Client, name: str) -> None:
    with pytest.raises(ApiError) as e:
        await client.delete("namespaces", name)
    assert e.value.status == 403 and "may not be deleted" in e.value.body["message"]


async def test_namespace_deletion_empties_then_removes_it(client: Client) -> None:
    await client.create("namespaces", {"metadata": {"name": "doomed"}})
    await client.create("configmaps", {"metadata": {"name": "c", "namespace": "doomed"}})
    await client.create("deployments", deployment("d", ns="doomed"))
    await client.create("pods", pod("p", ns="doomed"))
    await client.create("configmaps", {"metadata": {"name": "held", "namespace": "doomed",
                                                    "finalizers": ["example.com/hold"]}})
    out = await client.delete("namespaces", "doomed")
    assert out["status"]["phase"] == "Terminating" and out["metadata"]["deletionTimestamp"]
    with pytest.raises(ApiError) as e:
        await client.create("configmaps", {"metadata": {"name": "new", "namespace": "doomed"}})
    assert e.value.status == 403 and "is being terminated" in e.value.body["message"]

    async def only_held_left() -> bool:
        cms = await client.list("configmaps", "doomed")
        rest = [await client.list(r, "doomed") for r in ("pods", "deployments", "serviceaccounts")]
        return [i["metadata"]["name"] for i in cms["items"]] == ["held"] and not any(x["items"] for x in rest)
    await eventually(only_held_left, what="the namespace's objects to go")

    async def reported() -> bool:
        ns = await client.get("namespaces", "doomed")
        conds = {c["type"]: c for c in ns["status"].get("conditions") or []}
        c = conds.get("NamespaceFinalizersRemaining")
        return c is not None and c["status"] == "True" and "example.com/hold in 1 resource instances" in c["message"]
    await eventually(reported, what="the namespace to report the finalizer left")
    ns = await client.get("namespaces", "doomed")
    assert any(c["type"] == "NamespaceContentRemaining" and "configmaps. has 1 resource instances" in c["message"]
               for c in ns["status"]["conditions"])
    await client.patch("configmaps", "held", {"metadata": {"finalizers": []}}, "doomed")

    async def ns_gone() -> bool:
        return await client.get_or_none("namespaces", "doomed") is None
    await eventually(ns_gone, what="the namespace to go")


async def test_namespace_finalize_subresource(api: ApiServer, client: Client) -> None:
    ns = await client.create("namespaces", {"metadata": {"name": "fin"}})
    assert ns["spec"]["finalizers"] == ["kubernetes"]
    resp = await call(api, "PUT", "/api/v1/namespaces/fin/finalize",
                      {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fin"},
                       "spec": {"finalizers": []}})
    assert resp.status == 200 and resp.body["spec"]["finalizers"] == []
    # Without the kubernetes finalizer, delete removes the namespace at once.
    await client.delete("namespaces", "fin")
    assert await client.get_or_none("namespaces", "fin") is None


async def test_namespace_deletion_resumes_after_restart(store: MemoryStore, clock) -> None:  # type: ignore[no-untyped-def]
    from k8py.apiserver.config import ApiServerConfig
    from k8py.apiserver.inprocess import InProcessTransport
    api = ApiServer(store, ApiServerConfig(), clock)
    await api.start()
    c = Client(InProcessTransport(api))
    await c.create("namespaces", {"metadata": {"name": "resume"}})
    await c.create("configmaps", {"metadata": {"name": "c", "namespace": "resume"}})
    # Mark it terminating behind the server's back, as if it crashed mid-way.
    await api.close()
    from k8py.api import resources
    from k8py.apiserver import storage
    r = resources.get("namespaces")
    kv = await store.get(r.storage_key(None, "resume"))
    assert kv is not None
    obj = storage.from_kv(r, kv)
    obj["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    obj["status"]["phase"] = "Terminating"
    await store.update(kv.key, storage.encode(r, obj), kv.mod_revision)
    api2 = ApiServer(store, ApiServerConfig(), clock)
    await api2.start()
    try:
        c2 = Client(InProcessTransport(api2))

        async def gone() -> bool:
            return await c2.get_or_none("namespaces", "resume") is None
        await eventually(gone, what="the namespace deletion to resume")
    finally:
        await api2.close()


async def test_namespaces_have_no_deletecollection(api: ApiServer, client: Client) -> None:
    resp = await call(api, "DELETE", "/api/v1/namespaces")
    assert resp.status == 405
    assert await client.get_or_none("namespaces", "kube-node-lease") is not None
