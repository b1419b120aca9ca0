"""RuntimeClass admission (Kubernetes' RuntimeClass plugin), on pod create.

A pod naming `spec.runtimeClassName` must name an existing RuntimeClass (else 403
`pod rejected: RuntimeClass "x" not found`); the class's `overhead.podFixed` becomes the
pod's `spec.overhead` (a different overhead in the pod is refused, as is an overhead
without a class that defines one), its `scheduling.nodeSelector` is merged into the
pod's (a conflicting key is refused) and its `scheduling.tolerations` are added.
Which handlers a node can run is the kubelet's business (`runc` only, on k8py).
"""

from __future__ import annotations

from typing import Any

from k8py.api import resources
from k8py.api.resources import Resource
from k8py.api.types import Obj
from k8py.apiserver import storage
from k8py.apiserver.errors import forbidden
from k8py.apiserver.registry import Registry

_RC = resources.lookup("node.k8s.io", "runtimeclasses")
assert _RC is not None
RUNTIME_CLASSES: Resource = _RC


async def admit(reg: Registry, r: Resource, obj: Obj) -> None:
    if r.group != "" or r.plural != "pods":
        return
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    name = obj["metadata"].get("name", "")
    rc_name = spec.get("runtimeClassName")
    rc: Obj | None = None
    if rc_name:
        kv = await reg.store.get(storage.key(RUNTIME_CLASSES, None, str(rc_name)))
        if kv is None:
            raise forbidden("pods", name, f'pod rejected: RuntimeClass "{rc_name}" not found')
        rc = storage.from_kv(RUNTIME_CLASSES, kv)
    _overhead(name, spec, rc)
    if rc is not None:
        _scheduling(name, spec, rc.get("scheduling") or {})


def _overhead(name: str, spec: Obj, rc: Obj | None) -> None:
    fixed = ((rc or {}).get("overhead") or {}).get("podFixed")
    have = spec.get("overhead")
    if have is not None and not fixed:
        raise forbidden("pods", name, "pod rejected: Pod Overhead set without corresponding RuntimeClass "
                        "defined Overhead")
    if fixed:
        if have is not None and have != fixed:
            raise forbidden("pods", name, "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined "
                            "Overhead")
        spec["overhead"] = dict(fixed)


def _scheduling(name: str, spec: Obj, sched: dict[str, Any]) -> None:
    sel = sched.get("nodeSelector") or {}
    if sel:
        mine = dict(spec.get("nodeSelector") or {})
        for k, v in sel.items():
            if k in mine and mine[k] != v:
                raise forbidden("pods", name, f"conflict: runtimeClass.scheduling.nodeSelector[{k}] = {v}; "
                                f"pod.spec.nodeSelector[{k}] = {mine[k]}")
            mine[k] = v
        spec["nodeSelector"] = mine
    tols = sched.get("tolerations") or []
    if tols:
        have = list(spec.get("tolerations") or [])
        spec["tolerations"] = have + [t for t in tols if t not in have]
