"""The agent's own HTTPS endpoint (the kubelet's port 10250) for a remote API server:
pods/log, exec, attach and port-forward of the pods on this node, at the same paths as
the API (`/api/v1/namespaces/<ns>/pods/<name>/<sub>`), so the server only forwards;
and the Summary API (`GET /stats/summary`, kubelet/stats.py) for metrics.k8s.io.

TLS with the node's serving certificate, signed by the cluster CA (`NodeTLS`, minted by
the server for this node), which the API server verifies. Authentication: a client
certificate signed by the cluster CA naming the API server's kubelet client
(CN=kube-apiserver-kubelet-client in O=system:masters); only then is the
`X-Remote-User` header (who asked the API server) believed. Invariant: a request
without a client certificate is answered 401, with any other one 403, before anything
else happens; a certificate of another CA fails the handshake.
"""

from __future__ import annotations

import json
import ssl
from typing import Any

from aiohttp import web

from k8py.api.request import ApiRequest
from k8py.api.streaming import DEFAULT_REMOTE_USER, POD_STREAM_PATH, REMOTE_USER_HEADER, STATS_SUMMARY_PATH
from k8py.component import NodeTLS
from k8py.kubelet.streaming import Streaming

API_SERVER_CLIENT = ("kube-apiserver-kubelet-client", "system:masters")  # (CN, O) the kubelet trusts


def _subject(peercert: dict[str, Any] | None) -> tuple[str, list[str]]:
    cn, orgs = "", []
    for rdn in (peercert or {}).get("subject", ()):
        for k, v in rdn:
            if k == "commonName":
                cn = v
            elif k == "organizationName":
                orgs.append(v)
    return cn, orgs


def _status(code: int, reason: str, message: str) -> web.Response:
    return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason,
                              "message": message, "code": code}, status=code)


class KubeletServer:
    """Serves `streaming` (the node's pods) on `host:port` to the API server only."""

    def __init__(self, streaming: Streaming, tls: NodeTLS, port: int, host: str = "0.0.0.0") -> None:
        self.streaming = streaming
        self.tls = tls
        self.port = port
        self.host = host
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.tls.ca_cert))
        ctx.load_cert_chain(str(self.tls.serving_cert), str(self.tls.serving_key))
        ctx.verify_mode = ssl.CERT_OPTIONAL
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._serve)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=ctx, reuse_address=True)
        await site.start()
        self.port = int(self._runner.addresses[0][1])  # (host, port) of the site's first socket: the one bound
        return self.port

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        peercert = request.transport.get_extra_info("peercert") if request.transport is not None else None
        if not peercert:
            return _status(401, "Unauthorized", "Unauthorized")
        cn, orgs = _subject(peercert)
        if cn != API_SERVER_CLIENT[0] or API_SERVER_CLIENT[1] not in orgs:
            return _status(403, "Forbidden", f'User "{cn}" is not the API server: the kubelet serves only it')
        if request.path == STATS_SUMMARY_PATH and request.method == "GET":
            return web.json_response(await self.streaming.stats_summary())
        m = POD_STREAM_PATH.match(request.path)
        if not m:
            return web.json_response({"kind": "Status", "status": "Failure", "reason": "NotFound",
                                      "message": f"no such path {request.path}", "code": 404}, status=404)
        ns, name, sub = m.groups()
        user = request.headers.get(REMOTE_USER_HEADER, DEFAULT_REMOTE_USER)
        req = ApiRequest(request.method.upper(), request.path, {k: v for k, v in request.query.items()},
                         headers={k.lower(): v for k, v in request.headers.items()}, user=user)
        if sub != "log":
            return await self.streaming.upgrade_handler(request, req, None)
        code, pod = await self.streaming.get_pod(ns, name, user)
        if code != 200:
            return web.Response(status=code, body=json.dumps(pod).encode(), content_type="application/json")
        resp = await self.streaming.node_proxy(req, pod, "log")
        if resp.stream is None:
            body = resp.body if isinstance(resp.body, bytes) else json.dumps(resp.body).encode()
            return web.Response(status=resp.status, body=body, content_type=resp.content_type)
        out = web.StreamResponse(status=resp.status)
        out.content_type = resp.content_type
        await out.prepare(request)
        try:
            async for chunk in resp.stream:
                await out.write(chunk)
            await out.write_eof()
        except ConnectionResetError:  # the client went away
            pass
        return out

