"""Controller expectations: counted once per pod, known pods ignored, TTL."""

from __future__ import annotations

import pytest

from k8py.clock import FakeClock
from k8py.controllers.expectations import EXPECTATIONS_TTL, Expectations


@pytest.mark.parametrize("observed,pending", [
    ([], 2),
    (["ns/old"], 2),                          # a pod that existed before does not count
    (["ns/a"], 1),
    (["ns/a", "ns/a"], 1),                    # seen alive, then its delete: counted once
    (["ns/a", "ns/b"], 0),
    (["ns/a", "ns/b", "ns/c"], 0),            # never below zero
    ([None, "ns/a"], 0),                      # a failed creation (no pod) plus one seen
])
def test_creations_are_counted_once_per_new_pod(observed: list[str | None], pending: int) -> None:
    e = Expectations(FakeClock())
    e.expect_creations("ns/rs", 2, {"ns/old"})
    for k in observed:
        e.creation_observed("ns/rs", k)
    assert e.pending("ns/rs") == (pending, 0)
    assert e.satisfied("ns/rs") is (pending == 0)


def test_deletions_are_tracked_by_pod_key() -> None:
    e = Expectations(FakeClock())
    e.expect_deletions("ns/rs", ["ns/a", "ns/b"])
    e.deletion_observed("ns/rs", "ns/x")  # not one we deleted
    e.deletion_observed("ns/rs", "ns/a")
    e.deletion_observed("ns/rs", "ns/a")  # the same pod again
    assert e.pending("ns/rs") == (0, 1)
    e.deletion_observed("ns/rs", "ns/b")
    assert e.satisfied("ns/rs")


@pytest.mark.parametrize("seen_alive, pending", [
    ([], (1, 1)),       # created and deleted before the watch showed it alive: both observed
    (["ns/a"], (1, 1)),  # seen alive first: its creation counted once
])
def test_a_deleted_pod_is_observed_as_deletion_and_creation(seen_alive: list[str],
                                                             pending: tuple[int, int]) -> None:
    e = Expectations(FakeClock())
    e.expect("ns/ds", 2, ["ns/a", "ns/b"], set())
    for k in seen_alive:
        e.creation_observed("ns/ds", k)
    e.pod_deleted("ns/ds", "ns/a")
    assert e.pending("ns/ds") == pending


async def test_expectations_expire() -> None:
    clock = FakeClock()
    e = Expectations(clock)
    e.expect_creations("ns/rs", 3)
    assert not e.satisfied("ns/rs")
    await clock.advance(EXPECTATIONS_TTL + 1)
    assert e.satisfied("ns/rs")
    assert e.satisfied("ns/unknown")
