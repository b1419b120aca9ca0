"""The RBAC authorizer: Roles, ClusterRoles and their bindings, kept in memory and indexed by
subject, as Kubernetes' RBAC authorizer reads them from its informers.

`RbacIndex.observe(key, revision, obj)` follows the store (the API server feeds it every
event of the four RBAC prefixes, after loading them at start); per key, an event older than
the one already seen is ignored, so a replay or a list racing the watch never goes back.
Bindings are indexed by subject: ("User", name) for users and service accounts (as
`system:serviceaccount:<ns>:<name>`) and ("Group", name), so `authorize` looks only at the
bindings of the request's user and groups: O(their bindings x rules), no store read.
A RoleBinding applies in its own namespace only; a ClusterRoleBinding everywhere and at
cluster scope. Rules match as Kubernetes' RuleAllows: verb, API group, resource (`*`,
`<resource>/<subresource>`, `*/<subresource>`), resourceNames (a request without a name
never matches a rule that names some), non-resource URLs (exact or a `prefix*`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from k8py.api.types import Obj
from k8py.apiserver.requestinfo import Attributes

PREFIX = "/registry/rbac.authorization.k8s.io/"
_KINDS = {"roles": "Role", "clusterroles": "ClusterRole", "rolebindings": "RoleBinding",
          "clusterrolebindings": "ClusterRoleBinding"}


@dataclass(frozen=True)
class Rule:
    verbs: frozenset[str]
    groups: frozenset[str]
    resources: frozenset[str]
    names: frozenset[str]
    urls: tuple[str, ...]
    raw: Obj  # the PolicyRule as written (rules reviews answer it)

    def allows(self, a: Attributes) -> bool:
        if a.verb not in self.verbs and "*" not in self.verbs:
            return False
        if not a.resource_request:
            return any(u == "*" or u == a.path or (u.endswith("*") and a.path.startswith(u[:-1]))
                       for u in self.urls)
        if a.api_group not in self.groups and "*" not in self.groups:
            return False
        if not self._resource_matches(a.resource, a.subresource):
            return False
        return not self.names or a.name in self.names

    def _resource_matches(self, resource: str, sub: str) -> bool:
        if "*" in self.resources:
            return True
        if not sub:
            return resource in self.resources
        return f"{resource}/{sub}" in self.resources or f"*/{sub}" in self.resources


def _strings(x: Any) -> list[str]:
    return [s for s in x if isinstance(s, str)] if isinstance(x, list) else []


def compile_rules(rules: Any) -> tuple[Rule, ...]:
    out = []
    for r in rules if isinstance(rules, list) else []:
        if not isinstance(r, dict):
            continue
        out.append(Rule(frozenset(_strings(r.get("verbs"))), frozenset(_strings(r.get("apiGroups"))),
                        frozenset(_strings(r.get("resources"))), frozenset(_strings(r.get("resourceNames"))),
                        tuple(_strings(r.get("nonResourceURLs"))), r))
    return tuple(out)


@dataclass(frozen=True)
class Binding:
    kind: str  # RoleBinding | ClusterRoleBinding
    namespace: str  # "" for a ClusterRoleBinding
    name: str
    role_kind: str  # Role | ClusterRole
    role_name: str
    subjects: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        where = f' in namespace "{self.namespace}"' if self.namespace else ""
        return f'{self.kind} "{self.name}" of {self.role_kind} "{self.role_name}"{where}'


def subject_keys(subjects: Any, namespace: str) -> tuple[tuple[str, str], ...]:
    """("User"|"Group", name) of a binding's subjects; a service account is its user."""
    out = []
    for s in subjects if isinstance(subjects, list) else []:
        if not isinstance(s, dict) or not isinstance(s.get("name"), str):
            continue
        kind = s.get("kind")
        if kind == "ServiceAccount":
            out.append(("User", f'system:serviceaccount:{s.get("namespace") or namespace}:{s["name"]}'))
        elif kind in ("User", "Group"):
            out.append((str(kind), s["name"]))
    return tuple(out)


