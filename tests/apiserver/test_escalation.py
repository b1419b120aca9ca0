"""RBAC escalation and bind checks, and the bootstrap policy, as Kubernetes' documentation
describes them ("Privilege escalation prevention and bootstrapping")."""

from __future__ import annotations

import asyncio

import pytest
from test_authz import AUTHED, RBAC, as_user, bind, eventually_status, make, rule

from k8py.apiserver import bootstrappolicy
from k8py.apiserver.escalation import covers, grants
from k8py.apiserver.rbac import compile_rules
from k8py.apiserver.server import ApiServer

JANE = [{"kind": "User", "name": "jane"}]


async def _jane_manages_roles(api: ApiServer) -> None:
    """jane may manage Roles and RoleBindings in default, and read pods there (only)."""
    await make(api, "roles", {"metadata": {"name": "role-admin"}, "rules": [
        rule(["rbac.authorization.k8s.io"], ["roles", "rolebindings"], ["create", "update", "get"]),
        rule([""], ["pods"], ["get", "list"])]}, "default")
    await make(api, "rolebindings", bind("RoleBinding", "jane", "Role", "role-admin", JANE), "default")
    await eventually_status(api, 200, "jane", AUTHED, "GET", "/api/v1/namespaces/default/pods")


async def test_creating_a_role_with_more_than_you_hold_is_refused(api: ApiServer) -> None:
    await _jane_manages_roles(api)
    ok = {"metadata": {"name": "reader"}, "rules": [rule([""], ["pods"], ["get"])]}
    r = await as_user(api, "jane", AUTHED, "POST", f"{RBAC}/namespaces/default/roles", ok)
    assert r.status == 201, r.body
    more = {"metadata": {"name": "deleter"}, "rules": [rule([""], ["pods"], ["get", "delete"])]}
    r = await as_user(api, "jane", AUTHED, "POST", f"{RBAC}/namespaces/default/roles", more)
    assert r.status == 403
    assert r.body["message"] == (
        'roles.rbac.authorization.k8s.io "deleter" is forbidden: user "jane" (groups=["system:authenticated"]) '
        "is attempting to grant RBAC permissions not currently held:\n"
        '{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}')


async def test_escalate_verb_lets_you(api: ApiServer) -> None:
    await _jane_manages_roles(api)
    await make(api, "clusterroles", {"metadata": {"name": "escalator"},
                                     "rules": [rule(["rbac.authorization.k8s.io"], ["roles"], ["escalate"])]})
    await make(api, "rolebindings", bind("RoleBinding", "esc", "ClusterRole", "escalator", JANE), "default")
    more = {"metadata": {"name": "deleter"}, "rules": [rule([""], ["pods"], ["delete"])]}
    for _ in range(100):
        r = await as_user(api, "jane", AUTHED, "POST", f"{RBAC}/namespaces/default/roles", more)
        if r.status == 201:
            break
        await asyncio.sleep(0.01)
    assert r.status == 201, r.body


async def test_binding_a_role_you_do_not_hold_needs_bind(api: ApiServer) -> None:
    await _jane_manages_roles(api)
    await make(api, "roles", {"metadata": {"name": "secrets"}, "rules": [rule([""], ["secrets"], ["get"])]},
               "default")
    bob = [{"kind": "User", "name": "bob"}]
    for _ in range(100):  # (until the index has the new role)
        r = await as_user(api, "jane", AUTHED, "POST", f"{RBAC}/namespaces/default/rolebindings",
                          bind("RoleBinding", "bob", "Role", "secrets", bob))
        if "not found" not in r.body["message"]:
            break
        await asyncio.sleep(0.01)
    assert r.status == 403 and "not currently held" in r.body["message"], r.body
    r = await as_user(api, "jane", AUTHED, "POST", f"{RBAC}/namespaces/default/rolebindings",
                      bind("RoleBinding", "bob-view", "Role", "role-admin", bob))
    assert r.status == 201, r.body  # a role whose permissions jane holds
    await make(api, "roles", {"metadata": {"name": "binder"}, "rules": [
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["bind"],
         "resourceNames": ["secrets"]}]}, "default")
    await make(api, "rolebindings", bind("RoleBinding", "jane-binds", "Role", "binder", JANE), "default")
    for _ in range(100):
        r = await as_user(api, "jane", AUTHED, "POST", f"{RBAC}/namespaces/default/rolebindings",
                          bind("RoleBinding", "bob", "Role", "secrets", bob))
        if r.status == 201:
            break
        await asyncio.sleep(0.01)
    assert r.status == 201, r.body


