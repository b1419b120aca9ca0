"""kube-system mirror pods of the supervised processes, against an in-process API server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from k8py.cli.mirrorpods import MirrorPods, Static
from k8py.client.client import Client
from k8py.clock import RealClock

from helpers.api import start_api

NODE = "cp-1"


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    api, c = await start_api(RealClock())
    await c.create("nodes", {"metadata": {"name": NODE}, "status": {
        "addresses": [{"type": "InternalIP", "address": "10.9.8.7"}]}})
    try:
        yield c
    finally:
        await api.close()


async def pods(client: Client) -> dict[str, dict]:  # type: ignore[type-arg]
    return {p["metadata"]["name"]: p for p in (await client.list("pods", "kube-system"))["items"]}


async def test_mirror_pods_follow_the_supervisor(client: Client) -> None:
    statics = [Static("kube-apiserver", 101, 0, 1_700_000_000.0),
               Static("kube-scheduler", 102, 2, 1_700_000_100.0),
               Static("kube-proxy", 101, 0, 1_700_000_000.0, "node")]
    mirrors = MirrorPods(client, NODE, lambda: statics)
    await mirrors.sync()
    got = await pods(client)
    assert sorted(got) == ["kube-apiserver-cp-1", "kube-proxy-cp-1", "kube-scheduler-cp-1"]
    sched = got["kube-scheduler-cp-1"]
    assert "kubernetes.io/config.mirror" in sched["metadata"]["annotations"]
    assert sched["spec"]["nodeName"] == NODE and sched["status"]["phase"] == "Running"
    cs = sched["status"]["containerStatuses"][0]
    assert cs["restartCount"] == 2 and cs["ready"] and cs["state"]["running"]["startedAt"] == "2023-11-14T22:15:00Z"
    assert sched["status"]["hostIP"] == "10.9.8.7"

    # A restart, a process waiting for its restart, a part gone: the next round shows them.
    statics[1] = Static("kube-scheduler", 103, 3, 1_700_000_200.0)
    statics[0] = Static("kube-apiserver", 101, 0, 1_700_000_000.0, running=False)
    del statics[2]
    await mirrors.sync()
    got = await pods(client)
    assert sorted(got) == ["kube-apiserver-cp-1", "kube-scheduler-cp-1"]
    assert got["kube-scheduler-cp-1"]["status"]["containerStatuses"][0]["restartCount"] == 3
    api_cs = got["kube-apiserver-cp-1"]["status"]["containerStatuses"][0]
    assert not api_cs["ready"] and api_cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"


async def test_a_deleted_mirror_pod_is_made_again(client: Client) -> None:
    mirrors = MirrorPods(client, NODE, lambda: [Static("kube-controller-manager", 7, 1, 1_700_000_000.0)])
    await mirrors.sync()
    old = (await pods(client))["kube-controller-manager-cp-1"]
    await client.delete("pods", "kube-controller-manager-cp-1", "kube-system")  # graceful: it is bound to a node
    await mirrors.sync()
    new = (await pods(client))["kube-controller-manager-cp-1"]
    assert new["metadata"]["uid"] != old["metadata"]["uid"] and not new["metadata"].get("deletionTimestamp")
    assert new["status"]["containerStatuses"][0]["restartCount"] == 1
