"""The HPA's replica calculator, case by case as Kubernetes' algorithm documents it
(https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/#algorithm-details):
desired = ceil(current * usage / target), tolerance 0.1, missing pods assumed at 100% of
their request when scaling down and 0 when scaling up, unready pods 0 when scaling up,
no change when that flips the direction."""

from __future__ import annotations

from typing import Any

import pytest

from k8py.clock import rfc3339
from k8py.controllers.replicacalc import MetricsError, PodMetric, resource_replicas

NOW = 1_700_001_000.0
OLD = NOW - 3600  # started an hour ago: past the CPU initialization period
MI = 1 << 20


def pod(name: str, *, phase: str = "Running", ready: str | None = "True", started: float = OLD,
        ready_since: float = OLD + 10, cpu: str | None = "1", memory: str = "256Mi", deleted: bool = False) -> Any:
    req: dict[str, str] = {"memory": memory}
    if cpu is not None:
        req["cpu"] = cpu
    md: dict[str, Any] = {"name": name, "namespace": "default"}
    if deleted:
        md["deletionTimestamp"] = rfc3339(NOW)
    st: dict[str, Any] = {"phase": phase, "startTime": rfc3339(started)}
    if ready is not None:
        st["conditions"] = [{"type": "Ready", "status": ready, "lastTransitionTime": rfc3339(ready_since)}]
    return {"metadata": md, "spec": {"containers": [{"name": "c", "resources": {"requests": req}}]}, "status": st}


def m(milli: int, at: float = NOW - 5, window: float = 15.0) -> PodMetric:
    return PodMetric(milli, at, window)


CPU_CASES = [
    # (what, pods, metrics (name -> millicores), target %, current, want)
    ("above target: ceil(4 * 80/50)", [pod("a"), pod("b"), pod("c"), pod("d")],
     {"a": 800, "b": 800, "c": 800, "d": 800}, 50, 4, 7),
    ("within tolerance 0.1: unchanged", [pod("a"), pod("b"), pod("c"), pod("d")],
     {"a": 525, "b": 525, "c": 525, "d": 525}, 50, 4, 4),
    ("below target: ceil(4 * 10/50)", [pod("a"), pod("b"), pod("c"), pod("d")],
     {"a": 100, "b": 100, "c": 100, "d": 100}, 50, 4, 1),
    ("docs: 200m for 100m doubles", [pod("a", cpu="100m"), pod("b", cpu="100m")],
     {"a": 200, "b": 200}, 100, 2, 4),
    ("missing pod on scale down: assumed at 100% of request", [pod("a"), pod("b"), pod("c"), pod("d")],
     {"a": 100, "b": 100, "c": 100}, 50, 4, 3),
    ("missing pod on scale up: assumed 0", [pod("a"), pod("b"), pod("c"), pod("d")],
     {"a": 900, "b": 900, "c": 900}, 50, 4, 6),
    ("unready pod on scale up: counted as 0", [pod("a"), pod("b"), pod("c"),
                                              pod("d", ready="False", started=NOW - 60, ready_since=NOW - 60)],
     {"a": 900, "b": 900, "c": 900, "d": 900}, 50, 4, 6),
    ("pending pod on scale up: counted as 0", [pod("a"), pod("b"), pod("c"), pod("d", phase="Pending")],
     {"a": 900, "b": 900, "c": 900}, 50, 4, 6),
    ("failed and deleted pods are ignored", [pod("a"), pod("b", phase="Failed"), pod("c", deleted=True)],
     {"a": 1000, "b": 0, "c": 0}, 50, 3, 2),
    ("missing pod flips the direction: unchanged", [pod("a"), pod("b")], {"a": 400}, 50, 2, 2),
    ("metric window began before Ready (initialization period): unready, 0 on scale up",
     [pod("a"), pod("b", started=NOW - 60, ready_since=NOW - 10)], {"a": 1000, "b": 1000}, 50, 2, 2),
    ("never ready after the initialization period: unready, 0 on scale up",
     [pod("a"), pod("b", ready="False", ready_since=OLD + 5)], {"a": 1000, "b": 1000}, 50, 2, 2),
    ("not ready now but was ready once, after initialization: counted", [pod("a"),
                                                                       pod("b", ready="False", ready_since=NOW - 100)],
     {"a": 1000, "b": 1000}, 50, 2, 4),
]


@pytest.mark.parametrize("what,pods,metrics,target,current,want", CPU_CASES, ids=[c[0] for c in CPU_CASES])
def test_cpu_utilization(what: str, pods: list[Any], metrics: dict[str, int], target: int, current: int,
                         want: int) -> None:
    got = resource_replicas(current, pods, {k: m(v) for k, v in metrics.items()}, "cpu", NOW,
                            target_utilization=target)
    assert got.replicas == want, what


def test_utilization_reported_as_an_integer_percentage() -> None:
    got = resource_replicas(2, [pod("a"), pod("b")], {"a": m(333), "b": m(334)}, "cpu", NOW, target_utilization=50)
    assert (got.utilization, got.average) == (33, 333)


def test_memory_average_value_ignores_readiness() -> None:
    pods = [pod("a", ready="False", started=NOW - 10), pod("b")]
    metrics = {"a": m(200 * MI * 1000), "b": m(200 * MI * 1000)}
    got = resource_replicas(2, pods, metrics, "memory", NOW, target_average=100 * MI * 1000)
    assert got.replicas == 4
    got = resource_replicas(2, pods, metrics, "memory", NOW, target_utilization=50)  # 200Mi of 256Mi: 78%
    assert (got.replicas, got.utilization) == (4, 78)


@pytest.mark.parametrize("pods,metrics,message", [
    ([pod("a", cpu=None)], {"a": 100}, "missing request for cpu in container c of Pod a"),
    ([pod("a", phase="Pending")], {}, "did not receive metrics for targeted pods (pods might be unready)"),
    ([], {}, "no pods returned by selector while calculating replica count"),
])
def test_errors(pods: list[Any], metrics: dict[str, int], message: str) -> None:
    with pytest.raises(MetricsError) as e:
        resource_replicas(1, pods, {k: m(v) for k, v in metrics.items()}, "cpu", NOW, target_utilization=50)
    assert str(e.value) == message
