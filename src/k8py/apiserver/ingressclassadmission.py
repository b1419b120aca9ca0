"""The DefaultIngressClass admission plugin, as kube-apiserver's (on Ingress creation).

An Ingress created without `spec.ingressClassName` (and without the legacy
`kubernetes.io/ingress.class` annotation) gets the default IngressClass's name: the one
annotated `ingressclass.kubernetes.io/is-default-class: "true"` (the newest, if several
are). Without a default class it is left alone.

Invariant: `admit` changes only the Ingress it is given; it reads, never writes, the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from k8py.api import resources
from k8py.api.resources import Resource
from k8py.api.types import Obj
from k8py.apiserver import storage

if TYPE_CHECKING:
    from k8py.apiserver.registry import Registry

DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
LEGACY_CLASS_ANNOTATION = "kubernetes.io/ingress.class"


async def admit(reg: Registry, r: Resource, ing: Obj) -> None:
    """Registry admission hook: networking.k8s.io Ingresses only."""
    if r.group != "networking.k8s.io" or r.plural != "ingresses":
        return
    spec = ing.setdefault("spec", {})
    if spec.get("ingressClassName") or LEGACY_CLASS_ANNOTATION in (ing["metadata"].get("annotations") or {}):
        return
    cls_res = resources.lookup("networking.k8s.io", "ingressclasses")
    assert cls_res is not None
    defaults: list[Obj] = []
    for kv in (await reg.store.list(storage.prefix(cls_res))).items:
        cls = storage.from_kv(cls_res, kv)
        if (cls["metadata"].get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true":
            defaults.append(cls)
    if defaults:
        newest = max(defaults, key=lambda c: (c["metadata"].get("creationTimestamp") or "", c["metadata"]["name"]))
        spec["ingressClassName"] = newest["metadata"]["name"]
