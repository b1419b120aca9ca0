"""Periodic store compaction, as kube-apiserver does it (`--etcd-compaction-interval`).

Every `interval` seconds the compactor compacts the store to the revision it observed at
the previous tick, then remembers the current revision for the next one. So history is
kept for at least one interval (watchers that fall behind by less than that can resume),
and the store's log does not grow forever. An interval of 0 disables it.

Invariant: never compacts to a revision it has not observed a full interval earlier; a
failed compaction is logged and retried at the next tick.
"""

from __future__ import annotations

import logging
import re

from k8py.clock import Clock
from k8py.store.protocol import Store

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 300.0  # kube-apiserver's default: 5m
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|h|m|s)")


def parse_duration(text: str) -> float:
    """Seconds from a Go duration (`5m`, `1m30s`, `0`) or a plain number of seconds."""
    s = text.strip()
    try:
        v = float(s)
    except ValueError:
        pos, v = 0, 0.0
        for m in _PART.finditer(s):
            if m.start() != pos:
                break
            v += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
        if pos != len(s) or not s:
            raise ValueError(f"invalid duration {text!r}: want e.g. 5m, 30s, 1h or seconds") from None
    if v < 0:
        raise ValueError(f"invalid duration {text!r}: must not be negative")
    return v


class Compactor:
    def __init__(self, store: Store, clock: Clock, interval: float = DEFAULT_INTERVAL) -> None:
        self.store = store
        self.clock = clock
        self.interval = interval
        self.observed: int | None = None  # the revision seen at the previous tick
        self.compactions = 0

    async def tick(self) -> None:
        """One period: compact to the previous tick's revision; observe the current one."""
        current = await self.store.current_revision()
        target = self.observed
        if target is not None and target > self.store.compacted_revision:
            try:
                await self.store.compact(target)
                self.compactions += 1
                log.info("compacted the store at revision %d", target)
            except Exception:  # noqa: BLE001 - try again next period
                log.exception("compacting the store at revision %d failed", target)
                return
        self.observed = current

    async def run(self) -> None:
        if self.interval <= 0:
            return
        while True:
            await self.clock.sleep(self.interval)
            await self.tick()
