"""`k8py agent --server URL --token TOKEN [--node-name N]`: a node on another machine.

`--server` may name several servers of the cluster (repeated, or a comma list): the
agent's every connection goes through a local `client.balancer.ServerBalancer` that dials
the server in use and moves to the next when it fails, and the servers the `kubernetes`
Endpoints name are added to its list every 10 s (as k3s's agent load balancer does), so
losing a server neither stops the agent nor restarts its pods.

Runs the node's components (the node agent, the service proxy, the cluster DNS) as
`k8py server` runs its embedded ones, each `run(ctx)`, here on one REST client of the
server. The token is the bearer token the server writes to `<data-dir>/pki/agent-token`
(`--token @file` reads it from a file): a bootstrap identity that can only obtain this
node's credentials (`POST /k8py/v1/node-credentials`); the agent then acts as
`system:node:<name>` with that client certificate, and serves its kubelet endpoint with
the CA-signed serving certificate it got (written under `<root>/pki`). Parsing is cheap: the agent's modules are
imported only when the command runs. SIGTERM/SIGINT cancel the components so they clean
up on the way out (the proxy removes its nftables table, the runtime closes); a component
that crashes stops the others and the command.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from k8py.client.balancer import ServerBalancer
    from k8py.client.client import Client
    from k8py.component import Component, LocalNode, NodeTLS


# The balancer at 127.0.0.1 forwards to any of the servers: their certificates are checked for
# this name, which only the API servers' certificates carry (kubelet certificates name 127.0.0.1
# too, and no node may be named so: apiserver/nodecredentials.py).
API_SERVER_NAME = "kubernetes.default.svc"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", required=True, action="append",
                   help="API server URL, e.g. https://10.0.0.1:6443; several servers of one cluster: repeat "
                        "the flag or list them with commas (the agent also learns them from the `kubernetes` "
                        "endpoints and moves to the next when one fails)")
    p.add_argument("--token", required=True, help="bearer token (the server's pki/agent-token) or @file")
    p.add_argument("--ca-file", default=None, help="the cluster CA (pki/ca.crt of the server's data dir)")
    p.add_argument("--ca-cert-hash", default=None,
                   help="instead of --ca-file: sha256:<hex> of the CA's public key (as kubeadm's "
                        "--discovery-token-ca-cert-hash); the CA is fetched from the server's /cacerts and "
                        "checked against it. Without either the server is not verified (a warning says so)")
    p.add_argument("--node-name", default=None, help="node name (default: the host name)")
    p.add_argument("--backoff-base", type=float, default=10.0, help="crash-loop back-off base seconds (default 10)")
    p.add_argument("--pod-cidr", default="", help="fixed pod CIDR (default: from node IPAM, else 10.42.0.0/24)")
    p.add_argument("--node-ip", default="", help="the address the server reaches this node at (default: the "
                                                 "pod bridge's gateway, right only on the server's machine)")
    p.add_argument("--kubelet-port", type=int, default=10250,
                   help="port of the agent's HTTPS endpoint for logs/exec/port-forward (default 10250; 0: any)")
    p.add_argument("--flannel-backend", choices=("none", "host-gw", "vxlan"), default="none",
                   help="pod routes to other nodes: host-gw (each node's podCIDR via its InternalIP, nodes "
                        "sharing one link, as flannel's host-gw), vxlan (a vxlan device k8py.1 on --node-ip, "
                        "as flannel's vxlan) or none (default)")
    p.add_argument("--node-network", default="", help="with host-gw: the network of the nodes' link; routes "
                                                      "go only through InternalIPs inside it")


def main(ns: argparse.Namespace) -> int:
    from k8py.kubelet.agent import missing_requirements

    logging.basicConfig(level=os.environ.get("K8PY_LOG", "WARNING").upper(), stream=sys.stderr)
    missing = missing_requirements()
    if ns.flannel_backend == "host-gw" and not ns.node_network:
        print("k8py agent: --flannel-backend host-gw needs --node-network CIDR", file=sys.stderr)
        return 2
    if ns.flannel_backend == "vxlan" and not ns.node_ip:
        print("k8py agent: --flannel-backend vxlan needs --node-ip ADDR", file=sys.stderr)
        return 2
    if missing:
        print("k8py agent: cannot run containers here: missing " + ", ".join(missing), file=sys.stderr)
        return 1
    ns.server = server_urls(ns.server)
    token = ns.token
    if token.startswith("@"):
        token = Path(token[1:]).read_text().strip()
    try:
        asyncio.run(_run(ns, token))
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    return 0


def server_urls(flags: list[str]) -> list[str]:
    """The servers of every --server flag (each a URL or a comma list of URLs), in order."""
    return [u.strip() for arg in flags for u in arg.split(",") if u.strip()]


def node_components() -> list[tuple[str, Component]]:
    """The components of a node, in start order."""
    from k8py.dns.run import run as run_dns
    from k8py.kubelet.run import run as run_agent
    from k8py.netpol.run import run as run_netpol
    from k8py.network.run import run as run_routes
    from k8py.proxy.run import run as run_proxy
    return [("agent", run_agent), ("proxy", run_proxy), ("netpol", run_netpol), ("dns", run_dns),
            ("routes", run_routes)]


def local_node(ns: argparse.Namespace) -> LocalNode:
    """This machine's node: the flags over K8PY_AGENT_* (`kubelet.agent.options_from_env`)."""
    from k8py.component import LocalNode
    from k8py.kubelet.agent import options_from_env
    from k8py.kubelet.node import default_node_name

    options, rt = options_from_env()
    return LocalNode(name=ns.node_name or rt["node_name"] or default_node_name(), cluster_cidr=rt["cluster_cidr"],
                     service_cidr=rt["service_cidr"], pod_cidr=ns.pod_cidr or options.pod_cidr,
                     ident=os.environ.get("K8PY_AGENT_ID", ""), node_ip=ns.node_ip, kubelet_port=ns.kubelet_port,
                     backoff_base=ns.backoff_base,
                     node_network=ns.node_network if ns.flannel_backend == "host-gw" else "",
                     flannel_backend=ns.flannel_backend)


