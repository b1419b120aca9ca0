"""RBAC's escalation and bind checks: nobody grants a permission they do not hold.

Creating or updating a Role or ClusterRole is refused unless the user holds every
permission it grants (in the role's namespace; cluster-wide for a ClusterRole) or may
`escalate` it; a ClusterRole with an aggregationRule needs cluster-admin's permissions
(or `escalate`). Creating or updating a binding is refused unless the user holds every
permission of the role it references (in the binding's namespace) or may `bind` that
role. system:masters and the AlwaysAllow mode skip the checks, as in Kubernetes. The
refusal is Kubernetes' 403, listing the permissions not held. Coverage follows
Kubernetes' Covers: a requested rule is broken into single (group, resource, verb,
name) or (URL, verb) grants, each of which one held rule must cover (`*` covers all,
`<r>/*` every subresource of r, `*/<s>` subresource s of all, a rule without
resourceNames every name, a URL ending in `*` every path under it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from k8py.api.resources import Resource
from k8py.api.types import Obj
from k8py.api.wellknown import GROUP_MASTERS
from k8py.apiserver.authz import Authorizer
from k8py.apiserver.errors import StatusError, forbidden
from k8py.apiserver.rbac import Rule, compile_rules
from k8py.apiserver.requestinfo import Attributes

GROUP = "rbac.authorization.k8s.io"
FULL_AUTHORITY = compile_rules([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                                {"nonResourceURLs": ["*"], "verbs": ["*"]}])

Grant = tuple[str, str, str, str, str]  # (group, resource, name, url, verb): resource or url is ""


def check(authz: Authorizer, r: Resource, obj: Obj, user: str, groups: tuple[str, ...]) -> None:
    """Raise the 403 of an escalation (or a bind) that `user` may not make."""
    if r.group != GROUP or authz.mode != "RBAC" or GROUP_MASTERS in groups:
        return
    md = obj.get("metadata") or {}
    ns, name = str(md.get("namespace") or "") if r.namespaced else "", str(md.get("name") or "")
    if r.kind in ("Role", "ClusterRole"):
        if authz.allows(Attributes(user, groups, "escalate", True, namespace=ns, api_group=GROUP,
                                   resource=r.plural, name=name)):
            return
        if r.kind == "ClusterRole" and obj.get("aggregationRule"):
            if _missing(authz, user, groups, "", FULL_AUTHORITY):
                raise forbidden(r.plural, name, "must have cluster-admin privileges to use the aggregationRule",
                                r.group)
            return
        requested = compile_rules(obj.get("rules"))
    elif r.kind in ("RoleBinding", "ClusterRoleBinding"):
        raw = obj.get("roleRef")
        ref: Obj = raw if isinstance(raw, dict) else {}
        kind, role = str(ref.get("kind") or ""), str(ref.get("name") or "")
        plural = "roles" if kind == "Role" else "clusterroles"
        if authz.allows(Attributes(user, groups, "bind", True, namespace=ns, api_group=GROUP, resource=plural,
                                   name=role)):
            return
        rules = authz.index.role_rules(kind, ns, role)
        if rules is None:
            raise forbidden(r.plural, name, f'{kind.lower()}.{GROUP} "{role}" not found', r.group)
        requested = rules
    else:
        return
    missing = _missing(authz, user, groups, ns, requested)
    if missing:
        raise _not_held(r, name, user, groups, missing)


def _missing(authz: Authorizer, user: str, groups: tuple[str, ...], ns: str, requested: Iterable[Rule]) -> list[Grant]:
    held = authz.index.rules_for(user, groups, ns)
    out = []
    for g in grants(requested):
        if not any(covers(h, g) for h in held) and g not in out:
            out.append(g)
    return out


def grants(rules: Iterable[Rule]) -> Iterator[Grant]:
    for rule in rules:
        for verb in sorted(rule.verbs):
            for url in rule.urls:
                yield "", "", "", url, verb
            for group in sorted(rule.groups):
                for res in sorted(rule.resources):
                    for name in sorted(rule.names) or [""]:
                        yield group, res, name, "", verb


def covers(h: Rule, g: Grant) -> bool:
    group, res, name, url, verb = g
    if "*" not in h.verbs and verb not in h.verbs:
        return False
    if url:
        return any(u == "*" or u == url or (u.endswith("*") and url.startswith(u[:-1])) for u in h.urls)
    if "*" not in h.groups and group not in h.groups:
        return False
    if not _resource_covered(h.resources, res):
        return False
    return not h.names or (bool(name) and name in h.names)


def _resource_covered(held: frozenset[str], res: str) -> bool:
    if "*" in held or res in held:
        return True
    base, slash, sub = res.partition("/")
    return bool(slash) and (f"{base}/*" in held or f"*/{sub}" in held)


def _not_held(r: Resource, name: str, user: str, groups: tuple[str, ...], missing: list[Grant]) -> StatusError:
    lines = []
    for group, res, rname, url, verb in missing:
        if url:
            lines.append(f"{{NonResourceURLs:[{json.dumps(url)}], Verbs:[{json.dumps(verb)}]}}")
        else:
            names = f", ResourceNames:[{json.dumps(rname)}]" if rname else ""
            lines.append(f"{{APIGroups:[{json.dumps(group)}], Resources:[{json.dumps(res)}]{names}, "
                         f"Verbs:[{json.dumps(verb)}]}}")
    shown = "[" + " ".join(json.dumps(g) for g in groups) + "]"
    return forbidden(r.plural, name, f'user "{user}" (groups={shown}) is attempting to grant RBAC permissions '
                                     "not currently held:\n" + "\n".join(lines), r.group)
