"""The controller manager as a component: `run(ctx)` runs every controller on one client
until cancelled (`ControllerManager`), with the cluster's options from the context (and
the cluster CA of its credentials, which the root CA publisher puts in every namespace); each
controller's client is rate-limited as kube-controller-manager's (20 QPS, burst 30, unless the flags
say otherwise)."""

from __future__ import annotations

from k8py.client.ratelimit import CONTROLLER_MANAGER_DEFAULT, resolve
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
                                    root_ca=ca.read_text() if ca is not None and ca.exists() else "",
                                    rate_limit=resolve(CONTROLLER_MANAGER_DEFAULT, o.kube_api_qps, o.kube_api_burst))
    await ControllerManager(ctx.client(), ctx.clock, opts).run()