async def test_aggregation_rule_needs_cluster_admin(api: ApiServer) -> None:
    await make(api, "clusterroles", {"metadata": {"name": "cr-admin"}, "rules": [
        rule(["rbac.authorization.k8s.io"], ["clusterroles"], ["create"])]})
    await make(api, "clusterrolebindings", bind("ClusterRoleBinding", "jane", "ClusterRole", "cr-admin", JANE))
    agg = {"metadata": {"name": "monitoring"}, "rules": [],
           "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]}}
    for _ in range(100):
        r = await as_user(api, "jane", AUTHED, "POST", f"{RBAC}/clusterroles", agg)
        if "aggregationRule" in r.body.get("message", ""):
            break
        await asyncio.sleep(0.01)
    assert r.status == 403 and r.body["message"].endswith(
        "is forbidden: must have cluster-admin privileges to use the aggregationRule")


@pytest.mark.parametrize("held,wanted,ok", [
    (rule(["*"], ["*"], ["*"]), rule(["apps"], ["deployments"], ["delete"]), True),
    (rule([""], ["pods"], ["get"]), rule([""], ["pods"], ["*"]), False),
    (rule([""], ["pods/*"], ["get"]), rule([""], ["pods/log"], ["get"]), True),
    (rule([""], ["*/scale"], ["get"]), rule(["apps"], ["deployments/scale"], ["get"]), False),
    (rule(["apps"], ["*/scale"], ["get"]), rule(["apps"], ["deployments/scale"], ["get"]), True),
    ({**rule([""], ["cm"], ["get"]), "resourceNames": ["a"]}, rule([""], ["cm"], ["get"]), False),
    (rule([""], ["cm"], ["get"]), {**rule([""], ["cm"], ["get"]), "resourceNames": ["a"]}, True),
    ({"nonResourceURLs": ["/logs/*"], "verbs": ["get"]}, {"nonResourceURLs": ["/logs/x"], "verbs": ["get"]}, True),
    ({"nonResourceURLs": ["/logs"], "verbs": ["get"]}, {"nonResourceURLs": ["/logs/x"], "verbs": ["get"]}, False),
])
def test_covers(held: dict[str, object], wanted: dict[str, object], ok: bool) -> None:
    h = compile_rules([held])[0]
    assert all(covers(h, g) for g in grants(compile_rules([wanted]))) is ok


async def test_bootstrap_policy_is_there_and_basic_users_can_discover(api: ApiServer) -> None:
    for cr in bootstrappolicy.cluster_roles():
        r = await as_user(api, "system:admin", ("system:masters",), "GET",
                          f"{RBAC}/clusterroles/{cr['metadata']['name']}")
        assert r.status == 200, cr["metadata"]["name"]
    r = await as_user(api, "system:admin", ("system:masters",), "GET", f"{RBAC}/clusterrolebindings/cluster-admin")
    assert r.body["subjects"] == [{"kind": "Group", "name": "system:masters", "apiGroup": "rbac.authorization.k8s.io"}]
    await eventually_status(api, 200, "nobody", AUTHED, "GET", "/apis")
    r = await as_user(api, "nobody", AUTHED, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                      {"spec": {"resourceAttributes": {"verb": "list", "resource": "pods", "namespace": "default"}}})
    assert r.status == 201 and r.body["status"]["allowed"] is False


async def test_bootstrap_recreates_a_deleted_role_at_start(api: ApiServer) -> None:
    r = await as_user(api, "system:admin", ("system:masters",), "DELETE", f"{RBAC}/clusterroles/view")
    assert r.status == 200
    await api.close()
    await api.start()
    r = await as_user(api, "system:admin", ("system:masters",), "GET", f"{RBAC}/clusterroles/view")
    assert r.status == 200 and r.body["aggregationRule"]
