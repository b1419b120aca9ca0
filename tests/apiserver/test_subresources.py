"""Subresources: scale, pods/binding, pods/eviction, node-served (log), status GET."""

from __future__ import annotations

from typing import Any

import pytest

from k8py.api.request import ApiRequest, ApiResponse
from k8py.apiserver.server import ApiServer
from k8py.client.client import Client
from k8py.client.errors import ApiError

from apiserver_helpers import call, deployment, pod

SCALABLE: list[tuple[str, str, dict[str, Any], str]] = [
    ("deployments", "/apis/apps/v1/namespaces/default/deployments/w/scale", deployment("w", 2), "app=w"),
    ("replicasets", "/apis/apps/v1/namespaces/default/replicasets/w/scale",
     {**deployment("w", 2), "apiVersion": "apps/v1", "kind": "ReplicaSet"}, "app=w"),
    ("statefulsets", "/apis/apps/v1/namespaces/default/statefulsets/w/scale",
     {**deployment("w", 2), "apiVersion": "apps/v1", "kind": "StatefulSet",
      "spec": {**deployment("w", 2)["spec"], "serviceName": "w"}}, "app=w"),
    ("replicationcontrollers", "/api/v1/namespaces/default/replicationcontrollers/w/scale",
     {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "w", "namespace": "default"},
      "spec": {"replicas": 2, "selector": {"app": "w"},
               "template": {"metadata": {"labels": {"app": "w"}},
                            "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}, "app=w"),
]


@pytest.mark.parametrize("resource,path,obj,selector", SCALABLE, ids=[s[0] for s in SCALABLE])
async def test_scale(api: ApiServer, client: Client, resource: str, path: str, obj: dict[str, Any],
                     selector: str) -> None:
    await client.create(resource, obj)
    got = await client.raw("GET", path)
    assert got["kind"] == "Scale" and got["apiVersion"] == "autoscaling/v1"
    assert got["spec"]["replicas"] == 2 and got["status"]["selector"] == selector
    got["spec"]["replicas"] = 5
    put = await client.raw("PUT", path, body=got)
    assert put["spec"]["replicas"] == 5
    assert (await client.get(resource, "w", "default"))["spec"]["replicas"] == 5
    patched = await client.patch(resource, "w", {"spec": {"replicas": 1}}, "default", subresource="scale")
    assert patched["kind"] == "Scale" and patched["spec"]["replicas"] == 1
    # Stale resourceVersion in a Scale PUT is a conflict.
    with pytest.raises(ApiError) as e:
        await client.raw("PUT", path, body=got)
    assert e.value.conflict
    # Negative replicas are invalid.
    resp = await call(api, "PUT", path, {"apiVersion": "autoscaling/v1", "kind": "Scale",
                                         "metadata": {"name": "w", "namespace": "default"}, "spec": {"replicas": -1}})
    assert resp.status == 422 and "spec.replicas" in resp.body["message"]


async def test_scale_not_served_for_other_kinds(api: ApiServer, client: Client) -> None:
    await client.create("configmaps", {"metadata": {"name": "c", "namespace": "default"}})
    resp = await call(api, "GET", "/api/v1/namespaces/default/configmaps/c/scale")
    assert resp.status == 404


async def test_binding(client: Client) -> None:
    p = await client.create("pods", pod("p"))
    await client.bind(p, "node-1")
    bound = await client.get("pods", "p", "default")
    assert bound["spec"]["nodeName"] == "node-1"
    cond = [c for c in bound["status"]["conditions"] if c["type"] == "PodScheduled"]
    assert cond and cond[0]["status"] == "True"
    with pytest.raises(ApiError) as e:
        await client.bind(p, "node-2")
    assert e.value.status == 409 and 'already assigned to node "node-1"' in e.value.body["message"]


async def test_binding_errors(api: ApiServer, client: Client) -> None:
    await client.create("pods", pod("p"))
    resp = await call(api, "POST", "/api/v1/namespaces/default/pods/p/binding",
                      {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {}})
    assert resp.status == 422 and "target.name" in resp.body["message"]
    resp = await call(api, "POST", "/api/v1/namespaces/default/pods/ghost/binding",
                      {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "ghost"},
                       "target": {"name": "n"}})
    assert resp.status == 404


async def test_eviction_is_a_graceful_delete(client: Client) -> None:
    await client.create("pods", pod("p", nodeName="n1"))
    await client.evict("default", "p")
    cur = await client.get("pods", "p", "default")
    assert cur["metadata"]["deletionTimestamp"]
    await client.create("pods", pod("q"))
    await client.evict("default", "q")
    assert await client.get_or_none("pods", "q", "default") is None
    with pytest.raises(ApiError) as e:
        await client.evict("default", "ghost")
    assert e.value.status == 404


async def test_logs_without_node_proxy(api: ApiServer, client: Client) -> None:
    await client.create("pods", pod("p", nodeName="n1"))
    resp = await call(api, "GET", "/api/v1/namespaces/default/pods/p/log")
    assert resp.status == 400
    assert resp.body["message"] == 'pod "p" has no log endpoint: k8py\'s node agent does not serve logs yet'


async def test_logs_through_node_proxy(api: ApiServer, client: Client) -> None:
    await client.create("pods", pod("p", nodeName="n1"))
    seen: list[tuple[str, str, str]] = []

    async def proxy(req: ApiRequest, p: dict[str, Any], sub: str) -> ApiResponse:
        seen.append((p["spec"]["nodeName"], p["metadata"]["name"], sub))
        return ApiResponse(200, b"hello\n", content_type="text/plain")

    api.set_node_proxy(proxy)
    resp = await call(api, "GET", "/api/v1/namespaces/default/pods/p/log", query={"container": "c"})
    assert resp.status == 200 and resp.body == b"hello\n"
    assert seen == [("n1", "p", "log")]


async def test_status_get_and_put(client: Client) -> None:
    p = await client.create("pods", pod("p"))
    got = await client.raw("GET", "/api/v1/namespaces/default/pods/p/status")
    assert got["metadata"]["name"] == "p"
    p["status"] = {"phase": "Running", "podIP": "10.42.0.5"}
    out = await client.update_status("pods", p)
    assert out["status"]["phase"] == "Running"
    assert (await client.list("pods", field_selector="status.podIP=10.42.0.5"))["items"]
