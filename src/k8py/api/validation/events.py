"""events.k8s.io/v1: Events (reporting controller and instance, action, reason, type, note).

The core/v1 Event shape is validated in `core`. Invariants: as in `meta`.
"""

from __future__ import annotations

from typing import Any

from k8py.api import names
from k8py.api.validation.field import required, too_long
from k8py.api.validation.meta import ErrorList, validate_enum


def validate_events_event(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    for f in ("reportingController", "reportingInstance", "action", "reason"):
        if not obj.get(f):
            v.add(required(f))
    validate_enum(v, obj.get("type"), "type", ("Normal", "Warning"), required_=True)
    if obj.get("reportingController"):
        v.msgs("reportingController", obj["reportingController"],
               names.qualified_name_errors(obj["reportingController"]))
    if len(obj.get("note") or "") > 1024:
        v.add(too_long("note", 1024))
