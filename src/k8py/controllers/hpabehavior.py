"""The HPA's normalization of a metric-proposed replica count (Kubernetes' horizontal.go):
stabilization windows and scaling policies, with the conditions it reports.

With `spec.behavior` (its unset fields defaulted as the API does: scale up with no
window, Max of 4 Pods / 100 Percent per 15 s; scale down with the controller's window,
default 300 s, 100 Percent per 15 s): the recommendation is kept between the lowest of
the scale-up window's recommendations and the highest of the scale-down window's, then
limited by the policies (each allows a change from the replica count at the start of
its period, from the recorded scale events; selectPolicy Max/Min picks the most/least
permissive, Disabled forbids the direction) and by [minReplicas, maxReplicas].
Without behavior: the highest recommendation of the scale-down window, scale-up limited
to max(2 * current, 4).
Invariant: per-HPA history (recommendations, scale events) lives in `History`, trimmed
to the longest window/period; time is passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from k8py.api.types import Obj

DEFAULT_DOWNSCALE_WINDOW = 300.0
_BIG = 2 ** 31 - 1
_DEFAULT_UP = {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
               "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                            {"type": "Percent", "value": 100, "periodSeconds": 15}]}
_DEFAULT_DOWN = {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}

STABILIZED_DOWN = ("ScaleDownStabilized",
                   "recent recommendations were higher than current one, applying the highest recent recommendation")
STABILIZED_UP = ("ScaleUpStabilized",
                 "recent recommendations were lower than current one, applying the lowest recent recommendation")
READY = ("ReadyForNewScale", "recommended size matches current size")
WITHIN = ("DesiredWithinRange", "the desired count is within the acceptable range")
TOO_MANY = ("TooManyReplicas", "the desired replica count is more than the maximum replica count")
TOO_FEW = ("TooFewReplicas", "the desired replica count is less than the minimum replica count")
UP_LIMIT = ("ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate")
DOWN_LIMIT = ("ScaleDownLimit", "the desired replica count is decreasing faster than the maximum scale rate")


@dataclass
class History:
    recommendations: list[tuple[float, int]] = field(default_factory=list)
    up_events: list[tuple[float, int]] = field(default_factory=list)
    down_events: list[tuple[float, int]] = field(default_factory=list)

    def record_scale(self, now: float, old: int, new: int) -> None:
        if new > old:
            self.up_events.append((now, new - old))
        elif new < old:
            self.down_events.append((now, old - new))
        keep = now - 3600
        self.up_events = [e for e in self.up_events if e[0] > keep]
        self.down_events = [e for e in self.down_events if e[0] > keep]


@dataclass
class Outcome:
    replicas: int
    able: tuple[str, str]  # AbleToScale True reason, message
    limited: tuple[str, str]  # ScalingLimited reason, message (True unless DesiredWithinRange)


def rules(behavior: Obj | None, direction: str, downscale_window: float) -> Obj:
    """A direction's scaling rules with unset fields defaulted."""
    given = dict((behavior or {}).get(direction) or {})
    base = _DEFAULT_UP if direction == "scaleUp" else _DEFAULT_DOWN
    out = {**base, **{k: v for k, v in given.items() if v is not None}}
    if out.get("stabilizationWindowSeconds") is None:
        out["stabilizationWindowSeconds"] = downscale_window
    return out


def _changed(period: float, events: list[tuple[float, int]], now: float) -> int:
    return sum(n for t, n in events if t > now - period)


def scale_up_limit(current: int, h: History, r: Obj, now: float) -> int:
    if r.get("selectPolicy") == "Disabled":
        return current
    pick, result = (min, _BIG) if r.get("selectPolicy") == "Min" else (max, -_BIG)
    for p in r.get("policies") or []:
        period = float(p.get("periodSeconds") or 0)
        start = current - _changed(period, h.up_events, now) + _changed(period, h.down_events, now)
        value = int(p.get("value") or 0)
        proposed = start + value if p.get("type") == "Pods" else math.ceil(start * (1 + value / 100))
        result = pick(result, proposed)
    return result


def scale_down_limit(current: int, h: History, r: Obj, now: float) -> int:
    if r.get("selectPolicy") == "Disabled":
        return current
    pick, result = (max, -_BIG) if r.get("selectPolicy") == "Min" else (min, _BIG)
    for p in r.get("policies") or []:
        period = float(p.get("periodSeconds") or 0)
        start = current - _changed(period, h.up_events, now) + _changed(period, h.down_events, now)
        value = int(p.get("value") or 0)
        proposed = start - value if p.get("type") == "Pods" else int(start * (1 - value / 100))
        result = pick(result, proposed)
    return result


def _stabilize(h: History, current: int, desired: int, up_window: float, down_window: float,
               now: float) -> int:
    up, down = desired, desired
    for t, rec in h.recommendations:
        if t > now - up_window:
            up = min(up, rec)
        if t > now - down_window:
            down = max(down, rec)
    h.recommendations = [x for x in h.recommendations if x[0] > now - max(up_window, down_window)]
    h.recommendations.append((now, desired))
    return min(max(current, up), down)


def normalize(h: History, behavior: Obj | None, current: int, desired: int, lo: int, hi: int, now: float,
              downscale_window: float = DEFAULT_DOWNSCALE_WINDOW) -> Outcome:
    """The replica count to set for a metric proposal `desired` (before min/max)."""
    if behavior is None:
        stable = _stabilize(h, current, desired, 0.0, downscale_window, now)
        able = READY if stable == desired else STABILIZED_DOWN
        up_cap = max(2 * current, 4)
        top, top_why = (up_cap, UP_LIMIT) if up_cap < hi else (hi, TOO_MANY)
        if stable < lo:
            return Outcome(lo, able, TOO_FEW)
        if stable > top:
            return Outcome(top, able, top_why)
        return Outcome(stable, able, WITHIN)
    up_r, down_r = rules(behavior, "scaleUp", downscale_window), rules(behavior, "scaleDown", downscale_window)
    stable = _stabilize(h, current, desired, float(up_r["stabilizationWindowSeconds"]),
                        float(down_r["stabilizationWindowSeconds"]), now)
    able = READY if stable == desired else (STABILIZED_UP if stable < desired else STABILIZED_DOWN)
    if stable > current:
        limit = max(current, scale_up_limit(current, h, up_r, now))
        top, why = (limit, UP_LIMIT) if hi > limit else (hi, TOO_MANY)
        return Outcome(top, able, why) if stable > top else Outcome(stable, able, WITHIN)
    if stable < current:
        limit = min(current, scale_down_limit(current, h, down_r, now))
        bottom, why = (limit, DOWN_LIMIT) if lo < limit else (lo, TOO_FEW)
        return Outcome(bottom, able, why) if stable < bottom else Outcome(stable, able, WITHIN)
    return Outcome(stable, able, WITHIN)
