"""API discovery: what kubectl reads first (legacy JSON and aggregated discovery v2), and /version.

Everything is derived from `k8py.api.resources.SERVED`; documents are built
once per process and served from a cache. Invariants:
- legacy: /api -> APIVersions, /apis -> APIGroupList, /apis/<g> -> APIGroup,
  /api/v1 and /apis/<g>/<v> -> APIResourceList with one entry per resource and
  per subresource ("pods/status", "deployments/scale" of kind autoscaling/v1 Scale);
- a request whose Accept asks for `as=APIGroupDiscoveryList` (v2 or v2beta1) on
  /api or /apis gets the aggregated document with the matching Content-Type;
- `pods/eviction` names group policy, version v1, kind Eviction (kubectl drain
  reads exactly that entry to decide it can evict);
- an unknown group or version answers 404; other paths answer None (not ours).
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
from typing import Any

from k8py import KUBERNETES_VERSION
from k8py.api import resources
from k8py.api.request import ApiRequest, ApiResponse
from k8py.api.resources import Resource

DISCOVERY_GROUP = "apidiscovery.k8s.io"
AGGREGATED_AS = "APIGroupDiscoveryList"

# subresource -> (group, version, kind) of what it accepts/returns ("" group/version = the parent's,
# None kind = the parent's kind) and its verbs.
_SUB: dict[str, tuple[str | None, str | None, str | None, tuple[str, ...]]] = {
    "status": (None, None, None, ("get", "patch", "update")),
    "scale": ("autoscaling", "v1", "Scale", ("get", "patch", "update")),
    "binding": (None, None, "Binding", ("create",)),
    "eviction": ("policy", "v1", "Eviction", ("create",)),
    "log": (None, None, None, ("get",)),
    "exec": (None, None, "PodExecOptions", ("create", "get")),
    "attach": (None, None, "PodAttachOptions", ("create", "get")),
    "portforward": (None, None, "PodPortForwardOptions", ("create", "get")),
    "ephemeralcontainers": (None, None, None, ("get", "patch", "update")),
    "resize": (None, None, None, ("get", "patch", "update")),  # pods/resize (1.33+), a Pod in and out
    "finalize": (None, None, None, ("update",)),
    "token": ("authentication.k8s.io", "v1", "TokenRequest", ("create",)),
}
_PROXY_VERBS = ("create", "delete", "get", "patch", "update")


def _sub_info(r: Resource, sub: str) -> tuple[str, str, str, tuple[str, ...]]:
    if sub == "proxy":
        return r.group, r.version, f"{r.kind}ProxyOptions", _PROXY_VERBS
    g, v, k, verbs = _SUB.get(sub, (None, None, None, ("get",)))
    return (r.group if g is None else g, r.version if v is None else v, k or r.kind, verbs)


def version_info() -> dict[str, str]:
    """The /version document (Kubernetes' version.Info; since 1.33 it also names the emulated
    version, here the binary's own, and the oldest version it stays compatible with, one minor
    before)."""
    major, minor = KUBERNETES_VERSION.lstrip("v").split(".")[:2]
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
    return {
        "major": major, "minor": minor, "emulationMajor": major, "emulationMinor": minor,
        "minCompatibilityMajor": major, "minCompatibilityMinor": str(int(minor) - 1),
        "gitVersion": f"{KUBERNETES_VERSION}-k8py",
        "gitCommit": "k8py", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": f"python{platform.python_version()}", "compiler": "cpython",
        "platform": f"linux/{arch}",
    }


Extra = tuple[Resource, ...]
"""Resources served besides the table's: the custom resources of the CRDs, preferred version first."""


def _group_versions(extra: Extra) -> list[tuple[str, str]]:
    out = resources.group_versions()
    for r in extra:
        if (r.group, r.version) not in out:
            out.append((r.group, r.version))
    return out


def _groups(extra: Extra = ()) -> dict[str, list[str]]:
    """Named groups -> their versions (in table order); the core group excluded."""
    out: dict[str, list[str]] = {}
    for g, v in _group_versions(extra):
        if g:
            out.setdefault(g, [])
            if v not in out[g]:
                out[g].append(v)
    return out


def _gv_entry(g: str, v: str) -> dict[str, str]:
    return {"groupVersion": f"{g}/{v}", "version": v}


