"""RBAC authorization of every request, table-driven from the examples of Kubernetes' RBAC
documentation: a Role reading pods in one namespace, a ClusterRole bound in one namespace
or everywhere, resourceNames, subresources (pods/log, pods/exec), non-resource URLs; the
403 Status word for word; request attributes as kube-apiserver computes them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from k8py.api.request import ApiRequest, ApiResponse
from k8py.apiserver.authz import Authorizer
from k8py.apiserver.rbac import RbacIndex
from k8py.apiserver.requestinfo import Attributes, attributes
from k8py.apiserver.server import ApiServer

from apiserver_helpers import call, pod

RBAC = "/apis/rbac.authorization.k8s.io/v1"
AUTHED = ("system:authenticated",)
SA_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated")


async def as_user(api: ApiServer, user: str, groups: tuple[str, ...], method: str, path: str,
                  body: Any = None, query: dict[str, str] | None = None) -> ApiResponse:
    data = json.dumps(body).encode() if body is not None else b""
    return await api.handle(ApiRequest(method, path, query or {}, data, {"content-type": "application/json"},
                                       user=user, groups=groups))


async def eventually_status(api: ApiServer, want: int, user: str, groups: tuple[str, ...], method: str,
                            path: str, query: dict[str, str] | None = None) -> ApiResponse:
    """The RBAC index follows a watch: wait (bounded) until the answer is `want`."""
    for _ in range(200):
        r = await as_user(api, user, groups, method, path, query=query)
        if r.status == want:
            return r
        await asyncio.sleep(0.01)
    raise AssertionError(f"{method} {path} as {user}: {r.status} {r.body}")


def rule(groups: list[str], res: list[str], verbs: list[str], names: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"apiGroups": groups, "resources": res, "verbs": verbs}
    if names:
        out["resourceNames"] = names
    return out


async def make(api: ApiServer, plural: str, obj: dict[str, Any], ns: str | None = None) -> None:
    path = f"{RBAC}/namespaces/{ns}/{plural}" if ns else f"{RBAC}/{plural}"
    r = await call(api, "POST", path, obj)
    assert r.status == 201, r.body


def bind(kind: str, name: str, role_kind: str, role: str, subjects: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": name}, "subjects": subjects,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role}}


USER_JANE = [{"kind": "User", "name": "jane", "apiGroup": "rbac.authorization.k8s.io"}]


async def test_role_reading_pods_in_one_namespace(api: ApiServer) -> None:
    await call(api, "POST", "/api/v1/namespaces", {"metadata": {"name": "other"}})
    await make(api, "roles", {"metadata": {"name": "pod-reader"},
                              "rules": [rule([""], ["pods"], ["get", "watch", "list"])]}, "default")
    await make(api, "rolebindings", bind("RoleBinding", "read-pods", "Role", "pod-reader", USER_JANE), "default")
    await eventually_status(api, 200, "jane", AUTHED, "GET", "/api/v1/namespaces/default/pods")
    r = await as_user(api, "jane", AUTHED, "GET", "/api/v1/namespaces/other/pods")
    assert r.status == 403 and r.body["message"] == (
        'pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "other"')
    assert r.body["reason"] == "Forbidden" and r.body["details"] == {"kind": "pods"}
    r = await as_user(api, "jane", AUTHED, "POST", "/api/v1/namespaces/default/pods", pod("p"))
    assert r.status == 403
    r = await as_user(api, "jane", AUTHED, "GET", "/api/v1/namespaces/default/secrets/s")
    assert r.body["message"] == ('secrets "s" is forbidden: User "jane" cannot get resource "secrets" in API '
                                 'group "" in the namespace "default"')
    assert r.body["details"] == {"name": "s", "kind": "secrets"}


async def test_cluster_role_in_a_role_binding_and_everywhere(api: ApiServer) -> None:
    await call(api, "POST", "/api/v1/namespaces", {"metadata": {"name": "development"}})
    await make(api, "clusterroles", {"metadata": {"name": "secret-reader"},
                                     "rules": [rule([""], ["secrets"], ["get", "watch", "list"])]})
    await make(api, "rolebindings", bind("RoleBinding", "read-secrets", "ClusterRole", "secret-reader",
                                         [{"kind": "User", "name": "dave"}]), "development")
    await make(api, "clusterrolebindings", bind("ClusterRoleBinding", "read-secrets-global", "ClusterRole",
                                                "secret-reader", [{"kind": "Group", "name": "manager"}]))
    await eventually_status(api, 200, "dave", AUTHED, "GET", "/api/v1/namespaces/development/secrets")
    r = await as_user(api, "dave", AUTHED, "GET", "/api/v1/namespaces/default/secrets")
    assert r.status == 403
    await eventually_status(api, 200, "ann", ("manager",), "GET", "/api/v1/secrets")
    r = await as_user(api, "ann", ("manager",), "GET", "/api/v1/namespaces")
    assert r.body["message"] == ('namespaces is forbidden: User "ann" cannot list resource "namespaces" in API '
                                 'group "" at the cluster scope')


async def test_default_service_account_refused_then_allowed_and_revoked(api: ApiServer) -> None:
    sa = "system:serviceaccount:default:default"
    r = await as_user(api, sa, SA_GROUPS, "GET", "/api/v1/namespaces/default/pods")
    assert r.status == 403 and r.body["message"] == (
        'pods is forbidden: User "system:serviceaccount:default:default" cannot list resource "pods" in API '
        'group "" in the namespace "default"')
    await make(api, "roles", {"metadata": {"name": "pod-reader"}, "rules": [rule([""], ["pods"], ["list"])]},
               "default")
    await make(api, "rolebindings", bind("RoleBinding", "sa", "Role", "pod-reader",
                                         [{"kind": "ServiceAccount", "name": "default"}]), "default")
    await eventually_status(api, 200, sa, SA_GROUPS, "GET", "/api/v1/namespaces/default/pods")
    await call(api, "DELETE", f"{RBAC}/namespaces/default/rolebindings/sa")
    await eventually_status(api, 403, sa, SA_GROUPS, "GET", "/api/v1/namespaces/default/pods")


async def test_resource_names(api: ApiServer) -> None:
    await call(api, "POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "my-configmap"}})
    await make(api, "roles", {"metadata": {"name": "cm-updater"},
                              "rules": [rule([""], ["configmaps"], ["get", "update", "list"], ["my-configmap"])]},
               "default")
    await make(api, "rolebindings", bind("RoleBinding", "b", "Role", "cm-updater", USER_JANE), "default")
    await eventually_status(api, 200, "jane", AUTHED, "GET", "/api/v1/namespaces/default/configmaps/my-configmap")
    r = await as_user(api, "jane", AUTHED, "GET", "/api/v1/namespaces/default/configmaps/other")
    assert r.status == 403
    r = await as_user(api, "jane", AUTHED, "GET", "/api/v1/namespaces/default/configmaps")
    assert r.status == 403  # a list names nothing ...
    r = await as_user(api, "jane", AUTHED, "GET", "/api/v1/namespaces/default/configmaps",
                      query={"fieldSelector": "metadata.name=my-configmap"})
    assert r.status == 200  # ... unless its field selector does


async def test_subresources_pods_log_and_exec(api: ApiServer) -> None:
    await call(api, "POST", "/api/v1/namespaces/default/pods", pod("p"))
    await make(api, "roles", {"metadata": {"name": "logs"}, "rules": [rule([""], ["pods/log"], ["get"])]},
               "default")
    await make(api, "rolebindings", bind("RoleBinding", "b", "Role", "logs", USER_JANE), "default")
    r = await eventually_status(api, 400, "jane", AUTHED, "GET", "/api/v1/namespaces/default/pods/p/log")
    assert "forbidden" not in r.body["message"]  # past authorization: the pod has no node yet
    r = await as_user(api, "jane", AUTHED, "GET", "/api/v1/namespaces/default/pods/p")
    assert r.status == 403
    r = await as_user(api, "jane", AUTHED, "GET", "/api/v1/namespaces/default/pods/p/exec")
    assert r.body["message"] == ('pods "p" is forbidden: User "jane" cannot create resource "pods/exec" in API '
                                 'group "" in the namespace "default"')


async def test_non_resource_urls(api: ApiServer) -> None:
    # (outside system:authenticated, whom the bootstrap policy lets discover)
    r = await as_user(api, "jane", (), "GET", "/apis")
    assert r.status == 403 and r.body["message"] == 'forbidden: User "jane" cannot get path "/apis"'
    await make(api, "clusterroles", {"metadata": {"name": "disco"},
                                     "rules": [{"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*"],
                                                "verbs": ["get"]}]})
    await make(api, "clusterrolebindings", bind("ClusterRoleBinding", "disco", "ClusterRole", "disco", USER_JANE))
    await eventually_status(api, 200, "jane", (), "GET", "/apis")
    r = await as_user(api, "jane", (), "GET", "/apis/apps/v1")
    assert r.status == 200
    r = await as_user(api, "jane", (), "GET", "/openapi/v3")
    assert r.status == 403


async def test_a_binding_to_a_missing_role_says_so(api: ApiServer) -> None:
    await make(api, "rolebindings", bind("RoleBinding", "b", "Role", "nope", USER_JANE), "default")
    for _ in range(200):
        r = await as_user(api, "jane", AUTHED, "GET", "/api/v1/namespaces/default/pods")
        if "RBAC" in r.body["message"]:
            break
        await asyncio.sleep(0.01)
    assert r.body["message"].endswith(': RBAC: role.rbac.authorization.k8s.io "nope" not found')


async def test_masters_and_always_allow() -> None:
    a = Attributes("root", ("system:masters",), "delete", True, resource="nodes", name="n")
    assert Authorizer("RBAC").allows(a)
    jane = Attributes("jane", (), "delete", True, resource="nodes", name="n")
    assert not Authorizer("RBAC").allows(jane)
    assert Authorizer("AlwaysAllow").allows(jane)


@pytest.mark.parametrize("method,path,query,want", [
    ("GET", "/api/v1/namespaces/default/pods", {}, ("list", "default", "", "pods", "", "")),
    ("GET", "/api/v1/namespaces/default/pods", {"watch": "true"}, ("watch", "default", "", "pods", "", "")),
    ("GET", "/api/v1/watch/namespaces/default/pods", {}, ("watch", "default", "", "pods", "", "")),
    ("GET", "/api/v1/pods", {"fieldSelector": "metadata.name=x"}, ("list", "", "", "pods", "", "x")),
    ("DELETE", "/apis/apps/v1/namespaces/ns/deployments", {}, ("deletecollection", "ns", "apps", "deployments",
                                                               "", "")),
    ("PATCH", "/apis/apps/v1/namespaces/ns/deployments/d/scale", {}, ("patch", "ns", "apps", "deployments",
                                                                      "scale", "d")),
    ("GET", "/api/v1/namespaces/ns", {}, ("get", "ns", "", "namespaces", "", "ns")),
    ("PUT", "/api/v1/namespaces/ns/finalize", {}, ("update", "ns", "", "namespaces", "finalize", "ns")),
    ("POST", "/api/v1/namespaces/ns/pods/p/exec", {}, ("create", "ns", "", "pods", "exec", "p")),
    ("GET", "/api/v1/namespaces/ns/pods/p/portforward", {}, ("create", "ns", "", "pods", "portforward", "p")),
    ("GET", "/api/v1/nodes/n/proxy", {}, ("get", "", "", "nodes", "proxy", "n")),
])
def test_request_attributes(method: str, path: str, query: dict[str, str],
                            want: tuple[str, str, str, str, str, str]) -> None:
    a = attributes(method, path, query, "u", ())
    assert a.resource_request
    assert (a.verb, a.namespace, a.api_group, a.resource, a.subresource, a.name) == want


@pytest.mark.parametrize("method,path", [("GET", "/api"), ("GET", "/apis/apps/v1"), ("GET", "/api/v1"),
                                         ("GET", "/openapi/v3"), ("POST", "/healthz")])
def test_non_resource_attributes(method: str, path: str) -> None:
    a = attributes(method, path, {}, "u", ())
    assert not a.resource_request and a.verb == method.lower() and a.path == path


def test_index_ignores_older_events_and_indexes_by_subject() -> None:
    idx = RbacIndex()
    key = "/registry/rbac.authorization.k8s.io/clusterrolebindings/b"
    new = bind("ClusterRoleBinding", "b", "ClusterRole", "r", [{"kind": "Group", "name": "g2"}])
    old = bind("ClusterRoleBinding", "b", "ClusterRole", "r", [{"kind": "Group", "name": "g1"}])
    idx.observe(key, 10, new)
    idx.observe(key, 5, old)  # a replay of an older event
    assert [b.name for b in idx.bindings_of("u", ["g2"])] == ["b"]
    assert list(idx.bindings_of("u", ["g1"])) == []
    idx.observe(key, 11, None)
    assert list(idx.bindings_of("u", ["g2"])) == [] and not idx.by_subject


def test_impersonation_needs_the_impersonate_verb() -> None:
    from k8py.apiserver.auth import User
    from k8py.apiserver.errors import StatusError
    from k8py.apiserver.impersonation import impersonate

    authz = Authorizer("RBAC")
    idx = authz.index
    idx.observe("/registry/rbac.authorization.k8s.io/clusterroles/imp", 1, {"rules": [
        {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"], "resourceNames": ["jane"]},
        {"apiGroups": [""], "resources": ["groups"], "verbs": ["impersonate"]}]})
    idx.observe("/registry/rbac.authorization.k8s.io/clusterrolebindings/imp", 2,
                bind("ClusterRoleBinding", "imp", "ClusterRole", "imp", [{"kind": "User", "name": "ops"}]))
    ops = User("ops", AUTHED)
    assert impersonate(authz, ops, "jane", ["devs"]) == User("jane", ("devs", "system:authenticated"))
    with pytest.raises(StatusError) as e:
        impersonate(authz, ops, "bob", [])
    assert e.value.message == ('users "bob" is forbidden: User "ops" cannot impersonate resource "users" in API '
                               'group "" at the cluster scope')
    with pytest.raises(StatusError) as e:
        impersonate(authz, ops, "system:serviceaccount:kube-system:default", [])
    assert 'cannot impersonate resource "serviceaccounts" in API group "" in the namespace "kube-system"' \
        in e.value.message
    assert impersonate(authz, User("root", ("system:masters",)), "system:serviceaccount:ns:sa", []) == User(
        "system:serviceaccount:ns:sa", ("system:serviceaccounts", "system:serviceaccounts:ns", "system:authenticated"))
    with pytest.raises(StatusError) as e:
        impersonate(authz, ops, None, ["devs"])
    assert e.value.code == 400
