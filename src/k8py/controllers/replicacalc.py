"""The HPA's replica calculator for Resource metrics (Kubernetes' replica_calculator.go):
from the target's pods, their metrics and requests, the replica count a metric asks for.

Pods are grouped first: deleted or Failed pods are ignored; Pending pods are unready;
pods without a metric are missing; for CPU, a pod is unready while it has no Ready
condition, or within its first 5 minutes (`CPU_INITIALIZATION_PERIOD`) while it is not
Ready or its metric's window began before it became Ready, or after that if it is not
Ready and never was (its Ready condition last moved within 30 s of its start,
`DELAY_OF_INITIAL_READINESS_STATUS`). Memory counts every pod with a metric.
Then: ratio = usage / target (utilization: sum of usage * 100 / sum of requests, an
integer percentage; AverageValue: the mean usage); within the tolerance (0.1) nothing
changes; when pods are missing or unready, the ratio is recomputed assuming missing pods
use 100% of their request (the target for AverageValue) when scaling down and 0 when
scaling up, and unready pods 0 when scaling up; if that flips the direction or falls
within the tolerance, nothing changes; else ceil(ratio * pods counted).
Invariant: pure (no I/O); time is passed in (`now`, seconds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from k8py.api import quantity
from k8py.api.types import Obj
from k8py.clock import parse_rfc3339

TOLERANCE = 0.1
CPU_INITIALIZATION_PERIOD = 300.0
DELAY_OF_INITIAL_READINESS_STATUS = 30.0


class MetricsError(Exception):
    """The replica count cannot be computed (Kubernetes' message)."""


@dataclass
class PodMetric:
    value: int  # milli-units (millicores, or bytes * 1000)
    timestamp: float
    window: float


@dataclass
class Result:
    replicas: int
    utilization: int | None  # percentage of request (Utilization targets)
    average: int  # mean usage of the pods counted, milli-units
    counted: int = 0
    notes: list[str] = field(default_factory=list)


def _condition(pod: Obj, ctype: str) -> Obj | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return dict(c)
    return None


def _ts(s: str | None) -> float | None:
    return parse_rfc3339(s) if s else None


def _unready_cpu(pod: Obj, metric: PodMetric, now: float) -> bool:
    cond = _condition(pod, "Ready")
    start = _ts((pod.get("status") or {}).get("startTime"))
    if cond is None or start is None:
        return True
    ltt = _ts(cond.get("lastTransitionTime")) or 0.0
    if start + CPU_INITIALIZATION_PERIOD > now:
        return bool(cond.get("status") == "False" or metric.timestamp < ltt + metric.window)
    return bool(cond.get("status") == "False" and start + DELAY_OF_INITIAL_READINESS_STATUS > ltt)


def group_pods(pods: list[Obj], metrics: dict[str, PodMetric], resource: str,
               now: float) -> tuple[int, set[str], set[str], set[str]]:
    """(ready pods with a metric, unready, missing, ignored) as Kubernetes' groupPods."""
    ready, unready, missing, ignored = 0, set(), set(), set()
    for pod in pods:
        name = pod["metadata"]["name"]
        phase = (pod.get("status") or {}).get("phase")
        if pod["metadata"].get("deletionTimestamp") or phase == "Failed":
            ignored.add(name)
            continue
        if phase == "Pending":
            unready.add(name)
            continue
        m = metrics.get(name)
        if m is None:
            missing.add(name)
            continue
        if resource == "cpu" and _unready_cpu(pod, m, now):
            unready.add(name)
            continue
        ready += 1
    return ready, unready, missing, ignored


def pod_requests(pods: list[Obj], resource: str) -> dict[str, int]:
    """Pod name -> sum of its containers' requests of `resource` (milli-units)."""
    out: dict[str, int] = {}
    for pod in pods:
        tot = 0
        for c in (pod.get("spec") or {}).get("containers") or []:
            req = ((c.get("resources") or {}).get("requests") or {}).get(resource)
            if req is None:
                raise MetricsError(f"missing request for {resource} in container {c.get('name')} "
                                   f"of Pod {pod['metadata']['name']}")
            tot += quantity.to_milli(req)
        out[pod["metadata"]["name"]] = tot
    return out


def _utilization(metrics: dict[str, int], requests: dict[str, int], target: int) -> tuple[float, int, int]:
    used = sum(metrics.values())
    req = sum(requests[n] for n in metrics if n in requests)
    if req == 0:
        raise MetricsError("no metrics returned matched known pods")
    util = used * 100 // req
    return util / target, util, used // max(1, len(metrics))


def resource_replicas(current: int, pods: list[Obj], metrics: dict[str, PodMetric], resource: str,
                      now: float, target_utilization: int | None = None,
                      target_average: int | None = None, tolerance: float = TOLERANCE) -> Result:
    """The replicas a Resource metric asks for: a Utilization target (percent of request)
    or an AverageValue target (milli-units per pod)."""
    if not pods:
        raise MetricsError("no pods returned by selector while calculating replica count")
    ready, unready, missing, ignored = group_pods(pods, metrics, resource, now)
    values = {n: m.value for n, m in metrics.items() if n not in unready and n not in ignored}
    values = {n: v for n, v in values.items() if any(p["metadata"]["name"] == n for p in pods)}
    if not values:
        raise MetricsError("did not receive metrics for targeted pods (pods might be unready)")
    requests = pod_requests(pods, resource) if target_utilization is not None else {}

    def ratio(vals: dict[str, int]) -> tuple[float, int | None, int]:
        if target_utilization is not None:
            r, util, avg = _utilization(vals, requests, target_utilization)
            return r, util, avg
        avg = sum(vals.values()) // max(1, len(vals))
        return sum(vals.values()) / len(vals) / max(1, target_average or 1), None, avg

    usage_ratio, util, avg = ratio(values)
    up_with_unready = bool(unready) and usage_ratio > 1.0
    if not up_with_unready and not missing:
        if abs(1.0 - usage_ratio) <= tolerance:
            return Result(current, util, avg, len(values))
        return Result(math.ceil(usage_ratio * ready), util, avg, len(values))
    for name in missing:
        if usage_ratio < 1.0:
            values[name] = (requests[name] * max(100, target_utilization) // 100 if target_utilization is not None
                            else int(target_average or 0))
        else:
            values[name] = 0
    if up_with_unready:
        for name in unready:
            values[name] = 0
    new_ratio, _, _ = ratio(values)
    if abs(1.0 - new_ratio) <= tolerance or (usage_ratio < 1.0 < new_ratio) or (usage_ratio > 1.0 > new_ratio):
        return Result(current, util, avg, len(values))
    n = math.ceil(new_ratio * len(values))
    if (new_ratio < 1.0 and n > current) or (new_ratio > 1.0 and n < current):
        return Result(current, util, avg, len(values))
    return Result(n, util, avg, len(values))