def _api_group(g: str, versions: list[str]) -> dict[str, Any]:
    return {"name": g, "versions": [_gv_entry(g, v) for v in versions],
            "preferredVersion": _gv_entry(g, versions[0])}


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=8)
def _legacy(extra: Extra = ()) -> dict[str, dict[str, Any]]:
    docs: dict[str, dict[str, Any]] = {
        "/api": {"kind": "APIVersions", "versions": ["v1"],
                 "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]},
    }
    groups = _groups(extra)
    docs["/apis"] = {"kind": "APIGroupList", "apiVersion": "v1",
                     "groups": [_api_group(g, vs) for g, vs in groups.items()]}
    for g, vs in groups.items():
        docs[f"/apis/{g}"] = {"kind": "APIGroup", "apiVersion": "v1", **_api_group(g, vs)}
    for g, v in _group_versions(extra):
        rs = [r for r in resources.SERVED + extra if r.group == g and r.version == v]
        items: list[dict[str, Any]] = []
        for r in rs:
            e: dict[str, Any] = {"name": r.plural, "singularName": r.name_singular,
                                 "namespaced": r.namespaced, "kind": r.kind, "verbs": list(r.verbs)}
            if r.short_names:
                e["shortNames"] = list(r.short_names)
            if r.categories:
                e["categories"] = list(r.categories)
            e["storageVersionHash"] = _hash([g, v, r.kind])[:12]
            items.append(e)
            for sub in r.subresources:
                sg, sv, sk, verbs = _sub_info(r, sub)
                se: dict[str, Any] = {"name": f"{r.plural}/{sub}", "singularName": "",
                                      "namespaced": r.namespaced, "kind": sk, "verbs": list(verbs)}
                if (sg, sv) != (g, v):
                    se["group"], se["version"] = sg, sv
                items.append(se)
        path = f"/apis/{g}/{v}" if g else f"/api/{v}"
        docs[path] = {"kind": "APIResourceList", "apiVersion": "v1",
                      "groupVersion": f"{g}/{v}" if g else v, "resources": items}
    return docs


def _aggregated_group(g: str, versions: list[str], extra: Extra = ()) -> dict[str, Any]:
    vs = []
    for v in versions:
        res = []
        for r in resources.SERVED + extra:
            if r.group != g or r.version != v:
                continue
            e: dict[str, Any] = {
                "resource": r.plural,
                "responseKind": {"group": g, "version": v, "kind": r.kind},
                "scope": "Namespaced" if r.namespaced else "Cluster",
                "singularResource": r.name_singular,
                "verbs": list(r.verbs),
            }
            if r.short_names:
                e["shortNames"] = list(r.short_names)
            if r.categories:
                e["categories"] = list(r.categories)
            subs = []
            for sub in r.subresources:
                sg, sv, sk, verbs = _sub_info(r, sub)
                subs.append({"subresource": sub, "responseKind": {"group": sg, "version": sv, "kind": sk},
                             "verbs": list(verbs)})
            if subs:
                e["subresources"] = subs
            res.append(e)
        vs.append({"version": v, "resources": res, "freshness": "Current"})
    return {"metadata": {"name": g, "creationTimestamp": None}, "versions": vs}


@functools.lru_cache(maxsize=8)
def _aggregated(extra: Extra = ()) -> dict[str, tuple[bytes, str]]:
    """'/api' and '/apis' -> (JSON body with apiVersion placeholder, etag)."""
    core = [_aggregated_group("", ["v1"])]
    named = [_aggregated_group(g, vs, extra) for g, vs in _groups(extra).items()]
    out = {}
    for path, items in (("/api", core), ("/apis", named)):
        doc = {"kind": AGGREGATED_AS, "apiVersion": f"{DISCOVERY_GROUP}/__V__", "metadata": {},
               "items": items}
        body = json.dumps(doc, separators=(",", ":")).encode()
        out[path] = (body, hashlib.sha256(body).hexdigest()[:32])
    return out


def _wants_aggregated(accept: str) -> str | None:
    """The discovery version ("v2" or "v2beta1") the Accept header asks for first, if any."""
    for part in accept.split(","):
        params = {}
        fields = [f.strip() for f in part.split(";")]
        for f in fields[1:]:
            k, _, val = f.partition("=")
            params[k.strip()] = val.strip()
        if fields[0] in ("application/json", "*/*") and params.get("g") == DISCOVERY_GROUP \
                and params.get("as") == AGGREGATED_AS and params.get("v") in ("v2", "v2beta1"):
            return params["v"]
        if fields[0] in ("application/json", "*/*") and not params:
            return None  # plain JSON preferred before any aggregated form
    return None


def _not_found(path: str) -> ApiResponse:
    return ApiResponse(404, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                             "message": f"the server could not find the requested resource ({path})",
                             "reason": "NotFound", "details": {}, "code": 404})


def respond(req: ApiRequest, extra: Extra = ()) -> ApiResponse | None:
    """Answer a discovery request, or None when the path is not a discovery path. `extra`:
    the custom resources served (apiserver/customresources.py)."""
    path = req.path.rstrip("/") or "/"
    parts = path.strip("/").split("/")
    if parts[0] == "api":
        if len(parts) > 2:
            return None
    elif parts[0] == "apis":
        if len(parts) > 3:
            return None
    else:
        return None
    if req.method not in ("GET", "HEAD"):
        return ApiResponse(405, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                 "message": f"{req.method} is not allowed on {path}",
                                 "reason": "MethodNotAllowed", "code": 405})
    if path in ("/api", "/apis"):
        v = _wants_aggregated(req.headers.get("accept", ""))
        if v is not None:
            body, etag = _aggregated(extra)[path]
            ct = f"application/json;g={DISCOVERY_GROUP};v={v};as={AGGREGATED_AS}"
            return ApiResponse(200, body.replace(b"__V__", v.encode()), content_type=ct,
                               headers={"ETag": f'"{etag}"', "Vary": "Accept"})
    doc = _legacy(extra).get(path)
    if doc is None:
        return _not_found(path)
    return ApiResponse(200, doc, headers={"Vary": "Accept"} if path in ("/api", "/apis") else {})
