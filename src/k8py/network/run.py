"""host-gw routing as a component: `run(ctx)` keeps this network namespace's routes to
every other node's podCIDR (`network.hostgw`) until cancelled. It runs next to a node's
agent (`k8py agent --flannel-backend host-gw`) and on the machine of `k8py server
--nodes N` (so the host reaches every pod, host-gw style even when the nodes use vxlan);
with `--flannel-backend vxlan` it keeps the node's vxlan device instead (`network.vxlan`);
without either it returns.
"""

from __future__ import annotations

import os

from k8py.component import ClusterContext, node_to_run_on
from k8py.network.hostgw import HostGwRoutes
from k8py.network.vxlan import VxlanNetwork


async def run(ctx: ClusterContext) -> None:
    if ctx.node is None or not (ctx.node.node_network or ctx.node.flannel_backend == "vxlan"):
        return
    node = node_to_run_on(ctx, "pod routes", [] if os.geteuid() == 0 else ["root"])
    if node is None:
        return
    if node.flannel_backend == "vxlan":
        await VxlanNetwork(ctx.client(), ctx.clock, node.name, node.node_ip).run()
        return
    await HostGwRoutes(ctx.client(), ctx.clock, node.name, node.route_dev, node.node_network).run()
