"""NodeName: a pod that names its node (spec.nodeName) fits only there."""

from __future__ import annotations

from k8py.scheduler.framework import CycleState, Status
from k8py.scheduler.types import NodeInfo, PodInfo

NAME = "NodeName"
ERR_REASON = "node(s) didn't match the requested node name"


class NodeName:
    NAME = NAME

    def pre_filter(self, state: CycleState, pod: PodInfo) -> bool:
        return bool(pod.node_name)

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if node.name == pod.node_name:
            return None
        return _FAIL


_FAIL = Status.unresolvable(ERR_REASON, plugin=NAME)


def new() -> NodeName:
    return NodeName()
