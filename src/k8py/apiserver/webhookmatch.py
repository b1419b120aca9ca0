"""Which admission webhooks a request goes to, as Kubernetes' webhook predicates decide.

A webhook is called when one of its rules matches the request (operation CREATE, UPDATE,
DELETE or CONNECT; API group; version; resource, `resource/subresource`, `*`, `*/sub`,
`resource/*`; scope), its namespaceSelector matches the labels of the object's namespace
(of the object itself for a Namespace; always for other cluster-scoped objects), and its
objectSelector matches the labels of the new or the old object. matchPolicy Equivalent
also matches a rule naming another served version of the same resource (k8py sends the
object in the request's version). Pure functions; configurations are JSON objects already
defaulted and validated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from k8py.api import resources
from k8py.api.selectors import SelectorError, label_selector_from_dict
from k8py.api.types import Obj


@dataclass
class Attributes:
    """One admission request: what is written, by whom."""

    group: str
    version: str
    resource: str  # plural
    subresource: str
    kind: str
    operation: str  # CREATE | UPDATE | DELETE | CONNECT
    namespace: str
    name: str
    namespaced: bool
    obj: Obj | None
    old: Obj | None
    user: str = ""
    groups: tuple[str, ...] = ()
    dry_run: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _in(values: Any, x: str) -> bool:
    return isinstance(values, list) and ("*" in values or x in values)


def _resource_matches(patterns: Any, resource: str, sub: str) -> bool:
    if not isinstance(patterns, list):
        return False
    for p in patterns:
        if not isinstance(p, str):
            continue
        res, _, psub = p.partition("/")
        if p == "*" and not sub:
            return True
        if p == "*/*":
            return True
        if res in ("*", resource) and ((psub == "*" and sub) or psub == sub):
            return True
    return False


def _scope_matches(scope: Any, namespaced: bool) -> bool:
    if scope in (None, "*"):
        return True
    return scope == ("Namespaced" if namespaced else "Cluster")


def rule_matches(rule: Mapping[str, Any], a: Attributes, versions: tuple[str, ...] | None = None) -> bool:
    """One RuleWithOperations against the request; `versions` are the versions a rule may
    name (the request's alone for matchPolicy Exact)."""
    return (_in(rule.get("operations"), a.operation)
            and _in(rule.get("apiGroups"), a.group)
            and any(_in(rule.get("apiVersions"), v) for v in (versions or (a.version,)))
            and _resource_matches(rule.get("resources"), a.resource, a.subresource)
            and _scope_matches(rule.get("scope"), a.namespaced))


def equivalent_versions(a: Attributes) -> tuple[str, ...]:
    """The served versions of the request's resource (its own first)."""
    out = [a.version]
    for r in resources.SERVED:
        if r.group == a.group and r.plural == a.resource and r.version not in out:
            out.append(r.version)
    return tuple(out)


def rules_match(wh: Mapping[str, Any], a: Attributes) -> bool:
    versions = equivalent_versions(a) if wh.get("matchPolicy", "Equivalent") == "Equivalent" else None
    rules = wh.get("rules")
    return isinstance(rules, list) and any(isinstance(r, dict) and rule_matches(r, a, versions) for r in rules)


def _selector_matches(sel: Any, labels: Any) -> bool:
    if not sel:
        return True
    try:
        return label_selector_from_dict(sel).matches(labels if isinstance(labels, dict) else {})
    except SelectorError:
        return False


def _labels(obj: Obj | None) -> dict[str, str] | None:
    if not isinstance(obj, dict):
        return None
    labels = (obj.get("metadata") or {}).get("labels")
    return labels if isinstance(labels, dict) else {}


def object_selector_matches(wh: Mapping[str, Any], a: Attributes) -> bool:
    sel = wh.get("objectSelector")
    if not sel:
        return True
    return any(lb is not None and _selector_matches(sel, lb) for lb in (_labels(a.obj), _labels(a.old)))


def namespace_selector_matches(wh: Mapping[str, Any], a: Attributes, ns_labels: Mapping[str, str] | None) -> bool:
    """`ns_labels`: the labels of the request's namespace (None when cluster-scoped)."""
    sel = wh.get("namespaceSelector")
    if not sel:
        return True
    if a.group == "" and a.resource == "namespaces":
        return _selector_matches(sel, _labels(a.obj) or _labels(a.old))
    if not a.namespaced:
        return True
    return _selector_matches(sel, dict(ns_labels or {}))


def matches(wh: Mapping[str, Any], a: Attributes, ns_labels: Mapping[str, str] | None) -> bool:
    return rules_match(wh, a) and object_selector_matches(wh, a) and namespace_selector_matches(wh, a, ns_labels)
