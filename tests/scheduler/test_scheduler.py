"""The scheduler end to end over the real ApiServer (MemoryStore, in-process client,
FakeClock): spreading, the FailedScheduling event and condition, rescheduling once
room is freed, node selectors and taints through the API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from k8py.clock import FakeClock
from k8py.scheduler.scheduler import Scheduler

from helpers.api import eventually, start_api
from sched_helpers import node, pod

Obj = dict[str, Any]


def owned(p: Obj) -> Obj:
    p["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc",
                                         "uid": "rs-uid-1", "controller": True}]
    return p


@pytest.fixture
async def cluster() -> AsyncIterator[tuple[Any, FakeClock, Scheduler]]:
    clock = FakeClock()
    api, client = await start_api(clock)
    for i in range(1, 4):
        n = node(f"n{i}", cpu="4", memory="4Gi")
        await client.create("nodes", n)
    sched = Scheduler(client, clock)
    task = asyncio.create_task(sched.run())
    yield client, clock, sched
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await api.close()


async def node_of(client: Any, name: str) -> str | None:
    p = await client.get("pods", name, "default")
    return p["spec"].get("nodeName")


async def test_replicas_spread_and_unschedulable_pod_gets_event_then_runs(cluster: Any) -> None:
    client, clock, sched = cluster
    for i in range(6):
        await client.create("pods", owned(pod(f"web-{i}", "500m", "1536Mi")), "default")

    async def all_bound() -> bool:
        return all([await node_of(client, f"web-{i}") for i in range(6)])

    await eventually(all_bound)
    placement = [await node_of(client, f"web-{i}") for i in range(6)]
    assert sorted(placement) == ["n1", "n1", "n2", "n2", "n3", "n3"]

    await client.create("pods", pod("big", "100m", "2Gi"), "default")
    want = ("0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available: "
            "3 No preemption victims found for incoming pod.")

    async def failed_event() -> Obj | None:
        evs = (await client.list("events", "default"))["items"]
        return next((e for e in evs if e["reason"] == "FailedScheduling"
                     and e["involvedObject"]["name"] == "big"), None)

    ev = await eventually(failed_event)
    assert ev["message"] == want
    assert ev["type"] == "Warning"
    assert ev["source"]["component"] == "default-scheduler"
    assert ev["involvedObject"]["kind"] == "Pod" and ev["count"] == 1
    assert ev["firstTimestamp"] and ev["lastTimestamp"]

    async def condition() -> Obj | None:
        p = await client.get("pods", "big", "default")
        return next((c for c in p.get("status", {}).get("conditions") or [] if c["type"] == "PodScheduled"), None)

    cond = await eventually(condition)
    assert (cond["status"], cond["reason"], cond["message"]) == ("False", "Unschedulable", want)
    assert await node_of(client, "big") is None
    assert (await client.get("pods", "big", "default"))["status"].get("phase", "Pending") == "Pending"

    # free room on the node of web-0: the pod is retried after its back-off
    freed = placement[0]
    await client.delete("pods", "web-0", "default", grace_period_seconds=0)
    await eventually(lambda: sched.queue.in_backoff("default/big") or not sched.queue.is_unschedulable("default/big"))
    await clock.advance(1.0)
    assert await eventually(lambda: node_of(client, "big")) == freed

    scheduled = [e for e in (await client.list("events", "default"))["items"]
                 if e["reason"] == "Scheduled" and e["involvedObject"]["name"] == "big"]
    await sched.wait_idle()
    scheduled = [e for e in (await client.list("events", "default"))["items"]
                 if e["reason"] == "Scheduled" and e["involvedObject"]["name"] == "big"]
    assert scheduled and scheduled[0]["message"] == f"Successfully assigned default/big to {freed}"


async def test_repeated_failures_aggregate_into_one_event(cluster: Any) -> None:
    client, clock, sched = cluster
    await client.create("pods", pod("huge", "100", None), "default")

    async def events() -> list[Obj]:
        return [e for e in (await client.list("events", "default"))["items"] if e["involvedObject"]["name"] == "huge"]

    await eventually(events)
    await client.patch("nodes", "n1", {"metadata": {"labels": {"x": "y"}}})  # a node change retries the pod
    await eventually(lambda: sched.queue.in_backoff("default/huge") or not sched.queue.is_unschedulable("default/huge"))
    await clock.advance(1.0)
    await eventually(lambda: sched.failed_attempts >= 2)
    await sched.wait_idle()
    evs = await events()
    assert len(evs) == 1
    assert evs[0]["count"] == 2
    assert evs[0]["message"].startswith("0/3 nodes are available: 3 Insufficient cpu.")


async def test_node_selector_and_taints_through_the_api(cluster: Any) -> None:
    client, clock, sched = cluster
    await client.patch("nodes", "n2", {"metadata": {"labels": {"disk": "ssd"}}})
    await client.patch("nodes", "n3",
                       {"spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]}})
    await client.create("pods", pod("ssd", nodeSelector={"disk": "ssd"}), "default")
    assert await eventually(lambda: node_of(client, "ssd")) == "n2"
    await client.create("pods", pod("db", nodeSelector={"kubernetes.io/hostname": "n3"},
                                    tolerations=[{"key": "dedicated", "operator": "Equal", "value": "db"}]), "default")
    assert await eventually(lambda: node_of(client, "db")) == "n3"
    await client.create("pods", pod("nowhere", nodeSelector={"kubernetes.io/hostname": "n3"}), "default")
    ev = await eventually(lambda: _event_for(client, "nowhere"))
    assert ev["message"] == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: db}, 2 node(s) didn't match "
        "Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful "
        "for scheduling.")


async def _event_for(client: Any, name: str) -> Obj | None:
    evs = (await client.list("events", "default"))["items"]
    return next((e for e in evs if e["involvedObject"]["name"] == name and e["reason"] == "FailedScheduling"), None)


async def test_pods_of_other_schedulers_are_left_alone(cluster: Any) -> None:
    client, clock, sched = cluster
    await client.create("pods", pod("mine"), "default")
    await client.create("pods", pod("theirs", schedulerName="other-scheduler"), "default")
    await eventually(lambda: node_of(client, "mine"))
    await sched.wait_idle()
    assert await node_of(client, "theirs") is None


async def test_wait_for_first_consumer_claim_gets_the_selected_node(cluster: Any) -> None:
    client, clock, sched = cluster
    await client.create("storageclasses", {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                                           "metadata": {"name": "local-wait"}, "provisioner": "k8py.io/local-path",
                                           "volumeBindingMode": "WaitForFirstConsumer"})
    await client.create("persistentvolumeclaims", {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": "default"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local-wait",
                 "resources": {"requests": {"storage": "1Gi"}}}}, "default")
    await eventually(lambda: sched.pvcs.get("default", "data") and sched.classes.get(None, "local-wait"))
    await client.create("pods", pod("db", volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]),
                        "default")
    chosen = await eventually(lambda: node_of(client, "db"))
    claim = await client.get("persistentvolumeclaims", "data", "default")
    assert claim["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] == chosen


async def test_claim_bound_to_a_local_volume_pins_the_pod(cluster: Any) -> None:
    client, clock, sched = cluster
    await client.create("persistentvolumes", {
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "local-n3"},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "manual",
                 "hostPath": {"path": "/tmp/k8py-test-none"},
                 "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                     {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n3"]}]}]}}}})
    await client.create("persistentvolumeclaims", {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "pinned", "namespace": "default"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "manual", "volumeName": "local-n3",
                 "resources": {"requests": {"storage": "1Gi"}}}}, "default")
    await eventually(lambda: sched.pvcs.get("default", "pinned") and sched.pvs.get(None, "local-n3"))
    for i in range(3):
        await client.create("pods",
                            pod(f"v{i}", volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "pinned"}}]),
                            "default")
    for i in range(3):
        assert await eventually(lambda i=i: node_of(client, f"v{i}")) == "n3"
