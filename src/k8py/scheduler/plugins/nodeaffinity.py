"""NodeAffinity: spec.nodeSelector and requiredDuringScheduling node affinity must match
the node's labels (filter); preferredDuringScheduling terms add their weights (score)."""

from __future__ import annotations

from k8py.api.selectors import node_selector_matches, node_selector_term_matches
from k8py.scheduler.framework import MAX_SCORE, CycleState, Status
from k8py.scheduler.types import NodeInfo, PodInfo

NAME = "NodeAffinity"
ERR_REASON_POD = "node(s) didn't match Pod's node affinity/selector"
WEIGHT = 2


class NodeAffinity:
    NAME = NAME
    weight = WEIGHT

    def pre_filter(self, state: CycleState, pod: PodInfo) -> bool:
        required = (pod.node_affinity or {}).get("requiredDuringSchedulingIgnoredDuringExecution")
        state.data[NAME] = required
        return bool(pod.node_selector) or required is not None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        labels = node.labels
        for k, v in pod.node_selector.items():
            if labels.get(k) != v:
                return _FAIL
        required = state.data[NAME]
        if required is not None and not node_selector_matches(required, node.node):
            return _FAIL
        return None

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> bool:
        terms = (pod.node_affinity or {}).get("preferredDuringSchedulingIgnoredDuringExecution") or []
        state.data[NAME + "/preferred"] = terms
        return bool(terms)

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        total = 0
        for t in state.data[NAME + "/preferred"]:
            if node_selector_term_matches(t.get("preference"), node.node):
                total += int(t.get("weight", 0))
        return total

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        mx = max(scores)
        for i, s in enumerate(scores):
            scores[i] = 0 if mx == 0 else s * MAX_SCORE // mx


_FAIL = Status.unresolvable(ERR_REASON_POD, plugin=NAME)


def new() -> NodeAffinity:
    return NodeAffinity()
