"""Helpers shared by the controllers: owner references, pod template hashing,
pod readiness/availability, IntOrString scaling (taints vs tolerations: `k8py.api.taints`).

Pure functions over plain dicts (objects as the API returns them); nothing here
does I/O. Invariants: functions never mutate their arguments (they copy).
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any, cast

from k8py.api.types import ContainerStatus, Obj, ObjectMeta, OwnerReference
from k8py.client.informer import (
    object_key,
)
from k8py.clock import parse_rfc3339

POD_TEMPLATE_HASH_LABEL = "pod-template-hash"
CONTROLLER_REVISION_HASH_LABEL = "controller-revision-hash"
POD_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"

# rand.SafeEncodeString's alphabet: no vowels (no words), no confusable characters.
_SAFE_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


# ------------------------------------------------------------------ metadata


def meta(obj: Obj) -> ObjectMeta:
    """The object's metadata (the dict itself, not a copy; a new empty one when missing)."""
    return cast(ObjectMeta, obj.get("metadata") or {})


# The work-queue key of an object is its informer cache key: "namespace/name" or "name".
key_of = object_key


def is_deleting(obj: Obj) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


def controller_ref(obj: Obj) -> OwnerReference | None:
    """The ownerReference with controller: true, if any."""
    for ref in meta(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def new_controller_ref(owner: Obj, api_version: str, kind: str) -> OwnerReference:
    md = meta(owner)
    return {"apiVersion": api_version, "kind": kind, "name": md["name"], "uid": md["uid"],
            "controller": True, "blockOwnerDeletion": True}


def semantic_normalize(v: Any, drop_zero: bool = False) -> Any:
    """Drop None values and empty maps/lists recursively: Kubernetes' semantic
    equality treats nil and empty alike. With drop_zero, also drop fields whose value
    is false, 0 or "": what a typed (Go) object cannot tell from absent, so that a
    template decoded from protobuf (explicit zero values) equals its JSON round trip."""
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            nx = semantic_normalize(x, drop_zero)
            if nx is None or nx == {} or nx == []:
                continue
            if drop_zero and (nx is False or nx == "" or (type(nx) is int and nx == 0)):
                continue
            out[k] = nx
        return out
    if isinstance(v, list):
        return [semantic_normalize(x, drop_zero) for x in v]
    return v


def semantic_equal(a: Any, b: Any) -> bool:
    return bool(semantic_normalize(a) == semantic_normalize(b))


# ------------------------------------------------------------------ hashing


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(s: str) -> str:
    return "".join(_SAFE_ALPHANUMS[ord(c) % len(_SAFE_ALPHANUMS)] for c in s)


def compute_hash(template: Obj, collision_count: int | None = None) -> str:
    """The pod-template-hash of a pod template (as Kubernetes' ComputeHash: FNV-32a of
    the template, plus the collision count, rendered with SafeEncodeString)."""
    data = json.dumps(semantic_normalize(template, drop_zero=True), sort_keys=True, separators=(",", ":")).encode()
    h = fnv32a(data)
    if collision_count:
        h = fnv32a(data + str(collision_count).encode())
    return safe_encode(str(h))


def template_without_hash(template: Obj) -> Obj:
    t = copy.deepcopy(template or {})
    labels = (t.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(POD_TEMPLATE_HASH_LABEL, None)
    return t


def equal_ignore_hash(a: Obj, b: Obj) -> bool:
    """Whether two pod templates are equal apart from the pod-template-hash label (and
    zero values a typed object cannot tell from absent)."""
    return bool(semantic_normalize(template_without_hash(a), True)
                == semantic_normalize(template_without_hash(b), True))


# ------------------------------------------------------------------ pods


def container_statuses(pod: Obj) -> list[ContainerStatus]:
    """The pod's status.containerStatuses (empty when it has none yet)."""
    return cast("list[ContainerStatus]", (pod.get("status") or {}).get("containerStatuses") or [])


def pod_condition(pod: Obj, ctype: str) -> Obj | None:
    return get_condition(pod.get("status") or {}, ctype)


def is_pod_ready(pod: Obj) -> bool:
    c = pod_condition(pod, "Ready")
    return c is not None and c.get("status") == "True"


def is_pod_active(pod: Obj) -> bool:
    """Counted by controllers: not terminal and not being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not is_deleting(pod)


def ready_since(pod: Obj) -> float | None:
    c = pod_condition(pod, "Ready")
    if c is None or c.get("status") != "True":
        return None
    return _time_or_zero(c.get("lastTransitionTime"))


def is_pod_available(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    """Ready for at least min_ready_seconds."""
    since = ready_since(pod)
    if since is None:
        return False
    if not min_ready_seconds:
        return True
    return since + min_ready_seconds <= now


def restart_count(pod: Obj) -> int:
    return max((int(cs.get("restartCount") or 0) for cs in container_statuses(pod)), default=0)


def creation_time(obj: Obj) -> float:
    return _time_or_zero(meta(obj).get("creationTimestamp"))


def _time_or_zero(t: str | None) -> float:
    """An RFC 3339 timestamp as epoch seconds; 0 (the oldest) when missing or malformed."""
    if not t:
        return 0.0
    try:
        return parse_rfc3339(t)
    except ValueError:
        return 0.0


_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def deletion_rank(pod: Obj, related_on_node: dict[str, int] | None = None) -> tuple[Any, ...]:
    """Sort key: pods that sort first are deleted first (Kubernetes' ActivePodsWithRanks):
    unscheduled < scheduled; Pending < Unknown < Running; not ready < ready; lower
    `controller.kubernetes.io/pod-deletion-cost` first; more pods of
    the owner on the same node first; ready for less time first; more restarts first;
    newer first."""
    node = (pod.get("spec") or {}).get("nodeName") or ""
    phase = (pod.get("status") or {}).get("phase") or "Pending"
    ready = is_pod_ready(pod)
    colocated = (related_on_node or {}).get(node, 0) if node else 0
    since = ready_since(pod) if ready else 0.0
    try:
        cost = int((meta(pod).get("annotations") or {}).get(POD_DELETION_COST, "0"))
    except ValueError:
        cost = 0
    return (
        1 if node else 0,
        _PHASE_RANK.get(phase, 0),
        1 if ready else 0,
        cost,
        -colocated,
        -(since or 0.0),
        -restart_count(pod),
        -creation_time(pod),
    )


# ------------------------------------------------------------------ conditions


def get_condition(status: Obj, ctype: str) -> Obj | None:
    conditions: list[Obj] = status.get("conditions") or []
    for c in conditions:
        if c.get("type") == ctype:
            return c
    return None


def remove_condition(status: Obj, ctype: str) -> None:
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != ctype]
    if not status["conditions"]:
        del status["conditions"]


# ------------------------------------------------------------------ int-or-string


def scaled_value(v: Any, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent: "25%" of total (rounded), or an int."""
    if v is None:
        return 0
    if isinstance(v, int):
        return v
    s = str(v).strip()
    if s.endswith("%"):
        pct = float(s[:-1])
        x = pct * total / 100.0
        return int(math.ceil(x)) if round_up else int(math.floor(x))
    return int(s)
