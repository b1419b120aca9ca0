"""ControllerManager: every controller on one informer factory, end to end."""

from __future__ import annotations

import asyncio
from typing import Any

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
    assert await c.client.get_or_none("storageclasses", "local-path") is not None
    await c.client.delete("deployments", "web", "default")

    async def collected() -> bool:
        return not await c.list("replicasets") and not await c.list("pods")

    await c.until(collected, "replica set and pods collected")

    async def emptied() -> bool:
        ep = await c.client.get_or_none("endpoints", "web", "default")
        return ep is not None and not ep.get("subsets")

    await c.until(emptied, "endpoints emptied")
