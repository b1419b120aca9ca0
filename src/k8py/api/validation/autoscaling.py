"""autoscaling: HorizontalPodAutoscalers (replica bounds, scale target, metric types).

Invariants: as in `meta`.
"""

from __future__ import annotations

from typing import Any

from k8py.api.validation.field import invalid, required
from k8py.api.validation.meta import ErrorList, dict_of, list_of, validate_enum


def validate_hpa(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = dict_of(obj.get("spec"))
    mn = spec.get("minReplicas")
    mx = spec.get("maxReplicas")
    if isinstance(mn, int) and mn < 1:
        v.add(invalid("spec.minReplicas", mn, "must be greater than or equal to 1"))
    if isinstance(mx, int):
        if mx < 1:
            v.add(invalid("spec.maxReplicas", mx, "must be greater than 0"))
        elif isinstance(mn, int) and mx < mn:
            v.add(invalid("spec.maxReplicas", mx, "must be greater than or equal to `minReplicas`"))
    ref = dict_of(spec.get("scaleTargetRef"))
    for f in ("kind", "name"):
        if not ref.get(f):
            v.add(required(f"spec.scaleTargetRef.{f}"))
    for i, m in enumerate(list_of(spec.get("metrics"))):
        m = dict_of(m)
        validate_enum(v, m.get("type"), f"spec.metrics[{i}].type",
              ("ContainerResource", "External", "Object", "Pods", "Resource"), required_=True)
