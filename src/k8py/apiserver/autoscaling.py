"""autoscaling/v1 HorizontalPodAutoscaler <-> autoscaling/v2 (the storage version).

v1 knows one metric, `spec.targetCPUUtilizationPercentage`, which is v2's Resource
metric `cpu` with an `Utilization` target; status `currentCPUUtilizationPercentage` is
that metric's current average utilization. What v1 cannot express (other metrics,
behavior, conditions, other current metrics) travels in annotations, as Kubernetes
does, so a v2 object read and written back through v1 keeps it:
`autoscaling.alpha.kubernetes.io/{metrics,current-metrics,conditions,behavior}` (JSON,
here in v2's shape). A v1 object without a target gets v2's default (cpu 80%).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from k8py.api.types import Obj

METRICS = "autoscaling.alpha.kubernetes.io/metrics"
CURRENT_METRICS = "autoscaling.alpha.kubernetes.io/current-metrics"
CONDITIONS = "autoscaling.alpha.kubernetes.io/conditions"
BEHAVIOR = "autoscaling.alpha.kubernetes.io/behavior"
_ANNOTATIONS = (METRICS, CURRENT_METRICS, CONDITIONS, BEHAVIOR)
DEFAULT_CPU = 80


def _is_cpu_utilization(m: Any) -> bool:
    if not isinstance(m, dict) or m.get("type") != "Resource":
        return False
    res = m.get("resource") or {}
    target = res.get("target") or {}
    return res.get("name") == "cpu" and target.get("type") == "Utilization"


def _is_cpu_current(m: Any) -> bool:
    return isinstance(m, dict) and m.get("type") == "Resource" and (m.get("resource") or {}).get("name") == "cpu"


def _cpu_metric(percent: Any) -> Obj:
    return {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                       "averageUtilization": percent}}}


def _load(annotations: dict[str, Any], key: str) -> Any:
    raw = annotations.pop(key, None)
    if not isinstance(raw, str):
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def v2_to_v1(obj: Obj) -> Obj:
    out: Obj = {k: copy.deepcopy(v) for k, v in obj.items() if k not in ("spec", "status")}
    out["apiVersion"], out["kind"] = "autoscaling/v1", "HorizontalPodAutoscaler"
    md = out.setdefault("metadata", {})
    ann = dict(md.get("annotations") or {})
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else None
    if spec is not None:
        s1: Obj = {k: copy.deepcopy(spec[k]) for k in ("scaleTargetRef", "minReplicas", "maxReplicas") if k in spec}
        metrics = spec.get("metrics") if isinstance(spec.get("metrics"), list) else []
        cpu = next((m for m in metrics if _is_cpu_utilization(m)), None)
        if cpu is not None:
            s1["targetCPUUtilizationPercentage"] = cpu["resource"]["target"].get("averageUtilization")
        others = [m for m in metrics if m is not cpu]
        if others:
            ann[METRICS] = json.dumps(others, separators=(",", ":"))
        if spec.get("behavior") is not None:
            ann[BEHAVIOR] = json.dumps(spec["behavior"], separators=(",", ":"))
        out["spec"] = s1
    status = obj.get("status") if isinstance(obj.get("status"), dict) else None
    if status is not None:
        st: Obj = {k: copy.deepcopy(status[k]) for k in
                   ("observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas") if k in status}
        current = status.get("currentMetrics") if isinstance(status.get("currentMetrics"), list) else []
        cpu_now = next((m for m in current if _is_cpu_current(m)), None)
        if cpu_now is not None:
            util = ((cpu_now.get("resource") or {}).get("current") or {}).get("averageUtilization")
            if util is not None:
                st["currentCPUUtilizationPercentage"] = util
        others = [m for m in current if m is not cpu_now]
        if others:
            ann[CURRENT_METRICS] = json.dumps(others, separators=(",", ":"))
        if status.get("conditions"):
            ann[CONDITIONS] = json.dumps(status["conditions"], separators=(",", ":"))
        out["status"] = st
    if ann:
        md["annotations"] = ann
    return out


def v1_to_v2(obj: Obj) -> Obj:
    out: Obj = {k: copy.deepcopy(v) for k, v in obj.items() if k not in ("spec", "status")}
    out["apiVersion"], out["kind"] = "autoscaling/v2", "HorizontalPodAutoscaler"
    md = out.setdefault("metadata", {})
    ann = dict(md.get("annotations") or {})
    metrics = _load(ann, METRICS)
    behavior = _load(ann, BEHAVIOR)
    current = _load(ann, CURRENT_METRICS)
    conditions = _load(ann, CONDITIONS)
    if ann:
        md["annotations"] = ann
    else:
        md.pop("annotations", None)
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else None
    if spec is not None:
        s2: Obj = {k: copy.deepcopy(spec[k]) for k in ("scaleTargetRef", "minReplicas", "maxReplicas") if k in spec}
        ms = [m for m in metrics if not _is_cpu_utilization(m)] if isinstance(metrics, list) else []
        target = spec.get("targetCPUUtilizationPercentage")
        if target is not None or not ms:
            ms.insert(0, _cpu_metric(DEFAULT_CPU if target is None else target))
        s2["metrics"] = ms
        if behavior is not None:
            s2["behavior"] = behavior
        out["spec"] = s2
    status = obj.get("status") if isinstance(obj.get("status"), dict) else None
    if status is not None:
        st: Obj = {k: copy.deepcopy(status[k]) for k in
                   ("observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas") if k in status}
        cur = [m for m in current if not _is_cpu_current(m)] if isinstance(current, list) else []
        if status.get("currentCPUUtilizationPercentage") is not None:
            cur.insert(0, {"type": "Resource", "resource": {"name": "cpu", "current": {
                "averageUtilization": status["currentCPUUtilizationPercentage"]}}})
        if cur:
            st["currentMetrics"] = cur
        if isinstance(conditions, list):
            st["conditions"] = conditions
        out["status"] = st
    return out