class RbacIndex:
    def __init__(self) -> None:
        self.roles: dict[tuple[str, str], tuple[Rule, ...]] = {}
        self.cluster_roles: dict[str, tuple[Rule, ...]] = {}
        self.bindings: dict[str, Binding] = {}
        self.by_subject: dict[tuple[str, str], set[str]] = defaultdict(set)
        self._revs: dict[str, int] = {}

    # -- following the store ---------------------------------------------------
    def observe(self, key: str, revision: int, obj: Obj | None) -> None:
        """A PUT (obj) or DELETE (None) of `key` at `revision`."""
        if revision < self._revs.get(key, 0):
            return
        self._revs[key] = revision
        plural, _, rest = key.removeprefix(PREFIX).partition("/")
        kind = _KINDS.get(plural)
        if kind is None:
            return
        ns, _, name = rest.rpartition("/")
        if kind == "Role":
            self._set(self.roles, (ns, name), obj)
        elif kind == "ClusterRole":
            self._set(self.cluster_roles, name, obj)
        else:
            self._unbind(key)
            if obj is not None:
                self._bind(key, kind, ns, name, obj)

    def observe_bytes(self, key: str, revision: int, value: bytes | None) -> None:
        try:
            obj = json.loads(value) if value is not None else None
        except ValueError:
            return
        self.observe(key, revision, obj if isinstance(obj, dict) or obj is None else None)

    @staticmethod
    def _set(table: dict[Any, tuple[Rule, ...]], k: Any, obj: Obj | None) -> None:
        if obj is None:
            table.pop(k, None)
        else:
            table[k] = compile_rules(obj.get("rules"))

    def _unbind(self, key: str) -> None:
        old = self.bindings.pop(key, None)
        for s in old.subjects if old else ():
            keys = self.by_subject.get(s)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self.by_subject[s]

    def _bind(self, key: str, kind: str, ns: str, name: str, obj: Obj) -> None:
        raw = obj.get("roleRef")
        ref: Obj = raw if isinstance(raw, dict) else {}
        b = Binding(kind, ns, name, str(ref.get("kind") or ""), str(ref.get("name") or ""),
                    subject_keys(obj.get("subjects"), ns))
        self.bindings[key] = b
        for s in b.subjects:
            self.by_subject[s].add(key)

    # -- questions ---------------------------------------------------------------
    def bindings_of(self, user: str, groups: Iterable[str]) -> Iterator[Binding]:
        seen: set[str] = set()
        for s in [("User", user)] + [("Group", g) for g in groups]:
            for key in self.by_subject.get(s, ()):
                if key not in seen:
                    seen.add(key)
                    yield self.bindings[key]

    def role_rules(self, kind: str, namespace: str, name: str) -> tuple[Rule, ...] | None:
        """The rules of a Role (in `namespace`) or ClusterRole; None when it does not exist."""
        if kind == "ClusterRole":
            return self.cluster_roles.get(name)
        if kind == "Role":
            return self.roles.get((namespace, name))
        return None

    def authorize(self, a: Attributes) -> tuple[bool, str]:
        """(allowed, reason): the reason names the binding that allowed, or the roles that
        bindings name and that do not exist."""
        missing = []
        for b in self.bindings_of(a.user, a.groups):
            if b.namespace and b.namespace != a.namespace:
                continue
            rules = self.role_rules(b.role_kind, b.namespace, b.role_name)
            if rules is None:
                missing.append(f'{b.role_kind.lower()}.rbac.authorization.k8s.io "{b.role_name}" not found')
                continue
            if any(r.allows(a) for r in rules):
                return True, f"RBAC: allowed by {b.describe()} to {a.user}"
        if not missing:
            return False, ""
        errs = sorted(set(missing))
        return False, "RBAC: " + (errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]")

    def rules_for(self, user: str, groups: Iterable[str], namespace: str) -> list[Rule]:
        """Every rule the user holds in `namespace` ("" = cluster-wide rules only)."""
        out: list[Rule] = []
        for b in self.bindings_of(user, groups):
            if b.namespace and b.namespace != namespace:
                continue
            out.extend(self.role_rules(b.role_kind, b.namespace, b.role_name) or ())
        return out
