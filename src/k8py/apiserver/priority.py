"""Priority admission and the built-in PriorityClasses (Kubernetes' Priority plugin).

- At start, the two system classes exist (`system-cluster-critical` 2000000000,
  `system-node-critical` 2000001000), recreated if deleted, as kube-apiserver does.
- A pod created with `spec.priorityClassName` gets that class's `value` as
  `spec.priority` and its `preemptionPolicy`; without one it gets the global default
  class (the lowest-valued one if several say globalDefault) or priority 0. An unknown
  class, or a priority / preemptionPolicy in the pod that differs from the class's, is
  refused with 403 Forbidden in Kubernetes' words.
- A PriorityClass may not say `globalDefault: true` while another one does (403), on
  create or update.
Pods are admitted on create only: `spec.priority` is immutable afterwards.
"""

from __future__ import annotations

from k8py.api import resources
from k8py.api.resources import Resource
from k8py.api.types import Obj
from k8py.api.wellknown import SYSTEM_PRIORITY_CLASSES
from k8py.apiserver import storage
from k8py.apiserver.errors import StatusError, forbidden
from k8py.apiserver.registry import Registry, WriteOptions

_PC = resources.lookup("scheduling.k8s.io", "priorityclasses")
assert _PC is not None
PRIORITY_CLASSES: Resource = _PC
DEFAULT_PREEMPTION_POLICY = "PreemptLowerPriority"
_DESCRIPTIONS = {
    "system-cluster-critical": "Used for system critical pods that must run in the cluster, but can be moved to "
                               "another node if necessary.",
    "system-node-critical": "Used for system critical pods that must not be moved from their current node.",
}


async def ensure_system_classes(reg: Registry) -> None:
    for name, value in SYSTEM_PRIORITY_CLASSES.items():
        if await reg.store.get(storage.key(PRIORITY_CLASSES, None, name)) is not None:
            continue
        try:
            await reg.create(PRIORITY_CLASSES, None, {
                "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
                "value": value, "description": _DESCRIPTIONS.get(name, ""),
                "preemptionPolicy": DEFAULT_PREEMPTION_POLICY,
            }, WriteOptions(field_manager="kube-apiserver"))
        except StatusError as e:
            if e.reason != "AlreadyExists":
                raise


async def _classes(reg: Registry) -> list[Obj]:
    return [storage.from_kv(PRIORITY_CLASSES, kv)
            for kv in (await reg.store.list(storage.prefix(PRIORITY_CLASSES))).items]


async def admit(reg: Registry, r: Resource, obj: Obj) -> None:
    if r.group == "" and r.plural == "pods":
        await _admit_pod(reg, obj)
    elif r is PRIORITY_CLASSES:
        await _one_default(reg, obj)


async def admit_update(reg: Registry, r: Resource, new: Obj, old: Obj) -> None:
    if r is PRIORITY_CLASSES and old.get("globalDefault") is not True:
        await _one_default(reg, new)


async def _one_default(reg: Registry, obj: Obj) -> None:
    if obj.get("globalDefault") is not True:
        return
    name = obj["metadata"].get("name", "")
    for pc in await _classes(reg):
        if pc.get("globalDefault") is True and pc["metadata"]["name"] != name:
            raise forbidden("priorityclasses", name, f"PriorityClass {pc['metadata']['name']} is already marked "
                            "as default. Only one default can exist", "scheduling.k8s.io")


async def _resolve(reg: Registry, obj: Obj, spec: Obj) -> tuple[int, str | None]:
    name = obj["metadata"].get("name", "")
    class_name = spec.get("priorityClassName")
    if not class_name:
        defaults = [pc for pc in await _classes(reg) if pc.get("globalDefault") is True]
        if not defaults:
            return 0, DEFAULT_PREEMPTION_POLICY
        pc = min(defaults, key=lambda c: int(c.get("value") or 0))
        spec["priorityClassName"] = pc["metadata"]["name"]
    else:
        kv = await reg.store.get(storage.key(PRIORITY_CLASSES, None, str(class_name)))
        if kv is None:
            raise forbidden("pods", name, f"no PriorityClass with name {class_name} was found")
        pc = storage.from_kv(PRIORITY_CLASSES, kv)
    return int(pc.get("value") or 0), pc.get("preemptionPolicy") or DEFAULT_PREEMPTION_POLICY


async def _admit_pod(reg: Registry, obj: Obj) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    name = obj["metadata"].get("name", "")
    priority, policy = await _resolve(reg, obj, spec)
    given = spec.get("priority")
    if given is not None and given != priority:
        raise forbidden("pods", name, f"the integer value of priority ({given}) must not be provided in pod spec; "
                        f"priority admission controller computed {priority} from the given PriorityClass name")
    spec["priority"] = priority
    given_policy = spec.get("preemptionPolicy")
    if given_policy is not None and policy is not None and given_policy != policy:
        raise forbidden("pods", name, f"the string value of PreemptionPolicy ({given_policy}) must not be provided "
                        f"in pod spec; priority admission controller computed {policy} from the given "
                        "PriorityClass name")
    if policy is not None:
        spec["preemptionPolicy"] = policy
