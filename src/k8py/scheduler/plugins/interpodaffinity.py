"""InterPodAffinity: required pod affinity / anti-affinity over any topologyKey
(kubernetes.io/hostname in particular), the symmetric anti-affinity of pods already
placed, and preferred terms as a score.

PreFilter counts, per term, matching existing pods by topology value once per pod, so
the per-node filter is a few dict look-ups. Pods without terms, in a cluster where no
placed pod has anti-affinity, skip the plugin entirely."""

from __future__ import annotations

from dataclasses import dataclass

from k8py.scheduler.framework import MAX_SCORE, CycleState, Status
from k8py.scheduler.types import AffinityTerm, NodeInfo, PodInfo

NAME = "InterPodAffinity"
ERR_REASON_AFFINITY = "node(s) didn't match pod affinity rules"
ERR_REASON_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
ERR_REASON_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
WEIGHT = 1


@dataclass(slots=True)
class _PreFilter:
    existing_anti: dict[str, set[str]]  # topologyKey -> values where placed pods repel this pod
    affinity: list[dict[str, int]]  # per required affinity term: topology value -> matching pods
    anti: list[dict[str, int]]  # per required anti-affinity term
    affinity_matches_any: bool
    self_match: bool


def _count(term: AffinityTerm, nodes: list[NodeInfo]) -> tuple[dict[str, int], int]:
    counts: dict[str, int] = {}
    total = 0
    for ni in nodes:
        value = ni.labels.get(term.topology_key)
        for p in ni.pods.values():
            if term.matches(p):
                total += 1
                if value is not None:
                    counts[value] = counts.get(value, 0) + 1
    return counts, total


class InterPodAffinity:
    NAME = NAME
    weight = WEIGHT

    def pre_filter(self, state: CycleState, pod: PodInfo) -> bool:
        snap = state.snapshot
        if not pod.required_affinity and not pod.required_anti_affinity and snap.pods_with_affinity() == 0:
            return False
        nodes = list(snap.node_infos())
        existing: dict[str, set[str]] = {}
        for ni in nodes:
            if not ni.anti_affinity_pods:
                continue
            for p in ni.pods.values():
                for t in p.required_anti_affinity:
                    value = ni.labels.get(t.topology_key)
                    if value is not None and t.matches(pod):
                        existing.setdefault(t.topology_key, set()).add(value)
        affinity = []
        any_match = True
        for t in pod.required_affinity:
            counts, total = _count(t, nodes)
            affinity.append(counts)
            any_match = any_match and total > 0
        anti = [_count(t, nodes)[0] for t in pod.required_anti_affinity]
        self_match = all(t.matches(pod) for t in pod.required_affinity)
        state.data[NAME] = _PreFilter(existing, affinity, anti, any_match, self_match)
        return True

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        pf: _PreFilter = state.data[NAME]
        labels = node.labels
        for key, values in pf.existing_anti.items():
            if labels.get(key) in values:
                return _FAIL_EXISTING
        for t, counts in zip(pod.required_anti_affinity, pf.anti):
            value = labels.get(t.topology_key)
            if value is not None and counts.get(value):
                return _FAIL_ANTI
        if pod.required_affinity:
            if not pf.affinity_matches_any and pf.self_match:
                # the first pod of a group that selects itself may go anywhere the
                # topology keys exist
                if all(t.topology_key in labels for t in pod.required_affinity):
                    return None
                return _FAIL_AFFINITY
            for t, counts in zip(pod.required_affinity, pf.affinity):
                value = labels.get(t.topology_key)
                if value is None or not counts.get(value):
                    return _FAIL_AFFINITY
        return None

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> bool:
        terms = [(t, t.weight) for t in pod.preferred_affinity] + \
                [(t, -t.weight) for t in pod.preferred_anti_affinity]
        if not terms:
            return False
        all_nodes = list(state.snapshot.node_infos())
        topo: dict[tuple[str, str], int] = {}
        for t, w in terms:
            counts, _ = _count(t, all_nodes)
            for value, n in counts.items():
                topo[(t.topology_key, value)] = topo.get((t.topology_key, value), 0) + w * n
        state.data[NAME + "/score"] = (topo, {t.topology_key for t, _ in terms})
        return True

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        topo, keys = state.data[NAME + "/score"]
        total = 0
        for k in keys:
            v = node.labels.get(k)
            if v is not None:
                total += topo.get((k, v), 0)
        return total

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        lo, hi = min(scores), max(scores)
        for i, s in enumerate(scores):
            scores[i] = 0 if hi == lo else (s - lo) * MAX_SCORE // (hi - lo)


_FAIL_AFFINITY = Status.unresolvable(ERR_REASON_AFFINITY, plugin=NAME)
_FAIL_ANTI = Status.unschedulable(ERR_REASON_ANTI_AFFINITY, plugin=NAME)
_FAIL_EXISTING = Status.unschedulable(ERR_REASON_EXISTING_ANTI_AFFINITY, plugin=NAME)


def new() -> InterPodAffinity:
    return InterPodAffinity()
