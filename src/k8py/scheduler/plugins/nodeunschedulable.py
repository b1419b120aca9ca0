"""NodeUnschedulable: cordoned nodes (spec.unschedulable) take no pods, unless the pod
tolerates the node.kubernetes.io/unschedulable:NoSchedule taint."""

from __future__ import annotations

from k8py.api.taints import (
    TAINT_EFFECT_NO_SCHEDULE,
    TAINT_NODE_UNSCHEDULABLE,
    tolerated,
)
from k8py.scheduler.framework import CycleState, Status
from k8py.scheduler.types import NodeInfo, PodInfo

NAME = "NodeUnschedulable"
ERR_REASON_UNSCHEDULABLE = "node(s) were unschedulable"
UNSCHEDULABLE_TAINT = {"key": TAINT_NODE_UNSCHEDULABLE, "effect": TAINT_EFFECT_NO_SCHEDULE}


class NodeUnschedulable:
    NAME = NAME
    PASSES_ON_PLAIN_NODES = True  # checks only spec.unschedulable / NoSchedule+NoExecute taints

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if not node.unschedulable:
            return None
        if tolerated(pod.tolerations, UNSCHEDULABLE_TAINT):
            return None
        return _FAIL


_FAIL = Status.unresolvable(ERR_REASON_UNSCHEDULABLE, plugin=NAME)


def new() -> NodeUnschedulable:
    return NodeUnschedulable()
