"""client.ratelimit: the token bucket (burst at once, then qps per second, FIFO, a
cancelled wait gives its token back), the Client taking a token per request and per
watch start, and the limits the components resolve from the flags."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from k8py.client.client import Client
from k8py.client.ratelimit import (
    CONTROLLER_MANAGER_DEFAULT,
    SCHEDULER_DEFAULT,
    RateLimit,
    TokenBucket,
    bucket,
    resolve,
)
from k8py.clock import FakeClock


class CountingTransport:
    def __init__(self) -> None:
        self.requests = 0
        self.streams = 0

    async def request(self, method: str, path: str, *, query: dict[str, str] | None = None,
                      body: Any = None, content_type: str = "application/json") -> tuple[int, Any]:
        self.requests += 1
        return 200, {"kind": "Status"}

    async def stream(self, path: str, *, query: dict[str, str] | None = None) -> AsyncIterator[dict[str, Any]]:
        self.streams += 1
        yield {"type": "BOOKMARK", "object": {}}

    async def close(self) -> None:
        pass


def test_burst_then_qps() -> None:
    clock = FakeClock()
    b = TokenBucket(2.0, 3, clock)
    assert [b.try_accept() for _ in range(4)] == [True, True, True, False]
    clock._t += 0.5  # one token at 2 QPS
    assert (b.try_accept(), b.try_accept()) == (True, False)
    clock._t += 100  # refills up to the burst, not beyond
    assert b.tokens() == 3.0


def test_reservations_queue_in_order() -> None:
    clock = FakeClock()
    b = TokenBucket(10.0, 1, clock)
    assert [b.reserve() for _ in range(4)] == pytest.approx([0.0, 0.1, 0.2, 0.3])


async def test_wait_sleeps_until_the_token_is_due_and_cancel_returns_it() -> None:
    clock = FakeClock()
    b = TokenBucket(1.0, 1, clock)
    await b.wait()  # the burst
    waiter = asyncio.create_task(b.wait())
    await asyncio.sleep(0)
    assert not waiter.done()
    await clock.advance(0.5)
    assert not waiter.done()
    await clock.advance(0.5)
    assert waiter.done()
    late = asyncio.create_task(b.wait())
    await asyncio.sleep(0)
    late.cancel()
    await asyncio.gather(late, return_exceptions=True)
    assert b.tokens() == pytest.approx(0.0)  # the cancelled waiter's token is back (no debt)


async def test_client_takes_a_token_per_request_and_watch() -> None:
    clock = FakeClock()
    t = CountingTransport()
    c = Client(t).with_rate_limiter(TokenBucket(1.0, 2, clock))
    reqs = [asyncio.create_task(c.get("pods", f"p{i}", "default")) for i in range(3)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert t.requests == 2  # the burst; the third waits for a token
    await clock.advance(1.0)
    await asyncio.gather(*reqs)
    assert t.requests == 3

    async def one_event() -> None:
        async for _ in c.watch("pods"):
            return

    w = asyncio.create_task(one_event())
    for _ in range(5):
        await asyncio.sleep(0)
    assert t.streams == 0  # the watch waits for its token too
    await clock.advance(1.0)
    await w
    assert t.streams == 1


async def test_unlimited_client_never_waits() -> None:
    t = CountingTransport()
    c = Client(t).with_rate_limiter(bucket(RateLimit(-1.0, 0), FakeClock()))
    assert c.rate_limiter is None
    await asyncio.gather(*(c.get("pods", f"p{i}", "default") for i in range(500)))
    assert t.requests == 500


@pytest.mark.parametrize("default, qps, burst, want", [
    (SCHEDULER_DEFAULT, 0.0, 0, RateLimit(50.0, 100)),        # Kubernetes' kube-scheduler defaults
    (CONTROLLER_MANAGER_DEFAULT, 0.0, 0, RateLimit(20.0, 30)),  # kube-controller-manager's
    (CONTROLLER_MANAGER_DEFAULT, 300.0, 0, RateLimit(300.0, 30)),
    (SCHEDULER_DEFAULT, 0.0, 7, RateLimit(50.0, 7)),
    (SCHEDULER_DEFAULT, -1.0, 0, RateLimit(-1.0, 100)),         # negative: no limit
])
def test_resolve(default: RateLimit, qps: float, burst: int, want: RateLimit) -> None:
    assert resolve(default, qps, burst) == want


def test_zero_qps_bucket_is_refused() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0.0, 1, FakeClock())
