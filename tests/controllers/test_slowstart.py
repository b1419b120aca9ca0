"""Slow-start batches in the ReplicaSet and Job controllers (as Kubernetes'
slowStartBatch): pods are created in batches of 1, 2, 4, ...; the first batch with a
failed create is the last of the sync; the expectations are lowered for every pod not
created, so the owner is synced again as soon as the informer has seen the pods that
were, and ends with exactly the pods it wants (none created twice)."""

from __future__ import annotations

from typing import Any

import pytest

from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.controllers.base import Controller
from k8py.controllers.job import JobController
from k8py.controllers.replicaset import ReplicaSetController

from ctrl_helpers import Cluster, pod_template

Obj = dict[str, Any]


class FlakyClient(Client):
    """Pod creations numbered from 1; those in `fail` are refused (as a full quota)."""

    def __init__(self, client: Client, fail: set[int]) -> None:
        super().__init__(client.transport)
        self.fail = fail
        self.pod_creates = 0

    async def create(self, resource: Any, obj: Obj, namespace: str | None = None) -> Obj:
        if resource == "pods":
            self.pod_creates += 1
            if self.pod_creates in self.fail:
                raise ApiError(403, {"kind": "Status", "reason": "Forbidden",
                                     "message": "exceeded quota: compute"})
        return await super().create(resource, obj, namespace)


def replicaset(n: int) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": n, "selector": {"matchLabels": {"app": "web"}},
                     "template": pod_template({"app": "web"})}}


def job(n: int) -> Obj:
    t = pod_template({"app": "web"})
    t["spec"]["restartPolicy"] = "Never"
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"parallelism": n, "completions": n, "template": t}}


KINDS = {"replicasets": (ReplicaSetController, replicaset, "owners"),
         "jobs": (JobController, job, "jobs")}


@pytest.mark.parametrize("resource", list(KINDS))
@pytest.mark.parametrize("fail, first_calls, first_created", [
    ({1}, 1, 0),     # the first pod fails: nothing more is tried
    ({2}, 3, 2),     # batch 2 (creates 2-3) has a failure: batches 3 and 4 never start
    ({5, 6}, 7, 5),  # batch 3 (creates 4-7) has two
])
async def test_a_failing_create_stops_the_sync_and_expectations_stay_consistent(
        cluster: Cluster, resource: str, fail: set[int], first_calls: int, first_created: int) -> None:
    c = cluster
    cls, make, informer = KINDS[resource]
    client = FlakyClient(c.client, fail)
    ctrl: Controller = cls(client, c.factory, c.clock, c.recorder(cls.name))
    c.factory.start()
    await c.client.create(resource, make(10))
    await c.until(lambda: getattr(ctrl, informer).get("default", "web"), "the owner in the informer")

    with pytest.raises(ApiError):
        await ctrl.sync("default/web")
    assert client.pod_creates == first_calls
    assert len(await c.list("pods")) == first_created
    exp = ctrl.expectations  # type: ignore[attr-defined]
    assert exp.pending("default/web")[0] <= first_created  # the 10 - first_created never made are observed
    await c.until(lambda: exp.satisfied("default/web"), "creations observed")

    async def caught_up() -> bool:  # the informer has the owner's status the last sync wrote
        current = await c.client.get(resource, "web", "default")
        seen = getattr(ctrl, informer).get("default", "web")
        return bool(seen["metadata"]["resourceVersion"] == current["metadata"]["resourceVersion"])

    await c.until(caught_up, "the owner's status in the informer")
    await ctrl.sync("default/web")  # no failure now: the rest, in batches 1, 2, 4, ...
    assert len(await c.list("pods")) == 10
    assert client.pod_creates == first_calls + 10 - first_created
    await c.until(lambda: exp.satisfied("default/web"), "creations observed")
    await c.until(caught_up, "the owner's status in the informer")
    await ctrl.sync("default/web")
    assert len(await c.list("pods")) == 10  # nothing more: no pod created twice
