"""Parse API paths into routes.

Paths served: `/api/v1/...` and `/apis/<group>/<version>/...`, each as
  [watch/] [namespaces/<ns>/] <plural> [/<name> [/<subresource>]]
plus the namespace object's own paths (`/api/v1/namespaces/<name>[/status|/finalize]`).
Discovery (`/api`, `/apis`, `/apis/<g>`, bare group versions) and `/openapi/...`
are recognised but answered elsewhere. Unknown group/version/resource -> None.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

from k8py.api import resources
from k8py.api.resources import Resource

RouteKind = Literal["discovery", "openapi", "resource"]


@dataclass(frozen=True)
class Route:
    kind: RouteKind
    resource: Resource | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    legacy_watch: bool = False  # the deprecated /watch/ path prefix


def _segments(path: str) -> list[str]:
    return [unquote(s) for s in path.split("/") if s]


CustomLookup = Callable[[str, str, str], "Resource | None"]
"""(group, version, plural) -> a custom resource served there (the CRDs'), or None."""


def _lookup(group: str, version: str, plural: str, custom: CustomLookup | None) -> Resource | None:
    r = resources.lookup_version(group, version, plural)
    if r is None and custom is not None:
        r = custom(group, version, plural)
    return r


def parse(path: str, method: str = "GET", custom: CustomLookup | None = None) -> Route | None:
    segs = _segments(path.split("?", 1)[0])
    if not segs:
        return None
    if segs[0] == "openapi":
        return Route("openapi")
    if segs[0] == "api":
        if len(segs) == 1:
            return Route("discovery")
        group, version, rest = "", segs[1], segs[2:]
    elif segs[0] == "apis":
        if len(segs) <= 2:
            return Route("discovery")
        group, version, rest = segs[1], segs[2], segs[3:]
    else:
        return None
    if not rest:
        return Route("discovery") if method == "GET" else None
    legacy_watch = False
    if rest[0] == "watch":
        legacy_watch, rest = True, rest[1:]
        if not rest:
            return None
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        r = resources.lookup(group, rest[2]) or _lookup(group, version, rest[2], custom)
        if r is not None and r.namespaced:
            namespace, rest = rest[1], rest[2:]
    res = _lookup(group, version, rest[0], custom)
    if res is None:
        return None
    if len(rest) > 3:
        return None
    name = rest[1] if len(rest) >= 2 else None
    sub = rest[2] if len(rest) == 3 else None
    if namespace is not None and not res.namespaced:
        return None
    if sub is not None and sub not in res.subresources:
        return None
    if legacy_watch and sub is not None:
        return None
    if name is not None and name in (".", ".."):
        return None
    return Route("resource", res, namespace, name, sub, legacy_watch)
