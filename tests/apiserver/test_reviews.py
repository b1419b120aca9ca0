"""authorization.k8s.io/v1 reviews and authentication.k8s.io/v1 SelfSubjectReview: answered
from the same authorizer, validated, never stored; AlwaysAllow mode."""

from __future__ import annotations

from typing import Any

import pytest
from test_authz import AUTHED, as_user

from k8py.apiserver.config import ApiServerConfig
from k8py.apiserver.server import ApiServer
from k8py.store.memory import MemoryStore

from apiserver_helpers import call, stored_keys

AUTHZ = "/apis/authorization.k8s.io/v1"
ADMIN = ("system:masters", "system:authenticated")


def access(verb: str, resource: str, ns: str = "default", **extra: Any) -> dict[str, Any]:
    return {"spec": {"resourceAttributes": {"verb": verb, "resource": resource, "namespace": ns, **extra}}}


async def test_self_subject_access_review(api: ApiServer, store: MemoryStore) -> None:
    r = await as_user(api, "admin", ADMIN, "POST", f"{AUTHZ}/selfsubjectaccessreviews", access("delete", "nodes"))
    assert r.status == 201 and r.body["status"]["allowed"] is True
    assert r.body["kind"] == "SelfSubjectAccessReview" and r.body["apiVersion"] == "authorization.k8s.io/v1"
    r = await as_user(api, "jane", AUTHED, "POST", f"{AUTHZ}/selfsubjectaccessreviews", access("list", "pods"))
    assert r.status == 201 and r.body["status"] == {"allowed": False}
    r = await as_user(api, "jane", AUTHED, "POST", f"{AUTHZ}/selfsubjectaccessreviews",
                      {"spec": {"nonResourceAttributes": {"path": "/apis", "verb": "get"}}})
    assert r.body["status"]["allowed"] is True  # system:discovery
    assert await stored_keys(store, "/registry/authorization.k8s.io/") == []


async def test_subject_access_review_needs_permission_and_a_subject(api: ApiServer) -> None:
    body = {"spec": {"user": "jane", "groups": ["system:authenticated"], **access("get", "secrets")["spec"]}}
    r = await as_user(api, "jane", AUTHED, "POST", f"{AUTHZ}/subjectaccessreviews", body)
    assert r.status == 403  # only those allowed to create subjectaccessreviews (system:auth-delegator)
    r = await call(api, "POST", f"{AUTHZ}/subjectaccessreviews", body)
    assert r.status == 201 and r.body["status"]["allowed"] is False
    r = await call(api, "POST", f"{AUTHZ}/subjectaccessreviews", access("get", "secrets"))
    assert r.status == 422 and r.body["details"]["causes"][0]["field"] == "spec.user"


@pytest.mark.parametrize("body,field", [
    ({"spec": {}}, "spec.resourceAttributes"),
    ({"spec": {**access("get", "pods")["spec"], "nonResourceAttributes": {"path": "/", "verb": "get"}}},
     "spec.resourceAttributes"),
])
async def test_exactly_one_kind_of_attributes(api: ApiServer, body: dict[str, Any], field: str) -> None:
    r = await call(api, "POST", f"{AUTHZ}/selfsubjectaccessreviews", body)
    assert r.status == 422 and r.body["details"]["causes"][0]["field"] == field


async def test_local_subject_access_review_namespace_must_match(api: ApiServer) -> None:
    body = {"spec": {"user": "jane", **access("get", "pods", ns="other")["spec"]}}
    r = await call(api, "POST", f"{AUTHZ}/namespaces/default/localsubjectaccessreviews", body)
    assert r.status == 422
    assert r.body["details"]["causes"][0]["field"] == "spec.resourceAttributes.namespace"
    body["spec"]["resourceAttributes"]["namespace"] = "default"
    r = await call(api, "POST", f"{AUTHZ}/namespaces/default/localsubjectaccessreviews", body)
    assert r.status == 201 and r.body["metadata"]["namespace"] == "default"


async def test_rules_review_and_whoami(api: ApiServer) -> None:
    r = await as_user(api, "jane", AUTHED, "POST", f"{AUTHZ}/selfsubjectrulesreviews",
                      {"spec": {"namespace": "default"}})
    assert r.status == 201 and r.body["status"]["incomplete"] is False
    assert {"verbs": ["create"], "apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"]} \
        in r.body["status"]["resourceRules"]
    assert any("/apis" in x["nonResourceURLs"] for x in r.body["status"]["nonResourceRules"])
    r = await as_user(api, "jane", AUTHED, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", {})
    assert r.status == 201
    assert r.body["status"]["userInfo"] == {"username": "jane", "groups": ["system:authenticated"]}


async def test_always_allow_mode(store: MemoryStore) -> None:
    api = ApiServer(store, ApiServerConfig(authorization_mode="AlwaysAllow"))
    await api.start()
    try:
        r = await as_user(api, "jane", (), "GET", "/api/v1/namespaces/default/secrets")
        assert r.status == 200
    finally:
        await api.close()
