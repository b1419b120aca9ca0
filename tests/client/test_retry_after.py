"""The client sends again a request the server shed (429 with retryAfterSeconds), after that
delay and at most MAX_RETRIES times, as client-go honours Retry-After; other answers,
a disruption budget's 429 among them, come back at once."""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from k8py.client.client import MAX_RETRIES, Client
from k8py.client.errors import ApiError
from k8py.client.ratelimit import TokenBucket
from k8py.clock import FakeClock

SHED = {"kind": "Status", "status": "Failure", "reason": "TooManyRequests", "code": 429,
        "message": "Too many requests, please try again later.", "details": {"retryAfterSeconds": 1}}
BUDGET = {"kind": "Status", "status": "Failure", "reason": "TooManyRequests", "code": 429,
          "message": "Cannot evict pod as it would violate the pod's disruption budget.",
          "details": {"causes": [{"reason": "DisruptionBudget", "message": "needs 1 healthy pods"}],
                      "retryAfterSeconds": 10}}
OK = {"kind": "ConfigMap", "metadata": {"name": "a"}}


class ScriptedTransport:
    """Answers the scripted (status, body) pairs in order, the last one forever."""

    def __init__(self, answers: list[tuple[int, Any]]) -> None:
        self.answers, self.sent = answers, 0

    async def request(self, method: str, path: str, *, query: dict[str, str] | None = None,
                      body: Any = None, content_type: str = "application/json") -> tuple[int, Any]:
        self.sent += 1
        return self.answers[min(self.sent, len(self.answers)) - 1]

    async def stream(self, path: str, *, query: dict[str, str] | None = None) -> AsyncIterator[dict[str, Any]]:
        if False:
            yield {}

    async def close(self) -> None:
        pass


@pytest.mark.parametrize(("answers", "sent", "slept", "error"), [
    ([(429, SHED), (429, SHED), (200, OK)], 3, [1.0, 1.0], None),   # shed twice, then done
    ([(429, SHED)], MAX_RETRIES + 1, [1.0] * MAX_RETRIES, 429),   # gives up after the retries
    ([(429, BUDGET)], 1, [], 429),                                 # a budget's refusal is an answer
    ([(409, {"reason": "Conflict", "details": {"retryAfterSeconds": 1}})], 1, [], 409),
    ([(200, OK)], 1, [], None),
])
async def test_retry_after(answers: list[tuple[int, Any]], sent: int, slept: list[float],
                           error: int | None) -> None:
    clock = FakeClock()
    waits: list[float] = []

    async def fake_sleep(s: float) -> None:  # returns at once, the wait recorded
        waits.append(s)

    clock.sleep = fake_sleep  # type: ignore[method-assign]
    t = ScriptedTransport(answers)
    c = Client(t, clock=clock)  # type: ignore[arg-type]
    if error is None:
        assert await c.get("configmaps", "a", "default") == OK
    else:
        with pytest.raises(ApiError) as e:
            await c.get("configmaps", "a", "default")
        assert e.value.status == error
    assert (t.sent, waits) == (sent, slept)
    # a clone with a limiter of its own (one per controller) keeps the clock
    assert c.with_rate_limiter(TokenBucket(10, 10, clock)).clock is clock
