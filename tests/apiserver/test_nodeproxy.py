"""The API server's node proxy: attached to the API server and the HTTPS front with or
without an in-process agent, serves the local node's pods through the agent's NodeStreams, and
answers clearly for a node it cannot reach."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from k8py.api.request import ApiRequest, ApiResponse
from k8py.api.streaming import LocalNodeHost
from k8py.api.types import Obj
from k8py.apiserver.nodeproxy import ForwardingNodeProxy, attach_to_server
from k8py.apiserver.server import ApiServer
from k8py.client.client import Client

from apiserver_helpers import call


class LocalStreams:
    """A NodeStreams that records what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    async def node_proxy(self, req: ApiRequest, pod: Obj, sub: str) -> ApiResponse:
        self.asked.append((pod["metadata"]["name"], sub))
        return ApiResponse(200, b"local log\n", content_type="text/plain")

    async def upgrade_handler(self, request: Any, req: ApiRequest, user: Any) -> Any:
        raise AssertionError("no upgrade in these tests")


def _pod(name: str, node: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}}


async def test_attaching_registers_the_proxy_without_any_agent(api: ApiServer) -> None:
    front: Any = SimpleNamespace(upgrade_handler=None)
    proxy = attach_to_server(api, front, None)
    assert isinstance(proxy, ForwardingNodeProxy) and isinstance(proxy, LocalNodeHost)
    assert proxy.ssl is None  # no PKI: no remote kubelet is ever dialed unverified
    assert api.node_proxy == proxy.node_proxy
    assert front.upgrade_handler == proxy.upgrade_handler


async def test_local_pods_are_served_in_process_others_forwarded(api: ApiServer, client: Client) -> None:
    proxy = attach_to_server(api, SimpleNamespace(upgrade_handler=None), None)  # type: ignore[arg-type]  # a front stand-in
    local = LocalStreams()
    proxy.serve_local("here", local)
    await client.create("pods", _pod("mine", "here"), "default")
    await client.create("pods", _pod("theirs", "elsewhere"), "default")
    resp = await call(api, "GET", "/api/v1/namespaces/default/pods/mine/log")
    assert (resp.status, resp.body) == (200, b"local log\n") and local.asked == [("mine", "log")]
    resp = await call(api, "GET", "/api/v1/namespaces/default/pods/theirs/log")
    assert resp.status == 400 and resp.body["message"] == 'node "elsewhere" not found'
    await client.create("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "elsewhere"}})
    resp = await call(api, "GET", "/api/v1/namespaces/default/pods/theirs/log")
    assert resp.status == 400
    assert resp.body["message"] == 'node "elsewhere" has no agent endpoint (InternalIP and kubelet port)'
    assert local.asked == [("mine", "log")]


async def test_stats_summary_local_in_process_remote_explained(api: ApiServer, client: Client) -> None:
    proxy = attach_to_server(api, SimpleNamespace(upgrade_handler=None), None)  # type: ignore[arg-type]  # a front stand-in
    assert api.metrics.source == proxy.stats_summary

    class Stats(LocalStreams):
        async def stats_summary(self) -> Obj:
            return {"node": {"nodeName": "here"}, "pods": []}
    proxy.serve_local("here", Stats())
    assert await proxy.stats_summary("here") == {"node": {"nodeName": "here"}, "pods": []}
    assert await proxy.stats_summary("elsewhere") == 'node "elsewhere" not found'
    await client.create("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "elsewhere"},
                                  "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                                             "daemonEndpoints": {"kubeletEndpoint": {"Port": 1}}}})
    msg = await proxy.stats_summary("elsewhere")
    assert isinstance(msg, str) and msg.startswith("cannot reach the agent of node elsewhere")
