"""rbac.authorization.k8s.io/v1: Roles, ClusterRoles and their bindings, as Kubernetes'
pkg/apis/rbac/validation checks them.

Rules: at least one verb; resource rules name API groups and resources, non-resource rules
only URLs (and only in ClusterRoles). Bindings: a roleRef to a Role or ClusterRole of the
rbac group (a ClusterRoleBinding only to a ClusterRole), immutable once set; subjects of
kind User, Group or ServiceAccount with a name (a ServiceAccount of a ClusterRoleBinding
with its namespace). Invariants: as in `meta`.
"""

from __future__ import annotations

import json
from typing import Any

from k8py.api import names
from k8py.api.validation.field import Raw, invalid, not_supported, required
from k8py.api.validation.meta import ErrorList, dict_of, list_of, validate_label_selector

GROUP = "rbac.authorization.k8s.io"
SUBJECT_KINDS = ("ServiceAccount", "User", "Group")


def validate_role(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    for i, rule in enumerate(list_of(obj.get("rules"))):
        _rule(v, dict_of(rule), f"rules[{i}]", namespaced=True)


def validate_cluster_role(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    for i, rule in enumerate(list_of(obj.get("rules"))):
        _rule(v, dict_of(rule), f"rules[{i}]", namespaced=False)
    agg = obj.get("aggregationRule")
    if isinstance(agg, dict):
        sels = list_of(agg.get("clusterRoleSelectors"))
        if not sels:
            v.add(required("aggregationRule.clusterRoleSelectors"))
        for i, sel in enumerate(sels):
            validate_label_selector(v, dict_of(sel), f"aggregationRule.clusterRoleSelectors[{i}]")


def _rule(v: ErrorList, rule: dict[str, Any], path: str, namespaced: bool) -> None:
    if not list_of(rule.get("verbs")):
        v.add(required(f"{path}.verbs", "verbs must contain at least one value"))
    urls = list_of(rule.get("nonResourceURLs"))
    if urls:
        shown = Raw("[]string{" + ", ".join(json.dumps(u) for u in urls) + "}")
        if namespaced:
            v.add(invalid(f"{path}.nonResourceURLs", shown, "namespaced rules cannot apply to non-resource URLs"))
        if any(list_of(rule.get(f)) for f in ("apiGroups", "resources", "resourceNames")):
            v.add(invalid(f"{path}.nonResourceURLs", shown,
                          "rules cannot apply to both regular resources and non-resource URLs"))
        return
    if not list_of(rule.get("apiGroups")):
        v.add(required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
    if not list_of(rule.get("resources")):
        v.add(required(f"{path}.resources", "resource rules must supply at least one resource"))


def validate_role_binding(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    _binding(v, obj, old, ("Role", "ClusterRole"), namespaced=True)


def validate_cluster_role_binding(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    _binding(v, obj, old, ("ClusterRole",), namespaced=False)


def _binding(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None, kinds: tuple[str, ...],
             namespaced: bool) -> None:
    ref = dict_of(obj.get("roleRef"))
    if ref.get("apiGroup") != GROUP:
        v.add(not_supported("roleRef.apiGroup", ref.get("apiGroup") or "", [GROUP]))
    if ref.get("kind") not in kinds:
        v.add(not_supported("roleRef.kind", ref.get("kind") or "", kinds))
    rname = ref.get("name")
    if not rname:
        v.add(required("roleRef.name"))
    elif isinstance(rname, str):
        v.msgs("roleRef.name", rname, names.path_segment_errors(rname))
    for i, s in enumerate(list_of(obj.get("subjects"))):
        _subject(v, dict_of(s), f"subjects[{i}]", namespaced)
    if old is not None:
        old_ref = dict_of(old.get("roleRef"))
        if old_ref != ref:
            v.add(invalid("roleRef", Raw(role_ref_repr(ref)), "cannot change roleRef"))


def role_ref_repr(ref: dict[str, Any]) -> str:
    """A RoleRef as Kubernetes prints it in messages (Go's %#v of rbac.RoleRef)."""
    return (f'rbac.RoleRef{{APIGroup:{json.dumps(ref.get("apiGroup") or "")}, '
            f'Kind:{json.dumps(ref.get("kind") or "")}, Name:{json.dumps(ref.get("name") or "")}}}')


def _subject(v: ErrorList, s: dict[str, Any], path: str, namespaced: bool) -> None:
    name = s.get("name")
    if not name:
        v.add(required(f"{path}.name"))
    kind = s.get("kind")
    if kind == "ServiceAccount":
        if isinstance(name, str) and name:
            v.msgs(f"{path}.name", name, names.dns1123_subdomain_errors(name))
        if s.get("apiGroup"):
            v.add(not_supported(f"{path}.apiGroup", s["apiGroup"], [""]))
        if not namespaced and not s.get("namespace"):
            v.add(required(f"{path}.namespace"))
    elif kind in ("User", "Group"):
        if s.get("apiGroup") != GROUP:
            v.add(not_supported(f"{path}.apiGroup", s.get("apiGroup") or "", [GROUP]))
    else:
        v.add(not_supported(f"{path}.kind", kind or "", SUBJECT_KINDS))
