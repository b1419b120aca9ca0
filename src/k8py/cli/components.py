"""The tasks a launcher runs components in: `start` and `stop`.

`start(ctx, components)` runs each `(name, run)` as a task named `k8py-<name>`; a
component that crashes is logged and the others go on. `stop(tasks)` cancels them and
returns once every one has finished. Invariant: components await whatever they start
(informers, workers, event writes), so after `stop` nothing of theirs runs or writes,
and the launcher may close the HTTPS front, the API server and the store.

`elected(lock, run, config)` wraps a component so that it runs only while this server
holds the `kube-system/<lock>` Lease (`client.leaderelection`), as kube-scheduler and
kube-controller-manager do; the holder identity is `<hostname>_<address>:<port>` of
this server's API.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

from k8py.api.wellknown import GROUP_AUTHENTICATED
from k8py.client.events import EventRecorder
from k8py.client.leaderelection import LeaderElectionConfig, LeaderElector
from k8py.component import ClusterContext, Component

log = logging.getLogger("k8py.server")


def start(ctx: ClusterContext, components: Sequence[tuple[str, Component]]) -> list[asyncio.Task[None]]:
    return [asyncio.create_task(_guarded(name, run, ctx), name=f"k8py-{name}") for name, run in components]


async def _guarded(name: str, run: Component, ctx: ClusterContext) -> None:
    try:
        await run(ctx)
    except asyncio.CancelledError:
        raise
    except Exception:  # one broken component must not stop the others
        log.exception("component %s failed", name)


async def stop(tasks: Sequence[asyncio.Task[None]]) -> None:
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def identity(server_url: str) -> str:
    """`myhost_127.0.0.1:6443`: the host and the API address and port of this server."""
    return f"{socket.gethostname()}_{urlsplit(server_url).netloc}"


def elected(lock: str, run: Component, config: LeaderElectionConfig) -> Component:
    """`run`, started while this server holds the Lease `lock` and stopped when it loses it."""
    async def run_elected(ctx: ClusterContext) -> None:
        client = ctx.client()
        recorder = EventRecorder(client, lock, ctx.clock)
        try:
            await LeaderElector(client, ctx.clock, lock, identity(ctx.server_url), config,
                                recorder=recorder).run(lambda: run(ctx))
        finally:
            await recorder.close()
            await client.close()
    return run_elected


def as_user(user: str, run: Component) -> Component:
    """`run` with clients acting as `user` (in system:authenticated) where the context can
    make them (in process); else as the context's client. (It keeps `run`'s name.)"""
    @functools.wraps(run)
    async def run_as(ctx: ClusterContext) -> None:
        make = ctx.client_as
        if make is None:
            await run(ctx)
            return
        await run(dataclasses.replace(ctx, client=lambda: make(user, (GROUP_AUTHENTICATED,))))
    return run_as
