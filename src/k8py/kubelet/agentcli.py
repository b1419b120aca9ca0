"""`k8py agent --server URL --token TOKEN [--node-name N]`: a node agent for another machine.

The token is the bearer token the server writes to `<data-dir>/pki/agent-token`
(`--token @file` reads it from a file). Parsing is cheap: the agent's modules are
imported only when the command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", required=True, help="API server URL, e.g. https://10.0.0.1:6443")
    p.add_argument("--token", required=True, help="bearer token (the server's pki/agent-token) or @file")
    p.add_argument("--ca-file", default=None, help="the cluster CA (default: do not verify the server)")
    p.add_argument("--node-name", default=None, help="node name (default: the host name)")
    p.add_argument("--backoff-base", type=float, default=10.0, help="crash-loop back-off base seconds (default 10)")
    p.add_argument("--pod-cidr", default="", help="fixed pod CIDR (default: from node IPAM, else 10.42.0.0/24)")
    p.add_argument("--node-ip", default="", help="the address the server reaches this node at (default: the "
                                                 "pod bridge's gateway, right only on the server's machine)")
    p.add_argument("--kubelet-port", type=int, default=10250,
                   help="port of the agent's HTTPS endpoint for logs/exec/port-forward (default 10250; 0: any)")


def main(ns: argparse.Namespace) -> int:
    from k8py.client.client import Client
    from k8py.client.rest import RestTransport
    from k8py.clock import RealClock
    from k8py.kubelet.agent import missing_requirements, options_from_env, run_agent
    from k8py.kubelet.node import default_node_name

    logging.basicConfig(level=os.environ.get("K8PY_LOG", "WARNING").upper(), stream=sys.stderr)
    missing = missing_requirements()
    if missing:
        print("k8py agent: cannot run containers here: missing " + ", ".join(missing), file=sys.stderr)
        return 1
    token = ns.token
    if token.startswith("@"):
        token = Path(token[1:]).read_text().strip()
    options, rt = options_from_env()
    options.backoff_base = ns.backoff_base
    options.backoff_max = 300.0 if ns.backoff_base >= 10 else ns.backoff_base * 30
    if ns.pod_cidr:
        options.pod_cidr = ns.pod_cidr
    options.node_ip = ns.node_ip
    options.kubelet_port = ns.kubelet_port
    name = ns.node_name or rt["node_name"] or default_node_name()

    async def go() -> None:
        # SIGTERM/SIGINT cancel the agent, so that its components clean up on the way out
        # (the service proxy removes its nftables table; the runtime closes).
        main = asyncio.current_task()
        assert main is not None
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, main.cancel)
        client = Client(RestTransport(ns.server, ca_file=ns.ca_file, token=token, insecure=ns.ca_file is None))
        try:
            from k8py.proxy.run import missing_requirements as services_missing
            from k8py.proxy.run import run_node_services
            async with asyncio.TaskGroup() as tg:
                tg.create_task(run_agent(client, RealClock(), options, rt, name, serve_token=token))
                if not services_missing():  # the node's service proxy and cluster DNS
                    tg.create_task(run_node_services(client, RealClock(), name, rt["cluster_cidr"], options.pod_cidr,
                                                     cluster_dns=options.cluster_dns,
                                                     cluster_domain=options.cluster_domain,
                                                     ident=os.environ.get("K8PY_AGENT_ID", "")))
        finally:
            await client.close()

    try:
        asyncio.run(go())
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    return 0
