"""The NetworkPolicy enforcer as a component: `run(ctx)` keeps this node's table
`inet k8py-netpol[-<id>]` in step with NetworkPolicies, Pods and Namespaces until
cancelled, next to the service proxy (in `k8py server`'s embedded node, and in every
`k8py agent`, node hosts included).

It needs root and nftables (it says what is missing and returns otherwise), and bridged
pod-to-pod frames to reach the IPv4 hooks (br_netfilter's `bridge-nf-call-iptables`, set
to 1 in this network namespace when it is 0). Invariant: on exit the table is removed.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from k8py.component import ClusterContext, node_to_run_on
from k8py.netpol.controller import NetpolController

log = logging.getLogger(__name__)

BRIDGE_NF = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")


def table_name(ident: str) -> str:
    return "k8py-netpol" + (f"-{ident}" if ident else "")


def missing_requirements() -> list[str]:
    out = []
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        out.append("root")
    if shutil.which("nft") is None:
        out.append("nftables (apt install nftables)")
    return out


def ensure_bridge_netfilter() -> bool:
    """Bridged IPv4 frames go through the inet hooks in this network namespace."""
    try:
        if BRIDGE_NF.read_text().strip() != "1":
            BRIDGE_NF.write_text("1")
        return True
    except OSError as e:
        log.warning("netpol: cannot filter pod-to-pod traffic on the same node (br_netfilter: %s)", e)
        return False


def delete_table(table: str) -> None:
    if shutil.which("nft"):
        subprocess.run(["nft", "delete", "table", "inet", table], capture_output=True, check=False)


async def run(ctx: ClusterContext) -> None:
    node = node_to_run_on(ctx, "the NetworkPolicy enforcer", missing_requirements())
    if node is None:
        return
    table = table_name(node.ident)
    ensure_bridge_netfilter()
    try:
        client = (ctx.policy_client or ctx.client)()  # as the node's policy agent (it reads every pod)
        await NetpolController(client, node.name, table, clock=ctx.clock).run()
    finally:
        delete_table(table)
