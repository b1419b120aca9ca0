"""The informer indexes controllers read their objects by: namespace, controller uid,
and namespace of those without a controller (the orphans an owner may adopt).

`ensure_indexes(informer)` adds all three (adding them twice is harmless: informers
are shared); `claim_candidates(informer, owner)` is what an owner may control: what it
controls now and the orphans of its namespace.
"""

from __future__ import annotations

from k8py.api.types import Obj
from k8py.client.informer import Informer
from k8py.controllers.controllerutil import controller_ref, meta

BY_NAMESPACE = "controllers.namespace"
BY_CONTROLLER = "controllers.controller-uid"
BY_ORPHAN_NAMESPACE = "controllers.orphan-namespace"


def namespace_index(obj: Obj) -> list[str]:
    return [meta(obj).get("namespace") or ""]


def controller_uid_index(obj: Obj) -> list[str]:
    ref = controller_ref(obj)
    return [ref["uid"]] if ref and ref.get("uid") else []


def orphan_namespace_index(obj: Obj) -> list[str]:
    return [] if controller_ref(obj) else [meta(obj).get("namespace") or ""]


def ensure_indexes(inf: Informer) -> None:
    """The indexes controllers read pods (and replica sets) by: namespace, controller
    uid, and namespace of those without a controller (adoption candidates)."""
    inf.add_index(BY_NAMESPACE, namespace_index)
    inf.add_index(BY_CONTROLLER, controller_uid_index)
    inf.add_index(BY_ORPHAN_NAMESPACE, orphan_namespace_index)


def claim_candidates(inf: Informer, owner: Obj) -> list[Obj]:
    """The objects an owner may control: those it controls now and the orphans of its
    namespace (cheaper than the whole namespace)."""
    return (inf.by_index(BY_CONTROLLER, meta(owner).get("uid") or "")
            + inf.by_index(BY_ORPHAN_NAMESPACE, meta(owner).get("namespace") or ""))
