"""core/v1 Event <-> events.k8s.io/v1 Event conversion.

Both resources share one storage (core shape, under /registry/core/events/), as in
Kubernetes: an event written through either API is read through both.
"""

from __future__ import annotations

import copy

from k8py.api.types import Obj

# (events.k8s.io/v1 field, core/v1 field)
_RENAMES = (
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
)
_SAME = ("metadata", "eventTime", "series", "reportingInstance", "action", "reason", "related", "type")


def to_core(ev: Obj) -> Obj:
    """events.k8s.io/v1 -> core/v1."""
    out = _copy_fields(ev, "v1", _RENAMES)
    if "series" in out and isinstance(out["series"], dict):
        out["count"] = out["series"].get("count", out.get("count"))
    if "source" not in out and ev.get("reportingController"):
        out["source"] = {"component": ev["reportingController"]}
    return out


def from_core(ev: Obj) -> Obj:
    """core/v1 -> events.k8s.io/v1."""
    out = _copy_fields(ev, "events.k8s.io/v1", tuple((old, new) for new, old in _RENAMES))
    if "reportingController" not in out and isinstance(ev.get("source"), dict) \
            and ev["source"].get("component"):
        out["reportingController"] = ev["source"]["component"]
    return out


def _copy_fields(ev: Obj, api_version: str, renames: tuple[tuple[str, str], ...]) -> Obj:
    """A new Event of `api_version` with deep copies of the shared fields and of each
    (from, to) renamed field that `ev` has."""
    out: Obj = {"apiVersion": api_version, "kind": "Event"}
    for f in _SAME:
        if f in ev:
            out[f] = copy.deepcopy(ev[f])
    for src, dst in renames:
        if src in ev:
            out[dst] = copy.deepcopy(ev[src])
    return out
