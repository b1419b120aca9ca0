"""NodePorts: a pod's hostPorts must be free on the node (same protocol and port, and
overlapping host IPs: 0.0.0.0 overlaps every IP)."""

from __future__ import annotations

from k8py.scheduler.framework import CycleState, Status
from k8py.scheduler.types import NodeInfo, PodInfo

NAME = "NodePorts"
ERR_REASON = "node(s) didn't have free ports for the requested pod ports"
WILDCARD = "0.0.0.0"


class NodePorts:
    NAME = NAME

    def pre_filter(self, state: CycleState, pod: PodInfo) -> bool:
        return bool(pod.host_ports)

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        for ip, proto, port in pod.host_ports:
            used = node.used_ports.get((proto, port))
            if used and (ip == WILDCARD or WILDCARD in used or ip in used):
                return _FAIL
        return None


_FAIL = Status.unschedulable(ERR_REASON, plugin=NAME)


def new() -> NodePorts:
    return NodePorts()
