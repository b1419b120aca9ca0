"""PodTopologySpread: which nodes a pod with topology spread constraints may go to
(DoNotSchedule, minDomains, missing keys, node inclusion) and which it prefers
(ScheduleAnyway), table-driven over the framework with the default plugins."""

from __future__ import annotations

from typing import Any

import pytest

from k8py.scheduler.framework import CycleState, FitError, Framework
from k8py.scheduler.plugins import default_plugins
from k8py.scheduler.plugins.podtopologyspread import ERR_CONSTRAINTS, ERR_MISSING_LABEL
from k8py.scheduler.types import PodInfo

from sched_helpers import cache_with, node, pod

Obj = dict[str, Any]
ZONES = [node("a1", labels={"zone": "a"}), node("a2", labels={"zone": "a"}), node("b1", labels={"zone": "b"}),
         node("c1", labels={"zone": "c"})]


def app(name: str, node_name: str, labels: dict[str, str] | None = None) -> Obj:
    return pod(name, "100m", labels=labels or {"app": "web"}, node_name=node_name)


def spread(key: str = "zone", skew: int = 1, when: str = "DoNotSchedule", **extra: Any) -> Obj:
    return {"maxSkew": skew, "topologyKey": key, "whenUnsatisfiable": when,
            "labelSelector": {"matchLabels": {"app": "web"}}, **extra}


def incoming(*cs: Obj, **spec: Any) -> Obj:
    return pod("new", "100m", labels={"app": "web"}, topologySpreadConstraints=list(cs), **spec)


def feasible(nodes: list[Obj], pods: list[Obj], p: Obj) -> list[str] | str:
    c = cache_with(nodes, pods)
    fw = Framework(default_plugins())
    try:
        return sorted(n.name for n in fw.find_feasible(CycleState(c), PodInfo.from_pod(p), c.node_infos()))
    except FitError as e:
        return e.message()


@pytest.mark.parametrize("case,nodes,pods,p,want", [
    ("empty cluster: anywhere", ZONES, [], incoming(spread()), ["a1", "a2", "b1", "c1"]),
    ("zone a has one more: not a", ZONES, [app("x", "a1")], incoming(spread()), ["b1", "c1"]),
    ("balanced again: anywhere", ZONES, [app("x", "a1"), app("y", "b1"), app("z", "c1")], incoming(spread()),
     ["a1", "a2", "b1", "c1"]),
    ("maxSkew 2 allows it", ZONES, [app("x", "a1")], incoming(spread(skew=2)), ["a1", "a2", "b1", "c1"]),
    ("other labels do not count", ZONES, [app("x", "a1", {"app": "db"})], incoming(spread()),
     ["a1", "a2", "b1", "c1"]),
    ("per node", ZONES, [app("x", "a1")], incoming(spread("kubernetes.io/hostname")), ["a2", "b1", "c1"]),
    ("minDomains above the domains: minimum 0", ZONES, [app("x", "a1"), app("y", "b1"), app("z", "c1")],
     incoming(spread(minDomains=4)), "0/4 nodes are available: 4 " + ERR_CONSTRAINTS + "."),
    ("a node without the key is unresolvable", ZONES + [node("bare")], [], incoming(spread()),
     ["a1", "a2", "b1", "c1"]),
    ("node affinity limits the domains", ZONES, [app("x", "b1"), app("y", "c1")],
     incoming(spread(), nodeSelector={"zone": "a"}), ["a1", "a2"]),
    ("ScheduleAnyway never filters", ZONES, [app("x", "a1")], incoming(spread(when="ScheduleAnyway")),
     ["a1", "a2", "b1", "c1"]),
])
def test_filter(case: str, nodes: list[Obj], pods: list[Obj], p: Obj, want: list[str] | str) -> None:
    got = feasible(nodes, pods, p)
    if isinstance(want, str):
        assert isinstance(got, str) and got.startswith(want), (case, got)
    else:
        assert got == want, case


def test_missing_label_message() -> None:
    got = feasible([node("bare")], [], incoming(spread()))
    assert isinstance(got, str) and f"1 {ERR_MISSING_LABEL}" in got


def test_schedule_anyway_prefers_the_emptier_domain() -> None:
    busy = pod("db", "2", labels={"app": "db"}, node_name="c1")  # least-allocated alone would avoid c1
    c = cache_with(ZONES, [app("x", "a1"), app("y", "a2"), app("z", "b1"), busy])
    fw = Framework(default_plugins())
    chosen = fw.select_host(CycleState(c), PodInfo.from_pod(incoming(spread(when="ScheduleAnyway"))), c.node_infos())
    assert chosen.name == "c1"
