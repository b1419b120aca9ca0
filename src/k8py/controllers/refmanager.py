"""Controller references: from an object to the owner that controls it
(`resolve_controller_ref`, as each Kubernetes controller's resolveControllerRef), and
claiming: an owner (ReplicaSet, DaemonSet, StatefulSet, Deployment) takes the objects it
controls, as Kubernetes' ControllerRefManager.ClaimObject.

An object's controller is resolved from the owners' informer cache: the controllerRef's
kind, name (in the object's namespace) and uid must all match a cached owner. The
owners that may adopt an orphan (`matching_owners`) are those of its namespace whose
selector matches its labels; an empty or invalid selector matches nothing.

For each candidate: one controlled by another owner is left alone; one this owner
controls is kept while `match` holds, and released (its controllerRef removed) once it no
longer matches, unless the owner is being deleted; an orphan that matches is adopted (a
controllerRef to the owner added) unless the owner or the orphan is being deleted.
Adoption and release are compare-and-swap PUTs of the object as the informer saw it: a
conflict raises (the caller's sync is retried), an object gone meanwhile is skipped.
Invariants: objects controlled by someone else are never written; arguments are never
mutated.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Protocol

from k8py.api.errors import SelectorError
from k8py.api.selectors import LabelSelector, label_selector_from_dict
from k8py.api.types import Obj, OwnerReference
from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.controllers.controllerutil import controller_ref, is_deleting, meta
from k8py.controllers.indexes import BY_NAMESPACE


class OwnerCache(Protocol):
    """Where owners are looked up: an Informer of the owners' resource, with the
    controllers' indexes (`indexes.ensure_indexes`)."""

    def get(self, namespace: str | None, name: str) -> Obj | None: ...

    def by_index(self, name: str, value: str) -> list[Obj]: ...


def spec_selector(owner: Obj) -> LabelSelector:
    """An owner's spec.selector (a metav1.LabelSelector)."""
    return label_selector_from_dict((owner.get("spec") or {}).get("selector"))


def matching_owners(owners: OwnerCache, obj: Obj,
                    selector_of: Callable[[Obj], LabelSelector] = spec_selector) -> list[Obj]:
    """The cached owners that may adopt `obj`: those of its namespace whose selector
    matches its labels."""
    labels = meta(obj).get("labels") or {}
    out = []
    for owner in owners.by_index(BY_NAMESPACE, meta(obj).get("namespace") or ""):
        try:
            selector = selector_of(owner)
        except SelectorError:
            continue
        if not selector.empty and selector.matches(labels):
            out.append(owner)
    return out


def resolve_controller_ref(owners: OwnerCache, kind: str, obj: Obj) -> Obj | None:
    """The cached owner of `kind` that controls `obj`, if any."""
    ref = controller_ref(obj)
    if ref is None or ref.get("kind") != kind:
        return None
    owner = owners.get(meta(obj).get("namespace"), ref.get("name", ""))
    if owner is None or meta(owner).get("uid") != ref.get("uid"):
        return None
    return owner


def selector_match(selector: LabelSelector) -> Callable[[Obj], bool]:
    """`match` for claim(): the object's labels match the selector; an empty selector matches nothing."""
    return lambda obj: not selector.empty and selector.matches(meta(obj).get("labels") or {})


async def claim(client: Client, resource: str, owner: Obj, candidates: list[Obj],
                match: Callable[[Obj], bool], new_ref: OwnerReference) -> list[Obj]:
    """The candidates the owner controls once matching orphans are adopted and owned
    objects that no longer match are released (adopted ones as the API returned them)."""
    uid = meta(owner).get("uid")
    owned: list[Obj] = []
    for obj in candidates:
        ref = controller_ref(obj)
        if ref is not None:
            if ref.get("uid") != uid:
                continue
            if match(obj):
                owned.append(obj)
            elif not is_deleting(owner):
                await set_controller(client, resource, obj, None, uid)
            continue
        if is_deleting(owner) or is_deleting(obj) or not match(obj):
            continue
        adopted = await set_controller(client, resource, obj, new_ref, uid)
        if adopted is not None:
            owned.append(adopted)
    return owned


async def set_controller(client: Client, resource: str, obj: Obj, ref: OwnerReference | None,
                         uid: str | None) -> Obj | None:
    """Adopt (ref given) or release (ref None) an object with a compare-and-swap PUT; None
    when it no longer exists."""
    o = copy.deepcopy(obj)
    refs = [r for r in meta(o).get("ownerReferences") or [] if r.get("uid") != uid]
    if ref is not None:
        refs.append(ref)
    o["metadata"]["ownerReferences"] = refs
    if not refs:
        del o["metadata"]["ownerReferences"]
    try:
        return await client.update(resource, o)
    except ApiError as e:
        if e.not_found:
            return None
        raise
