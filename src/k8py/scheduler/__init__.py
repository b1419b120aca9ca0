"""k8py.scheduler: places pods on nodes (filter and score plugins, bind via pods/binding).

Entry point for the server: `await run_scheduler(client, clock)`.
"""

from __future__ import annotations

from typing import Any

from k8py.client.client import Client
from k8py.clock import Clock


async def run_scheduler(client: Client, clock: Clock | None = None, **kwargs: Any) -> None:
    """Run the default scheduler until cancelled (kwargs go to `Scheduler`)."""
    from k8py.scheduler.scheduler import Scheduler

    await Scheduler(client, clock, **kwargs).run()
