"""Client-side rate limits: a token bucket per client, as client-go's QPS and burst.

Every request a `Client` makes (and every watch it starts) takes one token first; the
bucket holds at most `burst` tokens and refills at `qps` per second, so a client may
send `burst` requests at once and `qps` per second after that. Kubernetes' defaults
per component are below (`--kube-api-qps`, `--kube-api-burst`); a negative QPS means
no limit, as client-go reads it.

Invariants: tokens are handed out in the order `wait()` is called (a waiter reserves
its token at once and sleeps until it is due); a wait that is cancelled gives its
token back; times come from the injected Clock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from k8py.clock import Clock

log = logging.getLogger(__name__)

THROTTLE_LOG_SECONDS = 1.0  # client-go logs waits longer than this


@dataclass(frozen=True)
class RateLimit:
    """QPS and burst of one client (qps < 0: unlimited)."""

    qps: float
    burst: int


# Kubernetes' defaults: kube-scheduler's clientConnection (50/100), kube-controller-manager's
# --kube-api-qps/--kube-api-burst (20/30, for each controller's client), the kubelet's
# kubeAPIQPS/kubeAPIBurst (50/100). (client-go's own default, for a bare rest.Config, is 5/10.)
SCHEDULER_DEFAULT = RateLimit(50.0, 100)
CONTROLLER_MANAGER_DEFAULT = RateLimit(20.0, 30)
KUBELET_DEFAULT = RateLimit(50.0, 100)
UNLIMITED = RateLimit(-1.0, 0)


def resolve(default: RateLimit, qps: float = 0.0, burst: int = 0) -> RateLimit:
    """The limit flags give: 0 (not set) keeps the component's default for that half."""
    return RateLimit(qps if qps != 0 else default.qps, burst if burst > 0 else default.burst)


class TokenBucket:
    def __init__(self, qps: float, burst: int, clock: Clock) -> None:
        if qps <= 0:
            raise ValueError(f"qps must be positive, not {qps}")
        self.qps = qps
        self.burst = max(1, burst)
        self.clock = clock
        self._tokens = float(self.burst)
        self._last = clock.monotonic()

    def _refill(self) -> None:
        now = self.clock.monotonic()
        if now > self._last:
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
            self._last = now

    def tokens(self) -> float:
        """Tokens available now (negative: owed to waiters)."""
        self._refill()
        return self._tokens

    def try_accept(self) -> bool:
        """Take a token if one is there now."""
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def reserve(self) -> float:
        """Take a token, in debt if need be: the seconds until it is due."""
        self._refill()
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    async def wait(self) -> None:
        delay = self.reserve()
        if delay <= 0:
            return
        if delay > THROTTLE_LOG_SECONDS:
            log.info("waited %.2fs due to client-side throttling (qps %g, burst %d)", delay, self.qps, self.burst)
        try:
            await self.clock.sleep(delay)
        except BaseException:
            self._tokens += 1.0  # cancelled: the token goes back to the bucket
            raise


def bucket(limit: RateLimit, clock: Clock) -> TokenBucket | None:
    """A bucket for the limit, or None when it is unlimited (qps < 0)."""
    return None if limit.qps < 0 else TokenBucket(limit.qps, limit.burst, clock)
