"""Tests of the framework: sample size, FitError wording, selection."""

from __future__ import annotations

import random

import pytest

from k8py.scheduler.framework import (
    CycleState,
    FitError,
    Framework,
    Status,
    num_feasible_nodes_to_find,
)
from k8py.scheduler.plugins import default_plugins
from k8py.scheduler.types import PodInfo

from sched_helpers import cache_with, node, pod


@pytest.mark.parametrize("n,pct,expected", [
    (3, None, 3), (99, None, 99), (100, None, 100), (1000, None, 420), (5000, None, 500),
    (10000, None, 500), (1000, 10, 100), (1000, 50, 500), (1000, 100, 1000),
])
def test_num_feasible_nodes_to_find(n: int, pct: int | None, expected: int) -> None:
    assert num_feasible_nodes_to_find(n, pct) == expected


MESSAGE_CASES = [
    ("memory on all", {"a": Status.unschedulable("Insufficient memory"),
                       "b": Status.unschedulable("Insufficient memory"),
                       "c": Status.unschedulable("Insufficient memory")},
     "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available: "
     "3 No preemption victims found for incoming pod."),
    ("mixed, sorted as strings", {
        "a": Status.unschedulable("Insufficient cpu", "Insufficient memory"),
        "b": Status.unresolvable("node(s) had untolerated taint {dedicated: gpu}"),
        "c": Status.unschedulable("Insufficient memory")},
     "0/3 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {dedicated: gpu}, "
     "2 Insufficient memory. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, "
     "2 No preemption victims found for incoming pod."),
]


@pytest.mark.parametrize("name,statuses,expected", MESSAGE_CASES, ids=[c[0] for c in MESSAGE_CASES])
def test_fit_error_message(name: str, statuses: dict[str, Status], expected: str) -> None:
    assert FitError(3, statuses).message() == expected


def test_fit_error_prefilter_message() -> None:
    e = FitError(3, {}, 'persistentvolumeclaim "x" not found')
    assert e.message() == ('0/3 nodes are available: persistentvolumeclaim "x" not found. preemption: 0/3 nodes '
                           'are available: 3 Preemption is not helpful for scheduling.')


def test_select_host_end_to_end_over_default_plugins() -> None:
    c = cache_with([node("n1", memory="1Gi"), node("n2", memory="8Gi"), node("n3", unschedulable=True)])
    fw = Framework(default_plugins(), rng=random.Random(1))
    pi = PodInfo.from_pod(pod("p", "100m", "2Gi"))
    assert fw.select_host(CycleState(c), pi, c.node_infos()).name == "n2"
    big = PodInfo.from_pod(pod("q", "100m", "20Gi"))
    with pytest.raises(FitError) as e:
        fw.select_host(CycleState(c), big, c.node_infos())
    assert e.value.message() == (
        "0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient memory. preemption: 0/3 nodes "
        "are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.")


def test_sampling_visits_nodes_round_robin() -> None:
    c = cache_with([node(f"n{i}") for i in range(300)])
    fw = Framework(default_plugins(), percentage_of_nodes_to_score=10)
    pi = PodInfo.from_pod(pod("p", "1"))
    first = fw.find_feasible(CycleState(c), pi, c.node_infos())
    second = fw.find_feasible(CycleState(c), pi, c.node_infos())
    assert len(first) == len(second) == 100
    assert not {n.name for n in first} & {n.name for n in second}
