"""`k8py kubelet`: the embedded node's components (agent, proxy, DNS, routes) in a process of
their own, as the supervisor (`cli.supervisor`) starts it beside the API server.

It runs them as `k8py agent` does on a node host, each `<component>/run.py:run(ctx)`, on
one REST client of the API server at K8PY_SERVER_URL acting as `system:node:<name>`, with
credentials minted here from the cluster CA in `<data-dir>/pki` (written under the agent's
root, keys 0600), and serves the kubelet endpoint (logs, exec, port-forward) on any free
port, which the API server's node proxy reaches through the Node's status. The node is the
one `k8py server` embeds (`server.embedded_node`: K8PY_AGENT_* over the flags); its
endpoint's port is K8PY_KUBELET_PORT (the supervisor keeps it across starts). It starts
once the API answers; "k8py: kubelet idle" on stdout says it runs nothing. SIGTERM stops
it; SIGINT is ignored (the supervisor keeps the stop order). A component that crashes ends
the process: the supervisor restarts it; components that return (what the host lacks, said
on stderr) leave it idle, as in `k8py server`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import sys
import time
from typing import TYPE_CHECKING

log = logging.getLogger("k8py.kubelet")

if TYPE_CHECKING:
    from k8py.cli.server import ServerArgs
    from k8py.component import LocalNode, NodeTLS


def credentials(args: ServerArgs, node: LocalNode) -> NodeTLS:
    """The node's client and serving certificates, minted from the data dir's CA."""
    from pathlib import Path

    from k8py.apiserver.certs import mint_node_credentials
    from k8py.component import NodeTLS
    from k8py.kubelet.agent import options_from_env

    options, _ = options_from_env()
    d = Path(options.root_dir) / "pki"
    mint_node_credentials(args.data_path / "pki", node.name, [node.node_ip] if node.node_ip else []).write(d)
    os.chmod(d, 0o700)
    return NodeTLS(ca_cert=d / "ca.crt", serving_cert=d / "kubelet.crt", serving_key=d / "kubelet.key")


async def run(args: ServerArgs, url: str) -> None:
    """Run the node's components until cancelled (SIGTERM cancels)."""
    from k8py.cli.agent import cert_client, node_components
    from k8py.cli.controlplane import api_answers, files_exist
    from k8py.cli.server import cluster_options, embedded_node
    from k8py.clock import RealClock
    from k8py.component import ClusterContext, TokenCredentials

    main = asyncio.current_task()
    assert main is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    node = dataclasses.replace(embedded_node(args), kubelet_port=int(os.environ.get("K8PY_KUBELET_PORT") or 0))
    if node.missing:  # nothing of the node can run here: say so now (the supervisor waits for the endpoint)
        print("k8py: kubelet idle: missing " + ", ".join(node.missing), flush=True)
    pki_dir = args.data_path / "pki"
    await files_exist(pki_dir / "ca.crt", pki_dir / "ca.key")  # the API server makes them on its first start
    log.info("kubelet: imports done, PKI there at %.3fs", time.process_time())
    tls = credentials(args, node)
    client, policy = cert_client(url, tls, "node"), cert_client(url, tls, "netpol")
    await api_answers(client)
    log.info("kubelet: API answered (%.3fs CPU)", time.process_time())
    print("k8py: kubelet connected", flush=True)  # the supervisor starts the controllers now
    ctx = ClusterContext(clock=RealClock(), client=lambda: client, policy_client=lambda: policy,
                         options=cluster_options(args), server_url=url,
                         credentials=TokenCredentials("", tls.ca_cert), node=node, node_tls=tls)
    try:
        async with asyncio.TaskGroup() as tg:
            for name, component in node_components():
                tg.create_task(component(ctx), name=f"k8py-{name}")
        print("k8py: kubelet idle", flush=True)
        await asyncio.Event().wait()  # each said why it does not run (no root, no runc ...): idle, as in process
    finally:
        await client.close()
        await policy.close()


def main() -> int:
    from k8py.cli.server import ServerArgs

    logging.basicConfig(level=os.environ.get("K8PY_LOG", "WARNING").upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    args = ServerArgs.from_json(os.environ["K8PY_SERVER_CONFIG"])
    try:
        asyncio.run(run(args, os.environ["K8PY_SERVER_URL"]))
    except asyncio.CancelledError:
        return 0
    return 1
