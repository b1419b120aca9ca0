"""The node agent as a component: `run(ctx)` runs the agent of this process's node
(`ctx.node`) until cancelled, in `k8py server` (embedded) and in `k8py agent`.

Tunables come from K8PY_AGENT_* (`agent.options_from_env`); the node's name, CIDRs and
flags from `ctx.node`. Its pods' logs and exec/attach/port-forward are served through
the API server it runs in when there is one (`ctx.local_streams`), else on the agent's
own HTTPS endpoint (TLS with its CA-signed serving cert; only the API server's
kubelet-client certificate is accepted). It runs as its node (`ctx.node_client`), its client
rate-limited as the kubelet's (kubeAPIQPS 50, kubeAPIBurst 100). Without root, Linux or runc
(`ctx.node.missing`) it says what is missing and returns.
"""

from __future__ import annotations

from k8py.client.ratelimit import KUBELET_DEFAULT, bucket
from k8py.component import ClusterContext, LocalNode, node_to_run_on
from k8py.kubelet.agent import AgentOptions, NodeAgent, options_from_env, run_agent
from k8py.kubelet.streaming import Streaming


async def run(ctx: ClusterContext) -> None:
    node = node_to_run_on(ctx, "the node agent (no containers)")
    if node is None:
        return
    options, rt = options_from_env()
    _apply(options, rt, ctx, node)
    hook = ctx.local_streams

    def wire(agent: NodeAgent) -> None:
        if hook is not None:
            hook.serve_local(agent.node_name, Streaming(agent.runtime, agent.node_name, agent.clock, hook.get_pod))

    client = (ctx.node_client or ctx.client)().with_rate_limiter(bucket(KUBELET_DEFAULT, ctx.clock))
    await run_agent(client, ctx.clock, options, rt, node.name, on_ready=wire,
                    serve_tls=ctx.node_tls if hook is None else None)


def _apply(options: AgentOptions, rt: dict[str, str], ctx: ClusterContext, node: LocalNode) -> None:
    """What the context says over what the environment says."""
    options.cluster_dns = ctx.options.cluster_dns
    options.cluster_domain = ctx.options.cluster_domain
    rt["service_cidr"] = node.service_cidr
    rt["cluster_cidr"] = node.cluster_cidr
    options.pod_cidr = node.pod_cidr
    options.node_ip = node.node_ip
    options.flannel_backend = node.flannel_backend
    options.kubelet_port = node.kubelet_port
    if node.backoff_base is not None:
        options.backoff_base = node.backoff_base
        options.backoff_max = 300.0 if node.backoff_base >= 10 else node.backoff_base * 30
