"""controllers.podcontrol: slow-start batches, and pod creations/deletions that keep the
owner's expectations honest (what did not happen is marked observed)."""

from __future__ import annotations

from typing import Any

import pytest

from k8py.client.errors import ApiError
from k8py.controllers.controllerutil import key_of, new_controller_ref
from k8py.controllers.expectations import Expectations
from k8py.controllers.podcontrol import create_pods, delete_pods, slow_start_batch

from ctrl_helpers import Cluster, pod_template

OWNER: dict[str, Any] = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                         "metadata": {"name": "web", "namespace": "default", "uid": "owner-uid"}}


@pytest.mark.parametrize("count,fail_at,calls,successes", [
    (10, None, 10, 10),   # batches 1, 2, 4, 3
    (10, 1, 1, 0),        # first call fails: nothing more is tried
    (10, 3, 3, 2),        # batch 2 (calls 2-3) fails: batch 3 never starts
    (10, 5, 7, 6),        # batch 3 (calls 4-7) has one failure
    (0, None, 0, 0),
])
async def test_slow_start_batch(count: int, fail_at: int | None, calls: int, successes: int) -> None:
    n = 0

    async def fn() -> None:
        nonlocal n
        n += 1
        if n == fail_at:
            raise RuntimeError("boom")

    ok, err = await slow_start_batch(count, 1, fn)
    assert (n, ok, err is not None) == (calls, successes, fail_at is not None)


def pod(name: str) -> dict[str, Any]:
    t = pod_template({"app": "web"})
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {**t["metadata"], "name": name, "namespace": "default",
                         "ownerReferences": [new_controller_ref(OWNER, "apps/v1", "ReplicaSet")]},
            "spec": t["spec"]}


@pytest.mark.parametrize("names, created, pending_adds, error", [
    (["a", "b", "c"], ["a", "b", "c"], 3, False),  # all created: the informer will observe them
    (["a", "b", "b", "c"], ["a", "b"], 2, True),   # batch 2 fails (b twice): "c" skipped; those two observed
])
async def test_create_pods(cluster: Cluster, names: list[str], created: list[str], pending_adds: int,
                           error: bool) -> None:
    c = cluster
    rec = c.recorder("test")
    exp = Expectations(c.clock)
    exp.expect_creations(key_of(OWNER), len(names))
    todo = iter(names)
    err = await create_pods(c.client, rec, exp, OWNER, len(names), lambda: pod(next(todo)))
    assert (err is not None) == error
    assert sorted(p["metadata"]["name"] for p in await c.list("pods")) == created
    assert exp.pending(key_of(OWNER)) == (pending_adds, 0)
    assert len(rec.for_reason("SuccessfulCreate")) == len(created)
    assert len(rec.for_reason("FailedCreate")) == (1 if error else 0)


@pytest.mark.parametrize("exists, failed_delete_events, pending_deletes, events", [
    (True, False, 1, ["SuccessfulDelete"]),  # deleted: the informer will observe it
    (False, False, 0, []),                   # already gone: observed at once, no error
])
async def test_delete_pods(cluster: Cluster, exists: bool, failed_delete_events: bool, pending_deletes: int,
                           events: list[str]) -> None:
    c = cluster
    rec = c.recorder("test")
    exp = Expectations(c.clock)
    p = await c.client.create("pods", pod("a"))
    if not exists:
        await c.client.delete("pods", "a", "default", grace_period_seconds=0)
    exp.expect_deletions(key_of(OWNER), [key_of(p)])
    err = await delete_pods(c.client, rec, exp, OWNER, [p], failed_delete_events=failed_delete_events)
    assert err is None
    assert exp.pending(key_of(OWNER)) == (0, pending_deletes)
    assert [r for _, _, r, _ in rec.recorded] == events


@pytest.mark.parametrize("failed_delete_events, events", [(False, []), (True, ["FailedDelete"])])
async def test_delete_pods_failure(cluster: Cluster, failed_delete_events: bool, events: list[str]) -> None:
    c = cluster
    rec = c.recorder("test")
    exp = Expectations(c.clock)
    p = await c.client.create("pods", pod("a"))
    stale = {**p, "metadata": {**p["metadata"], "uid": "another-uid"}}  # the precondition fails
    exp.expect_deletions(key_of(OWNER), [key_of(p)])
    err = await delete_pods(c.client, rec, exp, OWNER, [stale], failed_delete_events=failed_delete_events)
    assert isinstance(err, ApiError)
    assert exp.pending(key_of(OWNER)) == (0, 0)
    assert [r for _, _, r, _ in rec.recorded] == events
