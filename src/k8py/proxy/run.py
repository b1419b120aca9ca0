"""The node's service components: the service proxy and the cluster DNS, next to the
node agent (same node name, same CIDRs), in `k8py server` and in `k8py agent`.

Both need root and nftables; without them this says what is missing and returns.
The DNS listens on the node's bridge address (the first address of its pod CIDR)
once the agent has configured it, and publishes itself as kube-dns. Invariant: on
exit the node's nftables table is removed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import shutil
import sys
from typing import Any

from k8py.dns.clusterdns import ClusterDNS
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


async def _pod_cidr(client: Any, node: str, clock: Any) -> str:
    while True:
        n = await client.get_or_none("nodes", node)
        cidr = ((n or {}).get("spec") or {}).get("podCIDR")
        if cidr:
            return str(cidr)
        await clock.sleep(0.2)


def _address_is_local(ip: str) -> bool:
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((ip, 0))
            return True
        except OSError:
            return False


async def _serve_dns(dns: ClusterDNS, clock: Any) -> None:
    """Serve once the agent has put the address on the bridge."""
    while not _address_is_local(dns.listen_ip):
        await clock.sleep(0.2)
    await dns.run()


async def run_node_services(client: Any, clock: Any, node: str, cluster_cidr: str, pod_cidr: str = "", *,
                            cluster_dns: str = "10.43.0.10", cluster_domain: str = "cluster.local",
                            ident: str = "") -> None:
    """The proxy and the DNS of one node, until cancelled; removes the node's table on exit.
    `pod_cidr` "" means: the node's spec.podCIDR once the node IPAM controller set it."""
    table = table_name(ident)
    proxier = Proxier(client, node, cluster_cidr, clock=clock, table=table)
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(proxier.run())
            cidr = pod_cidr or await _pod_cidr(client, node, clock)
            gateway = str(ipaddress.ip_network(cidr, strict=False).network_address + 1)
            dns = ClusterDNS(client, node, gateway, port=53, service_ip=cluster_dns, zone=cluster_domain,
                             upstreams=_upstreams(), clock=clock)
            tg.create_task(_serve_dns(dns, clock))
    finally:
        nft.delete_table(table)


async def run_in_server(ctx: Any) -> None:
    """The `k8py server` component, next to the embedded node agent."""
    from k8py.kubelet.agent import missing_requirements as agent_missing
    from k8py.kubelet.agent import options_from_env
    from k8py.kubelet.node import default_node_name

    missing = missing_requirements()
    if missing or agent_missing():
        print("k8py: running without the service proxy and cluster DNS: missing "
              + ", ".join(missing or agent_missing()), file=sys.stderr, flush=True)
        return
    options, rt = options_from_env()
    cfg = ctx.api.config  # apiserver.config.ApiServerConfig
    cluster_cidr = rt["cluster_cidr"] if "K8PY_AGENT_CLUSTER_CIDR" in os.environ else cfg.cluster_cidr
    await run_node_services(ctx.client(), ctx.clock, rt["node_name"] or default_node_name(), cluster_cidr,
                            options.pod_cidr,  # as the agent decides
                            cluster_dns=cfg.cluster_dns, cluster_domain=cfg.cluster_domain,
                            ident=os.environ.get("K8PY_AGENT_ID", ""))


def _upstreams() -> list[str] | None:
    """K8PY_DNS_UPSTREAM: comma-separated resolvers for names outside the cluster,
    "none" for no forwarding; default: the host's /etc/resolv.conf."""
    v = os.environ.get("K8PY_DNS_UPSTREAM")
    if v is None:
        return None
    return [] if v.strip().lower() in ("", "none") else [s.strip() for s in v.split(",") if s.strip()]
