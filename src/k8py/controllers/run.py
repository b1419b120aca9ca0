"""The controller manager as a component: `run(ctx)` runs every controller on one client
until cancelled (`ControllerManager`), with the cluster's options from the context."""

from __future__ import annotations

from k8py.component import ClusterContext
from k8py.controllers.localpath import DEFAULT_BASE_DIR
from k8py.controllers.manager import ControllerManager, ControllerManagerOptions


async def run(ctx: ClusterContext) -> None:
    o = ctx.options
    opts = ControllerManagerOptions(lb_pool=o.service_lb_pool, pod_eviction_timeout=o.pod_eviction_timeout,
                                    cluster_cidr=o.cluster_cidr,
                                    storage_base_dir=o.local_storage_dir or DEFAULT_BASE_DIR)
    await ControllerManager(ctx.client(), ctx.clock, opts).run()
