"""`k8py server --simulated-nodes N --node-capacity ...`: N simulated nodes (sim-1..sim-N)
on the server's in-process client. Their podCIDRs come from node IPAM, except for more
than SELF_ASSIGN_ABOVE nodes, which carve their own from the top of the cluster CIDR
(node IPAM's /24s would run out).
"""

from __future__ import annotations

from k8py.component import ClusterContext
from k8py.simnode.addresses import top_down_cidrs
from k8py.simnode.cluster import SimulatedCluster

CLUSTER_CIDR = "10.42.0.0/16"
SELF_ASSIGN_ABOVE = 200  # node IPAM hands out /24s: 256 of them fit in the cluster CIDR


async def run(ctx: ClusterContext) -> None:
    """`k8py server --simulated-nodes N --node-capacity ...`: run N simulated nodes
    (sim-1..sim-N) on the in-process client. Their podCIDRs come from node IPAM."""
    n = ctx.options.simulated_nodes
    if n <= 0:
        return
    cluster = SimulatedCluster(ctx.client(), n, dict(ctx.options.node_capacity), ctx.clock)
    if n > SELF_ASSIGN_ABOVE:
        for node, cidr in zip(cluster.nodes, top_down_cidrs(CLUSTER_CIDR, n)):
            node.set_pod_cidr(cidr)
    await cluster.run()
