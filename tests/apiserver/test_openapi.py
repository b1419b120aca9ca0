"""OpenAPI v3 documents: index, per-group-version documents, schema conversion, caching."""

from __future__ import annotations

import json
from typing import Any

import pytest

from k8py.api import resources
from k8py.api.request import ApiRequest
from k8py.apiserver import openapi


def get(path: str, **kw: Any) -> Any:
    r = openapi.respond(ApiRequest("GET", path, **kw))
    assert r is not None
    return r


def doc(key: str) -> dict[str, Any]:
    r = get(f"/openapi/v3/{key}")
    assert r.status == 200
    return json.loads(r.body)  # type: ignore[no-any-return]


def test_not_openapi_paths() -> None:
    assert openapi.respond(ApiRequest("GET", "/api/v1")) is None


def test_index_lists_every_group_version_with_a_hash() -> None:
    idx = json.loads(get("/openapi/v3").body)
    want = {f"apis/{g}/{v}" if g else f"api/{v}" for g, v in resources.group_versions()}
    assert set(idx["paths"]) == want
    for key, entry in idx["paths"].items():
        url = entry["serverRelativeURL"]
        assert url.startswith(f"/openapi/v3/{key}?hash=") and len(url.split("hash=")[1]) >= 32


def test_document_served_with_etag_and_immutable_when_hash_matches() -> None:
    idx = json.loads(get("/openapi/v3").body)
    url = idx["paths"]["apis/apps/v1"]["serverRelativeURL"]
    path, _, h = url.partition("?hash=")
    r = get(path, query={"hash": h})
    assert r.status == 200 and r.headers["ETag"] == f'"{h}"'
    assert "immutable" in r.headers["Cache-Control"]
    again = get(path, headers={"if-none-match": f'"{h}"'})
    assert again.status == 304
    assert get(path).headers["Cache-Control"] == "no-cache, private"


@pytest.mark.parametrize("path", ["/openapi/v3/apis/nope/v1", "/openapi/v4"])
def test_unknown_is_404(path: str) -> None:
    assert get(path).status == 404


def _pb_strings(b: bytes) -> dict[int, bytes]:
    """Length-delimited fields (short ones) of a protobuf message."""
    out, i = {}, 0
    while i < len(b):
        key, n = b[i], b[i + 1]
        assert key & 7 == 2 and n < 128
        out[key >> 3] = b[i + 2:i + 2 + n]
        i += 2 + n
    return out


