"""CustomResourceDefinitions and the custom resources they serve (apiserver/customresources.py)."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import pytest

from k8py.apiserver.server import ApiServer

from apiserver_helpers import call

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
CT = "/apis/stable.example.com/v1/namespaces/default/crontabs"

# The CronTab CRD of the Kubernetes documentation, with validation, defaults and scale.
CRONTAB_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "crontabs.stable.example.com"},
    "spec": {
        "group": "stable.example.com", "scope": "Namespaced",
        "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab", "shortNames": ["ct"]},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "properties": {
                    "cronSpec": {"type": "string", "pattern": r"^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$"},
                    "image": {"type": "string"},
                    "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
                    "mode": {"type": "string", "enum": ["a", "b"]},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                }, "required": ["cronSpec"]},
                "status": {"type": "object", "properties": {"replicas": {"type": "integer"},
                                                            "labelSelector": {"type": "string"}}},
            }}},
            "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                                                     "statusReplicasPath": ".status.replicas",
                                                     "labelSelectorPath": ".status.labelSelector"}},
            "additionalPrinterColumns": [
                {"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"},
                {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}],
        }, {"name": "v1beta1", "served": True, "storage": False,
            "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}],
    },
}


def crontab(name: str = "my-new-cron-object", **spec: Any) -> dict[str, Any]:
    s = {"cronSpec": "* * * * */5", "image": "my-awesome-cron-image"}
    s.update(spec)
    return {"apiVersion": "stable.example.com/v1", "kind": "CronTab", "metadata": {"name": name}, "spec": s}


@pytest.fixture
async def crd(api: ApiServer) -> dict[str, Any]:
    resp = await call(api, "POST", CRDS, CRONTAB_CRD)
    assert resp.status == 201, resp.body
    return dict(resp.body)


async def test_crd_established_and_served(api: ApiServer, crd: dict[str, Any]) -> None:
    got = (await call(api, "GET", f"{CRDS}/crontabs.stable.example.com")).body
    conds = {c["type"]: c["status"] for c in got["status"]["conditions"]}
    assert conds == {"NamesAccepted": "True", "Established": "True"}
    assert got["status"]["acceptedNames"]["shortNames"] == ["ct"]
    assert got["status"]["storedVersions"] == ["v1"]
    resp = await call(api, "POST", CT, crontab())
    assert resp.status == 201, resp.body
    assert resp.body["spec"]["replicas"] == 1  # the schema's default
    assert resp.body["metadata"]["generation"] == 1
    lst = (await call(api, "GET", CT)).body
    assert lst["kind"] == "CronTabList" and [i["metadata"]["name"] for i in lst["items"]] == ["my-new-cron-object"]
    other = (await call(api, "GET", "/apis/stable.example.com/v1beta1/namespaces/default/crontabs/"
                        "my-new-cron-object")).body
    assert other["apiVersion"] == "stable.example.com/v1beta1"  # conversion None


async def test_discovery_and_openapi(api: ApiServer, crd: dict[str, Any]) -> None:
    res = (await call(api, "GET", "/apis/stable.example.com/v1")).body
    entry = next(r for r in res["resources"] if r["name"] == "crontabs")
    assert entry["shortNames"] == ["ct"] and entry["namespaced"] and entry["kind"] == "CronTab"
    assert {r["name"] for r in res["resources"]} == {"crontabs", "crontabs/status", "crontabs/scale"}
    groups = (await call(api, "GET", "/apis")).body["groups"]
    g = next(g for g in groups if g["name"] == "stable.example.com")
    assert g["preferredVersion"]["version"] == "v1"
    agg = await call(api, "GET", "/apis",
                     accept="application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
    assert b'"stable.example.com"' in agg.body
    index = json.loads((await call(api, "GET", "/openapi/v3")).body)
    url = index["paths"]["apis/stable.example.com/v1"]["serverRelativeURL"]
    doc = json.loads((await call(api, "GET", url.split("?")[0])).body)
    schema = doc["components"]["schemas"]["com.example.stable.v1.CronTab"]
    assert schema["properties"]["spec"]["properties"]["cronSpec"]["type"] == "string"
    assert "/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}/scale" in doc["paths"]


@pytest.mark.parametrize("spec,field,words", [
    ({"replicas": 11}, "spec.replicas", "should be less than or equal to 10"),
    ({"replicas": "x"}, "spec.replicas", "must be of type integer"),
    ({"cronSpec": "* * * *"}, "spec.cronSpec", "should match"),
    ({"mode": "c"}, "spec.mode", 'supported values: "a", "b"'),
    ({"cronSpec": None}, "spec.cronSpec", "Required value"),
])
async def test_cr_validation(api: ApiServer, crd: dict[str, Any], spec: dict[str, Any], field: str,
                             words: str) -> None:
    body = crontab(**spec)
    body["spec"] = {k: v for k, v in body["spec"].items() if v is not None}
    resp = await call(api, "POST", CT, body)
    assert resp.status == 422, resp.body
    causes = resp.body["details"]["causes"]
    assert any(c["field"] == field and words in c["message"] for c in causes), causes
    assert (await call(api, "GET", CT)).body["items"] == []


async def test_pruning_and_strict(api: ApiServer, crd: dict[str, Any]) -> None:
    resp = await call(api, "POST", CT, crontab(extra=1, free={"any": {"thing": 1}}))
    assert resp.status == 201
    assert "extra" not in resp.body["spec"] and resp.body["spec"]["free"] == {"any": {"thing": 1}}
    assert 'unknown field \\"spec.extra\\"' in resp.headers.get("Warning", "")
    strict = await call(api, "POST", CT, crontab("b", extra=1), query={"fieldValidation": "Strict"})
    assert strict.status == 400 and 'unknown field "spec.extra"' in strict.body["message"]


async def test_patch_types_and_status(api: ApiServer, crd: dict[str, Any]) -> None:
    await call(api, "POST", CT, crontab())
    item = f"{CT}/my-new-cron-object"
    smp = await call(api, "PATCH", item, {"spec": {"image": "x"}},
                     content_type="application/strategic-merge-patch+json")
    assert smp.status == 415
    merged = await call(api, "PATCH", item, {"spec": {"image": "x"}, "status": {"replicas": 9}},
                        content_type="application/merge-patch+json")
    assert merged.status == 200 and merged.body["spec"]["image"] == "x"
    assert "status" not in merged.body and merged.body["metadata"]["generation"] == 2
    js = await call(api, "PATCH", f"{item}/status", [{"op": "add", "path": "/status", "value": {"replicas": 2}}],
                    content_type="application/json-patch+json")
    assert js.status == 200 and js.body["status"] == {"replicas": 2}
    assert js.body["metadata"]["generation"] == 2
    bad = await call(api, "PATCH", item, {"spec": {"replicas": 0}}, content_type="application/merge-patch+json")
    assert bad.status == 422 and bad.body["details"]["causes"][0]["field"] == "spec.replicas"


async def test_scale_subresource(api: ApiServer, crd: dict[str, Any]) -> None:
    await call(api, "POST", CT, crontab())
    scale = f"{CT}/my-new-cron-object/scale"
    got = (await call(api, "GET", scale)).body
    assert got["kind"] == "Scale" and got["spec"]["replicas"] == 1
    resp = await call(api, "PATCH", scale, {"spec": {"replicas": 3}}, content_type="application/merge-patch+json")
    assert resp.status == 200 and resp.body["spec"]["replicas"] == 3
    assert (await call(api, "GET", f"{CT}/my-new-cron-object")).body["spec"]["replicas"] == 3


async def test_table_printer_columns(api: ApiServer, crd: dict[str, Any]) -> None:
    await call(api, "POST", CT, crontab())
    t = (await call(api, "GET", CT, accept="application/json;as=Table;v=v1;g=meta.k8s.io")).body
    assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "Spec", "Replicas", "Age"]
    assert t["rows"][0]["cells"][:3] == ["my-new-cron-object", "* * * * */5", 1]


async def test_selectors(api: ApiServer, crd: dict[str, Any]) -> None:
    a = crontab("a")
    a["metadata"]["labels"] = {"app": "x"}
    await call(api, "POST", CT, a)
    await call(api, "POST", CT, crontab("b"))
    by_label = (await call(api, "GET", CT, query={"labelSelector": "app=x"})).body["items"]
    by_field = (await call(api, "GET", CT, query={"fieldSelector": "metadata.name=b"})).body["items"]
    assert [i["metadata"]["name"] for i in by_label] == ["a"]
    assert [i["metadata"]["name"] for i in by_field] == ["b"]


@pytest.mark.parametrize("change,field,words", [
    (lambda c: c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"].pop("type"),
     "spec.versions[0].schema.openAPIV3Schema.properties[spec].type", "must not be empty"),
    (lambda c: c["spec"]["versions"][0].pop("schema"), "spec.versions[0].schema.openAPIV3Schema",
     "schemas are required"),
    (lambda c: c["spec"]["versions"][1].update(storage=True), "spec.versions", "exactly one version"),
    (lambda c: c["metadata"].update(name="wrong.stable.example.com"), "metadata.name", "spec.names.plural"),
    (lambda c: c["spec"].update(group="example"), "spec.group", "at least one dot"),
])
async def test_crd_validation(api: ApiServer, change: Any, field: str, words: str) -> None:
    bad = copy.deepcopy(CRONTAB_CRD)
    change(bad)
    resp = await call(api, "POST", CRDS, bad)
    assert resp.status == 422, resp.body
    causes = resp.body["details"]["causes"]
    assert any(c["field"] == field and words in c["message"] for c in causes), causes


async def test_delete_crd_deletes_crs(api: ApiServer, crd: dict[str, Any]) -> None:
    await call(api, "POST", CT, crontab())
    resp = await call(api, "DELETE", f"{CRDS}/crontabs.stable.example.com")
    assert resp.status == 200
    for _ in range(200):
        if (await call(api, "GET", f"{CRDS}/crontabs.stable.example.com")).status == 404:
            break
        await asyncio.sleep(0.01)
    assert (await call(api, "GET", CT)).status == 404
    assert not (await api.store.list("/registry/stable.example.com/")).items
    again = await call(api, "POST", CRDS, CRONTAB_CRD)
    assert again.status == 201
    assert (await call(api, "GET", CT)).body["items"] == []


async def test_watch_custom_resources(api: ApiServer, crd: dict[str, Any]) -> None:
    rv = (await call(api, "GET", CT)).body["metadata"]["resourceVersion"]
    resp = await call(api, "GET", CT, query={"watch": "true", "resourceVersion": rv})
    assert resp.stream is not None
    await call(api, "POST", CT, crontab())
    it = resp.stream.__aiter__()
    ev = await asyncio.wait_for(it.__anext__(), 5)
    ev = ev if isinstance(ev, dict) else json.loads(ev)
    assert ev["type"] == "ADDED" and ev["object"]["kind"] == "CronTab"
    await resp.stream.aclose()


def _with_rules(rules: list[dict[str, Any]]) -> dict[str, Any]:
    crd = copy.deepcopy(CRONTAB_CRD)
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["x-kubernetes-validations"] = rules
    return crd


async def test_cel_rules(api: ApiServer) -> None:
    rules = [{"rule": "self.replicas <= 5", "message": "replicas should be at most 5"},
             {"rule": "self.image == oldSelf.image", "message": "image is immutable"}]
    assert (await call(api, "POST", CRDS, _with_rules(rules))).status == 201
    bad = await call(api, "POST", CT, crontab(replicas=7))
    assert bad.status == 422, bad.body
    assert bad.body["details"]["causes"][0] == {"reason": "FieldValueInvalid", "field": "spec",
                                                "message": 'Invalid value: "object": replicas should be at most 5'}
    assert (await call(api, "POST", CT, crontab(replicas=5))).status == 201  # transition rule: no old object
    change = await call(api, "PATCH", f"{CT}/my-new-cron-object", {"spec": {"image": "other"}},
                        content_type="application/merge-patch+json")
    assert change.status == 422 and "image is immutable" in change.body["message"]


async def test_cel_rule_that_does_not_compile(api: ApiServer) -> None:
    resp = await call(api, "POST", CRDS, _with_rules([{"rule": "self.replicas <="}]))
    assert resp.status == 422, resp.body
    cause = resp.body["details"]["causes"][0]
    assert cause["field"] == ("spec.versions[0].schema.openAPIV3Schema.properties[spec]."
                              "x-kubernetes-validations[0].rule") and "compilation failed" in cause["message"]


async def test_namespace_deletion_deletes_custom_resources(api: ApiServer, crd: dict[str, Any]) -> None:
    assert (await call(api, "POST", "/api/v1/namespaces", {"metadata": {"name": "team"}})).status == 201
    path = "/apis/stable.example.com/v1/namespaces/team/crontabs"
    assert (await call(api, "POST", path, crontab())).status == 201
    assert (await call(api, "DELETE", "/api/v1/namespaces/team")).status == 200
    for _ in range(600):  # the namespace finalizer polls every second for what it cannot watch
        if (await call(api, "GET", "/api/v1/namespaces/team")).status == 404:
            break
        await asyncio.sleep(0.05)
    assert (await call(api, "GET", "/api/v1/namespaces/team")).status == 404
    assert (await call(api, "GET", path)).body["items"] == []


async def test_selectable_fields(api: ApiServer) -> None:
    crd = copy.deepcopy(CRONTAB_CRD)
    crd["spec"]["versions"][0]["selectableFields"] = [{"jsonPath": ".spec.image"}]
    assert (await call(api, "POST", CRDS, crd)).status == 201
    await call(api, "POST", CT, crontab("a", image="x"))
    await call(api, "POST", CT, crontab("b", image="y"))
    got = (await call(api, "GET", CT, query={"fieldSelector": "spec.image=y"})).body["items"]
    assert [i["metadata"]["name"] for i in got] == ["b"]
    bad = await call(api, "GET", CT, query={"fieldSelector": "spec.cronSpec=y"})
    assert bad.status == 400


async def test_terminating_crd_refuses_creates(api: ApiServer, crd: dict[str, Any]) -> None:
    held = crontab("held")
    held["metadata"]["finalizers"] = ["example.com/hold"]
    await call(api, "POST", CT, held)
    await call(api, "DELETE", f"{CRDS}/crontabs.stable.example.com")
    await api.crds.reconcile("crontabs.stable.example.com")
    got = (await call(api, "GET", f"{CRDS}/crontabs.stable.example.com")).body
    assert any(c["type"] == "Terminating" and c["status"] == "True" for c in got["status"]["conditions"])
    refused = await call(api, "POST", CT, crontab("new"))
    assert refused.status == 405 and "terminating" in refused.body["message"]
    # the CRD goes once its last object lost its finalizer
    await call(api, "PATCH", f"{CT}/held", {"metadata": {"finalizers": None}},
               content_type="application/merge-patch+json")
    for _ in range(200):
        if (await call(api, "GET", f"{CRDS}/crontabs.stable.example.com")).status == 404:
            break
        await asyncio.sleep(0.05)
    assert (await call(api, "GET", f"{CRDS}/crontabs.stable.example.com")).status == 404


async def test_served_after_restart(store: Any, api: ApiServer, crd: dict[str, Any]) -> None:
    await call(api, "POST", CT, crontab())
    second = ApiServer(store)
    await second.start()
    try:
        got = await call(second, "GET", f"{CT}/my-new-cron-object")
        assert got.status == 200 and got.body["kind"] == "CronTab"
    finally:
        await second.close()
