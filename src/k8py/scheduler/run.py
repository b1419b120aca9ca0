"""The scheduler as a component of `k8py server`: `run(ctx)` with a ClusterContext
(`ctx.client()`, `ctx.clock`)."""

from __future__ import annotations

from typing import Any

from k8py.scheduler.scheduler import Scheduler


async def run(ctx: Any) -> None:
    await Scheduler(ctx.client(), ctx.clock).run()