def test_v2_is_an_empty_swagger_document() -> None:
    pb = get("/openapi/v2", headers={"accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})
    assert pb.status == 200 and "protobuf" in pb.content_type
    top = _pb_strings(pb.body)
    assert top[1] == b"2.0" and set(top) == {1, 2}
    assert _pb_strings(top[2]) == {1: b"Kubernetes"}
    js = get("/openapi/v2")
    assert js.body["swagger"] == "2.0" and js.body["paths"] == {}


def _all_refs(x: Any, acc: set[str]) -> None:
    if isinstance(x, dict):
        if isinstance(x.get("$ref"), str):  # JSONSchemaProps also has a *property* named $ref
            acc.add(x["$ref"])
        for v in x.values():
            _all_refs(v, acc)
    elif isinstance(x, list):
        for v in x:
            _all_refs(v, acc)


@pytest.mark.parametrize("g,v", resources.group_versions())
def test_documents_are_closed_and_cover_their_kinds(g: str, v: str) -> None:
    d = doc(f"apis/{g}/{v}" if g else f"api/{v}")
    assert d["openapi"].startswith("3.")
    schemas = d["components"]["schemas"]
    refs: set[str] = set()
    _all_refs(d, refs)
    missing = {r for r in refs if r.removeprefix(openapi.REF) not in schemas}
    assert not missing
    assert all(r.startswith(openapi.REF) for r in refs)
    gvks = {(x["group"], x["version"], x["kind"]) for s in schemas.values()
            for x in s.get("x-kubernetes-group-version-kind", [])}
    for r in resources.RESOURCES:
        if (r.group, r.version) == (g, v) and g != "metrics.k8s.io":  # metrics: no schema in Kubernetes' own
            assert (g, v, r.kind) in gvks


def test_patch_operations_advertise_field_validation_for_their_kind() -> None:
    d = doc("apis/apps/v1")
    item = d["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
    patch = item["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    names = {p["name"] for p in patch["parameters"] if p["in"] == "query"}
    assert {"fieldValidation", "fieldManager", "dryRun", "force"} <= names
    assert "application/strategic-merge-patch+json" in patch["requestBody"]["content"]
    scale = d["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]
    assert scale["get"]["x-kubernetes-group-version-kind"]["kind"] == "Scale"
    assert "io.k8s.api.autoscaling.v1.Scale" in d["components"]["schemas"]


def test_cluster_scoped_paths_have_no_namespace() -> None:
    d = doc("api/v1")
    assert "/api/v1/nodes/{name}" in d["paths"]
    assert "/api/v1/namespaces/{namespace}/pods/{name}/log" in d["paths"]
    assert "/api/v1/pods" in d["paths"]  # list across namespaces


def test_schema_conversion_keeps_what_kubectl_needs() -> None:
    s = doc("apis/apps/v1")["components"]["schemas"]
    spec = s["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert spec["x-kubernetes-patch-merge-key"] == "name" and spec["x-kubernetes-patch-strategy"] == "merge"
    assert spec["x-kubernetes-list-type"] == "map" and spec["x-kubernetes-list-map-keys"] == ["name"]
    assert spec["items"] == {"$ref": openapi.REF + "io.k8s.api.core.v1.Container"}
    sel = s["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["selector"]
    assert sel["allOf"] == [{"$ref": openapi.REF + "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"}]
    assert sel["description"]
    assert s["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["replicas"]["type"] == "integer"
    ios = s["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
    assert ios["format"] == "int-or-string" and "type" not in ios
    assert sorted(x["type"] for x in ios["oneOf"]) == ["integer", "string"]
    q = s["io.k8s.apimachinery.pkg.api.resource.Quantity"]
    assert "type" not in q and sorted(x["type"] for x in q["oneOf"]) == ["number", "string"]
    assert "enum" not in s["io.k8s.api.apps.v1.Deployment"]["properties"]["apiVersion"]


@pytest.mark.parametrize("src,want", [
    ({"type": ["string", "null"]}, {"type": "string"}),
    ({"type": "array", "items": {"$ref": "#/$defs/X"}}, {"type": "array", "items": {"$ref": openapi.REF + "X"}}),
    ({"$ref": "#/$defs/X", "description": "d"}, {"allOf": [{"$ref": openapi.REF + "X"}], "description": "d"}),
    ({"oneOf": [{"type": ["string", "null"]}, {"type": ["integer", "null"]}]}, {"x-kubernetes-int-or-string": True}),
    ({"type": ["object", "null"], "additionalProperties": {"type": ["string", "null"]}},
     {"type": "object", "additionalProperties": {"type": "string"}}),
    ({"type": ["string", "number"]}, {}),
])
def test_convert(src: dict[str, Any], want: dict[str, Any]) -> None:
    assert openapi.convert(src) == want


def test_pods_resize_plumbing_from_the_1_37_schemas() -> None:
    # The resize subresource (1.33+) needs only its name in the Pod's subresources: discovery
    # and OpenAPI then advertise get/put/patch of a Pod at .../pods/{name}/resize.
    import dataclasses

    from k8py.apiserver import discovery

    pod = resources.get("pods")
    assert discovery._sub_info(pod, "resize") == ("", "v1", "Pod", ("get", "patch", "update"))
    with_resize = dataclasses.replace(pod, subresources=(*pod.subresources, "resize"))
    paths, roots = openapi._paths_for(with_resize, {("", "v1", "Pod"): "io.k8s.api.core.v1.Pod",
                                                    ("", "v1", "PodList"): "io.k8s.api.core.v1.PodList"})
    ops = paths["/api/v1/namespaces/{namespace}/pods/{name}/resize"]
    assert {"get", "put", "patch"} <= set(ops) and "post" not in ops
    assert ops["patch"]["operationId"] == "patchCoreV1NamespacedPodResize"
    assert ops["get"]["x-kubernetes-group-version-kind"] == {"group": "", "version": "v1", "kind": "Pod"}


def test_documents_are_the_1_37_schemas() -> None:
    # Fields new since 1.32 are in the served schemas (kubectl validates and explains them).
    core = doc("api/v1")["components"]["schemas"]
    assert "observedGeneration" in core["io.k8s.api.core.v1.PodStatus"]["properties"]
    assert "allocatedResources" in core["io.k8s.api.core.v1.PodStatus"]["properties"]
    assert "stopSignal" in core["io.k8s.api.core.v1.Lifecycle"]["properties"]
    apps = doc("apis/apps/v1")["components"]["schemas"]
    assert "terminatingReplicas" in apps["io.k8s.api.apps.v1.DeploymentStatus"]["properties"]
    assert "serviceName" not in apps["io.k8s.api.apps.v1.StatefulSetSpec"].get("required", [])
    assert doc("api/v1")["info"]["version"].startswith("v1.37.")
