"""The HPA's stabilization windows and scaling policies, with the examples of Kubernetes'
documentation (https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/
#configurable-scaling-behavior) and the reasons its conditions give."""

from __future__ import annotations

from typing import Any

import pytest

from k8py.controllers.hpabehavior import History, normalize

T0 = 1_000_000.0


def pods(value: int, period: int = 60) -> Any:
    return {"type": "Pods", "value": value, "periodSeconds": period}


def percent(value: int, period: int = 60) -> Any:
    return {"type": "Percent", "value": value, "periodSeconds": period}


CASES = [
    # (what, behavior, current, desired, min, max, want, ScalingLimited reason)
    ("defaults: scale up by max(4 pods, 100%) per 15 s", {}, 2, 20, 1, 100, 6, "ScaleUpLimit"),
    ("defaults: scale up by 100% of 10", {}, 10, 50, 1, 100, 20, "ScaleUpLimit"),
    ("up to maxReplicas", {}, 10, 50, 1, 12, 12, "TooManyReplicas"),
    ("down by 4 pods per minute", {"scaleDown": {"policies": [pods(4)], "stabilizationWindowSeconds": 0}},
     10, 1, 1, 20, 6, "ScaleDownLimit"),
    ("down by 10% per minute", {"scaleDown": {"policies": [percent(10)], "stabilizationWindowSeconds": 0}},
     80, 10, 1, 100, 72, "ScaleDownLimit"),
    ("selectPolicy Max: the biggest change", {"scaleDown": {"policies": [pods(4), percent(10)],
                                                            "stabilizationWindowSeconds": 0}},
     80, 10, 1, 100, 72, "ScaleDownLimit"),
    ("selectPolicy Min: the smallest change", {"scaleDown": {"policies": [pods(4), percent(10)],
                                                             "selectPolicy": "Min", "stabilizationWindowSeconds": 0}},
     80, 10, 1, 100, 76, "ScaleDownLimit"),
    ("scale down Disabled", {"scaleDown": {"selectPolicy": "Disabled"}}, 10, 1, 1, 20, 10, "ScaleDownLimit"),
    ("down to minReplicas", {"scaleDown": {"stabilizationWindowSeconds": 0}}, 10, 1, 3, 20, 3, "TooFewReplicas"),
    ("within range", {"scaleDown": {"stabilizationWindowSeconds": 0}}, 10, 8, 1, 20, 8, "DesiredWithinRange"),
    ("no behavior: up to max(2 * current, 4)", None, 1, 10, 1, 20, 4, "ScaleUpLimit"),
    ("no behavior: up to max(2 * current, 4) of 5", None, 5, 30, 1, 20, 10, "ScaleUpLimit"),
    ("no behavior: to maxReplicas", None, 5, 30, 1, 8, 8, "TooManyReplicas"),
]


@pytest.mark.parametrize("what,behavior,current,desired,lo,hi,want,limited", CASES, ids=[c[0] for c in CASES])
def test_policies(what: str, behavior: Any, current: int, desired: int, lo: int, hi: int, want: int,
                  limited: str) -> None:
    out = normalize(History(), behavior, current, desired, lo, hi, T0)
    assert (out.replicas, out.limited[0]) == (want, limited), what


def test_scale_events_in_the_period_count() -> None:
    h = History()
    h.record_scale(T0, 2, 6)  # +4 ten seconds ago: the 15 s period starts at 2
    out = normalize(h, {}, 6, 20, 1, 100, T0 + 10)
    assert (out.replicas, out.limited[0]) == (6, "ScaleUpLimit")
    out = normalize(h, {}, 6, 20, 1, 100, T0 + 16)  # the period has passed
    assert out.replicas == 12


def test_scale_down_stabilization_window_default_300s() -> None:
    h = History()
    assert normalize(h, None, 10, 10, 1, 20, T0).replicas == 10
    out = normalize(h, None, 10, 3, 1, 20, T0 + 60)
    assert (out.replicas, out.able[0]) == (10, "ScaleDownStabilized")
    out = normalize(h, {}, 10, 3, 1, 20, T0 + 120)  # with behavior: the same default window
    assert (out.replicas, out.able[0]) == (10, "ScaleDownStabilized")
    out = normalize(h, None, 10, 3, 1, 20, T0 + 301)
    assert (out.replicas, out.able[0]) == (3, "ReadyForNewScale")


def test_short_scale_down_window_from_behavior() -> None:
    h = History()
    b = {"scaleDown": {"stabilizationWindowSeconds": 30}}
    normalize(h, b, 10, 10, 1, 20, T0)
    assert normalize(h, b, 10, 2, 1, 20, T0 + 20).replicas == 10
    assert normalize(h, b, 10, 2, 1, 20, T0 + 31).replicas == 2


def test_scale_up_stabilization_window() -> None:
    h = History()
    b = {"scaleUp": {"stabilizationWindowSeconds": 60}}
    normalize(h, b, 3, 3, 1, 20, T0)
    out = normalize(h, b, 3, 10, 1, 20, T0 + 30)
    assert (out.replicas, out.able[0]) == (3, "ScaleUpStabilized")
    assert normalize(h, b, 3, 10, 1, 20, T0 + 61).replicas == 7  # 3 + 4 pods per 15 s