def cluster_dns(service_cidr: str) -> str:
    """The cluster DNS Service's address: the service range's .10, as the server makes it."""
    import ipaddress
    return str(ipaddress.ip_network(service_cidr, strict=False).network_address + 10)


async def _run(ns: argparse.Namespace, token: str) -> None:
    from k8py.client.balancer import ServerBalancer
    from k8py.clock import RealClock
    from k8py.component import ClusterContext, ClusterOptions, TokenCredentials

    main = asyncio.current_task()
    assert main is not None
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, main.cancel)
    node = local_node(ns)
    balancer = ServerBalancer(ns.server)  # every request goes through it: it fails over between the servers
    url = await balancer.start()
    client: Client | None = None
    policy: Client | None = None
    try:
        tls = await _bootstrap(ns, url, token, node)
        client = cert_client(url, tls, "node", API_SERVER_NAME)
        policy = cert_client(url, tls, "netpol", API_SERVER_NAME)
        ctx = ClusterContext(clock=RealClock(), client=lambda: client, policy_client=lambda: policy,
                             options=ClusterOptions(cluster_cidr=node.cluster_cidr, service_cidr=node.service_cidr,
                                                    cluster_dns=cluster_dns(node.service_cidr)),
                             server_url=url, credentials=TokenCredentials("", tls.ca_cert), node=node,
                             node_tls=tls)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(_learn_servers(client, balancer), name="k8py-api-servers")
            for name, run in node_components():
                tg.create_task(run(ctx), name=f"k8py-{name}")
    finally:
        for c in (client, policy):
            if c is not None:
                await c.close()
        await balancer.close()


