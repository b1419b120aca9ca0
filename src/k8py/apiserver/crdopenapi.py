"""OpenAPI v3 documents of the custom resources' group-versions.

One document per group-version a CRD serves, as kube-apiserver publishes it: the
resource's paths (the same operations as built-in kinds, see `openapi._paths_for`),
its schema named `<reversed group>.<version>.<Kind>` (the CRD's openAPIV3Schema with
apiVersion, kind and an ObjectMeta `metadata` added, tagged with its
group-version-kind so `kubectl explain` finds it), its List, and the shared
definitions they refer to. Invariants: a document is a function of the served
resources only (cached on them); its hash is the hash of its bytes.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from typing import Any

from k8py import KUBERNETES_VERSION
from k8py.api.customresource import CustomResource
from k8py.apiserver import openapi

Extra = tuple[CustomResource, ...]


def schema_name(group: str, version: str, kind: str) -> str:
    return ".".join(reversed(group.split("."))) + f".{version}.{kind}"


def gv_keys(extra: Extra) -> list[tuple[str, str, str]]:
    """(key, group, version) of every custom group-version, e.g. ("apis/stable.example.com/v1", ...)."""
    out: list[tuple[str, str, str]] = []
    for r in extra:
        key = f"apis/{r.group}/{r.version}"
        if all(k != key for k, _, _ in out):
            out.append((key, r.group, r.version))
    return out


def _object_schema(r: CustomResource) -> dict[str, Any]:
    s: dict[str, Any] = copy.deepcopy(r.schema) if isinstance(r.schema, dict) else {
        "type": "object", "x-kubernetes-preserve-unknown-fields": True}
    props = s.setdefault("properties", {})
    props["apiVersion"] = {"type": "string", "description": "APIVersion defines the versioned schema of this "
                           "representation of an object."}
    props["kind"] = {"type": "string", "description": "Kind is a string value representing the REST resource "
                     "this object represents."}
    props["metadata"] = {"allOf": [{"$ref": openapi.REF + openapi.META + "ObjectMeta"}],
                         "description": "Standard object's metadata."}
    s.setdefault("type", "object")
    s["x-kubernetes-group-version-kind"] = [{"group": r.group, "version": r.version, "kind": r.kind}]
    return s


def _list_schema(r: CustomResource, obj_name: str) -> dict[str, Any]:
    return {
        "type": "object", "required": ["items"],
        "description": f"{r.list_kind_name} is a list of {r.kind}",
        "properties": {
            "apiVersion": {"type": "string"}, "kind": {"type": "string"},
            "items": {"type": "array", "items": {"$ref": openapi.REF + obj_name}},
            "metadata": {"allOf": [{"$ref": openapi.REF + openapi.META + "ListMeta"}]},
        },
        "x-kubernetes-group-version-kind": [{"group": r.group, "version": r.version, "kind": r.list_kind_name}],
    }


def _without_strategic(paths: dict[str, Any]) -> dict[str, Any]:
    """Custom resources take no strategic merge patch: their PATCH operations do not list it
    (kubectl's apply reads that to choose a JSON merge patch)."""
    for item in paths.values():
        body = (item.get("patch") or {}).get("requestBody") or {}
        body.get("content", {}).pop("application/strategic-merge-patch+json", None)
    return paths


def render(group: str, version: str, extra: Extra) -> dict[str, Any]:
    from k8py.api import schema
    static = schema.definitions()
    own: dict[str, Any] = {}
    schema_of: openapi.SchemaOf = {("autoscaling", "v1", "Scale"): "io.k8s.api.autoscaling.v1.Scale"}
    paths: dict[str, Any] = {}
    roots = list(openapi._COMMON_DEFS)
    for r in extra:
        if (r.group, r.version) != (group, version):
            continue
        obj_name = schema_name(r.group, r.version, r.kind)
        list_name = schema_name(r.group, r.version, r.list_kind_name)
        own[obj_name], own[list_name] = _object_schema(r), _list_schema(r, obj_name)
        schema_of[(r.group, r.version, r.kind)] = obj_name
        schema_of[(r.group, r.version, r.list_kind_name)] = list_name
        p, rs = openapi._paths_for(r, schema_of)
        paths.update(_without_strategic(p))
        roots.extend(rs)
    defs = {**static, **own}
    names = openapi.closure(roots, defs)
    schemas = {n: own[n] if n in own else openapi._definition(n, static) for n in names}
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes CRD Swagger", "version": f"{KUBERNETES_VERSION}-k8py"},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"BearerToken": {
            "type": "apiKey", "description": "Bearer Token authentication", "name": "authorization",
            "in": "header"}}},
    }


@functools.lru_cache(maxsize=32)
def document(key: str, extra: Extra) -> tuple[bytes, str] | None:
    """(body, hash) of the document at /openapi/v3/<key>, or None if no CRD serves it."""
    for k, g, v in gv_keys(extra):
        if k == key:
            body = json.dumps(render(g, v, extra), separators=(",", ":")).encode()
            return body, hashlib.sha256(body).hexdigest().upper()[:64]
    return None


def index_entries(extra: Extra) -> dict[str, dict[str, str]]:
    out = {}
    for key, _, _ in gv_keys(extra):
        found = document(key, extra)
        if found is not None:
            out[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={found[1]}"}
    return out


class CustomDocs:
    """`openapi.CustomDocs` over the custom resources served now."""

    def __init__(self, extra: Extra) -> None:
        self.extra = extra

    def index_entries(self) -> dict[str, dict[str, str]]:
        return index_entries(self.extra)

    def document(self, key: str) -> tuple[bytes, str] | None:
        return document(key, self.extra)
