"""Cron schedules as Kubernetes' CronJob controller reads them (robfig/cron's
standard parser): five fields — minute, hour, day of month, month, day of week —
with `*`/`?`, lists, ranges, steps and month/day names, or a descriptor (@yearly,
@annually, @monthly, @weekly, @daily, @midnight, @hourly, @every <duration>).

Invariants: `next_after(t)` is the first matching whole minute strictly after t, in
the schedule's time zone; day of month and day of week are ORed when both are
restricted and ANDed when either is `*` (cron's rule); parsing errors raise
ScheduleError with a message saying what is wrong. Pure; no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from k8py.controllers.errors import ScheduleError

_MONTHS = {m: i + 1 for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_DESCRIPTORS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
                "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
                "@hourly": "0 * * * *"}
# (name, low, high, names)
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS), ("day of week", 0, 6, _DAYS))


def _value(s: str, low: int, high: int, names: dict[str, int], field: str) -> int:
    v = names.get(s.lower())
    if v is None:
        if not s.isdigit():
            raise ScheduleError(f"failed to parse int from {s}: invalid {field}")
        v = int(s)
    if v < low or v > high:
        raise ScheduleError(f"{field} value {v} out of range ({low}-{high})")
    return v


def _field(expr: str, low: int, high: int, names: dict[str, int], field: str) -> tuple[frozenset[int], bool]:
    """The values a field matches, and whether it was a star."""
    out: set[int] = set()
    star = False
    for part in expr.split(","):
        rng, _, step_s = part.partition("/")
        step = 1
        if step_s:
            if not step_s.isdigit() or int(step_s) == 0:
                raise ScheduleError(f"invalid step {step_s!r} in {field}")
            step = int(step_s)
        if rng in ("*", "?"):
            lo, hi = low, high
            star = star or not step_s
        elif "-" in rng:
            a, b = rng.split("-", 1)
            lo, hi = _value(a, low, high, names, field), _value(b, low, high, names, field)
            if lo > hi:
                raise ScheduleError(f"beginning of range ({lo}) beyond end of range ({hi}): {part}")
        else:
            lo = _value(rng, low, high, names, field)
            hi = high if step_s else lo
        out.update(range(lo, hi + 1, step))
    if not out:
        raise ScheduleError(f"empty {field}")
    return frozenset(out), star


@dataclass(frozen=True)
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    doms: frozenset[int]
    months: frozenset[int]
    dows: frozenset[int]
    dom_star: bool
    dow_star: bool
    tz: tzinfo
    every: timedelta | None = None

    def _day_matches(self, d: datetime) -> bool:
        dom = d.day in self.doms
        dow = (d.isoweekday() % 7) in self.dows
        if self.dom_star or self.dow_star:
            return dom and dow
        return dom or dow

    def next_after(self, t: float) -> float | None:
        """The next scheduled time (epoch seconds) strictly after t; None if none
        within five years."""
        if self.every is not None:
            step = self.every.total_seconds()
            return (int(t // step) + 1) * step
        d = datetime.fromtimestamp(t, self.tz).replace(second=0, microsecond=0) + timedelta(minutes=1)
        end = d + timedelta(days=5 * 366)
        while d < end:
            if d.month not in self.months:
                y, m = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
                d = d.replace(year=y, month=m, day=1, hour=0, minute=0)
                continue
            if not self._day_matches(d):
                d = (d + timedelta(days=1)).replace(hour=0, minute=0)
                continue
            if d.hour not in self.hours:
                d = (d + timedelta(hours=1)).replace(minute=0)
                continue
            if d.minute not in self.minutes:
                d = d + timedelta(minutes=1)
                continue
            return d.timestamp()
        return None


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(h|m|s|ms)")


def _duration(s: str) -> timedelta:
    total = 0.0
    rest = s
    if not rest:
        raise ScheduleError(f"failed to parse duration {s}")
    while rest:
        m = _DURATION.match(rest)
        if not m:
            raise ScheduleError(f"failed to parse duration {s}")
        n, unit = float(m.group(1)), m.group(2)
        total += n * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
        rest = rest[m.end():]
    if total < 1:
        raise ScheduleError(f"@every duration must be at least 1s: {s}")
    return timedelta(seconds=total)


def parse_schedule(spec: str, time_zone: str | None = None) -> Schedule:
    try:
        tz: tzinfo = ZoneInfo(time_zone) if time_zone else UTC
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {time_zone}") from None
    s = spec.strip()
    if s.startswith("TZ=") or s.startswith("CRON_TZ="):
        raise ScheduleError("CRON_TZ or TZ used in schedule is not supported, use timeZone instead")
    if s.startswith("@every "):
        every = _duration(s[len("@every "):].strip())
        allv: frozenset[int] = frozenset()
        return Schedule(allv, allv, allv, allv, allv, True, True, tz, every)
    if s.startswith("@"):
        if s not in _DESCRIPTORS:
            raise ScheduleError(f"unrecognized descriptor: {s}")
        s = _DESCRIPTORS[s]
    parts = s.split()
    if len(parts) != 5:
        raise ScheduleError(f"expected exactly 5 fields, found {len(parts)}: {spec}")
    vals = [_field(p, lo, hi, names, name) for p, (name, lo, hi, names) in zip(parts, _FIELDS)]
    return Schedule(vals[0][0], vals[1][0], vals[2][0], vals[3][0], vals[4][0], vals[2][1], vals[4][1], tz)
