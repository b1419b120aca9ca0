"""What a request asks for, as an authorizer sees it (Kubernetes' RequestInfo and
authorizer.Attributes).

`attributes(method, path, query, user, groups)` parses the URL the way kube-apiserver's
RequestInfoFactory does, without looking anything up: `/api/v1/...` and
`/apis/<group>/<version>/...` with at least a resource are resource requests (verb from
the method: POST create, GET get, PUT update, PATCH patch, DELETE delete; a GET of a
collection is list, or watch with `watch=true` or the `/watch/` prefix; a DELETE of a
collection deletecollection; a list or watch with the field selector `metadata.name=x`
names x). `/api/v1/namespaces/<ns>` is in namespace <ns>. Everything else (discovery,
`/openapi`, `/healthz`) is a non-resource request whose verb is the lower-cased method.
exec, attach and portforward are `create` whatever the method (a WebSocket opens with a
GET), as Kubernetes checks them. Invariant: pure, never raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_NAMESPACE_SUBRESOURCES = ("status", "finalize")
CREATE_SUBRESOURCES = frozenset({"exec", "attach", "portforward"})


@dataclass(frozen=True)
class Attributes:
    user: str
    groups: tuple[str, ...]
    verb: str
    resource_request: bool
    path: str = ""
    namespace: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    field_selector: str = ""  # of a list or watch (the Node authorizer reads spec.nodeName)


def attributes(method: str, path: str, query: dict[str, str], user: str,
               groups: tuple[str, ...]) -> Attributes:
    segs = [unquote(s) for s in path.split("?", 1)[0].split("/") if s]
    if len(segs) >= 4 and segs[0] == "apis":
        group, version, rest = segs[1], segs[2], segs[3:]
    elif len(segs) >= 3 and segs[0] == "api":
        group, version, rest = "", segs[1], segs[2:]
    else:
        return Attributes(user, groups, method.lower(), False, path=path)
    verb = _VERBS.get(method.upper(), method.lower())
    if rest[0] == "watch" and len(rest) > 1:
        verb, rest = "watch", rest[1:]
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if not name:
        if verb == "get":
            verb = "watch" if query.get("watch") in ("true", "1") else "list"
        elif verb == "delete":
            verb = "deletecollection"
        if verb in ("list", "watch"):
            name = _name_from_selector(query.get("fieldSelector", ""))
    if sub in CREATE_SUBRESOURCES and resource == "pods" and not group:
        verb = "create"
    return Attributes(user, groups, verb, True, path=path, namespace=namespace, api_group=group,
                      api_version=version, resource=resource, subresource=sub, name=name,
                      field_selector=query.get("fieldSelector", "") if verb in ("list", "watch") else "")


def _name_from_selector(selector: str) -> str:
    """x of a field selector that requires exactly `metadata.name=x` (or `==`)."""
    for term in selector.split(","):
        k, sep, v = term.partition("==") if "==" in term else term.partition("=")
        if sep and k.strip() == "metadata.name" and not k.endswith("!"):
            v = v.strip()
            if v and v not in (".", "..") and "/" not in v and "%" not in v:
                return v
    return ""
