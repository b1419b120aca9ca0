"""The review kinds: asked by a create, answered at once, never stored.

authorization.k8s.io/v1 SelfSubjectAccessReview (may I?), SubjectAccessReview (may they?),
LocalSubjectAccessReview (may they, in this namespace?) and SelfSubjectRulesReview (what
may I do in this namespace?), and authentication.k8s.io/v1 SelfSubjectReview (who am I?):
what `kubectl auth can-i [--list] [--as]` and `kubectl auth whoami` send. The answer is the
request's object with its `status` filled in by the same `authz.Authorizer` that guards
every request. Invariants: bad specs are 422s naming the field; nothing is written.
"""

from __future__ import annotations

from typing import Any

from k8py.api.request import ApiRequest, ApiResponse
from k8py.api.resources import Resource
from k8py.api.types import Obj
from k8py.apiserver import machinery
from k8py.apiserver.authz import Authorizer
from k8py.apiserver.errors import bad_request, invalid, method_not_allowed
from k8py.apiserver.rbac import Rule
from k8py.apiserver.requestinfo import Attributes


def respond(authz: Authorizer, req: ApiRequest, r: Resource, namespace: str | None, body: Any) -> ApiResponse:
    if req.method != "POST":
        raise method_not_allowed()
    if not isinstance(body, dict):
        raise bad_request(f"the object provided is unrecognized (must be of type {r.kind})")
    if body.get("kind") not in (None, "", r.kind):
        raise bad_request(f"the kind in the data ({body.get('kind')}) does not match the expected kind ({r.kind})")
    raw = body.get("spec")
    spec: Obj = raw if isinstance(raw, dict) else {}
    raw_md = body.get("metadata")
    md: Obj = raw_md if isinstance(raw_md, dict) else {}
    out: Obj = {"kind": r.kind, "apiVersion": r.api_version,
                "metadata": {**md, "creationTimestamp": None}, "spec": spec}
    if namespace:
        out["metadata"]["namespace"] = namespace
    if r.kind == "SelfSubjectReview":
        out.pop("spec")
        out["status"] = {"userInfo": {"username": req.user, "groups": list(req.groups)}}
    elif r.kind == "SelfSubjectRulesReview":
        out["status"] = rules_status(authz, req.user, req.groups, str(spec.get("namespace") or ""))
    else:
        user, groups = _subject(r, req, spec)
        a = _attributes(r, spec, user, groups, namespace)
        d = authz.authorize(a)
        status: Obj = {"allowed": d.allowed}
        if d.reason:
            status["reason"] = d.reason
        out["status"] = status
    return ApiResponse(201, out)


def _subject(r: Resource, req: ApiRequest, spec: Obj) -> tuple[str, tuple[str, ...]]:
    if r.kind == "SelfSubjectAccessReview":
        return req.user, req.groups
    raw_user = spec.get("user")
    user = raw_user if isinstance(raw_user, str) else ""
    groups = tuple(g for g in spec.get("groups") or [] if isinstance(g, str))
    if not user and not groups:
        raise invalid(r.kind, "", [machinery.cause("FieldValueInvalid", "spec.user",
                                                   'Invalid value: "": at least one of user or group must be '
                                                   "specified")], r.group)
    return user, groups


def _attributes(r: Resource, spec: Obj, user: str, groups: tuple[str, ...], namespace: str | None) -> Attributes:
    ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if isinstance(ra, dict) == isinstance(nra, dict):
        raise invalid(r.kind, "", [machinery.cause(
            "FieldValueInvalid", "spec.resourceAttributes",
            "Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be "
            "specified")], r.group)
    if isinstance(nra, dict):
        return Attributes(user, groups, str(nra.get("verb") or ""), False, path=str(nra.get("path") or ""))
    assert isinstance(ra, dict)
    ns = str(ra.get("namespace") or "")
    if namespace is not None and ns != namespace:
        raise invalid(r.kind, "", [machinery.cause(
            "FieldValueInvalid", "spec.resourceAttributes.namespace",
            f'Invalid value: "{ns}": must match metadata.namespace')], r.group)
    return Attributes(user, groups, str(ra.get("verb") or ""), True, namespace=ns,
                      api_group=str(ra.get("group") or ""), api_version=str(ra.get("version") or ""),
                      resource=str(ra.get("resource") or ""), subresource=str(ra.get("subresource") or ""),
                      name=str(ra.get("name") or ""))


def rules_status(authz: Authorizer, user: str, groups: tuple[str, ...], namespace: str) -> Obj:
    """A SelfSubjectRulesReview's status: the rules the user holds in `namespace`."""
    rules = authz.index.rules_for(user, groups, namespace)
    return {"resourceRules": [_resource_rule(x) for x in rules if not x.urls],
            "nonResourceRules": [{"verbs": sorted(x.verbs), "nonResourceURLs": list(x.urls)}
                                 for x in rules if x.urls],
            "incomplete": authz.mode != "RBAC"}


def _resource_rule(x: Rule) -> Obj:
    out: Obj = {"verbs": list(x.raw.get("verbs") or [])}
    for k in ("apiGroups", "resources", "resourceNames"):
        if x.raw.get(k):
            out[k] = list(x.raw[k])
    return out
