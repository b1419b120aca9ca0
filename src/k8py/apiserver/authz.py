"""Authorization of every request, in Kubernetes' order: system:masters first, then the
Node authorizer (`nodeauthz`: nodes by their graph), then RBAC.

`Authorizer(mode)` with mode "RBAC" (k8py server's default) or "AlwaysAllow" decides on
`requestinfo.Attributes`; `check(req)` is what the API server (every request, HTTPS and
in-process alike) and the HTTPS front (upgrades: exec, attach, port-forward) call, and
raises the 403 Status kube-apiserver writes, word for word:
`pods is forbidden: User "u" cannot list resource "pods" in API group "" in the namespace "default"`.
Invariants: no store read (the RBAC index is in memory); a member of system:masters is
allowed before anything is parsed.
"""

from __future__ import annotations

from dataclasses import dataclass

from k8py.api.request import ApiRequest
from k8py.api.wellknown import GROUP_MASTERS
from k8py.apiserver.errors import StatusError, qualified
from k8py.apiserver.nodeauthz import NodeAuthorizer
from k8py.apiserver.rbac import RbacIndex
from k8py.apiserver.requestinfo import Attributes, attributes

MODES = ("RBAC", "AlwaysAllow")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


class Authorizer:
    def __init__(self, mode: str = "RBAC", index: RbacIndex | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown authorization mode {mode!r}: want one of {', '.join(MODES)}")
        self.mode = mode
        self.index = index or RbacIndex()
        self.node = NodeAuthorizer()

    def authorize(self, a: Attributes) -> Decision:
        if self.mode == "AlwaysAllow":
            return Decision(True, "")
        if GROUP_MASTERS in a.groups:
            return Decision(True, f'allowed by group "{GROUP_MASTERS}"')
        node_allowed, node_reason = self.node.authorize(a)
        if node_allowed:
            return Decision(True, "allowed by the Node authorizer")
        allowed, reason = self.index.authorize(a)
        return Decision(allowed, reason if allowed or not node_reason else node_reason)

    def allows(self, a: Attributes) -> bool:
        return self.authorize(a).allowed

    def check(self, req: ApiRequest) -> None:
        """Raise the 403 Status unless `req`'s user may do what it asks."""
        if self.mode == "AlwaysAllow" or GROUP_MASTERS in req.groups:
            return
        a = attributes(req.method, req.path, req.query, req.user, req.groups)
        d = self.authorize(a)
        if not d.allowed:
            raise forbidden(a, d.reason)


def forbidden_message(a: Attributes) -> str:
    """kube-apiserver's forbiddenMessage."""
    if not a.resource_request:
        return f'User "{a.user}" cannot {a.verb} path "{a.path}"'
    resource = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    where = f'in the namespace "{a.namespace}"' if a.namespace else "at the cluster scope"
    return f'User "{a.user}" cannot {a.verb} resource "{resource}" in API group "{a.api_group}" {where}'


def forbidden(a: Attributes, reason: str = "") -> StatusError:
    """The 403 of a denied request (apierrors.NewForbidden of the request's resource and name)."""
    why = forbidden_message(a) + (f": {reason}" if reason else "")
    if not a.resource_request or not a.resource:
        return StatusError(403, "Forbidden", f"forbidden: {why}", {})
    what = qualified(a.resource, a.api_group)
    message = f'{what} "{a.name}" is forbidden: {why}' if a.name else f"{what} is forbidden: {why}"
    details = {"name": a.name, "group": a.api_group, "kind": a.resource}
    return StatusError(403, "Forbidden", message, {k: v for k, v in details.items() if v})
