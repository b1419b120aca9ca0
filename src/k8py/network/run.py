"""host-gw routing as a component: `run(ctx)` keeps this network namespace's routes to
every other node's podCIDR (`network.hostgw`) until cancelled. It runs next to a node's
agent (`k8py agent --flannel-backend host-gw`) and on the machine of `k8py server
--nodes N` (so the host reaches every pod); without `ctx.node.node_network` it returns.
"""

from __future__ import annotations

import os

from k8py.component import ClusterContext, node_to_run_on
from k8py.network.hostgw import HostGwRoutes


async def run(ctx: ClusterContext) -> None:
    if ctx.node is None or not ctx.node.node_network:
        return
    node = node_to_run_on(ctx, "host-gw routes", [] if os.geteuid() == 0 else ["root"])
    if node is None:
        return
    await HostGwRoutes(ctx.client(), ctx.clock, node.name, node.route_dev, node.node_network).run()
