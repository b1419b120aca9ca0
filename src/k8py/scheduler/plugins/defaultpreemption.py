"""DefaultPreemption (PostFilter): when no node fits a pod, find a node where removing
pods of lower priority makes it fit, and the fewest and least important such pods.

Per node that failed with a resolvable reason (Unschedulable, not
UnschedulableAndUnresolvable): remove every pod of lower priority; if the pod still does
not fit, the node is no candidate. Otherwise give the removed pods back one by one, most
important first (higher priority, then earlier start), those whose eviction would
violate a PodDisruptionBudget first: each that can come back while the pod still fits is
spared; the rest are the victims. Among candidates, Kubernetes' order picks the node:
fewest PDB violations, then the lowest highest victim priority, the smallest sum of
victim priorities, the fewest victims, then the first.

Not eligible (the FailedScheduling message says so): `preemptionPolicy: Never`, and a pod
already nominated to a node where a lower-priority pod it preempted is still terminating
(it waits for that room instead of preempting again). Invariants: reads only the
snapshot (what-if NodeInfos are copies); the scheduler performs the result
(nominatedNodeName, victims deleted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from k8py.api import disruption
from k8py.scheduler.framework import (
    NOT_ELIGIBLE_NEVER,
    POST_FILTER_MSG,
    UNSCHEDULABLE,
    CycleState,
    Framework,
    PostFilterResult,
    Status,
)
from k8py.scheduler.types import NodeInfo, PodInfo

NAME = "DefaultPreemption"
NOMINATED_NODE = "preemption.nominated-node"  # CycleState key: the node this pod already waits on
_INT32 = 2 ** 31


@dataclass(slots=True)
class Candidate:
    node: str
    victims: list[PodInfo] = field(default_factory=list)
    pdb_violations: int = 0

    def rank(self) -> tuple[int, int, int, int]:
        prios = [v.priority for v in self.victims]
        return (self.pdb_violations, max(prios, default=-_INT32), sum(p + _INT32 for p in prios), len(prios))


def _start_time(p: PodInfo) -> str:
    return str((p.pod.get("status") or {}).get("startTime") or "9999")


def more_important_first(pods: list[PodInfo]) -> list[PodInfo]:
    return sorted(pods, key=lambda p: (-p.priority, _start_time(p)))


def split_by_pdb(pods: list[PodInfo], pdbs: Sequence[dict[str, Any]]) -> tuple[list[PodInfo], list[PodInfo]]:
    """(pods whose removal would violate a budget, the others), in order: each removal
    spends one of `disruptionsAllowed` of every budget selecting the pod (unless the pod
    is already among its disruptedPods); a budget overdrawn is violated."""
    allowed = [int((b.get("status") or {}).get("disruptionsAllowed") or 0) for b in pdbs]
    violating: list[PodInfo] = []
    fine: list[PodInfo] = []
    for p in pods:
        hit = False
        for i, b in enumerate(pdbs):
            if (b.get("metadata") or {}).get("namespace") != p.namespace:
                continue
            if not (b.get("spec") or {}).get("selector") or not disruption.selects(b, p.labels):
                continue  # an empty selector selects nothing here, as in Kubernetes' preemption
            if p.name in ((b.get("status") or {}).get("disruptedPods") or {}):
                continue
            allowed[i] -= 1
            hit = hit or allowed[i] < 0
        (violating if hit else fine).append(p)
    return violating, fine


def select_victims(fw: Framework, state: CycleState, pod: PodInfo, ni: NodeInfo,
                   pdbs: Sequence[dict[str, Any]]) -> Candidate | None:
    if min(ni.priority_counts, default=pod.priority) >= pod.priority:
        return None  # nothing of lower priority here (cheap: no walk over the pods)
    lower = [p for p in ni.pods.values() if p.priority < pod.priority]
    if not lower:
        return None
    what_if = NodeInfo.from_node(ni.node)
    for p in ni.pods.values():
        if p.priority >= pod.priority:
            what_if.add_pod(p)
    if fw.run_filters(state, pod, what_if) is not None:
        return None
    cand = Candidate(ni.name)
    violating, fine = split_by_pdb(more_important_first(lower), pdbs)

    def reprieve(p: PodInfo) -> bool:
        what_if.add_pod(p)
        if fw.run_filters(state, pod, what_if) is None:
            return True
        what_if.remove_pod(p.key)
        cand.victims.append(p)
        return False

    for p in violating:
        if not reprieve(p):
            cand.pdb_violations += 1
    for p in fine:
        reprieve(p)
    return cand if cand.victims else None


def _terminating_by_preemption(p: PodInfo) -> bool:
    if not (p.pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return any(c.get("type") == "DisruptionTarget" and c.get("status") == "True"
               and c.get("reason") == "PreemptionByScheduler"
               for c in (p.pod.get("status") or {}).get("conditions") or [])


def eligible(state: CycleState, pod: PodInfo, statuses: dict[str, Status]) -> str:
    """"" when the pod may preempt, else why not (Kubernetes' words)."""
    if (pod.pod.get("spec") or {}).get("preemptionPolicy") == "Never":
        return NOT_ELIGIBLE_NEVER
    nominated = state.data.get(NOMINATED_NODE) or (pod.pod.get("status") or {}).get("nominatedNodeName")
    st = statuses.get(nominated) if nominated else None
    if st is not None and st.code != UNSCHEDULABLE:
        return ""  # its nominated node cannot take it any more: preempt elsewhere
    ni = state.snapshot.node_info(nominated) if nominated else None
    if ni is not None and any(p.priority < pod.priority and _terminating_by_preemption(p) for p in ni.pods.values()):
        return "not eligible due to a terminating pod on the nominated node."
    return ""


class DefaultPreemption:
    NAME = NAME

    def __init__(self) -> None:
        self.fw: Framework | None = None

    def bind_framework(self, fw: Framework) -> None:
        self.fw = fw

    def post_filter(self, state: CycleState, pod: PodInfo, statuses: dict[str, Status]) -> PostFilterResult | None:
        if self.fw is None:
            return None
        why = eligible(state, pod, statuses)
        if why:
            state.data[POST_FILTER_MSG] = "preemption: " + why
            return None
        pdbs = list(state.snapshot.pdbs()) if hasattr(state.snapshot, "pdbs") else []
        best: Candidate | None = None
        for name, st in statuses.items():
            if st.code != UNSCHEDULABLE:
                continue
            ni = state.snapshot.node_info(name)
            cand = select_victims(self.fw, state, pod, ni, pdbs) if ni is not None else None
            if cand is not None and (best is None or cand.rank() < best.rank()):
                best = cand
        if best is None:
            return None
        return PostFilterResult(best.node, tuple(best.victims))


def new() -> DefaultPreemption:
    return DefaultPreemption()
