"""TaintToleration: a node's NoSchedule/NoExecute taints repel pods that do not tolerate
them (filter); untolerated PreferNoSchedule taints lower a node's score.

`tolerates(toleration, taint)` is Kubernetes' ToleratesTaint, shared with the node
lifecycle controller (NoExecute eviction)."""

from __future__ import annotations

from typing import Any

from k8py.scheduler.framework import MAX_SCORE, CycleState, Status
from k8py.scheduler.types import NodeInfo, PodInfo

NAME = "TaintToleration"
ERR_REASON_UNTOLERATED = "node(s) had untolerated taint {%s: %s}"
WEIGHT = 3


def tolerates(toleration: dict[str, Any], taint: dict[str, Any]) -> bool:
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


def tolerated(tolerations: list[dict[str, Any]], taint: dict[str, Any]) -> bool:
    return any(tolerates(t, taint) for t in tolerations)


class TaintToleration:
    NAME = NAME
    PASSES_ON_PLAIN_NODES = True  # checks only spec.unschedulable / NoSchedule+NoExecute taints
    weight = WEIGHT

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        for taint in node.taints:
            if not tolerated(pod.tolerations, taint):
                return Status.unresolvable(
                    ERR_REASON_UNTOLERATED % (taint.get("key", ""), taint.get("value", "")), plugin=NAME)
        return None

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> bool:
        if not any(n.prefer_no_schedule for n in nodes):
            return False
        state.data[NAME] = [t for t in pod.tolerations
                            if (t.get("effect") or "PreferNoSchedule") == "PreferNoSchedule"]
        return True

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        tols = state.data[NAME]
        return sum(1 for taint in node.prefer_no_schedule if not tolerated(tols, taint))

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        """Fewer untolerated taints is better: reverse onto 0..100."""
        mx = max(scores)
        for i, s in enumerate(scores):
            scores[i] = MAX_SCORE if mx == 0 else MAX_SCORE - s * MAX_SCORE // mx


def new() -> TaintToleration:
    return TaintToleration()
