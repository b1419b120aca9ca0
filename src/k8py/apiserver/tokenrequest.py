"""TokenRequest (`serviceaccounts/<name>/token`) and TokenReview (authentication.k8s.io/v1).

`create_token` validates a TokenRequest as kube-apiserver does (expirationSeconds at
least 600 s, at most 2^32; default 3600 s; audiences default to the API server's; a
boundObjectRef to a Pod, Secret or Node of the account's namespace, with a matching uid
when one is given; a pod running under the same account) and issues the signed token:
bound to the object, and naming the pod's node when the pod is bound to one.
`review_token` answers a TokenReview: authenticated, the user (name, uid, groups,
extra) and the audiences the token was accepted for, or the error.

Invariant: bad input is a Kubernetes Status naming the field (400/404/409/422); neither
function writes anything to the store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from k8py.api import resources
from k8py.api.types import Obj
from k8py.apiserver import machinery
from k8py.apiserver.boundtokens import BoundTokenAuthenticator
from k8py.apiserver.errors import StatusError, bad_request, conflict, forbidden, invalid
from k8py.apiserver.registry import Registry
from k8py.apiserver.tokens import DEFAULT_EXPIRATION, MAX_EXPIRATION, MIN_EXPIRATION, TokenIssuer
from k8py.clock import rfc3339

BOUND_KINDS = {"Pod": "pods", "Secret": "secrets", "Node": "nodes"}
GROUP = "authentication.k8s.io"


def _spec(body: Obj, kind: str) -> Obj:
    if body.get("kind") not in (None, "", kind):
        raise bad_request(f"the kind in the data ({body.get('kind')}) does not match the expected kind "
                          f"({GROUP}/v1, Kind={kind})")
    spec = body.get("spec")
    return spec if isinstance(spec, dict) else {}


def _check_spec(name: str, spec: Obj) -> tuple[int, list[str]]:
    exp_s = spec.get("expirationSeconds")
    exp_s = DEFAULT_EXPIRATION if exp_s in (None, 0) else exp_s
    causes = []
    if not isinstance(exp_s, int) or isinstance(exp_s, bool):
        causes.append(machinery.cause("FieldValueInvalid", "spec.expirationSeconds",
                                      f"Invalid value: {exp_s!r}: must be an integer"))
    elif exp_s < MIN_EXPIRATION:
        causes.append(machinery.cause("FieldValueInvalid", "spec.expirationSeconds",
                                      f"Invalid value: {exp_s}: may not specify a duration less than 10 minutes"))
    elif exp_s > MAX_EXPIRATION:
        causes.append(machinery.cause("FieldValueInvalid", "spec.expirationSeconds",
                                      f"Invalid value: {exp_s}: may not specify a duration larger than 2^32 seconds"))
    auds = spec.get("audiences") or []
    if not isinstance(auds, list) or not all(isinstance(a, str) for a in auds):
        causes.append(machinery.cause("FieldValueInvalid", "spec.audiences", "Invalid value: must be strings"))
    if causes:
        raise invalid("TokenRequest", name, causes, GROUP)
    return exp_s, auds


async def _bound(reg: Registry, ns: str, sa_name: str, ref: Obj) -> tuple[Obj | None, Obj | None]:
    """The bound object's {kind, name, uid} and, for a pod on a node, the node's {name, uid}."""
    if not ref:
        return None, None
    kind = ref.get("kind")
    if kind not in BOUND_KINDS:
        raise bad_request(f'cannot bind token for serviceaccount "{sa_name}" to object of kind "{kind}": '
                          "only Pod, Secret and Node are supported")
    r = resources.lookup("", BOUND_KINDS[kind])
    assert r is not None
    target = await reg.get(r, ns if r.namespaced else None, str(ref.get("name") or ""))
    md = target["metadata"]
    if ref.get("uid") and ref["uid"] != md.get("uid"):
        raise conflict(r.plural, md["name"], "",
                       f'the UID in the bound object reference ({ref["uid"]}) does not match the UID in record. '
                       "The object might have been deleted and then recreated")
    node = None
    if kind == "Pod":
        spec = target.get("spec") or {}
        if (spec.get("serviceAccountName") or "default") != sa_name:
            raise bad_request(f'cannot bind token for serviceaccount "{sa_name}" to pod running with '
                              "different serviceaccount name.")
        if spec.get("nodeName"):
            node = await _node(reg, str(spec["nodeName"]))
    return {"kind": kind, "name": md["name"], "uid": md.get("uid", "")}, node


async def _node(reg: Registry, name: str) -> Obj:
    r = resources.lookup("", "nodes")
    assert r is not None
    try:
        return {"name": name, "uid": (await reg.get(r, None, name))["metadata"].get("uid", "")}
    except StatusError as e:
        if e.code != 404:
            raise
        return {"name": name, "uid": ""}


def _node_may_request(name: str, ref: Obj) -> None:
    """NodeRestriction: a node's TokenRequest must be bound to a pod (by name and uid)."""
    if ref.get("apiVersion") != "v1" or ref.get("kind") != "Pod" or not ref.get("name"):
        raise forbidden("serviceaccounts", name, "node requested token not bound to a pod")
    if not ref.get("uid"):
        raise forbidden("serviceaccounts", name, "node requested token with a pod binding without a uid")


