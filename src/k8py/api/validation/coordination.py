"""coordination.k8s.io/v1: Leases (positive duration, non-negative transitions).

Invariants: as in `meta`.
"""

from __future__ import annotations

from typing import Any

from k8py.api.validation.meta import (
    ErrorList,
    dict_of,
    validate_nonnegative,
    validate_positive,
)


def validate_lease(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = dict_of(obj.get("spec"))
    if spec.get("leaseDurationSeconds") is not None:
        validate_positive(v, spec["leaseDurationSeconds"], "spec.leaseDurationSeconds")
    validate_nonnegative(v, spec.get("leaseTransitions"), "spec.leaseTransitions")
