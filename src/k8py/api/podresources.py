"""The resources a pod holds while it may be being resized (KEP-1287), for the scheduler
and ResourceQuota: per container, the larger of the spec (unless the resize is
`Infeasible`), the kubelet's `allocatedResources` and what it reports as configured
(`status.containerStatuses[].resources`). Pure function of the pod.
"""

from __future__ import annotations

import copy
from typing import Any

from k8py.api.quantity import parse_quantity

Obj = dict[str, Any]


def _infeasible(pod: Obj) -> bool:
    return any(c.get("type") == "PodResizePending" and c.get("reason") == "Infeasible"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _max(values: list[Obj]) -> Obj:
    out: Obj = {}
    for vals in values:
        for k, v in (vals or {}).items():
            if k not in out or parse_quantity(v) > parse_quantity(out[k]):
                out[k] = v
    return out


def effective_spec(pod: Obj) -> Obj:
    """The pod's spec with each container's requests and limits as the node may hold them."""
    spec: Obj = pod.get("spec") or {}
    st = pod.get("status") or {}
    statuses = {(k, s.get("name")): s for k in ("containerStatuses", "initContainerStatuses")
                for s in st.get(k) or [] if isinstance(s, dict)}
    if not statuses:
        return spec
    infeasible = _infeasible(pod)
    out = copy.deepcopy(spec)
    for field, skey in (("containers", "containerStatuses"), ("initContainers", "initContainerStatuses")):
        for c in out.get(field) or []:
            s = statuses.get((skey, c.get("name")))
            if s is None or ("allocatedResources" not in s and "resources" not in s):
                continue
            res = c.get("resources") or {}
            actual = s.get("resources") or {}
            alloc_req = s.get("allocatedResources") or {}
            for part, extra in (("requests", [alloc_req, actual.get("requests") or {}]),
                                ("limits", [actual.get("limits") or {}])):
                mine = {} if infeasible else (res.get(part) or {})
                if infeasible:  # the spec's values are not admitted: keep what is not cpu/memory
                    mine = {k: v for k, v in (res.get(part) or {}).items() if k not in ("cpu", "memory")}
                merged = _max([mine, *extra])
                if merged:
                    c.setdefault("resources", {})[part] = merged
    return out
