"""Controller expectations, as Kubernetes' ControllerExpectations and
UIDTrackingControllerExpectations.

A controller that creates or deletes N pods records that it expects to see N
adds/deletes through its informer; until it does (or the record expires) it does
not manage that owner's pods again, so it never creates the same pods twice
before its watch catches up. Invariants: counts never go below zero in effect
(satisfied means <= 0); a record older than `ttl` seconds is treated as satisfied
(so a lost event cannot wedge an owner forever); deletions are tracked by pod key
so that one pod's delete is counted once. Creations are counted by pod key too: each
pod of the owner that was not `known` when the creations were expected counts once,
whether the informer first shows it alive, already terminating, or only its delete
(a pod created and evicted while the watch lagged must not hold the owner until the
TTL).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from k8py.clock import Clock

EXPECTATIONS_TTL = 5 * 60.0


@dataclass
class _Record:
    add: int
    delete: int
    timestamp: float
    deleting_keys: set[str] = field(default_factory=set)
    known: frozenset[str] = frozenset()  # the owner's pods when the creations were expected
    seen: set[str] = field(default_factory=set)  # new pods counted as observed creations


class Expectations:
    def __init__(self, clock: Clock, ttl: float = EXPECTATIONS_TTL) -> None:
        self.clock = clock
        self.ttl = ttl
        self._records: dict[str, _Record] = {}

    def satisfied(self, key: str) -> bool:
        r = self._records.get(key)
        if r is None:
            return True  # a new owner, or one whose record was deleted: sync it
        if r.add <= 0 and r.delete <= 0:
            return True
        return self.clock.monotonic() - r.timestamp > self.ttl

    def expect_creations(self, key: str, n: int, known: set[str] | frozenset[str] = frozenset()) -> None:
        """Expect n new pods; `known` are the owner's pod keys already in the cache."""
        self._set(key, n, 0, set())
        self._records[key].known = frozenset(known)

    def expect_deletions(self, key: str, pod_keys: list[str]) -> None:
        self._set(key, 0, len(pod_keys), set(pod_keys))

    def expect(self, key: str, adds: int, deleting: list[str], known: set[str] | frozenset[str]) -> None:
        """Creations and deletions at once (a DaemonSet does both in one sync)."""
        self._set(key, adds, len(deleting), set(deleting))
        self._records[key].known = frozenset(known)

    def _set(self, key: str, add: int, delete: int, keys: set[str]) -> None:
        self._records[key] = _Record(add, delete, self.clock.monotonic(), keys)

    def creation_observed(self, key: str, pod_key: str | None = None) -> None:
        """One expected creation happened (pod_key: the pod seen; None: a creation that
        will never be seen, e.g. one that failed or was skipped)."""
        r = self._records.get(key)
        if r is None or r.add <= 0:
            return
        if pod_key is not None:
            if pod_key in r.known or pod_key in r.seen:
                return
            r.seen.add(pod_key)
        r.add -= 1

    def deletion_observed(self, key: str, pod_key: str) -> None:
        r = self._records.get(key)
        if r is not None and pod_key in r.deleting_keys:
            r.deleting_keys.discard(pod_key)
            r.delete -= 1

    def pod_deleted(self, key: str, pod_key: str) -> None:
        """The informer shows a pod of the owner deleted: an expected deletion, and an
        expected creation too if the pod was never seen alive."""
        self.deletion_observed(key, pod_key)
        self.creation_observed(key, pod_key)

    def delete(self, key: str) -> None:
        self._records.pop(key, None)

    def pending(self, key: str) -> tuple[int, int]:
        """(adds, deletes) still expected (for tests and logs)."""
        r = self._records.get(key)
        return (0, 0) if r is None else (max(r.add, 0), max(r.delete, 0))
