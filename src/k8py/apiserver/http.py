"""The API server's HTTPS front door (aiohttp): TLS, authentication, and ApiRequest <-> HTTP.

Each HTTP request becomes an `ApiRequest` handed to a handler (normally
`ApiServer.handle`); the `ApiResponse` is written back as JSON, raw bytes, or a
stream (watch events as newline-delimited JSON, one flushed chunk per event;
logs as bytes). Invariants:
- every request except /healthz, /livez, /readyz and /version must present the
  admin client certificate (verified by TLS against the cluster CA) or a known
  bearer token, else 401 with a Kubernetes Status;
- a handler's non-streaming work is shielded from client disconnects (a create
  whose client went away still completes); a stream is closed (`aclose`) as soon
  as its client disconnects;
- protocol upgrades (exec/attach/port-forward over WebSocket or SPDY) go to
  `upgrade_handler` when one is set, else answer 400;
- kube-apiserver's limits (`limits.py`): bodies over 3 MiB are refused (413), requests
  beyond the max in-flight answered 429 with Retry-After, requests that are not
  long-running answered 504 after the request timeout (60 s).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, cast

from aiohttp import web

from k8py.api import jsonwire
from k8py.api.request import ApiRequest, ApiResponse
from k8py.api.wellknown import GROUP_BOOTSTRAPPERS, GROUP_MASTERS, USER_SYSTEM_ADMIN
from k8py.apiserver import discovery, limits
from k8py.apiserver.auth import Authenticator, User, is_anonymous_path, unauthorized_status
from k8py.apiserver.authz import Authorizer
from k8py.apiserver.errors import StatusError
from k8py.apiserver.impersonation import impersonate

log = logging.getLogger(__name__)

Handler = Callable[[ApiRequest], Awaitable[ApiResponse]]
# An upgrade handler gets the raw aiohttp request (to take over the connection),
# the ApiRequest made from it, and the authenticated user.
UpgradeHandler = Callable[[web.Request, ApiRequest, User], Awaitable[web.StreamResponse]]
# Admin-only debug endpoints under /debug/k8py/<name> (e.g. "compact").
DebugHandler = Callable[[ApiRequest], Awaitable[ApiResponse]]

MAX_BODY = limits.MAX_REQUEST_BODY  # kube-apiserver's request body limit (3 MiB)
SHUTDOWN_GRACE = 2.0  # seconds in-flight requests get to finish when the server stops


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def _dumps(body: Any) -> bytes:
    """A JSON body as kube-apiserver writes it (Go's escapes, a trailing newline)."""
    return jsonwire.encode(body)


class HttpFront:
    """Serves `handler` over HTTPS. `start()` returns the bound port."""

    def __init__(self, handler: Handler, *, ssl_context: ssl.SSLContext | None,
                 authenticator: Authenticator | None,
                 upgrade_handler: UpgradeHandler | None = None,
                 authorizer: Authorizer | None = None,
                 max_mutating_inflight: int = limits.MAX_MUTATING_INFLIGHT,
                 max_readonly_inflight: int = limits.MAX_READONLY_INFLIGHT,
                 request_timeout: float = limits.REQUEST_TIMEOUT) -> None:
        self.handler = handler
        self.inflight = limits.InflightLimiter(max_mutating_inflight, max_readonly_inflight)
        self.request_timeout = request_timeout
        self.ssl_context = ssl_context
        self.authenticator = authenticator
        self.upgrade_handler = upgrade_handler
        # Impersonation and upgrades are authorized here (the handler authorizes the rest).
        self.authorizer = authorizer
        self.debug_handlers: dict[str, DebugHandler] = {}
        # Paths a joining node's bootstrap identity (group system:bootstrappers) may call:
        # `NODE_CREDENTIALS_PATH`, where it obtains its node certificate.
        self.bootstrap_handlers: dict[str, DebugHandler] = {}
        # Paths that authenticate by a secret of their own (the server join token), checked by
        # the handler from the request's headers: no certificate or other token opens them.
        self.secret_handlers: dict[str, DebugHandler] = {}
        self.ca_bundle = b""  # served to anyone at /cacerts (as k3s): a joining node checks its hash
        self._runner: web.AppRunner | None = None
        self._streams: set[asyncio.Task[Any]] = set()  # handler tasks writing a stream (watch, logs)
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        app = web.Application(client_max_size=MAX_BODY)  # a larger body: 413, as kube-apiserver
        app.router.add_route("*", "/{tail:.*}", self._serve)
        # handler_cancellation: a disconnect cancels the handler task, which is how a
        # watch stream with no events to write learns that its client went away.
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True,
                                     shutdown_timeout=SHUTDOWN_GRACE)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=self.ssl_context,
                           reuse_address=True)
        await site.start()
        self.port = int(self._runner.addresses[0][1])  # (host, port) of the site's first socket
        return self.port

    async def listen_also(self, host: str, port: int) -> None:
        """Serve on one more address (after `start`), e.g. the host bridge of node hosts."""
        assert self._runner is not None, "start() first"
        await web.TCPSite(self._runner, host, port, ssl_context=self.ssl_context, reuse_address=True).start()

    async def close(self) -> None:
        """Stop listening, end open streams (watches never end by themselves), then close."""
        for t in list(self._streams):
            t.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- one request -----------------------------------------------------------
    def _user(self, request: web.Request) -> User | None:
        if self.authenticator is None:
            return User(USER_SYSTEM_ADMIN, (GROUP_MASTERS,))
        peercert = None
        if request.transport is not None:
            peercert = request.transport.get_extra_info("peercert")
        return self.authenticator.authenticate(peercert, request.headers.get("Authorization"))

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path in ("/healthz", "/livez", "/readyz") or path.startswith(("/healthz/", "/livez/", "/readyz/")):
            return web.Response(text="ok", content_type="text/plain")
        if path == "/cacerts" and self.ca_bundle:
            return web.Response(body=self.ca_bundle, content_type="text/plain")
        if path in self.secret_handlers:
            resp = await self.secret_handlers[path](ApiRequest(
                method=request.method.upper(), path=path, headers={k.lower(): v for k, v in request.headers.items()},
                user="", groups=()))
            return web.Response(status=resp.status, body=_dumps(resp.body), content_type="application/json")
        user = self._user(request)
        if path.rstrip("/") == "/version":
            return web.Response(body=_dumps(discovery.version_info()), content_type="application/json")
        if user is None and not is_anonymous_path(path):
            return web.Response(status=401, body=_dumps(unauthorized_status()),
                                content_type="application/json")
        assert user is not None
        try:
            body = await request.read() if request.body_exists else b""
        except web.HTTPRequestEntityTooLarge:
            return web.Response(status=413, body=_dumps(limits.too_large_status()), content_type="application/json")
        try:
            user = self._impersonated(request, user)
        except StatusError as e:
            return web.Response(status=e.code, body=_dumps(e.status()), content_type="application/json")
        req = ApiRequest(
            method=request.method.upper(), path=path, query={k: v for k, v in request.query.items()},
            body=body, headers={k.lower(): v for k, v in request.headers.items()}, user=user.name,
            groups=user.groups)
        if request.headers.get("Upgrade") or request.headers.get("Connection", "").lower() == "upgrade":
            if self.upgrade_handler is None:
                return web.Response(status=400, content_type="application/json", body=_dumps(
                    _status(400, "BadRequest", "protocol upgrades (exec, attach, port-forward) are not supported yet")))
            try:
                if self.authorizer is not None:
                    self.authorizer.check(req)
            except StatusError as e:
                return web.Response(status=e.code, body=_dumps(e.status()), content_type="application/json")
            return await self.upgrade_handler(request, req, user)
        if path.startswith("/debug/k8py/"):
            return await self._debug(req, user)
        if path in self.bootstrap_handlers and req.method == "POST" and (
                GROUP_BOOTSTRAPPERS in user.groups or GROUP_MASTERS in user.groups):
            resp = await self.bootstrap_handlers[path](req)
            return web.Response(status=resp.status, body=_dumps(resp.body), content_type="application/json")
        if limits.is_long_running(req.method, path, req.query):
            return await self._write(request, await self._call(req, None))
        kind = self.inflight.kind(req.method)
        if not self.inflight.acquire(kind):
            return web.Response(status=429, body=_dumps(limits.too_many_requests_status()),
                                content_type="application/json", headers={"Retry-After": str(limits.RETRY_AFTER)})
        try:
            resp = await self._call(req, limits.request_timeout(req.query, self.request_timeout))
        finally:
            self.inflight.release(kind)
        return await self._write(request, resp)

    def _impersonated(self, request: web.Request, user: User) -> User:
        """The user the request runs as (Impersonate-User/-Group, if the user may)."""
        as_user = request.headers.get("Impersonate-User")
        as_groups = request.headers.getall("Impersonate-Group", [])
        if not as_user and not as_groups:
            return user
        if self.authorizer is None:
            return user
        return impersonate(self.authorizer, user, as_user, as_groups)

    async def _call(self, req: ApiRequest, timeout: float | None) -> ApiResponse:
        """The handler's answer; 504 if it takes longer than `timeout` (the work goes on)."""
        try:
            # Shield: a client that disconnects (or a timeout) must not abort a write half-way.
            return await asyncio.wait_for(asyncio.shield(self.handler(req)), timeout)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            log.warning("request timed out after %ss: %s %s", timeout, req.method, req.path)
            return ApiResponse(504, limits.timeout_status())
        except Exception as e:  # noqa: BLE001 - the handler must not raise; answer 500 if it does
            log.exception("handler failed for %s %s", req.method, req.path)
            return ApiResponse(500, _status(500, "InternalError", f"internal error: {e}"))

    async def _debug(self, req: ApiRequest, user: User) -> web.StreamResponse:
        if GROUP_MASTERS not in user.groups:
            return web.Response(status=403, content_type="application/json",
                                body=_dumps(_status(403, "Forbidden", "debug endpoints are admin-only")))
        h = self.debug_handlers.get(req.path.removeprefix("/debug/k8py/").strip("/"))
        if h is None:
            return web.Response(status=404, content_type="application/json",
                                body=_dumps(_status(404, "NotFound", f"no debug endpoint {req.path}")))
        resp = await h(req)
        return web.Response(status=resp.status, body=_dumps(resp.body), content_type="application/json")

    async def _write(self, request: web.Request, resp: ApiResponse) -> web.StreamResponse:
        if resp.stream is None:
            if isinstance(resp.body, (bytes, bytearray, memoryview)):
                data = bytes(resp.body)
            elif isinstance(resp.body, str):
                data = resp.body.encode()
            elif resp.body is None:
                data = b""
            else:
                data = _dumps(resp.body)
            out = web.Response(status=resp.status, body=data, headers=resp.headers)
            out.headers["Content-Type"] = resp.content_type
            return out
        return await self._stream(request, resp)

    async def _stream(self, request: web.Request, resp: ApiResponse) -> web.StreamResponse:
        out = web.StreamResponse(status=resp.status, headers=resp.headers)
        out.headers["Content-Type"] = resp.content_type
        out.headers.setdefault("Cache-Control", "no-cache, private")
        out.enable_chunked_encoding()
        it = resp.stream
        assert it is not None
        frames = getattr(it, "frames", None)  # a watch: its events as shared encoded lines
        chunks: AsyncIterator[Any] = frames() if frames is not None else it
        task = asyncio.current_task()
        if task is not None:
            self._streams.add(task)
        try:
            await out.prepare(request)
            async for chunk in chunks:
                if isinstance(chunk, (bytes, bytearray)):
                    data = bytes(chunk)
                elif isinstance(chunk, str):
                    data = chunk.encode()
                else:
                    data = _dumps(chunk)  # one line per event
                if data:
                    await out.write(data)  # write() drains: each event is flushed
            await out.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass  # the client went away
        finally:
            if task is not None:
                self._streams.discard(task)
            if chunks is not it:
                await cast(AsyncGenerator[Any, None], chunks).aclose()
            aclose = getattr(it, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:  # noqa: BLE001
                    log.debug("closing stream failed", exc_info=True)
        return out
