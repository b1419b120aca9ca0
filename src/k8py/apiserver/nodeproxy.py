"""The API server's side of pods/log, exec, attach and port-forward: it forwards them to
the node agent of the pod's node.

Pods of the node whose agent runs in this process are served in-process (the agent
offers its `NodeStreams` through `serve_local`: this proxy is a `LocalNodeHost`); pods
on any other node are forwarded to that node's agent endpoint (the kubelet's port) at
`https://<InternalIP>:<daemonEndpoints.kubeletEndpoint.Port>` over TLS that verifies the
kubelet's serving certificate against the cluster CA for the node's name (so an address a
Node claims gets nothing unless it holds that node's certificate) and presents the API
server's kubelet-client certificate (`ssl_context`, `Pki.kubelet_client_ssl_context`):
log responses are streamed back, WebSocket upgrades are relayed message by message
with the subprotocol the agent chose. `attach_to_server(api, front, token)` registers it
with the ApiServer and the HTTPS front (once per server, before components start); it is
the embedded agent's `api.streaming.LocalNodeHost`.
Invariant: a node without an address or port answers a clear 400, never a hang.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import WSMsgType, web

from k8py.api import jsonwire
from k8py.api.request import ApiRequest, ApiResponse
from k8py.api.streaming import (
    POD_UPGRADE_PATH,
    REMOTE_USER_HEADER,
    STATS_SUMMARY_PATH,
    NodeStreams,
    failure_status,
)
from k8py.api.types import Obj

if TYPE_CHECKING:
    from k8py.apiserver.http import HttpFront
    from k8py.apiserver.server import ApiServer

log = logging.getLogger(__name__)


class ForwardingNodeProxy:
    def __init__(self, api: ApiServer, ssl_context: ssl.SSLContext | None) -> None:
        self.api = api
        self.ssl = ssl_context
        self.local: NodeStreams | None = None
        self.local_node = ""

    def serve_local(self, node_name: str, streams: NodeStreams) -> None:
        """Serve pods on `node_name` (the embedded agent's node) in-process with `streams`."""
        self.local = streams
        self.local_node = node_name

    async def get_pod(self, namespace: str, name: str, user: str) -> tuple[int, Obj]:
        resp = await self.api.handle(ApiRequest("GET", f"/api/v1/namespaces/{namespace}/pods/{name}", user=user))
        return resp.status, resp.body

    async def _node_endpoint(self, node_name: str, user: str) -> tuple[str, int] | str:
        resp = await self.api.handle(ApiRequest("GET", f"/api/v1/nodes/{node_name}", user=user))
        if resp.status != 200:
            return f'node "{node_name}" not found'
        st = resp.body.get("status") or {}
        ip = next((a["address"] for a in st.get("addresses") or [] if a.get("type") == "InternalIP"), "")
        port = int(((st.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or 0)
        if not ip or not port:
            return f'node "{node_name}" has no agent endpoint (InternalIP and kubelet port)'
        return ip, port

    def _session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))

    def _ssl(self) -> ssl.SSLContext:
        if self.ssl is None:  # no PKI: refuse to talk to any kubelet rather than unverified
            raise aiohttp.ClientError("no kubelet-client certificate: the API server reaches no remote kubelet")
        return self.ssl

    async def stats_summary(self, node_name: str) -> Obj | str:
        """The Summary API document of `node_name`'s agent (in-process for the local node),
        or a message saying why it cannot be had."""
        if self.local is not None and node_name == self.local_node:
            return await self.local.stats_summary()
        ep = await self._node_endpoint(node_name, "system:admin")
        if isinstance(ep, str):
            return ep
        ip, port = ep
        try:
            async with self._session() as sess, sess.get(f"https://{ip}:{port}{STATS_SUMMARY_PATH}", ssl=self._ssl(),
                                                         server_hostname=node_name,
                                                         timeout=aiohttp.ClientTimeout(total=10)) as resp:
                if resp.status != 200:
                    return f"the agent of node {node_name} answered {resp.status}"
                body: Obj = await resp.json()
                return body
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as e:
            return f"cannot reach the agent of node {node_name}: {e}"

    async def node_proxy(self, req: ApiRequest, pod: Obj, sub: str) -> ApiResponse:
        node = (pod.get("spec") or {}).get("nodeName") or ""
        if self.local is not None and node == self.local_node:
            return await self.local.node_proxy(req, pod, sub)
        if sub != "log":
            return ApiResponse(400, failure_status(400, "BadRequest", "Upgrade request required"))
        ep = await self._node_endpoint(node, req.user)
        if isinstance(ep, str):
            return ApiResponse(400, failure_status(400, "BadRequest", ep))
        ip, port = ep
        sess = self._session()
        try:
            resp = await sess.get(f"https://{ip}:{port}{req.path}", params=req.query, ssl=self._ssl(),
                                  server_hostname=node,
                                  headers={REMOTE_USER_HEADER: req.user})
        except (aiohttp.ClientError, OSError) as e:
            await sess.close()
            return ApiResponse(502, failure_status(502, "BadGateway", f"cannot reach the agent of node {node}: {e}"))
        ctype = resp.headers.get("Content-Type", "text/plain").split(";")[0]
        if resp.status != 200 or req.query.get("follow") not in ("true", "1"):
            body = await resp.read()
            resp.release()
            await sess.close()
            if ctype == "application/json":
                return ApiResponse(resp.status, json.loads(body or b"{}"))
            return ApiResponse(resp.status, body, content_type=ctype)

        async def chunks() -> Any:
            try:
                async for data in resp.content.iter_any():
                    yield data
            finally:
                resp.release()
                await sess.close()
        return ApiResponse(200, None, content_type=ctype, stream=chunks())

    async def upgrade_handler(self, request: web.Request, req: ApiRequest, user: Any) -> web.StreamResponse:
        m = POD_UPGRADE_PATH.match(request.path)
        if not m:
            return _json(failure_status(400, "BadRequest", f"no upgradable resource at {request.path}"),
                                     status=400)
        ns, name, _sub = m.groups()
        resp = await self.api.handle(ApiRequest("GET", f"/api/v1/namespaces/{ns}/pods/{name}", user=req.user))
        if resp.status != 200:
            return _json(resp.body, status=resp.status)
        node = (resp.body.get("spec") or {}).get("nodeName") or ""
        if self.local is not None and node == self.local_node:
            return await self.local.upgrade_handler(request, req, user)
        if not node:
            return _json(failure_status(400, "BadRequest", f'pod "{name}" does not have a host assigned'),
                                     status=400)
        ep = await self._node_endpoint(node, req.user)
        if isinstance(ep, str):
            return _json(failure_status(400, "BadRequest", ep), status=400)
        ip, port = ep
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        sess = self._session()
        try:
            upstream = await sess.ws_connect(f"wss://{ip}:{port}{request.path_qs}", protocols=offered, ssl=self._ssl(),
                                             server_hostname=node,
                                             headers={REMOTE_USER_HEADER: req.user}, max_msg_size=0)
        except (aiohttp.ClientError, OSError) as e:
            await sess.close()
            return _json(failure_status(502, "BadGateway", f"cannot reach the agent of node {node}: {e}"),
                                     status=502)
        ws = web.WebSocketResponse(protocols=[upstream.protocol] if upstream.protocol else (), max_msg_size=0)
        await ws.prepare(request)

        async def pipe(src: Any, dst: Any) -> None:
            async for msg in src:
                if msg.type == WSMsgType.BINARY:
                    await dst.send_bytes(msg.data)
                elif msg.type == WSMsgType.TEXT:
                    await dst.send_str(msg.data)
                else:
                    break
            await dst.close()

        try:
            await asyncio.gather(pipe(ws, upstream), pipe(upstream, ws), return_exceptions=True)
        finally:
            await upstream.close()
            await sess.close()
        return ws


def _json(body: Obj, status: int) -> web.Response:
    return web.Response(status=status, body=jsonwire.encode(body), content_type="application/json")


def attach_to_server(api: ApiServer, front: HttpFront, ssl_context: ssl.SSLContext | None) -> ForwardingNodeProxy:
    """Make the server's ForwardingNodeProxy and register it with the API server (pods/log)
    and the HTTPS front (`apiserver.http.HttpFront`: upgrades)."""
    p = ForwardingNodeProxy(api, ssl_context)
    api.set_node_proxy(p.node_proxy)
    api.metrics.source = p.stats_summary
    front.upgrade_handler = p.upgrade_handler
    return p
