"""TaintToleration: a node's NoSchedule/NoExecute taints repel pods that do not tolerate
them (filter); untolerated PreferNoSchedule taints lower a node's score.

Taint/toleration matching itself is shared vocabulary: `k8py.api.taints`."""

from __future__ import annotations

from k8py.api.taints import TAINT_EFFECT_PREFER_NO_SCHEDULE, tolerated
from k8py.scheduler.framework import MAX_SCORE, CycleState, Status
from k8py.scheduler.types import NodeInfo, PodInfo

NAME = "TaintToleration"
ERR_REASON_UNTOLERATED = "node(s) had untolerated taint {%s: %s}"
WEIGHT = 3


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
                            if (t.get("effect") or TAINT_EFFECT_PREFER_NO_SCHEDULE) == TAINT_EFFECT_PREFER_NO_SCHEDULE]
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
