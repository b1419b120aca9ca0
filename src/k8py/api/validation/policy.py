"""policy/v1, scheduling.k8s.io/v1 and node.k8s.io/v1: PodDisruptionBudgets,
PriorityClasses and RuntimeClasses (the kinds of disruptions and priorities).

Invariants: as in `meta`. The two built-in system PriorityClasses are the only names
with the `system-` prefix, and only with their own values; user-defined values are at
most HIGHEST_USER_DEFINABLE_PRIORITY.
"""

from __future__ import annotations

from typing import Any

from k8py.api import names
from k8py.api.validation.apps import int_or_percent
from k8py.api.validation.field import forbidden, invalid, required
from k8py.api.validation.meta import (
    ErrorList,
    dict_of,
    validate_enum,
    validate_immutable,
    validate_label_selector,
)
from k8py.api.wellknown import (
    HIGHEST_USER_DEFINABLE_PRIORITY,
    SYSTEM_PRIORITY_CLASS_PREFIX,
    SYSTEM_PRIORITY_CLASSES,
)

PREEMPTION_POLICIES = ("PreemptLowerPriority", "Never")
UNHEALTHY_POD_EVICTION_POLICIES = ("IfHealthyBudget", "AlwaysAllow")


def validate_pdb(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = dict_of(obj.get("spec"))
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        v.add(invalid("spec.minAvailable", spec["minAvailable"], "minAvailable and maxUnavailable cannot be both set"))
    for f in ("minAvailable", "maxUnavailable"):
        int_or_percent(v, spec.get(f), f"spec.{f}")
    if isinstance(spec.get("selector"), dict):
        validate_label_selector(v, spec["selector"], "spec.selector")
    validate_enum(v, spec.get("unhealthyPodEvictionPolicy"), "spec.unhealthyPodEvictionPolicy",
                  UNHEALTHY_POD_EVICTION_POLICIES)
    status = dict_of(obj.get("status"))
    for f in ("disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods"):
        x = status.get(f)
        if isinstance(x, int) and not isinstance(x, bool) and x < 0:
            v.add(invalid(f"status.{f}", x, "must be greater than or equal to 0"))


def validate_priorityclass(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    name = str(dict_of(obj.get("metadata")).get("name") or "")
    value = obj.get("value")
    if value is None:
        v.add(required("value"))
    if name.startswith(SYSTEM_PRIORITY_CLASS_PREFIX):
        want = SYSTEM_PRIORITY_CLASSES.get(name)
        if want is None:
            v.add(forbidden("metadata.name", f"priority class names with '{SYSTEM_PRIORITY_CLASS_PREFIX}' prefix "
                                             "are reserved for system use only. error: "
                                             f"{name} is not a known system priority class"))
        elif value != want:
            v.add(forbidden("metadata.name", f"priority class names with '{SYSTEM_PRIORITY_CLASS_PREFIX}' prefix "
                                             f"are reserved for system use only. error: value of {name} "
                                             f"PriorityClass must be {want}"))
    elif isinstance(value, int) and value > HIGHEST_USER_DEFINABLE_PRIORITY:
        v.add(forbidden("value", f"maximum allowed value of a user defined priority is "
                                 f"{HIGHEST_USER_DEFINABLE_PRIORITY}"))
    validate_enum(v, obj.get("preemptionPolicy"), "preemptionPolicy", PREEMPTION_POLICIES)
    if old is not None:
        if value != old.get("value"):
            v.add(forbidden("value", "may not be changed in an update."))
        validate_immutable(v, obj.get("preemptionPolicy"), old.get("preemptionPolicy"), "preemptionPolicy")


def validate_runtimeclass(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    handler = obj.get("handler")
    if not handler:
        v.add(required("handler"))
    elif isinstance(handler, str):
        v.msgs("handler", handler, names.dns1123_label_errors(handler))
    if old is not None:
        validate_immutable(v, handler, old.get("handler"), "handler")
