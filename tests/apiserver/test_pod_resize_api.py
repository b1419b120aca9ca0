"""pods/resize: only the containers' CPU/memory change, Kubernetes' 422s, discovery."""

from __future__ import annotations

import json
from typing import Any

import pytest

from k8py.apiserver.server import ApiServer
from k8py.client.client import Client
from k8py.client.errors import ApiError

from apiserver_helpers import call, pod

PATH = "/api/v1/namespaces/default/pods/p/resize"


def _res(cpu: str, mem: str, lim_cpu: str | None = None, lim_mem: str | None = None) -> dict[str, Any]:
    return {"requests": {"cpu": cpu, "memory": mem}, "limits": {"cpu": lim_cpu or cpu, "memory": lim_mem or mem}}


async def _pod(client: Client, resources: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    p = pod("p", **spec)
    p["spec"]["containers"][0]["resources"] = resources if resources is not None else _res("100m", "128Mi")
    return await client.create("pods", p)


def _patch(containers: list[dict[str, Any]]) -> dict[str, Any]:
    return {"spec": {"containers": containers}}


async def test_get_and_merge_patches(api: ApiServer, client: Client) -> None:
    await _pod(client)
    got = await call(api, "GET", PATH)
    assert got.status == 200 and got.body["kind"] == "Pod"
    body = _patch([{"name": "c", "resources": _res("200m", "256Mi")}])
    for ct in ("application/strategic-merge-patch+json", "application/merge-patch+json"):
        resp = await call(api, "PATCH", PATH, json.dumps(body).encode(), content_type=ct)
        assert resp.status == 200, resp.body
        c = resp.body["spec"]["containers"][0]
        assert c["resources"]["limits"]["memory"] == "256Mi" and c["image"] == "nginx"
    ops = [{"op": "replace", "path": "/spec/containers/0/resources/limits/memory", "value": "300Mi"},
           {"op": "replace", "path": "/spec/containers/0/resources/requests/memory", "value": "300Mi"}]
    resp = await call(api, "PATCH", PATH, json.dumps(ops).encode(), content_type="application/json-patch+json")
    assert resp.status == 200, resp.body
    assert (await client.get("pods", "p", "default"))["spec"]["containers"][0]["resources"]["limits"]["memory"] \
        == "300Mi"


async def test_put_changes_only_resources(api: ApiServer, client: Client) -> None:
    await _pod(client)
    current = (await call(api, "GET", PATH)).body
    current["spec"]["containers"][0]["resources"] = _res("300m", "512Mi")
    current["spec"]["containers"][0]["image"] = "busybox"  # dropped, as Kubernetes' resize strategy does
    current["metadata"]["labels"] = {"x": "y"}
    resp = await call(api, "PUT", PATH, current)
    assert resp.status == 200, resp.body
    out = await client.get("pods", "p", "default")
    assert out["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "300m"
    assert out["spec"]["containers"][0]["image"] == "nginx" and not out["metadata"].get("labels")
    # A stale resourceVersion is a conflict.
    resp = await call(api, "PUT", PATH, current)
    assert resp.status == 409


async def test_plain_update_of_resources_stays_refused(client: Client) -> None:
    await _pod(client)
    with pytest.raises(ApiError) as e:
        await client.patch("pods", "p", _patch([{"name": "c", "resources": _res("200m", "256Mi")}]), "default")
    assert e.value.status == 422 and "pod updates may not change fields" in e.value.body["message"]


async def test_qos_class_change_is_refused(client: Client) -> None:
    await _pod(client)  # Guaranteed
    with pytest.raises(ApiError) as e:
        await client.patch("pods", "p", _patch([{"name": "c", "resources": _res("100m", "128Mi", lim_mem="256Mi")}]),
                           "default", subresource="resize")
    assert e.value.status == 422
    cause = e.value.body["details"]["causes"][0]
    assert cause["field"] == "spec"
    assert cause["message"] == 'Invalid value: "Guaranteed": Pod QOS Class may not change as a result of resizing'


async def test_other_resources_and_removal_are_refused(client: Client) -> None:
    res = {"requests": {"cpu": "100m", "ephemeral-storage": "1Gi"}, "limits": {"memory": "128Mi"}}
    await _pod(client, res)
    bad = {"requests": {"cpu": "100m", "ephemeral-storage": "2Gi"}, "limits": {"memory": "128Mi"}}
    with pytest.raises(ApiError) as e:
        await client.patch("pods", "p", _patch([{"name": "c", "resources": bad}]), "default", subresource="resize")
    assert e.value.status == 422 and "spec: Forbidden: only cpu and memory resources are mutable" in \
        e.value.body["message"]
    gone = [{"op": "remove", "path": "/spec/containers/0/resources/limits/memory"}]
    resp = await call_patch(client, gone)
    assert resp["code"] == 422
    assert "spec.containers[0].resources.limits[memory]: Forbidden: resource removal is not supported" in \
        resp["message"]


async def call_patch(client: Client, ops: list[dict[str, Any]]) -> dict[str, Any]:
    try:
        await client.patch("pods", "p", ops, "default", subresource="resize", patch_type="json")
    except ApiError as e:
        return dict(e.body)
    return {"code": 200}


async def test_node_without_resize_support_and_node_gone(api: ApiServer, client: Client) -> None:
    await _pod(client)
    await client.create("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
    p = await client.get("pods", "p", "default")
    await client.bind(p, "n1")
    status = {"phase": "Running", "containerStatuses": [
        {"name": "c", "image": "nginx", "imageID": "", "ready": True, "restartCount": 0,
         "state": {"running": {"startedAt": "2025-01-01T00:00:00Z"}}}]}
    await client.patch("pods", "p", {"status": status}, "default", subresource="status")
    with pytest.raises(ApiError) as e:  # a running container that reports no resources (e.g. simulated node)
        await client.patch("pods", "p", _patch([{"name": "c", "resources": _res("200m", "256Mi")}]), "default",
                           subresource="resize")
    assert "spec: Forbidden: Pod running on node without support for resize" in e.value.body["message"]
    await client.delete("nodes", "n1")
    resp = await call(api, "PATCH", PATH, json.dumps(_patch([{"name": "c", "resources": _res("200m", "256Mi")}])
                                                     ).encode(), content_type="application/merge-patch+json")
    assert resp.status == 422
    assert resp.body["details"]["causes"][0]["field"] == "spec.nodeName"
    assert 'node "n1" of pod "p" no longer exists' in resp.body["message"]


async def test_discovery_lists_pods_resize(api: ApiServer) -> None:
    resp = await call(api, "GET", "/api/v1")
    names = {r["name"]: r for r in resp.body["resources"]}
    assert "pods/resize" in names and sorted(names["pods/resize"]["verbs"]) == ["get", "patch", "update"]
