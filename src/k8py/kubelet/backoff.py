"""Per-key exponential back-off, as client-go's flowcontrol.Backoff used by the kubelet.

`in_backoff_since(key, t)`: still waiting if `now - t < current delay` (t is when the
container finished); `next(key, t)` starts at `base` and doubles up to `max`. An entry
whose last update is older than 2*max is forgotten (the container ran fine long enough).
Invariant: all time comes from the injected Clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from k8py.clock import Clock

DEFAULT_BASE = 10.0
DEFAULT_MAX = 300.0


@dataclass
class _Entry:
    delay: float
    last_update: float


class Backoff:
    def __init__(self, clock: Clock, base: float = DEFAULT_BASE, max_delay: float = DEFAULT_MAX) -> None:
        self.clock = clock
        self.base = base
        self.max = max(max_delay, base)
        self._entries: dict[str, _Entry] = {}

    def _expired(self, e: _Entry, t: float) -> bool:
        return t - e.last_update > 2 * self.max

    def get(self, key: str) -> float:
        e = self._entries.get(key)
        return e.delay if e else 0.0

    def in_backoff_since(self, key: str, t: float) -> bool:
        e = self._entries.get(key)
        if e is None or self._expired(e, t):
            return False
        return self.clock.now() - t < e.delay

    def remaining(self, key: str, t: float) -> float:
        e = self._entries.get(key)
        if e is None:
            return 0.0
        return max(0.0, e.delay - (self.clock.now() - t))

    def next(self, key: str, t: float) -> float:
        e = self._entries.get(key)
        if e is None or self._expired(e, t):
            e = _Entry(self.base, t)
        else:
            e = _Entry(min(e.delay * 2, self.max), t)
        self._entries[key] = e
        return e.delay

    def forget_prefix(self, prefix: str) -> None:
        for k in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[k]
