"""The controller manager as a component: `run(ctx)` runs every controller on one client
until cancelled (`ControllerManager`), with the cluster's options from the context (and
the cluster CA of its credentials, which the root CA publisher puts in every namespace)."""

from __future__ import annotations

from k8py.component import ClusterContext
from k8py.controllers.localpath import DEFAULT_BASE_DIR
from k8py.controllers.manager import ControllerManager, ControllerManagerOptions


async def run(ctx: ClusterContext) -> None:
    o = ctx.options
    ca = ctx.credentials.ca_cert if ctx.credentials is not None else None
    opts = ControllerManagerOptions(lb_pool=o.service_lb_pool, pod_eviction_timeout=o.pod_eviction_timeout,
                                    node_monitor_grace_period=o.node_monitor_grace_period,
                                    cluster_cidr=o.cluster_cidr,
                                    storage_base_dir=o.local_storage_dir or DEFAULT_BASE_DIR,
                                    root_ca=ca.read_text() if ca is not None and ca.exists() else "")
    await ControllerManager(ctx.client(), ctx.clock, opts).run()
