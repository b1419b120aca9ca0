"""The scheduler as a component: `run(ctx)` schedules pods on one client until cancelled,
rate-limited as kube-scheduler's client (50 QPS, burst 100, unless the flags say otherwise);
its Events go through a second client with a bucket of its own, as kube-scheduler's."""

from __future__ import annotations

from k8py.client.ratelimit import SCHEDULER_DEFAULT, bucket, resolve
from k8py.component import ClusterContext
from k8py.scheduler.scheduler import Scheduler


async def run(ctx: ClusterContext) -> None:
    limit = resolve(SCHEDULER_DEFAULT, ctx.options.kube_api_qps, ctx.options.kube_api_burst)
    client, events = ctx.client(), ctx.client()
    await Scheduler(client.with_rate_limiter(bucket(limit, ctx.clock)), ctx.clock,
                    event_client=events.with_rate_limiter(bucket(limit, ctx.clock))).run()
