"""The ingress controller as a component: `run(ctx)` serves the cluster's Ingresses with
k8py's own nginx (config, pid, logs and certificates in `ctx.options.ingress_dir`,
under the data dir) on the ingress address (default: the last address of the service
LoadBalancer pool, 127.0.100.254, ports 80 and 443), until cancelled; then nginx stops.

`k8py server` runs it next to the embedded node agent (nginx proxies to pod addresses,
which that node routes); without root, nginx or a node it says what is missing and returns.
"""

from __future__ import annotations

import ipaddress
import os

from k8py.component import ClusterContext, ClusterOptions, node_to_run_on
from k8py.ingress.controller import IngressController
from k8py.ingress.nginx import Nginx, nginx_binary
from k8py.ingress.render import Settings


def missing_requirements() -> list[str]:
    missing = []
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        missing.append("root")
    if nginx_binary() is None:
        missing.append("nginx (apt-get install nginx-light)")
    return missing


def settings(o: ClusterOptions) -> Settings:
    address = o.ingress_address
    if not address:
        pool = ipaddress.ip_network(o.service_lb_pool, strict=False)
        address = str(pool.broadcast_address - 1)
    return Settings(address=address, http_port=o.ingress_http_port, https_port=o.ingress_https_port,
                    prefix=o.ingress_dir, certs_dir=os.path.join(o.ingress_dir, "certs"))


async def run(ctx: ClusterContext) -> None:
    if not ctx.options.ingress_dir:
        return
    if node_to_run_on(ctx, "the ingress controller", missing_requirements()) is None:
        return
    s = settings(ctx.options)
    binary = nginx_binary()
    assert binary is not None
    await IngressController(ctx.client(), ctx.clock, s, Nginx(s, binary)).run()