async def create_token(reg: Registry, issuer: TokenIssuer, ns: str, name: str, body: Obj,
                       requester_node: str = "") -> Obj:
    """A TokenRequest answered (the 201 body). `requester_node`: the node asking, if a node
    asks (NodeRestriction: only for a pod scheduled on it)."""
    spec = _spec(body, "TokenRequest")
    exp_s, auds = _check_spec(name, spec)
    sa_res = resources.lookup("", "serviceaccounts")
    assert sa_res is not None
    sa = await reg.get(sa_res, ns, name)
    raw_ref = spec.get("boundObjectRef")
    ref: Obj = raw_ref if isinstance(raw_ref, dict) else {}
    if requester_node:
        _node_may_request(name, ref)
    bound, node = await _bound(reg, ns, name, ref)
    if requester_node and (node or {}).get("name") != requester_node:
        raise forbidden("serviceaccounts", name, "node requested token bound to a pod scheduled on a different node")
    token, exp = issuer.issue(ns, name, str(sa["metadata"].get("uid", "")), audiences=auds,
                              expiration_seconds=exp_s, bound=bound, node=node)
    out_ref = None
    if bound is not None:
        out_ref = {"kind": bound["kind"], "apiVersion": "v1", "name": bound["name"], "uid": bound["uid"]}
    return {"kind": "TokenRequest", "apiVersion": f"{GROUP}/v1",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": None},
            "spec": {"audiences": auds or [issuer.issuer], "expirationSeconds": exp_s, "boundObjectRef": out_ref},
            "status": {"token": token, "expirationTimestamp": rfc3339(exp)}}


def review_token(body: Obj, bound: BoundTokenAuthenticator,
                 others: Callable[[str], Any] | None = None) -> Obj:
    """A TokenReview answered (the 201 body). `others(token)` authenticates tokens that are
    not service-account tokens (an `auth.User` or None), for the API server's audience."""
    spec = _spec(body, "TokenReview")
    token = spec.get("token")
    if not isinstance(token, str) or not token:
        raise invalid("TokenReview", "", [machinery.cause("FieldValueRequired", "spec.token",
                                                          "Required value: token must be set")], GROUP)
    wanted = spec.get("audiences") or []
    if not isinstance(wanted, list) or not all(isinstance(a, str) for a in wanted):
        raise invalid("TokenReview", "", [machinery.cause("FieldValueInvalid", "spec.audiences",
                                                          "Invalid value: must be strings")], GROUP)
    auds = wanted or [bound.issuer().issuer]
    status: dict[str, Any] = {"user": {}}
    review = bound.review(token, auds)
    if review is not None:
        user: Obj = {"username": review.user.name, "uid": review.uid, "groups": list(review.user.groups)}
        if review.extra:
            user["extra"] = review.extra
        status = {"authenticated": True, "user": user, "audiences": review.audiences}
    elif others is not None and not wanted and (u := others(token)) is not None:
        status = {"authenticated": True, "user": {"username": u.name, "groups": list(u.groups)},
                  "audiences": auds}
    else:
        status["error"] = "[invalid bearer token, service account token has been invalidated or is not valid]"
    md = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    return {"kind": "TokenReview", "apiVersion": f"{GROUP}/v1",
            "metadata": {**(md or {}), "creationTimestamp": None},
            "spec": {k: v for k, v in spec.items() if k in ("token", "audiences")}, "status": status}
