"""What a cluster component is and what it gets: `Component` and `ClusterContext`.

A component is `async def run(ctx: ClusterContext) -> None` in `<component>/run.py`: it
runs until cancelled and is started the same way inside `k8py server` (in-process
clients) and in a process of its own (`k8py agent`: REST clients). The launcher in
`k8py.cli` builds the context; a component reads its settings from it and talks to the
cluster only through `ctx.client()`.

Invariants: this module is neutral ground between the launcher and the components, so
it imports no component, no `apiserver` and no `cli` (only `api`, `clock` and, for
types, `client`); what the API server lends a component (its PKI, its node proxy) is
typed here as a small Protocol that the API server's class satisfies.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from k8py.api.streaming import LocalNodeHost
from k8py.clock import Clock

if TYPE_CHECKING:

    from k8py.client.client import Client


@dataclass(frozen=True)
class ClusterOptions:
    """The cluster-wide settings components read (from `k8py server`'s flags)."""

    service_cidr: str = "10.43.0.0/16"  # ClusterIPs; .1 is `kubernetes`, .10 the cluster DNS
    cluster_cidr: str = "10.42.0.0/16"  # pod addresses; each node gets a block of it
    cluster_dns: str = "10.43.0.10"  # the cluster DNS Service's ClusterIP
    cluster_domain: str = "cluster.local"
    service_lb_pool: str = "127.0.100.0/24"  # LoadBalancer addresses (servicelb)
    pod_eviction_timeout: float = 300.0  # seconds a node may be NotReady before its pods are evicted
    node_monitor_grace_period: float = 40.0  # seconds without a heartbeat before a node is NotReady
    local_storage_dir: str = ""  # local-path volumes (where the embedded agent keeps them); "" = the default
    simulated_nodes: int = 0
    ingress_dir: str = ""  # the ingress controller's nginx (config, pid, logs, certificates); "" = not run
    ingress_address: str = ""  # where the ingress listens; "" = the last address of service_lb_pool
    ingress_http_port: int = 80
    ingress_https_port: int = 443
    node_capacity: Mapping[str, str] = field(default_factory=lambda: {"cpu": "4", "memory": "8Gi",
                                                                      "pods": "110"})
    # client-side rate limit of the scheduler's and each controller's client (`client.ratelimit`):
    # 0 = the component's Kubernetes default (scheduler 50/100, controllers 20/30); qps < 0 = none
    kube_api_qps: float = 0.0
    kube_api_burst: int = 0


@dataclass(frozen=True)
class LocalNode:
    """The node this process runs the node components for (agent, proxy, DNS): the
    embedded agent's node in `k8py server`, or `k8py agent`'s."""

    name: str
    cluster_cidr: str = "10.42.0.0/16"  # pod addresses, as this node routes them
    service_cidr: str = "10.43.0.0/16"
    pod_cidr: str = ""  # a fixed pod CIDR; "" = the Node's spec.podCIDR once node IPAM set it
    ident: str = ""  # K8PY_AGENT_ID: tells apart the nftables tables, bridges, cgroups of nodes on one host
    node_ip: str = ""  # the address the server reaches the agent at ("" = the pod bridge's gateway)
    kubelet_port: int = 10250  # the agent's HTTPS endpoint, when it serves one (0: any free port)
    backoff_base: float | None = None  # crash-loop back-off base seconds (None: the agent's default)
    missing: tuple[str, ...] = ()  # what this host lacks to run containers (empty: it can)
    # host-gw pod routing (`network/run.py`): every other node's podCIDR via its InternalIP on
    # `route_dev`, for InternalIPs inside `node_network` only ("": no host-gw routes)
    node_network: str = ""
    route_dev: str = ""
    flannel_backend: str = ""  # "vxlan": pods of other nodes through a vxlan device (`network/vxlan.py`)


class AgentCredentials(Protocol):
    """The PKI material a node agent needs (apiserver.certs.Pki in `k8py server`)."""

    @property
    def agent_token(self) -> str:
        """The bearer token agents and the API server's node proxy present to each other."""
        ...

    @property
    def ca_cert(self) -> Path | None:
        """The cluster CA certificate file (mounted into pods with service-account tokens)."""
        ...


@dataclass(frozen=True)
class TokenCredentials:
    """AgentCredentials from a token alone (`k8py agent --token`)."""

    agent_token: str
    ca_cert: Path | None = None


@dataclass(frozen=True)
class NodeTLS:
    """A node's kubelet endpoint TLS: its serving certificate (signed by the cluster CA) and
    the CA that signed the one client it accepts, the API server's kubelet-client cert."""

    ca_cert: Path
    serving_cert: Path
    serving_key: Path


@dataclass(frozen=True)
class ClusterContext:
    """Everything a component gets. `client()` gives a client of the cluster's API (a new
    in-process one in `k8py server`, the process's one REST client in `k8py agent`); the
    launcher owns its transport."""

    clock: Clock
    client: Callable[[], Client]
    options: ClusterOptions = field(default_factory=ClusterOptions)
    server_url: str = ""
    credentials: AgentCredentials | None = None
    node: LocalNode | None = None  # None: this process runs no node components
    local_streams: LocalNodeHost | None = None  # None: the agent serves its own HTTPS endpoint
    # The node components' client (agent, proxy, DNS), as system:node:<name> in system:nodes (None: `client`).
    node_client: Callable[[], Client] | None = None
    node_tls: NodeTLS | None = None  # the agent's own HTTPS endpoint's TLS (None: it serves none)
    # The NetworkPolicy enforcer's client, as system:k8py:network-policy-agent:<node> (None: `client`).
    policy_client: Callable[[], Client] | None = None
    # A client acting as (user, groups), for components with their own identity (in-process only).
    client_as: Callable[[str, tuple[str, ...]], Client] | None = None


Component = Callable[[ClusterContext], Coroutine[Any, Any, None]]  # `async def run(ctx)`: runs until cancelled


def node_to_run_on(ctx: ClusterContext, what: str, missing: Sequence[str] = ()) -> LocalNode | None:
    """This process's node, if `what` (a node component: "the node agent (no containers)",
    "the service proxy", ...) can run on it; else None, having said why: no node in this
    process (logged), or what the host lacks, the component's own needs first (printed on
    stderr, where a user starting `k8py server` sees it)."""
    node = ctx.node
    if node is None:
        logging.getLogger("k8py.component").info("no node in this process: not running %s", what)
        return None
    lacking = list(missing) or list(node.missing)
    if lacking:
        print(f"k8py: running without {what}: missing " + ", ".join(lacking), file=sys.stderr, flush=True)
        return None
    return node
