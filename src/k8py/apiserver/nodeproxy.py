"""The API server's side of pods/log, exec, attach and port-forward: it forwards them to
the node agent of the pod's node.

Pods of the node whose agent runs in this process are served in-process (the agent
offers its `NodeStreams` through `serve_local`: this proxy is a `LocalNodeHost`); pods
on any other node are forwarded to that node's agent endpoint (the kubelet's port) at
`https://<InternalIP>:<daemonEndpoints.kubeletEndpoint.Port>` with the agent token:
log responses are streamed back, WebSocket upgrades are relayed message by message
with the subprotocol the agent chose. `attach_to_server(ctx)` registers it as the
ApiServer's node proxy (`ApiServer.node_proxy` is this object) and the HTTPS front's
upgrade handler (idempotent; one per server); `run_in_server(ctx)` is the `node-proxy`
component of `k8py server`, which runs whether or not an agent runs in-process.
Invariant: a node without an address or port answers a clear 400, never a hang.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web

from k8py.api.request import ApiRequest, ApiResponse
from k8py.api.streaming import POD_UPGRADE_PATH, REMOTE_USER_HEADER, NodeStreams, failure_status
from k8py.api.types import Obj

log = logging.getLogger(__name__)


class ForwardingNodeProxy:
    def __init__(self, api: Any, token: str) -> None:
        self.api = api
        self.token = token
        self.local: NodeStreams | None = None
        self.local_node = ""

    def serve_local(self, node_name: str, streams: NodeStreams) -> None:
        """Serve the pods of `node_name` (the in-process agent's node) through `streams`."""
        self.local = streams
        self.local_node = node_name

    async def __call__(self, req: ApiRequest, pod: Obj, sub: str) -> ApiResponse:
        """The ApiServer's node proxy hook (`ApiServer.set_node_proxy`): pods/log."""
        return await self.node_proxy(req, pod, sub)

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
        return aiohttp.ClientSession(headers={"Authorization": f"Bearer {self.token}"},
                                     timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))

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
            resp = await sess.get(f"https://{ip}:{port}{req.path}", params=req.query, ssl=False,
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
            return web.json_response(failure_status(400, "BadRequest", f"no upgradable resource at {request.path}"),
                                     status=400)
        ns, name, _sub = m.groups()
        resp = await self.api.handle(ApiRequest("GET", f"/api/v1/namespaces/{ns}/pods/{name}", user=req.user))
        if resp.status != 200:
            return web.json_response(resp.body, status=resp.status)
        node = (resp.body.get("spec") or {}).get("nodeName") or ""
        if self.local is not None and node == self.local_node:
            return await self.local.upgrade_handler(request, req, user)
        if not node:
            return web.json_response(failure_status(400, "BadRequest", f'pod "{name}" does not have a host assigned'),
                                     status=400)
        ep = await self._node_endpoint(node, req.user)
        if isinstance(ep, str):
            return web.json_response(failure_status(400, "BadRequest", ep), status=400)
        ip, port = ep
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        sess = self._session()
        try:
            upstream = await sess.ws_connect(f"wss://{ip}:{port}{request.path_qs}", protocols=offered, ssl=False,
                                             headers={REMOTE_USER_HEADER: req.user}, max_msg_size=0)
        except (aiohttp.ClientError, OSError) as e:
            await sess.close()
            return web.json_response(failure_status(502, "BadGateway", f"cannot reach the agent of node {node}: {e}"),
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


def attach_to_server(ctx: Any) -> ForwardingNodeProxy:
    """The server's ForwardingNodeProxy (made and registered on first use)."""
    p = ctx.api.node_proxy
    if not isinstance(p, ForwardingNodeProxy):
        token = getattr(getattr(ctx, "pki", None), "agent_token", "") or ""
        p = ForwardingNodeProxy(ctx.api, token)
        ctx.api.set_node_proxy(p)
        front = getattr(ctx, "front", None)
        if front is not None:
            front.upgrade_handler = p.upgrade_handler
    return p


async def run_in_server(ctx: Any) -> None:
    """`k8py server` component: forward node requests even when no agent runs in-process."""
    attach_to_server(ctx)
