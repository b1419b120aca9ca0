"""ControllerManager: every controller on one informer factory, end to end."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from k8py.controllers.manager import ControllerManager, ControllerManagerOptions

from ctrl_helpers import Cluster, FakeKubelet, pod_template

Obj = dict[str, Any]


async def test_manager_runs_the_controllers_together(cluster: Cluster, tmp_path: Any) -> None:
    c = cluster
    mgr = ControllerManager(c.client, c.clock, ControllerManagerOptions(storage_base_dir=str(tmp_path)))
    expected = {"replicaset", "replicationcontroller", "deployment", "daemonset", "garbagecollector",
                "endpoints", "endpointslice", "persistentvolume-binder"}
    assert expected <= set(mgr.controllers)
    assert {"nodelifecycle", "nodeipam"} <= set(mgr.controllers)  # the node controllers, wired in
    kubelet = FakeKubelet(c)
    kubelet.start()
    c.tasks.append(asyncio.ensure_future(mgr.run()))
    await c.client.create("deployments", {
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": pod_template({"app": "web"})}})
    await c.client.create("services", {"metadata": {"name": "web", "namespace": "default"},
                                       "spec": {"selector": {"app": "web"},
                                                "ports": [{"port": 80, "targetPort": 80}]}})

    async def serving() -> bool:
        ep = await c.client.get_or_none("endpoints", "web", "default")
        return bool(ep) and sum(len(s.get("addresses") or []) for s in ep.get("subsets") or []) == 2

    await c.until(serving, "two ready endpoints")
    await c.until(lambda: _slices_ready(c, 2), "two ready endpoint slice entries")
    await c.until(lambda: _deployment_complete(c), "deployment complete")
    # level-triggered controllers quiesce: nothing is written once the world matches
    await c.clock.advance(1)
    before = await c.api.store.current_revision()
    for _ in range(50):
        await c.clock.advance(1)
    assert await c.api.store.current_revision() == before
    assert await c.client.get_or_none("storageclasses", "local-path") is not None
    await c.client.delete("deployments", "web", "default")

    async def collected() -> bool:
        return not await c.list("replicasets") and not await c.list("pods")

    await c.until(collected, "replica set and pods collected")

    async def emptied() -> bool:
        ep = await c.client.get_or_none("endpoints", "web", "default")
        return ep is not None and not ep.get("subsets")

    await c.until(emptied, "endpoints emptied")


async def _slices_ready(c: Cluster, n: int) -> bool:
    ss = await c.list("endpointslices", label_selector="kubernetes.io/service-name=web")
    return sum(1 for s in ss for e in s.get("endpoints") or [] if e["conditions"]["ready"]) == n


async def _deployment_complete(c: Cluster) -> bool:
    d = await c.client.get("deployments", "web", "default")
    return any(x["type"] == "Progressing" and x["reason"] == "NewReplicaSetAvailable"
               for x in (d.get("status") or {}).get("conditions") or [])


async def test_a_crashed_controller_is_restarted_with_a_fresh_queue(cluster: Cluster) -> None:
    from k8py.controllers.base import Controller

    class Flaky(Controller):
        name = "flaky"
        starts = 0
        synced: list[str] = []

        async def on_start(self) -> None:
            type(self).starts += 1
            if self.starts == 1:
                raise RuntimeError("first start fails")
            self.enqueue("default/x")

        async def sync(self, key: str) -> None:
            self.synced.append(key)

    c = cluster
    mgr = ControllerManager(c.client, c.clock, ControllerManagerOptions(enabled=()))
    flaky = Flaky(c.client, mgr.factory, c.clock)
    mgr.controllers = {"flaky": flaky}
    c.tasks.append(asyncio.ensure_future(mgr.run()))
    await c.until(lambda: Flaky.starts == 1, "first start")
    await c.clock.advance(1.5)
    await c.until(lambda: Flaky.synced == ["default/x"], "restarted and syncing")


@pytest.mark.parametrize("grace,period", [(40.0, 5.0), (10.0, 2.0), (2.0, 1.0)])
async def test_node_lifecycle_gets_the_lab_grace_period(cluster: Cluster, grace: float, period: float) -> None:
    mgr = ControllerManager(cluster.client, cluster.clock, ControllerManagerOptions(
        enabled=("nodelifecycle",), node_monitor_grace_period=grace, pod_eviction_timeout=0))
    ctrl = mgr.controllers["nodelifecycle"]
    assert (ctrl.grace, ctrl.period, ctrl.pod_eviction_timeout) == (grace, period, 0)
