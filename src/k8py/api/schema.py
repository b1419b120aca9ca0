"""Kubernetes' own object schemas, from the `kubernetes-validate` package.

The package ships Kubernetes' OpenAPI definitions converted to JSON Schema
(`$defs`, refs `#/$defs/<name>`, nullable types as ["string","null"], int-or-string
as a oneOf), keeping the `x-kubernetes-*` extensions (patch merge keys, list types,
group-version-kind). Loaded once, lazily; read-only for callers.
"""

from __future__ import annotations

import functools
import json
from importlib import resources as ilr
from typing import Any, cast

SCHEMA_VERSION = "v1.37.0-local"


@functools.cache
def definitions() -> dict[str, dict[str, Any]]:
    """All definitions by name, e.g. "io.k8s.api.core.v1.Pod"."""
    base = ilr.files("kubernetes_validate") / "kubernetes-json-schema" / SCHEMA_VERSION / "_definitions.json"
    return cast("dict[str, dict[str, Any]]", json.loads(base.read_text())["$defs"])


@functools.cache
def _gvk_index() -> dict[tuple[str, str, str], str]:
    idx: dict[tuple[str, str, str], str] = {}
    for name, d in definitions().items():
        for gvk in d.get("x-kubernetes-group-version-kind", []):
            key = (gvk["group"], gvk["version"], gvk["kind"])
            # Prefer the definition under io.k8s.api.* over meta duplicates.
            if key not in idx or name.startswith("io.k8s.api."):
                idx[key] = name
    return idx


def name_for_gvk(group: str, version: str, kind: str) -> str | None:
    """Definition name of a kind, e.g. ("apps","v1","Deployment") -> io.k8s.api.apps.v1.Deployment."""
    return _gvk_index().get((group, version, kind))


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """Follow a {"$ref": "#/$defs/<name>"} (possibly nested in allOf) to its definition."""
    seen = 0
    while seen < 16:
        ref = schema.get("$ref")
        if ref is None and len(schema.get("allOf", [])) == 1:
            ref = schema["allOf"][0].get("$ref")
        if ref is None:
            return schema
        schema = definitions()[ref.rsplit("/", 1)[-1]]
        seen += 1
    return schema


def for_gvk(group: str, version: str, kind: str) -> dict[str, Any] | None:
    name = name_for_gvk(group, version, kind)
    return definitions()[name] if name else None
