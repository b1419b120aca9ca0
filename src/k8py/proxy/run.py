"""The service proxy as a component: `run(ctx)` keeps the nftables rules of this
process's node (`ctx.node`) in step with Services and EndpointSlices until cancelled,
in `k8py server` (next to the embedded node agent) and in `k8py agent`.

It needs root, nftables and a node agent on this host (the rules lead to the agent's pod
bridge); without them it says what is missing and returns. Invariant: on exit the
node's nftables table is removed.
"""

from __future__ import annotations

import logging
import os
import shutil

from k8py.component import ClusterContext, node_to_run_on
from k8py.proxy import nft
from k8py.proxy.proxier import Proxier

log = logging.getLogger(__name__)


def table_name(ident: str) -> str:
    return "k8py" + (f"-{ident}" if ident else "")


def missing_requirements() -> list[str]:
    out = []
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        out.append("root")
    if shutil.which("nft") is None:
        out.append("nftables (apt install nftables)")
    return out


async def run(ctx: ClusterContext) -> None:
    node = node_to_run_on(ctx, "the service proxy", missing_requirements())
    if node is None:
        return
    table = table_name(node.ident)
    try:
        client = (ctx.node_client or ctx.client)()  # as the node (system:node:NAME), as in `k8py agent`
        await Proxier(client, node.name, node.cluster_cidr, clock=ctx.clock, table=table).run()
    finally:
        nft.delete_table(table)
