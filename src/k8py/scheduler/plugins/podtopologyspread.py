"""PodTopologySpread: a pod's `topologySpreadConstraints` (maxSkew, topologyKey,
whenUnsatisfiable, minDomains, labelSelector, matchLabelKeys, nodeAffinityPolicy,
nodeTaintsPolicy) as Kubernetes' plugin applies them.

Counting: the domains of a constraint are the values of its topologyKey on the nodes
that pass the node inclusion policies (nodeAffinityPolicy Honor, the default: the pod's
nodeSelector and required node affinity; nodeTaintsPolicy Honor: its tolerations of
NoSchedule/NoExecute taints, Ignore by default); each domain counts the pods of the
pod's namespace that match the selector and are not being deleted.
Filter (DoNotSchedule): a node without the key fails as unresolvable; otherwise the
skew `count(domain of node) + (1 if the pod matches its own selector) - global minimum`
(minimum 0 when there are fewer domains than minDomains) must not exceed maxSkew.
Score (ScheduleAnyway): fewer matching pods in a node's domains score higher. Pods
without constraints are left to SelectorSpread (k8py's default spreading).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from k8py.api.selectors import LabelSelector, label_selector_from_dict, node_selector_matches
from k8py.api.taints import tolerated
from k8py.scheduler.framework import MAX_SCORE, CycleState, Status
from k8py.scheduler.types import NodeInfo, PodInfo

NAME = "PodTopologySpread"
WEIGHT = 2
ERR_CONSTRAINTS = "node(s) didn't match pod topology spread constraints"
ERR_MISSING_LABEL = ERR_CONSTRAINTS + " (missing required label)"
_HARD = NAME + "/hard"
_SOFT = NAME + "/soft"


@dataclass(slots=True)
class Constraint:
    max_skew: int
    key: str
    hard: bool
    min_domains: int
    selector: LabelSelector
    honor_affinity: bool
    honor_taints: bool
    counts: dict[str, int]
    self_match: int = 0

    def minimum(self) -> int:
        if self.hard and len(self.counts) < self.min_domains:
            return 0
        return min(self.counts.values(), default=0)


def constraints(pod: PodInfo) -> list[Constraint]:
    out = []
    for c in (pod.pod.get("spec") or {}).get("topologySpreadConstraints") or []:
        sel_d = dict(c.get("labelSelector") or {}) if c.get("labelSelector") is not None else None
        keys = [k for k in c.get("matchLabelKeys") or [] if k in pod.labels]
        if sel_d is not None and keys:
            sel_d["matchExpressions"] = list(sel_d.get("matchExpressions") or []) + [
                {"key": k, "operator": "In", "values": [pod.labels[k]]} for k in keys]
        sel = label_selector_from_dict(sel_d)
        out.append(Constraint(
            int(c.get("maxSkew") or 1), str(c.get("topologyKey") or ""),
            c.get("whenUnsatisfiable", "DoNotSchedule") != "ScheduleAnyway", int(c.get("minDomains") or 1), sel,
            c.get("nodeAffinityPolicy", "Honor") != "Ignore", c.get("nodeTaintsPolicy", "Ignore") == "Honor", {},
            1 if sel.matches(pod.labels) else 0))
    return out


def _included(c: Constraint, pod: PodInfo, ni: NodeInfo) -> bool:
    if c.key not in ni.labels:
        return False
    if c.honor_affinity:
        if any(ni.labels.get(k) != v for k, v in pod.node_selector.items()):
            return False
        req = (pod.node_affinity or {}).get("requiredDuringSchedulingIgnoredDuringExecution")
        if req is not None and not node_selector_matches(req, ni.node):
            return False
    if c.honor_taints:
        return all(tolerated(pod.tolerations, taint) for taint in ni.taints)
    return True


def count(cs: list[Constraint], pod: PodInfo, nodes: Any) -> None:
    """Fill each constraint's per-domain counts from the nodes' pods."""
    for ni in nodes:
        for c in cs:
            if not _included(c, pod, ni):
                continue
            dom = ni.labels[c.key]
            n = sum(1 for p in ni.pods.values() if p.namespace == pod.namespace and p.key != pod.key
                    and not (p.pod.get("metadata") or {}).get("deletionTimestamp") and c.selector.matches(p.labels))
            c.counts[dom] = c.counts.get(dom, 0) + n


class PodTopologySpread:
    NAME = NAME
    weight = WEIGHT

    def pre_filter(self, state: CycleState, pod: PodInfo) -> bool:
        hard = [c for c in constraints(pod) if c.hard]
        if not hard:
            return False
        count(hard, pod, state.snapshot.node_infos())
        state.data[_HARD] = hard
        return True

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        for c in state.data[_HARD]:
            dom = node.labels.get(c.key)
            if dom is None:
                return Status.unresolvable(ERR_MISSING_LABEL, plugin=NAME)
            if c.counts.get(dom, 0) + c.self_match - c.minimum() > c.max_skew:
                return Status.unschedulable(ERR_CONSTRAINTS, plugin=NAME)
        return None

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> bool:
        soft = [c for c in constraints(pod) if not c.hard]
        if not soft:
            return False
        count(soft, pod, state.snapshot.node_infos())
        state.data[_SOFT] = soft
        return True

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        total = 0
        for c in state.data[_SOFT]:
            dom = node.labels.get(c.key)
            total += c.counts.get(dom, 0) if dom is not None else 0
        return total

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        lo, hi = min(scores), max(scores)
        for i, s in enumerate(scores):
            scores[i] = MAX_SCORE if hi == lo else (hi - s) * MAX_SCORE // (hi - lo)


def new() -> PodTopologySpread:
    return PodTopologySpread()
