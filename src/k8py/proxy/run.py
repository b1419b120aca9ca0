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
import sys

from k8py.component import ClusterContext
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
    node = ctx.node
    if node is None:
        log.info("no node in this process: no service proxy")
        return
    missing = missing_requirements() or list(node.missing)  # its own, else the node agent's
    if missing:
        print("k8py: running without the service proxy: missing " + ", ".join(missing), file=sys.stderr, flush=True)
        return
    table = table_name(node.ident)
    try:
        await Proxier(ctx.client(), node.name, node.cluster_cidr, clock=ctx.clock, table=table).run()
    finally:
        nft.delete_table(table)
