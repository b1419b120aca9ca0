"""Discovery documents: legacy JSON and aggregated v2, as kubectl reads them."""

from __future__ import annotations

import json

import pytest

from k8py.api import resources
from k8py.api.request import ApiRequest
from k8py.apiserver import discovery

V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
KUBECTL_ACCEPT = (V2 + ",application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
                  "application/json")


def get(path: str, accept: str = "application/json") -> tuple[int, object, str]:
    r = discovery.respond(ApiRequest("GET", path, headers={"accept": accept}))
    assert r is not None
    body = json.loads(r.body) if isinstance(r.body, bytes) else r.body
    return r.status, body, r.content_type


@pytest.mark.parametrize("path", ["/api/v1/pods", "/apis/apps/v1/deployments", "/healthz", "/openapi/v3",
                                  "/apis/apps/v1/namespaces/default/deployments/x"])
def test_other_paths_are_not_discovery(path: str) -> None:
    assert discovery.respond(ApiRequest("GET", path)) is None


@pytest.mark.parametrize("path,kind", [("/api", "APIVersions"), ("/apis", "APIGroupList"),
                                       ("/apis/apps", "APIGroup"), ("/api/v1", "APIResourceList"),
                                       ("/apis/apps/v1", "APIResourceList"), ("/apis/batch/v1/", "APIResourceList")])
def test_legacy_kinds(path: str, kind: str) -> None:
    status, body, ct = get(path)
    assert status == 200 and ct == "application/json"
    assert body["kind"] == kind  # type: ignore[index]


def test_group_list_has_every_named_group_once() -> None:
    _, body, _ = get("/apis")
    names = [g["name"] for g in body["groups"]]  # type: ignore[index]
    assert len(names) == len(set(names))
    assert set(names) == {r.group for r in resources.RESOURCES if r.group}
    apps = next(g for g in body["groups"] if g["name"] == "apps")  # type: ignore[index]
    assert apps["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}


def test_every_resource_is_listed_with_its_attributes() -> None:
    for g, v in resources.group_versions():
        _, body, _ = get(f"/apis/{g}/{v}" if g else f"/api/{v}")
        by_name = {e["name"]: e for e in body["resources"]}  # type: ignore[index]
        for r in resources.RESOURCES:
            if (r.group, r.version) != (g, v):
                continue
            e = by_name[r.plural]
            assert (e["kind"], e["namespaced"], e["singularName"]) == (r.kind, r.namespaced, r.name_singular)
            assert e["verbs"] == list(r.verbs)
            assert e.get("shortNames", []) == list(r.short_names)
            for sub in r.subresources:
                assert f"{r.plural}/{sub}" in by_name


@pytest.mark.parametrize("path,name,kind,group,version,verbs", [
    ("/apis/apps/v1", "deployments/scale", "Scale", "autoscaling", "v1", ["get", "patch", "update"]),
    ("/apis/apps/v1", "deployments/status", "Deployment", None, None, ["get", "patch", "update"]),
    ("/api/v1", "pods/eviction", "Eviction", "policy", "v1", ["create"]),
    ("/api/v1", "pods/binding", "Binding", None, None, ["create"]),
    ("/api/v1", "pods/log", "Pod", None, None, ["get"]),
    ("/api/v1", "pods/exec", "PodExecOptions", None, None, ["create", "get"]),
])
def test_subresource_entries(path: str, name: str, kind: str, group: str | None, version: str | None,
                             verbs: list[str]) -> None:
    _, body, _ = get(path)
    e = next(x for x in body["resources"] if x["name"] == name)  # type: ignore[index]
    assert (e["kind"], e.get("group"), e.get("version"), e["verbs"]) == (kind, group, version, verbs)


@pytest.mark.parametrize("path", ["/apis/nope", "/apis/apps/v7", "/api/v2"])
def test_unknown_group_or_version_is_404(path: str) -> None:
    status, body, _ = get(path)
    assert status == 404 and body["reason"] == "NotFound"  # type: ignore[index]


def test_write_methods_refused() -> None:
    r = discovery.respond(ApiRequest("POST", "/apis"))
    assert r is not None and r.status == 405


@pytest.mark.parametrize("accept,want", [
    (KUBECTL_ACCEPT, "v2"),
    (V2, "v2"),
    ("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList", "v2beta1"),
    ("application/json", None),
    ("application/json, " + V2, None),
    ("", None),
])
def test_accept_negotiation(accept: str, want: str | None) -> None:
    assert discovery._wants_aggregated(accept) == want


def test_aggregated_core_and_groups() -> None:
    status, core, ct = get("/api", KUBECTL_ACCEPT)
    assert status == 200 and ct == V2
    assert core["kind"] == "APIGroupDiscoveryList" and core["apiVersion"] == "apidiscovery.k8s.io/v2"  # type: ignore[index]
    assert [i["metadata"]["name"] for i in core["items"]] == [""]  # type: ignore[index]
    pods = next(r for r in core["items"][0]["versions"][0]["resources"] if r["resource"] == "pods")  # type: ignore[index]
    assert pods["scope"] == "Namespaced" and pods["responseKind"] == {"group": "", "version": "v1", "kind": "Pod"}
    ev = next(s for s in pods["subresources"] if s["subresource"] == "eviction")
    assert ev["responseKind"] == {"group": "policy", "version": "v1", "kind": "Eviction"}

    _, named, _ = get("/apis", KUBECTL_ACCEPT)
    groups = {i["metadata"]["name"]: i for i in named["items"]}  # type: ignore[index]
    assert set(groups) == {r.group for r in resources.RESOURCES if r.group}
    deploy = next(r for r in groups["apps"]["versions"][0]["resources"] if r["resource"] == "deployments")
    assert deploy["shortNames"] == ["deploy"] and deploy["categories"] == ["all"]
    scale = next(s for s in deploy["subresources"] if s["subresource"] == "scale")
    assert scale["responseKind"]["kind"] == "Scale"


def test_version_info() -> None:
    v = discovery.version_info()
    assert (v["major"], v["minor"]) == ("1", "37")
    assert (v["emulationMajor"], v["emulationMinor"]) == ("1", "37")
    assert (v["minCompatibilityMajor"], v["minCompatibilityMinor"]) == ("1", "36")
    assert v["gitVersion"].startswith("v1.37.") and v["platform"].startswith("linux/")
