"""Per-kind rules applied on create and update (Kubernetes' registry strategies).

Generic rules: server-owned metadata (uid, creationTimestamp, generation, deletion
fields) is set by the server and immutable; kinds with a `status` subresource
ignore status in main-resource writes, and status writes change only status;
`metadata.generation` starts at 1 and bumps when spec changes, for kinds that
carry it. Kind rules: namespaces get the `kubernetes` finalizer, phase Active and
the `kubernetes.io/metadata.name` label; pods start Pending.
"""

from __future__ import annotations

import secrets

from k8py.api.customresource import is_custom
from k8py.api.resources import Resource
from k8py.api.types import Obj
from k8py.api.wellknown import LABEL_METADATA_NAME
from k8py.apiserver.storage import clone

# Kinds whose registry strategy keeps metadata.generation (spec changes bump it). Pods
# since Kubernetes 1.33 (KEP-5067): 1 at create, +1 on a spec update (a resize or new
# ephemeral containers included; pods/binding writes nodeName without it).
_GENERATION = {("", "Pod"),
               ("apps", "Deployment"), ("apps", "ReplicaSet"), ("apps", "StatefulSet"), ("apps", "DaemonSet"),
               ("", "ReplicationController"), ("batch", "Job"), ("batch", "CronJob"),
               ("autoscaling", "HorizontalPodAutoscaler"), ("policy", "PodDisruptionBudget"),
               ("apiextensions.k8s.io", "CustomResourceDefinition"), ("networking.k8s.io", "NetworkPolicy")}
# Kinds whose create keeps a client-supplied status (Kubernetes: nodes, events).
_KEEP_STATUS_ON_CREATE = {("", "Node")}
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' generateName alphabet


def generated_name(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_NAME_CHARS) for _ in range(5))


def has_status_subresource(r: Resource) -> bool:
    return "status" in r.subresources


def uses_generation(r: Resource) -> bool:
    return (r.group, r.kind) in _GENERATION or is_custom(r)


def prepare_create(r: Resource, obj: Obj) -> None:
    """Reset what a create may not set; the server then defaults and validates."""
    md = obj["metadata"]
    if has_status_subresource(r) and (r.group, r.kind) not in _KEEP_STATUS_ON_CREATE:
        obj.pop("status", None)
        if r.kind in ("Pod", "Namespace", "PersistentVolume", "PersistentVolumeClaim", "Service"):
            obj["status"] = {}
    if uses_generation(r):
        md["generation"] = 1
    else:
        md.pop("generation", None)
    if r.group == "" and r.kind == "Namespace":
        md.setdefault("labels", {})
        if isinstance(md["labels"], dict) and isinstance(md.get("name"), str):
            md["labels"][LABEL_METADATA_NAME] = md["name"]
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict) and spec.get("finalizers") is None:
            spec["finalizers"] = ["kubernetes"]
        obj["status"] = {"phase": "Active"}
    if r.group == "" and r.kind == "PersistentVolume":
        obj["status"] = {"phase": "Pending"}
    if r.group == "" and r.kind == "PersistentVolumeClaim":
        obj["status"] = {"phase": "Pending"}


_SERVER_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                "generation", "namespace", "name")


def prepare_update(r: Resource, new: Obj, old: Obj, subresource: str | None) -> Obj:
    """The object to store for a PUT (or a PATCH result) of `new` over `old`."""
    if subresource == "status":
        out = clone(old)
        if "status" in new:
            out["status"] = new["status"]
        else:
            out.pop("status", None)
        return out
    if subresource == "resize":  # only the containers' resources and resizePolicy (dropNonResizeUpdates)
        from k8py.api.validation.podresize import resize_only
        new = resize_only(new, old)
    md, omd = new.setdefault("metadata", {}), old.get("metadata") or {}
    for f in _SERVER_META:
        if f in omd:
            md[f] = omd[f]
        else:
            md.pop(f, None)
    if has_status_subresource(r):
        if "status" in old:
            new["status"] = clone(old["status"])
        else:
            new.pop("status", None)
    if r.group == "" and r.kind == "Namespace":
        spec = new.setdefault("spec", {})
        if isinstance(spec, dict):  # spec.finalizers change only through /finalize
            spec["finalizers"] = clone((old.get("spec") or {}).get("finalizers", []))
        labels = md.setdefault("labels", {})
        if isinstance(labels, dict):
            labels[LABEL_METADATA_NAME] = omd.get("name", md.get("name"))
    return new


def bump_generation(r: Resource, new: Obj, old: Obj) -> None:
    if not uses_generation(r):
        return
    md = new["metadata"]
    gen = (old.get("metadata") or {}).get("generation") or 1
    if is_custom(r):  # a custom resource: any change but metadata (and status, when a subresource)
        skip = ("metadata", "status") if has_status_subresource(r) else ("metadata",)
        changed = {k: v for k, v in new.items() if k not in skip} != {k: v for k, v in old.items() if k not in skip}
    else:
        changed = new.get("spec") != old.get("spec")
    md["generation"] = gen + 1 if changed else gen
