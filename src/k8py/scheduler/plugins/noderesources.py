"""NodeResourcesFit: the pod's requests must fit in the node's allocatable minus what
the pods on it (bound or assumed) request, and the node's pod count must allow one more.

Reasons are Kubernetes' words: "Too many pods", "Insufficient cpu", "Insufficient
memory", "Insufficient ephemeral-storage", "Insufficient <extended resource>"."""

from __future__ import annotations

from k8py.scheduler.framework import CycleState, Status
from k8py.scheduler.types import NodeInfo, PodInfo

NAME = "NodeResourcesFit"
ERR_TOO_MANY_PODS = "Too many pods"
ERR_INSUFFICIENT_CPU = "Insufficient cpu"
ERR_INSUFFICIENT_MEMORY = "Insufficient memory"
ERR_INSUFFICIENT_EPHEMERAL = "Insufficient ephemeral-storage"
ERR_INSUFFICIENT_FMT = "Insufficient %s"


class NodeResourcesFit:
    NAME = NAME

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        alloc = node.allocatable
        used = node.requested
        req = pod.requests
        if (used.pods < alloc.pods and req.milli_cpu <= alloc.milli_cpu - used.milli_cpu
                and req.memory <= alloc.memory - used.memory
                and req.ephemeral_storage <= alloc.ephemeral_storage - used.ephemeral_storage
                and not req.scalars):
            return None  # the common case, decided in one expression
        reasons: list[str] = []
        if used.pods + 1 > alloc.pods:
            reasons.append(ERR_TOO_MANY_PODS)
        if req.milli_cpu and req.milli_cpu > alloc.milli_cpu - used.milli_cpu:
            reasons.append(ERR_INSUFFICIENT_CPU)
        if req.memory and req.memory > alloc.memory - used.memory:
            reasons.append(ERR_INSUFFICIENT_MEMORY)
        if req.ephemeral_storage and req.ephemeral_storage > alloc.ephemeral_storage - used.ephemeral_storage:
            reasons.append(ERR_INSUFFICIENT_EPHEMERAL)
        for name, q in req.scalars.items():
            if q and q > alloc.scalars.get(name, 0) - used.scalars.get(name, 0):
                reasons.append(ERR_INSUFFICIENT_FMT % name)
        if reasons:
            return Status.unschedulable(*reasons, plugin=NAME)
        return None


def new() -> NodeResourcesFit:
    return NodeResourcesFit()
