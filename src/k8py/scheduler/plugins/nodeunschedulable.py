"""NodeUnschedulable: cordoned nodes (spec.unschedulable) take no pods, unless the pod
tolerates the node.kubernetes.io/unschedulable:NoSchedule taint."""

from __future__ import annotations

from k8py.scheduler.framework import CycleState, Status
from k8py.scheduler.plugins.tainttoleration import tolerates
from k8py.scheduler.types import NodeInfo, PodInfo

NAME = "NodeUnschedulable"
ERR_REASON_UNSCHEDULABLE = "node(s) were unschedulable"
UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


class NodeUnschedulable:
    NAME = NAME
    PASSES_ON_PLAIN_NODES = True  # checks only spec.unschedulable / NoSchedule+NoExecute taints

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if not node.unschedulable:
            return None
        if any(tolerates(t, UNSCHEDULABLE_TAINT) for t in pod.tolerations):
            return None
        return _FAIL


_FAIL = Status.unresolvable(ERR_REASON_UNSCHEDULABLE, plugin=NAME)


def new() -> NodeUnschedulable:
    return NodeUnschedulable()
