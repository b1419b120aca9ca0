"""Vocabulary of disruption budgets shared by the Eviction API and the disruption
controller: which pods a PodDisruptionBudget selects, and its DisruptionAllowed condition
as Kubernetes' pdb helper words it.

Invariants: policy/v1 selection (a null selector selects nothing, `{}` every pod of the
namespace); the condition's lastTransitionTime changes only when its status does.
"""

from __future__ import annotations

from typing import Any

from k8py.api.selectors import label_selector_from_dict

DISRUPTION_ALLOWED = "DisruptionAllowed"
SUFFICIENT_PODS = "SufficientPods"
INSUFFICIENT_PODS = "InsufficientPods"
SYNC_FAILED = "SyncFailed"


def selects(pdb: dict[str, Any], labels: dict[str, str] | None) -> bool:
    try:
        sel = label_selector_from_dict((pdb.get("spec") or {}).get("selector"))
    except (ValueError, TypeError):
        return False
    return sel.matches(labels or {})


def set_condition(status: dict[str, Any], now: str, reason: str = "", message: str = "") -> None:
    """Set DisruptionAllowed from `status.disruptionsAllowed` (or False with `reason`,
    e.g. SyncFailed, when one is given); `now` is an RFC 3339 time."""
    if reason:
        value = "False"
    elif int(status.get("disruptionsAllowed") or 0) > 0:
        value, reason = "True", SUFFICIENT_PODS
    else:
        value, reason = "False", INSUFFICIENT_PODS
    conds = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
    old = next((c for c in conds if c.get("type") == DISRUPTION_ALLOWED), None)
    ltt = old.get("lastTransitionTime") if old is not None and old.get("status") == value else now
    cond = {"type": DISRUPTION_ALLOWED, "status": value, "observedGeneration": status.get("observedGeneration", 0),
            "lastTransitionTime": ltt or now, "reason": reason, "message": message}
    status["conditions"] = [c for c in conds if c.get("type") != DISRUPTION_ALLOWED] + [cond]
