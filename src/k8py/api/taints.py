"""Taints and tolerations: the well-known node taints, their effects, and how a
toleration matches a taint (Kubernetes' `v1.Toleration.ToleratesTaint`).

Shared by the scheduler (TaintToleration, NodeUnschedulable), the node lifecycle
controller (NoExecute eviction), the DaemonSet controller (which nodes its pods run
on) and the defaulting of pods (DefaultTolerationSeconds). Taints and tolerations are
plain dicts as on the wire. Invariant: matching is pure and never raises on a
missing field (an unset key, effect or value matches as Kubernetes does).
"""

from __future__ import annotations

from collections.abc import Iterable

from k8py.api.types import Obj

# ------------------------------------------------------------------ effects

TAINT_EFFECT_NO_SCHEDULE = "NoSchedule"
TAINT_EFFECT_PREFER_NO_SCHEDULE = "PreferNoSchedule"
TAINT_EFFECT_NO_EXECUTE = "NoExecute"
TAINT_EFFECTS = (TAINT_EFFECT_NO_SCHEDULE, TAINT_EFFECT_PREFER_NO_SCHEDULE, TAINT_EFFECT_NO_EXECUTE)

# ------------------------------------------------------------------ well-known node taints

TAINT_NODE_NOT_READY = "node.kubernetes.io/not-ready"  # Ready condition False
TAINT_NODE_UNREACHABLE = "node.kubernetes.io/unreachable"  # Ready condition Unknown
TAINT_NODE_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"  # spec.unschedulable (cordoned)
TAINT_NODE_MEMORY_PRESSURE = "node.kubernetes.io/memory-pressure"
TAINT_NODE_DISK_PRESSURE = "node.kubernetes.io/disk-pressure"
TAINT_NODE_PID_PRESSURE = "node.kubernetes.io/pid-pressure"
TAINT_NODE_NETWORK_UNAVAILABLE = "node.kubernetes.io/network-unavailable"
TAINT_NODE_OUT_OF_SERVICE = "node.kubernetes.io/out-of-service"  # set by an operator: node is gone

DEFAULT_TOLERATION_SECONDS = 300
"""DefaultTolerationSeconds admission: how long a pod tolerates not-ready/unreachable."""

# ------------------------------------------------------------------ matching


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """Whether `toleration` tolerates `taint` (ToleratesTaint): an empty effect or key
    matches any; operator Exists matches any value, Equal (the default) the same value."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    if op == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def tolerated(tolerations: Iterable[Obj], taint: Obj) -> bool:
    """Whether any of `tolerations` tolerates `taint`."""
    return any(tolerates(t, taint) for t in tolerations)


def untolerated_taints(taints: Iterable[Obj], tolerations: Iterable[Obj], effects: tuple[str, ...]) -> list[Obj]:
    """The taints with one of `effects` that none of `tolerations` tolerates, in order."""
    tols = list(tolerations)
    return [t for t in taints if t.get("effect") in effects and not tolerated(tols, t)]
