"""What a write through `pods/resize` may change, as Kubernetes' ValidatePodResize says.

`resize_only(new, old)` is the resize strategy (dropNonResizeUpdates): the stored pod is
`old` with only the containers' (and sidecars') `resources` and `resizePolicy` taken from
`new`, matched by name; anything else in the body is dropped, as Kubernetes drops it.
`validate_pod_resize(new, old)` then refuses, with Kubernetes' words:
- a change of a resource other than cpu and memory: `spec: Forbidden: only cpu and memory
  resources are mutable`;
- a new QoS class: `spec: Invalid value: "Guaranteed": Pod QOS Class may not change as a
  result of resizing`;
- removing a request or limit: `spec.containers[0].resources.requests[cpu]: Forbidden:
  resource removal is not supported`;
- a pod whose running containers report no resources (its node cannot resize, e.g. a
  simulated node): `spec: Forbidden: Pod running on node without support for resize`.
Pure functions.
"""

from __future__ import annotations

import copy
from typing import Any

from k8py.api.defaults import qos_class
from k8py.api.validation.field import FieldError, forbidden, invalid

NAMES = ("cpu", "memory")


def _resizable(spec: dict[str, Any]) -> list[tuple[str, int, dict[str, Any]]]:
    out = []
    for i, c in enumerate(spec.get("initContainers") or []):
        if isinstance(c, dict) and c.get("restartPolicy") == "Always":
            out.append(("initContainers", i, c))
    for i, c in enumerate(spec.get("containers") or []):
        if isinstance(c, dict):
            out.append(("containers", i, c))
    return out


def resize_only(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """`old` with the containers' resources and resizePolicy from `new` (by container name)."""
    out = copy.deepcopy(old)
    nspec: dict[str, Any] = new["spec"] if isinstance(new.get("spec"), dict) else {}
    by_name = {(kind, c.get("name")): c for kind, _, c in _resizable(nspec)}
    for kind, _, c in _resizable(out.setdefault("spec", {})):
        src = by_name.get((kind, c.get("name")))
        if src is None:
            continue
        if "resources" in src:
            c["resources"] = copy.deepcopy(src["resources"])
        else:
            c.pop("resources", None)
        if src.get("resizePolicy") is not None:  # absent (e.g. a JSON merge patch of the list): unchanged
            c["resizePolicy"] = copy.deepcopy(src["resizePolicy"])
    md: dict[str, Any] = new["metadata"] if isinstance(new.get("metadata"), dict) else {}
    if md.get("resourceVersion"):
        out.setdefault("metadata", {})["resourceVersion"] = md["resourceVersion"]
    return out


def _supports_resize(old: dict[str, Any]) -> bool:
    for cs in (old.get("status") or {}).get("containerStatuses") or []:
        if isinstance(cs, dict) and (cs.get("state") or {}).get("running") is not None:
            return cs.get("resources") is not None
    return True  # no running container: nothing tells the node cannot


def validate_pod_resize(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    nspec, ospec = new.get("spec") or {}, old.get("spec") or {}
    old_qos = (old.get("status") or {}).get("qosClass") or qos_class(ospec)
    if qos_class(nspec) != old_qos:
        errs.append(invalid("spec", old_qos, "Pod QOS Class may not change as a result of resizing"))
    if not _supports_resize(old):
        errs.append(forbidden("spec", "Pod running on node without support for resize"))
    olds = {(kind, c.get("name")): c for kind, _, c in _resizable(ospec)}
    other_changed = False
    for kind, i, c in _resizable(nspec):
        oc = olds.get((kind, c.get("name")))
        if oc is None:
            continue
        nres, ores = c.get("resources") or {}, oc.get("resources") or {}
        for part in ("requests", "limits"):
            nv, ov = nres.get(part) or {}, ores.get(part) or {}
            for name in ov:
                if name in NAMES and name not in nv:
                    errs.append(forbidden(f"spec.{kind}[{i}].resources.{part}[{name}]",
                                          "resource removal is not supported"))
            if {k: v for k, v in nv.items() if k not in NAMES} != {k: v for k, v in ov.items() if k not in NAMES}:
                other_changed = True
        if {k: v for k, v in nres.items() if k not in ("requests", "limits")} != \
                {k: v for k, v in ores.items() if k not in ("requests", "limits")}:
            other_changed = True
    if other_changed:
        errs.append(forbidden("spec", "only cpu and memory resources are mutable"))
    return errs
