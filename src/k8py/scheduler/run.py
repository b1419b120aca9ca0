"""The scheduler as a component: `run(ctx)` schedules pods on one client until cancelled."""

from __future__ import annotations

from k8py.component import ClusterContext
from k8py.scheduler.scheduler import Scheduler


async def run(ctx: ClusterContext) -> None:
    await Scheduler(ctx.client(), ctx.clock).run()
