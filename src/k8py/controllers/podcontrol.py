"""Creating and deleting an owner's pods under its expectations, as Kubernetes'
PodControl does for the ReplicaSet, Job and DaemonSet controllers.

`create_pods` creates n pods in slow-start batches (1, 2, 4, ...: `slow_start_batch`),
stopping after the first batch with a failure; `delete_pods` deletes pods at once,
each with a uid precondition. Both record events on the owner (SuccessfulCreate,
FailedCreate, SuccessfulDelete) and return the first error rather than raising it,
so that the caller can still write the owner's status.
Invariants: the caller has raised the owner's expectations (keyed by `key_of(owner)`)
before; every creation that did not happen and every deletion of a pod already gone
is marked observed here, so the owner is not held until the expectations expire.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from k8py.api.types import Obj
from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.client.events import NORMAL, WARNING, EventRecorder
from k8py.controllers.controllerutil import key_of, meta
from k8py.controllers.expectations import Expectations


async def slow_start_batch(count: int, initial: int,
                           fn: Callable[[], Awaitable[Any]]) -> tuple[int, BaseException | None]:
    """Call fn `count` times in batches of 1, 2, 4, ... (from `initial`); stop at the
    first batch with a failure. Returns (successes, first error)."""
    remaining = count
    batch = min(remaining, initial)
    successes = 0
    while batch > 0:
        results = await asyncio.gather(*(fn() for _ in range(batch)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        successes += batch - len(errors)
        if errors:
            return successes, errors[0]
        remaining -= batch
        batch = min(2 * batch, remaining)
    return successes, None


async def create_pods(client: Client, recorder: EventRecorder, expectations: Expectations, owner: Obj,
                      n: int, new_pod: Callable[[], Obj]) -> BaseException | None:
    """Create n pods of the owner, `new_pod()` making each."""

    async def create() -> None:
        try:
            pod = await client.create("pods", new_pod())
        except ApiError as e:
            recorder.event(owner, WARNING, "FailedCreate", f"Error creating: {e.body.get('message', e)}")
            raise
        recorder.event(owner, NORMAL, "SuccessfulCreate", f"Created pod: {meta(pod)['name']}")

    created, err = await slow_start_batch(n, 1, create)
    for _ in range(n - created):  # failed, or skipped after a failed batch
        expectations.creation_observed(key_of(owner))
    return err


async def delete_pods(client: Client, recorder: EventRecorder, expectations: Expectations, owner: Obj,
                      pods: list[Obj], *, failed_delete_events: bool = False) -> BaseException | None:
    """Delete pods of the owner; with failed_delete_events, a failure other than
    NotFound is also recorded as a FailedDelete event (as the ReplicaSet controller
    does)."""
    key = key_of(owner)

    async def delete(p: Obj) -> None:
        md = meta(p)
        try:
            await client.delete("pods", md["name"], md.get("namespace"),
                                preconditions={"uid": md["uid"]} if md.get("uid") else None)
        except ApiError as e:
            expectations.deletion_observed(key, key_of(p))
            if e.not_found:
                return
            if failed_delete_events:
                recorder.event(owner, WARNING, "FailedDelete", f"Error deleting: {e.body.get('message', e)}")
            raise
        recorder.event(owner, NORMAL, "SuccessfulDelete", f"Deleted pod: {md['name']}")

    results = await asyncio.gather(*(delete(p) for p in pods), return_exceptions=True)
    return next((r for r in results if isinstance(r, BaseException)), None)
