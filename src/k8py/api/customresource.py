"""Custom resources: the `Resource`s a CustomResourceDefinition serves.

Pure data. `served_resources(crd)` turns a CRD (apiextensions.k8s.io/v1) into one
`CustomResource` per served version, the preferred version first (Kubernetes' version
priority: GA, then beta, then alpha, higher numbers first). Invariants: every version
of a CRD shares one storage key prefix (`/registry/<group>/<plural>/`); with conversion
`None` only apiVersion changes between versions, with `Webhook` a version other than the
storage version is converted by the webhook (`conversion` holds spec.conversion.webhook);
and a `CustomResource` compares equal to another built from the same CRD content, so caches keyed by them stay right.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from k8py.api.resources import Resource

GROUP = "apiextensions.k8s.io"
CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


@dataclass(frozen=True)
class CustomResource(Resource):
    """A served version of a CRD. `schema` is the version's openAPIV3Schema (None: any
    object), `columns` its additionalPrinterColumns, `scale` its scale subresource paths."""

    crd_name: str = ""
    storage_version: str = ""
    schema: dict[str, Any] | None = field(default=None, hash=False)
    columns: tuple[dict[str, Any], ...] = field(default=(), hash=False)
    scale: dict[str, Any] | None = field(default=None, hash=False)
    selectable_fields: tuple[str, ...] = ()
    # spec.conversion.webhook when the strategy is Webhook (None: conversion None)
    conversion: dict[str, Any] | None = field(default=None, hash=False)

    @property
    def converts(self) -> bool:
        """Whether objects of this version go through the CRD's conversion webhook."""
        return self.conversion is not None and self.version != self.storage_version


def is_custom(r: Resource) -> bool:
    return isinstance(r, CustomResource)


def version_priority(v: str) -> tuple[int, int, int, str]:
    """Sort key of a version (smaller sorts first): v2 < v1 < v1beta2 < v1beta1 < v1alpha1 < other."""
    m = _VERSION_RE.match(v)
    if m is None:
        return (3, 0, 0, v)
    major, stage, minor = int(m.group(1)), m.group(2), int(m.group(3) or 0)
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -major, -minor, v)


def _d(x: Any) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}


def _strs(x: Any) -> tuple[str, ...]:
    return tuple(s for s in x if isinstance(s, str)) if isinstance(x, list) else ()


def names(crd: dict[str, Any]) -> dict[str, Any]:
    """spec.names with Kubernetes' defaults (singular = lowercase kind, listKind = kind + List)."""
    n = dict(_d(_d(crd.get("spec")).get("names")))
    kind = str(n.get("kind") or "")
    n.setdefault("singular", kind.lower())
    if not n.get("singular"):
        n["singular"] = kind.lower()
    if not n.get("listKind"):
        n["listKind"] = f"{kind}List"
    return n


def served_resources(crd: dict[str, Any]) -> list[CustomResource]:
    """The resources of a CRD's served versions, preferred first."""
    versions = [v for v in _d(crd.get("spec")).get("versions") or [] if isinstance(v, dict) and v.get("served")]
    return [_resource(crd, v) for v in sorted(versions, key=lambda v: version_priority(str(v.get("name"))))]


def storage_resource(crd: dict[str, Any]) -> CustomResource | None:
    """The resource of a CRD's storage version, served or not (None without one)."""
    v = next((v for v in _d(crd.get("spec")).get("versions") or [] if isinstance(v, dict) and v.get("storage")),
             None)
    return None if v is None else _resource(crd, v)


def _resource(crd: dict[str, Any], v: dict[str, Any]) -> CustomResource:
    spec = _d(crd.get("spec"))
    n = names(crd)
    storage = next((str(v.get("name")) for v in spec.get("versions") or []
                    if isinstance(v, dict) and v.get("storage")), "")
    conv = _d(spec.get("conversion"))
    webhook = _d(conv.get("webhook")) if conv.get("strategy") == "Webhook" else None
    subs = _d(v.get("subresources"))
    sub_names = tuple(s for s in ("status", "scale") if s in subs)
    sel = tuple(str(_d(f).get("jsonPath", "")) for f in v.get("selectableFields") or [])
    return CustomResource(
        group=str(spec.get("group") or ""), version=str(v.get("name")), kind=str(n.get("kind") or ""),
        plural=str(n.get("plural") or ""), namespaced=spec.get("scope") == "Namespaced",
        short_names=_strs(n.get("shortNames")), subresources=sub_names,
        categories=_strs(n.get("categories")), singular=str(n.get("singular") or ""),
        list_kind=str(n.get("listKind") or ""), crd_name=str(_d(crd.get("metadata")).get("name") or ""),
        storage_version=storage, schema=_d(v.get("schema")).get("openAPIV3Schema"),
        columns=tuple(c for c in v.get("additionalPrinterColumns") or [] if isinstance(c, dict)),
        scale=_d(subs.get("scale")) if "scale" in subs else None, selectable_fields=sel,
        conversion=webhook)


def condition(crd: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for c in _d(crd.get("status")).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == type_:
            return c
    return None


def is_established(crd: dict[str, Any]) -> bool:
    c = condition(crd, "Established")
    return c is not None and c.get("status") == "True"
