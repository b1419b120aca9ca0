"""rbac.authorization.k8s.io/v1 served: CRUD, validation (422 naming fields), roleRef
immutable, kubectl's table columns, discovery."""

from __future__ import annotations

from typing import Any

import pytest

from k8py.apiserver.server import ApiServer

from apiserver_helpers import call

RBAC = "/apis/rbac.authorization.k8s.io/v1"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


def role(name: str = "pod-reader", **extra: Any) -> dict[str, Any]:
    r: dict[str, Any] = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                         "metadata": {"name": name},
                         "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "watch", "list"]}]}
    r.update(extra)
    return r


def binding(name: str = "read-pods", kind: str = "Role", role_name: str = "pod-reader",
            subjects: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role_name},
            "subjects": subjects if subjects is not None else [{"kind": "User", "name": "jane"}]}


async def test_role_and_binding_crud(api: ApiServer) -> None:
    r = await call(api, "POST", f"{RBAC}/namespaces/default/roles", role())
    assert r.status == 201, r.body
    r = await call(api, "POST", f"{RBAC}/namespaces/default/rolebindings", binding())
    assert r.status == 201, r.body
    assert r.body["subjects"][0]["apiGroup"] == "rbac.authorization.k8s.io"  # defaulted
    r = await call(api, "GET", f"{RBAC}/namespaces/default/rolebindings/read-pods")
    assert r.status == 200 and r.body["roleRef"]["name"] == "pod-reader"
    r = await call(api, "DELETE", f"{RBAC}/namespaces/default/roles/pod-reader")
    assert r.status == 200
    r = await call(api, "GET", f"{RBAC}/namespaces/default/roles/pod-reader")
    assert r.status == 404


async def test_cluster_role_names_may_hold_colons(api: ApiServer) -> None:
    cr = role("system:my-reader")
    cr["kind"] = "ClusterRole"
    r = await call(api, "POST", f"{RBAC}/clusterroles", cr)
    assert r.status == 201, r.body


@pytest.mark.parametrize("path,obj,field,message", [
    ("roles", role(rules=[{"apiGroups": [""], "resources": ["pods"], "verbs": []}]), "rules[0].verbs",
     "Required value: verbs must contain at least one value"),
    ("roles", role(rules=[{"resources": ["pods"], "verbs": ["get"]}]), "rules[0].apiGroups",
     "Required value: resource rules must supply at least one api group"),
    ("roles", role(rules=[{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]), "rules[0].nonResourceURLs",
     'Invalid value: []string{"/healthz"}: namespaced rules cannot apply to non-resource URLs'),
    ("rolebindings", binding(kind="Deployment"), "roleRef.kind",
     'Unsupported value: "Deployment": supported values: "Role", "ClusterRole"'),
    ("rolebindings", binding(role_name=""), "roleRef.name", "Required value"),
    ("rolebindings", binding(subjects=[{"kind": "Robot", "name": "r2"}]), "subjects[0].kind",
     'Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"'),
    ("rolebindings", binding(subjects=[{"kind": "User"}]), "subjects[0].name", "Required value"),
])
async def test_invalid_rbac_objects_are_422_naming_the_field(api: ApiServer, path: str, obj: dict[str, Any],
                                                             field: str, message: str) -> None:
    r = await call(api, "POST", f"{RBAC}/namespaces/default/{path}", obj)
    assert r.status == 422, r.body
    causes = {c["field"]: c["message"] for c in r.body["details"]["causes"]}
    assert causes.get(field) == message, causes


async def test_cluster_role_binding_service_account_needs_namespace(api: ApiServer) -> None:
    crb = binding(kind="ClusterRole", role_name="view", subjects=[{"kind": "ServiceAccount", "name": "default"}])
    crb["kind"] = "ClusterRoleBinding"
    r = await call(api, "POST", f"{RBAC}/clusterrolebindings", crb)
    assert r.status == 422
    assert r.body["details"]["causes"][0]["field"] == "subjects[0].namespace"


async def test_role_ref_is_immutable(api: ApiServer) -> None:
    await call(api, "POST", f"{RBAC}/namespaces/default/roles", role())
    created = (await call(api, "POST", f"{RBAC}/namespaces/default/rolebindings", binding())).body
    created["roleRef"]["name"] = "other"
    r = await call(api, "PUT", f"{RBAC}/namespaces/default/rolebindings/read-pods", created)
    assert r.status == 422
    assert r.body["details"]["causes"] == [{
        "reason": "FieldValueInvalid", "field": "roleRef",
        "message": 'Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"Role", '
                   'Name:"other"}: cannot change roleRef'}]


async def test_binding_table_columns(api: ApiServer) -> None:
    await call(api, "POST", f"{RBAC}/namespaces/default/rolebindings", binding(subjects=[
        {"kind": "User", "name": "jane"}, {"kind": "Group", "name": "devs"},
        {"kind": "ServiceAccount", "name": "default", "namespace": "default"}]))
    r = await call(api, "GET", f"{RBAC}/namespaces/default/rolebindings", accept=TABLE)
    assert [c["name"] for c in r.body["columnDefinitions"]] == ["Name", "Role", "Age", "Users", "Groups",
                                                               "ServiceAccounts"]
    cells = r.body["rows"][0]["cells"]
    assert cells[0:2] == ["read-pods", "Role/pod-reader"] and cells[3:] == ["jane", "devs", "default/default"]
    r = await call(api, "GET", f"{RBAC}/clusterroles", accept=TABLE)
    assert [c["name"] for c in r.body["columnDefinitions"]] == ["Name", "Created At"]


async def test_discovery_lists_the_rbac_group(api: ApiServer) -> None:
    r = await call(api, "GET", RBAC)
    assert r.status == 200
    assert {x["name"] for x in r.body["resources"]} == {"roles", "clusterroles", "rolebindings",
                                                        "clusterrolebindings"}
