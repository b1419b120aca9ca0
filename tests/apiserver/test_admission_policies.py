"""ValidatingAdmissionPolicy and its bindings: CEL validations, as in the Kubernetes
documentation's example (replicas <= 5), with Deny and Warn, message expressions, reasons,
variables, match constraints and failure policies."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from k8py.apiserver.server import ApiServer

from apiserver_helpers import call, deployment

GV = "/apis/admissionregistration.k8s.io/v1"
APPS = "/apis/apps/v1/namespaces/default/deployments"


def policy(name: str, *validations: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {"matchConstraints": {"resourceRules": [
                {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                 "resources": ["deployments"]}]},
                     "validations": list(validations), **spec}}


def binding(name: str, policy_name: str, *actions: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {"policyName": policy_name, "validationActions": list(actions or ("Deny",)), **spec}}


async def install(api: ApiServer, pol: dict[str, Any], bind: dict[str, Any]) -> None:
    for obj, plural in ((pol, "validatingadmissionpolicies"), (bind, "validatingadmissionpolicybindings")):
        resp = await call(api, "POST", f"{GV}/{plural}", obj)
        assert resp.status == 201, resp.body
        key = f"/registry/admissionregistration.k8s.io/{plural}/{obj['metadata']['name']}"
        async with asyncio.timeout(10):
            while key not in api.webhook_index.configs:
                await asyncio.sleep(0.01)


async def create(api: ApiServer, name: str, replicas: int) -> Any:
    return await call(api, "POST", APPS, deployment(name, replicas))


async def test_the_documentation_example(api: ApiServer) -> None:
    await install(api, policy("demo-policy.example.com", {"expression": "object.spec.replicas <= 5"}),
                  binding("demo-binding-test.example.com", "demo-policy.example.com"))
    resp = await create(api, "big", 6)
    assert (resp.status, resp.body["reason"]) == (422, "Invalid")
    assert resp.body["message"] == (
        'deployments.apps "big" is forbidden: ValidatingAdmissionPolicy \'demo-policy.example.com\' with binding '
        "'demo-binding-test.example.com' denied request: failed expression: object.spec.replicas <= 5")
    assert resp.body["details"]["causes"] == [{"message": resp.body["message"].split("is forbidden: ")[1]}]
    assert (await create(api, "small", 3)).status == 201
    table = (await call(api, "GET", f"{GV}/validatingadmissionpolicies",
                        accept="application/json;as=Table;v=v1;g=meta.k8s.io")).body
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Validations", "ParamKind", "Age"]
    assert table["rows"][0]["cells"][:3] == ["demo-policy.example.com", 1, "<unset>"]


async def test_warn_message_expression_reason_and_variables(api: ApiServer) -> None:
    await install(api, policy("p.example.com", {"expression": "variables.r <= 5",
                                                "messageExpression": "'too many: ' + string(variables.r)",
                                                "reason": "Forbidden"},
                              variables=[{"name": "r", "expression": "object.spec.replicas"}]),
                  binding("b.example.com", "p.example.com", "Warn"))
    resp = await create(api, "warned", 7)
    assert resp.status == 201
    assert "Validation failed for ValidatingAdmissionPolicy 'p.example.com' with binding 'b.example.com': " \
           "too many: 7" in resp.headers.get("Warning", "")
    resp = await call(api, "POST", f"{GV}/validatingadmissionpolicybindings",
                      binding("deny.example.com", "p.example.com", "Deny"))
    assert resp.status == 201
    async with asyncio.timeout(10):
        while (resp := await create(api, "denied", 8)).status == 201:
            await asyncio.sleep(0.01)
    assert (resp.status, resp.body["reason"]) == (403, "Forbidden")
    assert resp.body["message"].endswith("denied request: too many: 8")


@pytest.mark.parametrize(("failure_policy", "status"), [("Fail", 422), ("Ignore", 201)])
async def test_expression_errors(api: ApiServer, failure_policy: str, status: int) -> None:
    await install(api, policy("e.example.com", {"expression": "object.spec.nope > 1"}, failurePolicy=failure_policy),
                  binding("e.example.com", "e.example.com"))
    resp = await create(api, "x", 1)
    assert resp.status == status, resp.body
    if status == 422:
        assert "expression 'object.spec.nope > 1' resulted in error" in resp.body["message"]


async def test_bindings_match_resources_and_other_kinds_pass(api: ApiServer) -> None:
    await install(api, policy("p.example.com", {"expression": "false"}),
                  binding("b.example.com", "p.example.com", matchResources={
                      "namespaceSelector": {"matchLabels": {"env": "test"}},
                      "resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE"],
                                         "resources": ["deployments"]}]}))
    assert (await create(api, "default-ns", 1)).status == 201  # default has no env=test label
    await call(api, "PATCH", "/api/v1/namespaces/default", {"metadata": {"labels": {"env": "test"}}},
               content_type="application/merge-patch+json")
    assert (await create(api, "labelled-ns", 1)).status == 422
    cm = {"kind": "ConfigMap", "metadata": {"name": "c"}}
    assert (await call(api, "POST", "/api/v1/namespaces/default/configmaps", cm)).status == 201


@pytest.mark.parametrize(("obj", "field"), [
    (policy("p.example.com", {"expression": "object.spec.replicas <="}), "spec.validations[0].expression"),
    (policy("p.example.com"), "spec.validations"),
    (policy("p.example.com", {"expression": "true"}) | {"spec": {"validations": [{"expression": "true"}]}},
     "spec.matchConstraints"),
    (binding("b.example.com", "p", "Deny", "Warn"), "spec.validationActions"),
    (binding("b.example.com", "", "Deny"), "spec.policyName"),
])
async def test_invalid_objects(api: ApiServer, obj: dict[str, Any], field: str) -> None:
    plural = {"ValidatingAdmissionPolicy": "validatingadmissionpolicies",
              "ValidatingAdmissionPolicyBinding": "validatingadmissionpolicybindings"}[obj["kind"]]
    resp = await call(api, "POST", f"{GV}/{plural}", obj)
    assert resp.status == 422, resp.body
    assert field in [c["field"] for c in resp.body["details"]["causes"]], resp.body
