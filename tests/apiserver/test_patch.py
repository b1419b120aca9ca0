"""PATCH: merge, JSON, strategic, server-side apply; preconditions; bad patches."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from k8py.apiserver.server import ApiServer
from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.store.memory import MemoryStore

from apiserver_helpers import call, deployment

DEPLOY = "/apis/apps/v1/namespaces/default/deployments/d"


@pytest.mark.parametrize("ptype,body,check", [
    ("merge", {"spec": {"replicas": 4}}, lambda d: d["spec"]["replicas"] == 4),
    ("json", [{"op": "replace", "path": "/spec/replicas", "value": 5}], lambda d: d["spec"]["replicas"] == 5),
    ("strategic", {"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "busybox"}]}}}},
     lambda d: [c["name"] for c in d["spec"]["template"]["spec"]["containers"]] == ["side", "c"]
     or [c["name"] for c in d["spec"]["template"]["spec"]["containers"]] == ["c", "side"]),
    ("merge", {"metadata": {"labels": {"a": "b"}}}, lambda d: d["metadata"]["labels"] == {"a": "b"}
     and d["metadata"]["generation"] == 1),
])
async def test_patch_types(client: Client, ptype: str, body: Any, check: Any) -> None:
    await client.create("deployments", deployment("d"))
    out = await client.patch("deployments", "d", body, "default", patch_type=ptype)
    assert check(out), out
    assert check(await client.get("deployments", "d", "default"))


async def test_strategic_merge_keeps_other_containers(client: Client) -> None:
    await client.create("deployments", deployment("d"))
    out = await client.patch("deployments", "d", {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "nginx:2"}]}}}}, "default", patch_type="strategic")
    cs = out["spec"]["template"]["spec"]["containers"]
    assert len(cs) == 1 and cs[0]["image"] == "nginx:2"
    assert out["metadata"]["generation"] == 2


async def test_patch_missing_object_is_404(client: Client) -> None:
    with pytest.raises(ApiError) as e:
        await client.patch("deployments", "nope", {"spec": {}}, "default")
    assert e.value.status == 404


async def test_patch_resource_version_is_a_precondition(client: Client) -> None:
    d = await client.create("deployments", deployment("d"))
    await client.patch("deployments", "d", {"spec": {"replicas": 2}}, "default")
    with pytest.raises(ApiError) as e:
        await client.patch("deployments", "d", {"metadata": {"resourceVersion": d["metadata"]["resourceVersion"]},
                                                "spec": {"replicas": 3}}, "default")
    assert e.value.conflict
    cur = await client.get("deployments", "d", "default")
    ok = await client.patch("deployments", "d", {"metadata": {"resourceVersion": cur["metadata"]["resourceVersion"]},
                                                 "spec": {"replicas": 3}}, "default")
    assert ok["spec"]["replicas"] == 3


async def test_concurrent_patches_all_apply(client: Client, store: MemoryStore,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    real_get = store.get

    async def slow_get(key: str) -> Any:
        kv = await real_get(key)
        await asyncio.sleep(0)  # every patch reads the same revision: all but one conflict and retry
        return kv
    monkeypatch.setattr(store, "get", slow_get)
    await client.create("configmaps", {"metadata": {"name": "c", "namespace": "default"}, "data": {}})
    await asyncio.gather(*(client.patch("configmaps", "c", {"data": {f"k{i}": str(i)}}, "default")
                           for i in range(20)))
    cm = await client.get("configmaps", "c", "default")
    assert cm["data"] == {f"k{i}": str(i) for i in range(20)}


async def test_patch_status_subresource(client: Client) -> None:
    await client.create("deployments", deployment("d"))
    out = await client.patch("deployments", "d", {"status": {"readyReplicas": 1}, "spec": {"replicas": 9}},
                             "default", subresource="status")
    assert out["status"]["readyReplicas"] == 1 and out["spec"]["replicas"] == 1


async def test_apply_creates_then_updates_and_conflicts(client: Client) -> None:
    cfg = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default"},
           "data": {"x": "1"}}
    created = await client.patch("configmaps", "a", cfg, "default", patch_type="apply", field_manager="alice")
    assert created["data"] == {"x": "1"}
    assert any(m["manager"] == "alice" and m["operation"] == "Apply" for m in created["metadata"]["managedFields"])
    cfg2 = dict(cfg, data={"x": "2"})
    with pytest.raises(ApiError) as e:
        await client.patch("configmaps", "a", cfg2, "default", patch_type="apply", field_manager="bob")
    assert e.value.status == 409 and e.value.reason == "Conflict"
    forced = await client.patch("configmaps", "a", cfg2, "default", patch_type="apply", field_manager="bob",
                                force=True)
    assert forced["data"] == {"x": "2"}


async def test_apply_yaml_body_and_manager_required(api: ApiServer) -> None:
    y = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\n  namespace: default\ndata:\n  k: v\n"
    resp = await call(api, "PATCH", "/api/v1/namespaces/default/configmaps/y", y,
                      content_type="application/apply-patch+yaml")
    assert resp.status == 422 and "fieldManager" in resp.body["message"]
    resp = await call(api, "PATCH", "/api/v1/namespaces/default/configmaps/y", y,
                      content_type="application/apply-patch+yaml", query={"fieldManager": "kubectl"})
    assert resp.status == 201, resp.body
    assert resp.body["data"] == {"k": "v"}


@pytest.mark.parametrize("body,ctype,code", [
    (b"{not json", "application/merge-patch+json", 400),
    (b'{"op": "replace"}', "application/json-patch+json", 400),
    (json.dumps([{"op": "replace", "path": "/spec/nothing/here", "value": 1}]).encode(),
     "application/json-patch+json", 422),
    (json.dumps([{"op": "test", "path": "/spec/replicas", "value": 99}]).encode(), "application/json-patch+json", 422),
    (b'{"spec": {}}', "text/plain", 415),
    (b'{"spec": {"replicas": "many"}}', "application/merge-patch+json", 422),
    (b'{"kind": "Service"}', "application/merge-patch+json", 400),
    (b'{"metadata": {"name": "other"}}', "application/merge-patch+json", 400),
    (b"", "application/merge-patch+json", 400),
])
async def test_bad_patches(api: ApiServer, client: Client, store: MemoryStore, body: bytes, ctype: str,
                           code: int) -> None:
    await client.create("deployments", deployment("d"))
    rev = await store.current_revision()
    resp = await call(api, "PATCH", DEPLOY, body, content_type=ctype)
    assert resp.status == code, resp.body
    assert resp.body["kind"] == "Status"
    assert await store.current_revision() == rev


async def test_patch_dry_run(api: ApiServer, client: Client, store: MemoryStore) -> None:
    await client.create("deployments", deployment("d"))
    rev = await store.current_revision()
    resp = await call(api, "PATCH", DEPLOY, {"spec": {"replicas": 7}}, content_type="application/merge-patch+json",
                      query={"dryRun": "All"})
    assert resp.status == 200 and resp.body["spec"]["replicas"] == 7
    assert await store.current_revision() == rev
