"""Tests of k8py.client.delayqueue: deadlines on a fake clock, replaced, cancelled, closed."""

from __future__ import annotations

from typing import Any

import pytest

from k8py.client.delayqueue import DelayQueue
from k8py.clock import FakeClock

# Steps: ("schedule", key, seconds from the start), ("cancel", key), ("close",),
# ("advance", seconds, keys due so far, keys still pending).
CASES: dict[str, list[tuple[Any, ...]]] = {
    "due at its deadline": [
        ("schedule", "a", 5.0),
        ("advance", 4.9, [], {"a"}),
        ("advance", 0.2, ["a"], set()),
    ],
    "in deadline order": [
        ("schedule", "a", 5.0), ("schedule", "b", 3.0),
        ("advance", 0.0, [], {"a", "b"}),  # the timers start
        ("advance", 10.0, ["b", "a"], set()),
    ],
    "a later deadline replaces an earlier one": [
        ("schedule", "a", 5.0), ("schedule", "a", 10.0),
        ("advance", 6.0, [], {"a"}),
        ("advance", 4.0, ["a"], set()),
    ],
    "an earlier deadline replaces a later one, once": [
        ("schedule", "a", 10.0), ("schedule", "a", 5.0),
        ("advance", 5.0, ["a"], set()),
        ("advance", 10.0, ["a"], set()),
    ],
    "a past deadline is due at once": [
        ("schedule", "a", -1.0),
        ("advance", 0.0, ["a"], set()),
    ],
    "cancelled": [
        ("schedule", "a", 5.0), ("schedule", "b", 5.0), ("cancel", "a"),
        ("advance", 10.0, ["b"], set()),
    ],
    "closed": [
        ("schedule", "a", 5.0), ("close",),
        ("advance", 10.0, [], set()),
    ],
    "due again after a new schedule": [
        ("schedule", "a", 1.0),
        ("advance", 1.0, ["a"], set()),
        ("schedule", "a", 2.0),
        ("advance", 1.0, ["a", "a"], set()),
    ],
}


@pytest.mark.parametrize("steps", CASES.values(), ids=CASES.keys())
async def test_delay_queue(steps: list[tuple[Any, ...]]) -> None:
    clock = FakeClock()
    start = clock.monotonic()
    due: list[str] = []
    q: DelayQueue[str] = DelayQueue(clock, due.append)
    for op, *args in steps:
        if op == "schedule":
            q.schedule(args[0], start + args[1])
            assert q.deadline(args[0]) == start + args[1]
        elif op == "cancel":
            q.cancel(args[0])
            assert args[0] not in q
        elif op == "close":
            q.close()
        else:
            seconds, expected_due, expected_pending = args
            await clock.advance(seconds)
            assert due == expected_due
            assert {k for k in ("a", "b") if k in q} == expected_pending
            assert len(q) == len(expected_pending)
    q.close()