def cert_client(url: str, tls: NodeTLS, name: str, server_hostname: str | None = None) -> Client:
    """A client of the API with the certificate `<name>.crt` beside the node's serving one
    (node: the node itself; netpol: its NetworkPolicy enforcer)."""
    from k8py.client.client import Client
    from k8py.client.rest import RestTransport

    pki = tls.serving_cert.parent
    return Client(RestTransport(url, ca_file=str(tls.ca_cert), cert_file=str(pki / f"{name}.crt"),
                                key_file=str(pki / f"{name}.key"), server_hostname=server_hostname))


async def _learn_servers(client: Client, balancer: ServerBalancer, period: float = 10.0) -> None:
    """Every `period`, the servers the `kubernetes` Endpoints name join the balancer's list."""
    while True:
        try:
            eps = await client.list("endpoints", "default", field_selector="metadata.name=kubernetes")
            balancer.set_learned(
                f"{a['ip']}:{p['port']}" for e in eps.get("items") or [] for sub in e.get("subsets") or []
                for a in sub.get("addresses") or [] for p in sub.get("ports") or [])
        except Exception as e:  # noqa: BLE001 - no server answers now: the next round asks again
            logging.getLogger("k8py.agent").info("could not read the kubernetes endpoints: %s", e)
        await asyncio.sleep(period)


async def _bootstrap(ns: argparse.Namespace, url: str, token: str, node: LocalNode) -> NodeTLS:
    """This node's credentials from the server, with the bootstrap token; written under the
    agent's root (keys 0600). Returns the kubelet endpoint's TLS (node.crt/node.key beside)."""
    from k8py.api.wellknown import NODE_CREDENTIALS_PATH
    from k8py.client.rest import RestTransport
    from k8py.component import NodeTLS
    from k8py.kubelet.agent import options_from_env

    ca_file = ns.ca_file or await _pinned_ca(ns, url)
    boot = RestTransport(url, ca_file=ca_file, token=token, insecure=ca_file is None,
                         server_hostname=API_SERVER_NAME)
    try:
        status, body = await boot.request("POST", NODE_CREDENTIALS_PATH, body={
            "nodeName": node.name, "addresses": [node.node_ip] if node.node_ip else []})
    finally:
        await boot.close()
    if status != 200 or not isinstance(body, dict):
        raise SystemExit(f"k8py agent: the server refused this node's credentials ({status}): {body}")
    options, _ = options_from_env()
    d = Path(options.root_dir) / "pki"
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    for name, field in (("ca.crt", "caCert"), ("node.crt", "clientCert"), ("node.key", "clientKey"),
                        ("kubelet.crt", "servingCert"), ("kubelet.key", "servingKey"),
                        ("netpol.crt", "policyCert"), ("netpol.key", "policyKey")):
        fd = os.open(d / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(body[field])
    return NodeTLS(ca_cert=d / "ca.crt", serving_cert=d / "kubelet.crt", serving_key=d / "kubelet.key")


async def _pinned_ca(ns: argparse.Namespace, url: str) -> str | None:
    """The CA from the server's /cacerts if its hash is `--ca-cert-hash` (written under the
    agent's root); None without a hash (then the bootstrap does not verify the server)."""
    import aiohttp

    from k8py.apiserver.certs import ca_cert_hash
    from k8py.kubelet.agent import options_from_env

    if not ns.ca_cert_hash:
        print("k8py agent: WARNING: neither --ca-file nor --ca-cert-hash: the server is not verified "
              "before the join token is sent", file=sys.stderr, flush=True)
        return None
    async with aiohttp.ClientSession() as s, s.get(url + "/cacerts", ssl=False) as r:
        pem = await r.read()
    try:
        got = ca_cert_hash(pem)
    except ValueError as e:
        raise SystemExit(f"k8py agent: the server's /cacerts is not a certificate: {e}") from None
    if got != ns.ca_cert_hash.strip().lower():
        raise SystemExit(f"k8py agent: the server's CA hash is {got}, not the pinned {ns.ca_cert_hash}: refusing")
    options, _ = options_from_env()
    d = Path(options.root_dir) / "pki"
    d.mkdir(parents=True, exist_ok=True)
    (d / "ca.crt").write_bytes(pem)
    return str(d / "ca.crt")
