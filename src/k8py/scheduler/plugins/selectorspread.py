"""SelectorSpread: replicas of one controller (same controller ownerReference) spread
over nodes: a node with fewer of the pod's siblings scores higher. (Kubernetes now does
this with PodTopologySpread's default constraints; this is the cheap per-node form.)"""

from __future__ import annotations

from k8py.scheduler.framework import MAX_SCORE, CycleState
from k8py.scheduler.types import NodeInfo, PodInfo

NAME = "SelectorSpread"
WEIGHT = 2


class SelectorSpread:
    NAME = NAME
    weight = WEIGHT

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> bool:
        return bool(pod.owner_uid)

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        return node.owner_counts.get(pod.owner_uid, 0)

    def score_all(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        owner = pod.owner_uid
        return [n.owner_counts.get(owner, 0) for n in nodes]

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        mx = max(scores)
        for i, s in enumerate(scores):
            scores[i] = MAX_SCORE if mx == 0 else (mx - s) * MAX_SCORE // mx


def new() -> SelectorSpread:
    return SelectorSpread()
