"""One call to a webhook: an AdmissionReview v1 (or a CRD's ConversionReview) POSTed over HTTPS.

The webhook's clientConfig names a URL, or a Service in the cluster: the call then goes to
one ready address of the Service's endpoints (the Service port, default 443, mapped to the
endpoints' port), with TLS verified against caBundle for the name `<svc>.<ns>.svc`, the
way kube-apiserver reaches webhooks. Bounded by timeoutSeconds (the `?timeout=` query
says so to the server). Failures raise `CallError` with Kubernetes' wording of the cause
(`failed to call webhook: Post "...": ...`, `received invalid webhook response: ...`);
the caller applies the failurePolicy. Never blocks the event loop (aiohttp).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from k8py.api.types import Obj

REVIEW_API_VERSION = "admission.k8s.io/v1"
FAILED = "failed to call webhook: "  # what admission says before the cause of a failed call
MAX_RESPONSE = 16 << 20

# (namespace, name) of a Service -> (address, port) of one ready endpoint; raises CallError.
Resolver = Callable[[str, str, int], Awaitable[tuple[str, int]]]


class CallError(Exception):
    """Why a webhook could not give an answer (Kubernetes' ErrCallingWebhook reason)."""


@dataclass(frozen=True)
class Target:
    url: str  # as Kubernetes shows it in errors (https://svc.ns.svc:443/path?timeout=10s)
    connect_url: str  # where the request really goes
    server_hostname: str | None


def _ssl_context(cc: Mapping[str, Any]) -> ssl.SSLContext:
    bundle = cc.get("caBundle")
    if not bundle:
        return ssl.create_default_context()
    try:
        pem = base64.b64decode(bundle).decode()
        return ssl.create_default_context(cadata=pem)
    except (binascii.Error, UnicodeDecodeError, ssl.SSLError, ValueError) as e:
        raise CallError(f"failed to call webhook: unable to load root certificates: {e}") from None


async def target(cc: Mapping[str, Any], timeout: int, resolve: Resolver, what: str = FAILED) -> Target:
    query = f"?timeout={timeout}s"
    url = cc.get("url")
    if isinstance(url, str) and url:
        return Target(url + query, url + query, None)  # validation keeps queries out of URLs
    svc = cc.get("service") or {}
    name, ns, port = str(svc.get("name", "")), str(svc.get("namespace", "")), int(svc.get("port") or 443)
    path = str(svc.get("path") or "")
    host = f"{name}.{ns}.svc"
    shown = f"https://{host}:{port}{path}{query}"
    try:
        addr, eport = await resolve(ns, name, port)
    except CallError as e:
        raise CallError(f'{what}Post "{shown}": {e}') from None
    ip = f"[{addr}]" if ":" in addr else addr
    return Target(shown, f"https://{ip}:{eport}{path}{query}", host)


def _describe(e: BaseException, t: Target) -> str:
    if isinstance(e, asyncio.TimeoutError):
        return "context deadline exceeded"
    if isinstance(e, aiohttp.ClientConnectorCertificateError):
        return f"tls: failed to verify certificate: {e.certificate_error}"
    if isinstance(e, aiohttp.ClientConnectorError):
        if isinstance(e.os_error, ConnectionRefusedError):
            return f"dial tcp {e.host}:{e.port}: connect: connection refused"
        return f"dial tcp {e.host}:{e.port}: {e.os_error.strerror or e.os_error}"
    return str(e) or type(e).__name__


class Clients:
    """One HTTP client (kept-alive connections) and one TLS context per caBundle, as
    kube-apiserver keeps its webhook clients; made on first use in the running loop."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._contexts: dict[str, ssl.SSLContext] = {}

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30))
        return self._session

    def context(self, cc: Mapping[str, Any]) -> ssl.SSLContext:
        key = str(cc.get("caBundle") or "")
        ctx = self._contexts.get(key)
        if ctx is None:
            if len(self._contexts) > 256:
                self._contexts.clear()
            ctx = self._contexts[key] = _ssl_context(cc)
        return ctx

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _send(clients: Clients, t: Target, ctx: ssl.SSLContext, body: bytes) -> tuple[int, bytes]:
    """One POST; sent again once when a kept-alive connection turns out closed by the server
    before it answered (as Go's transport retries on a closed idle connection)."""
    for attempt in (0, 1):
        try:
            async with clients.session().post(t.connect_url, data=body, ssl=ctx, server_hostname=t.server_hostname,
                                              headers={"Content-Type": "application/json",
                                                       "Accept": "application/json"}) as resp:
                return resp.status, await resp.content.read(MAX_RESPONSE)
        except aiohttp.ServerDisconnectedError:
            if attempt:
                raise
    raise AssertionError("unreachable")


async def post(cc: Mapping[str, Any], review: Obj, timeout: int, resolve: Resolver, clients: Clients,
               what: str = FAILED) -> Obj:
    """POST the review; the decoded answer (raises CallError, its message after `what`)."""
    t = await target(cc, timeout, resolve, what)
    ctx = clients.context(cc)
    body = json.dumps(review).encode()
    try:
        async with asyncio.timeout(timeout):
            status, raw = await _send(clients, t, ctx, body)
    except (TimeoutError, aiohttp.ClientError, OSError, ssl.SSLError) as e:
        raise CallError(f'{what}Post "{t.url}": {_describe(e, t)}') from None
    if not 200 <= status < 300:
        text = raw.decode(errors="replace").strip()
        raise CallError(f'{what}an error on the server ("{text[:200]}") has prevented '
                        f"the request from succeeding")
    try:
        out = json.loads(raw)
    except ValueError as e:
        raise CallError(f"received invalid webhook response: {e}") from None
    if not isinstance(out, dict):
        raise CallError("received invalid webhook response: not an object")
    return out


def response_of(out: Obj, uid: str) -> Obj:
    """The `response` of an AdmissionReview answer, checked as Kubernetes checks it."""
    if out.get("apiVersion") != REVIEW_API_VERSION or out.get("kind") != "AdmissionReview":
        gv = out.get("apiVersion") or "/"
        raise CallError("received invalid webhook response: expected webhook response of "
                        f"admission.k8s.io/v1, Kind=AdmissionReview, got {gv}, Kind={out.get('kind') or ''}")
    resp = out.get("response")
    if not isinstance(resp, dict):
        raise CallError("received invalid webhook response: webhook response was absent")
    if resp.get("uid") != uid:
        raise CallError(f'received invalid webhook response: expected response.uid="{uid}", '
                        f'got "{resp.get("uid") or ""}"')
    return resp


def patch_of(resp: Obj) -> list[Any] | None:
    """The JSONPatch of a mutating webhook's response, decoded (None when none)."""
    patch = resp.get("patch")
    if not patch:
        return None
    if resp.get("patchType") != "JSONPatch":
        if not resp.get("patchType"):
            raise CallError("received invalid webhook response: webhook returned response.patch "
                            "but not response.patchType")
        raise CallError(f'received invalid webhook response: webhook returned invalid response.patchType '
                        f'of "{resp.get("patchType")}"')
    try:
        ops = json.loads(base64.b64decode(patch))
    except (binascii.Error, ValueError) as e:
        raise CallError(f"received invalid webhook response: {e}") from None
    if not isinstance(ops, list):
        raise CallError("received invalid webhook response: the patch is not a list of operations")
    return ops
