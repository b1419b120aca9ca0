"""The cluster DNS as a component: `run(ctx)` serves the cluster zone on this process's
node (`ctx.node`) and publishes it as kube-dns, until cancelled, in `k8py server` (next
to the embedded node agent) and in `k8py agent`.

The DNS listens on port 53 of the node's bridge address (the first address of its pod
CIDR) once the node agent has configured it; so it needs root and a node agent on this
host, and without them says what is missing and returns. `K8PY_DNS_UPSTREAM` chooses
the resolvers for names outside the cluster; `K8PY_DNS_WORKERS=N` adds N processes
answering UDP on the same address (SO_REUSEPORT; default 0).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket

from k8py.client.client import Client
from k8py.clock import Clock
from k8py.component import ClusterContext, node_to_run_on
from k8py.dns.clusterdns import ClusterDNS

log = logging.getLogger(__name__)


def missing_requirements() -> list[str]:
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return ["root"]
    return []


async def run(ctx: ClusterContext) -> None:
    node = node_to_run_on(ctx, "the cluster DNS", missing_requirements())
    if node is None:
        return
    client = (ctx.node_client or ctx.client)()  # as the node (system:node:NAME), as in `k8py agent`
    cidr = node.pod_cidr or await _pod_cidr(client, node.name, ctx.clock)
    gateway = str(ipaddress.ip_network(cidr, strict=False).network_address + 1)
    dns = ClusterDNS(client, node.name, gateway, port=53, service_ip=ctx.options.cluster_dns,
                     zone=ctx.options.cluster_domain, upstreams=_upstreams(), clock=ctx.clock,
                     workers=_workers())
    while not _address_is_local(dns.listen_ip):  # the agent puts it on the bridge
        await ctx.clock.sleep(0.2)
    await dns.run()


async def _pod_cidr(client: Client, node: str, clock: Clock) -> str:
    """The node's spec.podCIDR, once the node IPAM controller has set it."""
    while True:
        n = await client.get_or_none("nodes", node)
        cidr = ((n or {}).get("spec") or {}).get("podCIDR")
        if cidr:
            return str(cidr)
        await clock.sleep(0.2)


def _address_is_local(ip: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((ip, 0))
            return True
        except OSError:
            return False


def _workers() -> int:
    """K8PY_DNS_WORKERS: extra answering processes (0 when unset or not a number)."""
    v = os.environ.get("K8PY_DNS_WORKERS", "0").strip()
    return max(0, int(v)) if v.isdigit() else 0


def _upstreams() -> list[str] | None:
    """K8PY_DNS_UPSTREAM: comma-separated resolvers for names outside the cluster,
    "none" for no forwarding; default: the host's /etc/resolv.conf."""
    v = os.environ.get("K8PY_DNS_UPSTREAM")
    if v is None:
        return None
    return [] if v.strip().lower() in ("", "none") else [s.strip() for s in v.split(",") if s.strip()]
