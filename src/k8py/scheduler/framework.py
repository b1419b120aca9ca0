"""The scheduling framework: filter and score plugins run over a snapshot of NodeInfos.

A plugin is an object with a `NAME` and any of these hooks:
- `pre_filter(state, pod) -> bool | Status`: False skips the plugin's filter for this
  pod (nothing to check); a Status fails the pod on every node at once.
- `filter(state, pod, node) -> Status | None`: None when the node passes.
- `pre_score(state, pod, nodes) -> bool`: False skips the plugin's score.
- `score(state, pod, node) -> int` in 0..100 (MAX_SCORE), and optionally
  `normalize(state, pod, scores)` rewriting the list in place to 0..100.
- `post_filter(state, pod, statuses) -> PostFilterResult | None`: run when no node fits
  (DefaultPreemption): a node to nominate and the pods to remove from it.
- `bind_framework(framework)`: called once, for plugins that run the filters themselves.
Each score is multiplied by the plugin's `weight`.

Invariants: filters and scores only read the snapshot; `find_feasible` visits nodes
round-robin from where the previous pod stopped and stops after
`num_feasible_nodes_to_find` feasible nodes (Kubernetes' percentageOfNodesToScore), so
per-pod work is bounded and spread across the cluster.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from k8py.scheduler.types import NodeInfo, PodInfo

MAX_SCORE = 100
MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5

UNSCHEDULABLE = "Unschedulable"
UNSCHEDULABLE_AND_UNRESOLVABLE = "UnschedulableAndUnresolvable"

_FILTERS = "framework.filters"
POST_FILTER_MSG = "framework.post-filter-message"  # CycleState key a post-filter may set
NOT_ELIGIBLE_NEVER = "not eligible due to preemptionPolicy=Never."
PREEMPTION_NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_PREEMPTION_VICTIMS = "No preemption victims found for incoming pod"


@dataclass(frozen=True, slots=True)
class Status:
    """A filter failure: its reasons and whether preemption could ever help."""
    reasons: tuple[str, ...]
    code: str = UNSCHEDULABLE
    plugin: str = ""

    @classmethod
    def unschedulable(cls, *reasons: str, plugin: str = "") -> Status:
        return cls(tuple(reasons), UNSCHEDULABLE, plugin)

    @classmethod
    def unresolvable(cls, *reasons: str, plugin: str = "") -> Status:
        return cls(tuple(reasons), UNSCHEDULABLE_AND_UNRESOLVABLE, plugin)


@dataclass(frozen=True, slots=True)
class PostFilterResult:
    """What preemption decided: nominate `node` once `victims` are gone."""
    node: str
    victims: tuple[PodInfo, ...]


@dataclass(slots=True)
class CycleState:
    """Per-pod scratch space shared by the plugins of one scheduling cycle."""
    snapshot: Snapshot
    data: dict[str, Any] = field(default_factory=dict)


class Snapshot(Protocol):
    """What plugins may read beyond the node under test (the scheduler cache)."""

    def node_infos(self) -> Sequence[NodeInfo]: ...

    def node_info(self, name: str) -> NodeInfo | None: ...

    def pods_with_affinity(self) -> int: ...

    def pvc(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def pv(self, name: str) -> dict[str, Any] | None: ...

    def storage_class(self, name: str) -> dict[str, Any] | None: ...

    def pdbs(self) -> Sequence[dict[str, Any]]: ...


class Plugin(Protocol):
    NAME: str


def num_feasible_nodes_to_find(num_all: int, percentage: int | None = None) -> int:
    """Kubernetes' adaptive sample size: all nodes below 100; else 50% - n/125 (at
    least 5%) of the nodes, but never fewer than 100."""
    if num_all < MIN_FEASIBLE_NODES_TO_FIND:
        return num_all
    pct = percentage if percentage is not None and percentage > 0 else 0
    if pct >= 100:
        return num_all
    if pct == 0:
        pct = max(MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND, 50 - num_all // 125)
    n = num_all * pct // 100
    return max(n, MIN_FEASIBLE_NODES_TO_FIND)


class FitError(Exception):
    """No node fits: carries the per-node statuses to word the event as Kubernetes does."""

    def __init__(self, num_all_nodes: int, statuses: dict[str, Status], pre_filter_msg: str = "",
                 preemption_allowed: bool = True) -> None:
        self.num_all_nodes = num_all_nodes
        self.statuses = statuses
        self.pre_filter_msg = pre_filter_msg
        self.preemption_allowed = preemption_allowed
        self.nominated = ""  # the node preemption nominated, if it did
        self.post_filter_msg = ""  # why preemption did not run, when a post-filter says so
        super().__init__(self.message())

    def message(self) -> str:
        """`0/N nodes are available: <counted reasons, sorted>. preemption: ...`"""
        msg = f"0/{self.num_all_nodes} nodes are available:"
        if self.pre_filter_msg:
            msg += f" {self.pre_filter_msg}."
        else:
            counts: dict[str, int] = {}
            for st in self.statuses.values():
                for r in st.reasons:
                    counts[r] = counts.get(r, 0) + 1
            hist = sorted(f"{v} {k}" for k, v in counts.items())
            if hist:
                msg += f" {', '.join(hist)}."
        post = "" if self.nominated else self.post_filter_message()
        if post:
            msg += f" {post}"
        return msg

    def post_filter_message(self) -> str:
        """What default preemption says when it found no node: nodes where removing
        lower-priority pods did not help count as 'no victims found'."""
        if not self.preemption_allowed:
            return "preemption: " + NOT_ELIGIBLE_NEVER
        if self.post_filter_msg:
            return self.post_filter_msg
        counts: dict[str, int] = {}
        if self.pre_filter_msg:
            counts[PREEMPTION_NOT_HELPFUL] = self.num_all_nodes
        else:
            for st in self.statuses.values():
                r = PREEMPTION_NOT_HELPFUL if st.code == UNSCHEDULABLE_AND_UNRESOLVABLE else NO_PREEMPTION_VICTIMS
                counts[r] = counts.get(r, 0) + 1
        if not counts:
            return ""
        hist = sorted(f"{v} {k}" for k, v in counts.items())
        return f"preemption: 0/{self.num_all_nodes} nodes are available: {', '.join(hist)}."


class Framework:
    def __init__(self, plugins: Sequence[Any], percentage_of_nodes_to_score: int | None = None,
                 rng: random.Random | None = None) -> None:
        self.plugins = list(plugins)
        self.filter_plugins = [p for p in self.plugins if hasattr(p, "filter")]
        self.score_plugins = [p for p in self.plugins if hasattr(p, "score")]
        self.post_filter_plugins = [p for p in self.plugins if hasattr(p, "post_filter")]
        for p in self.plugins:
            bind = getattr(p, "bind_framework", None)
            if bind is not None:
                bind(self)
        self.percentage_of_nodes_to_score = percentage_of_nodes_to_score
        self.rng = rng or random.Random()
        self._next_start = 0

    def find_feasible(self, state: CycleState, pod: PodInfo,
                      nodes: Sequence[NodeInfo]) -> list[NodeInfo]:
        """Feasible nodes (a bounded sample); raises FitError when none."""
        n = len(nodes)
        filters: list[tuple[Any, Any]] = []
        for p in self.filter_plugins:
            pre = getattr(p, "pre_filter", None)
            if pre is not None:
                r = pre(state, pod)
                if isinstance(r, Status):
                    raise FitError(n, {}, "; ".join(r.reasons),
                                   preemption_allowed=_preemption_allowed(pod))
                if r is False:
                    continue
            filters.append((p.filter, p))
        state.data[_FILTERS] = [f for f, _ in filters]
        if n == 0:
            raise FitError(0, {}, preemption_allowed=_preemption_allowed(pod))
        want = num_feasible_nodes_to_find(n, self.percentage_of_nodes_to_score)
        feasible: list[NodeInfo] = []
        statuses: dict[str, Status] = {}
        start = self._next_start % n
        visited = 0
        order = [*nodes[start:], *nodes[:start]] if start else nodes
        # filters that only look at spec.unschedulable and taints pass on "plain" nodes
        on_plain = [f for f, p in filters if not getattr(p, "PASSES_ON_PLAIN_NODES", False)]
        on_other = [f for f, _ in filters]
        if len(on_plain) == 1:  # the common case: resources only on plain nodes
            f0 = on_plain[0]
            for ni in order:
                visited += 1
                if ni.plain:
                    st = f0(state, pod, ni)
                else:
                    for f in on_other:
                        st = f(state, pod, ni)
                        if st is not None:
                            break
                if st is not None:
                    statuses[ni.name] = st
                    continue
                feasible.append(ni)
                if len(feasible) >= want:
                    break
        else:
            for ni in order:
                visited += 1
                for f in (on_plain if ni.plain else on_other):
                    st = f(state, pod, ni)
                    if st is not None:
                        statuses[ni.name] = st
                        break
                else:
                    feasible.append(ni)
                    if len(feasible) >= want:
                        break
        self._next_start = (start + visited) % n
        if not feasible:
            raise FitError(n, statuses, preemption_allowed=_preemption_allowed(pod))
        return feasible

    def run_filters(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        """The filters this cycle's pre-filters kept, on one (possibly what-if) node."""
        for f in state.data.get(_FILTERS, [p.filter for p in self.filter_plugins]):
            st: Status | None = f(state, pod, node)
            if st is not None:
                return st
        return None

    def run_post_filter(self, state: CycleState, pod: PodInfo, err: FitError) -> PostFilterResult | None:
        """Preemption, when no node fits: the first post-filter plugin's nomination."""
        if not err.preemption_allowed or err.pre_filter_msg:
            return None
        for p in self.post_filter_plugins:
            res: PostFilterResult | None = p.post_filter(state, pod, err.statuses)
            if res is not None:
                err.nominated = res.node
                return res
            if state.data.get(POST_FILTER_MSG):
                err.post_filter_msg = state.data[POST_FILTER_MSG]
                return None
        return None

    def score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        totals = [0] * len(nodes)
        for p in self.score_plugins:
            pre = getattr(p, "pre_score", None)
            if pre is not None and pre(state, pod, nodes) is False:
                continue
            many = getattr(p, "score_all", None)
            if many is not None:
                scores = many(state, pod, nodes)
            else:
                sc = p.score
                scores = [sc(state, pod, ni) for ni in nodes]
            norm = getattr(p, "normalize", None)
            if norm is not None:
                norm(state, pod, scores)
            w = getattr(p, "weight", 1)
            if w == 1:
                totals = [t + s for t, s in zip(totals, scores)]
            else:
                totals = [t + s * w for t, s in zip(totals, scores)]
        return totals

    def select_host(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> NodeInfo:
        feasible = self.find_feasible(state, pod, nodes)
        if len(feasible) == 1:
            return feasible[0]
        totals = self.score(state, pod, feasible)
        best = max(totals)
        ties = [i for i, t in enumerate(totals) if t == best]
        return feasible[ties[0] if len(ties) == 1 else self.rng.choice(ties)]


def _preemption_allowed(pod: PodInfo) -> bool:
    return (pod.pod.get("spec") or {}).get("preemptionPolicy") != "Never"
