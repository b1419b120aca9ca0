"""The HTTPS front: TLS client auth, tokens, anonymous endpoints, JSON/bytes bodies, watch streams."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from k8py.api.request import ApiRequest, ApiResponse
from k8py.apiserver import certs
from k8py.apiserver.auth import Authenticator, User
from k8py.apiserver.http import HttpFront


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> certs.Pki:
    return certs.ensure_pki(tmp_path_factory.mktemp("data"))


class Fake:
    """A handler that records requests and answers per path."""

    def __init__(self) -> None:
        self.requests: list[ApiRequest] = []
        self.stream_closed = asyncio.Event()
        self.release = asyncio.Event()
        self.completed = asyncio.Event()

    async def handle(self, req: ApiRequest) -> ApiResponse:
        self.requests.append(req)
        if req.path == "/boom":
            raise RuntimeError("kaput")
        if req.path == "/bytes":
            return ApiResponse(200, b"line1\nline2\n", content_type="text/plain")
        if req.path == "/watch":
            return ApiResponse(200, stream=self._events(), content_type="application/json")
        if req.path == "/slow":
            await self.release.wait()
            self.completed.set()
            return ApiResponse(201, {"done": True})
        return ApiResponse(200, {"path": req.path, "query": req.query, "user": req.user,
                                 "body": req.body.decode(), "ct": req.headers.get("content-type")})

    async def _events(self) -> AsyncIterator[dict[str, Any]]:
        try:
            yield {"type": "ADDED", "object": {"big": "x" * 200_000}}
            yield {"type": "MODIFIED", "object": {"n": 2}}
            await asyncio.Event().wait()  # then nothing, until the client goes away
        finally:
            self.stream_closed.set()


@pytest.fixture
async def front(pki: certs.Pki) -> AsyncIterator[tuple[HttpFront, Fake]]:
    fake = Fake()
    auth = Authenticator()
    auth.add_token("s3cret", User("agent", ("system:nodes",)))
    f = HttpFront(fake.handle, ssl_context=pki.server_ssl_context(), authenticator=auth)
    await f.start("127.0.0.1", 0)
    yield f, fake
    await f.close()


def client_ctx(pki: certs.Pki, with_cert: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    if with_cert:
        ctx.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
    return ctx


async def call(f: HttpFront, ctx: ssl.SSLContext, method: str, path: str, **kw: Any) -> tuple[int, Any, str]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as s:
        async with s.request(method, f"https://127.0.0.1:{f.port}{path}", **kw) as r:
            raw = await r.read()
            ct = r.headers.get("Content-Type", "")
            return r.status, (json.loads(raw) if "json" in ct and raw else raw), ct


@pytest.mark.parametrize("path,status", [("/healthz", 200), ("/livez", 200), ("/readyz", 200),
                                         ("/version", 200), ("/api/v1/pods", 401), ("/apis", 401)])
async def test_anonymous_access(front: tuple[HttpFront, Fake], pki: certs.Pki, path: str, status: int) -> None:
    f, fake = front
    code, body, _ = await call(f, client_ctx(pki, False), "GET", path)
    assert code == status
    if status == 401:
        assert body["reason"] == "Unauthorized" and body["code"] == 401
        assert fake.requests == []
    if path == "/version":
        assert body["major"] == "1"


async def test_client_cert_identifies_admin(front: tuple[HttpFront, Fake], pki: certs.Pki) -> None:
    f, fake = front
    code, body, _ = await call(f, client_ctx(pki, True), "POST", "/api/v1/namespaces/default/pods",
                               params={"fieldManager": "kubectl"}, data=b'{"a":1}',
                               headers={"Content-Type": "application/json"})
    assert code == 200
    assert body == {"path": "/api/v1/namespaces/default/pods", "query": {"fieldManager": "kubectl"},
                    "user": "admin", "body": '{"a":1}', "ct": "application/json"}


@pytest.mark.parametrize("token,status", [("s3cret", 200), ("wrong", 401), ("", 401)])
async def test_bearer_token(front: tuple[HttpFront, Fake], pki: certs.Pki, token: str, status: int) -> None:
    f, _ = front
    code, body, _ = await call(f, client_ctx(pki, False), "GET", "/api/v1/pods",
                               headers={"Authorization": f"Bearer {token}"})
    assert code == status
    if status == 200:
        assert body["user"] == "agent"


async def test_cert_from_another_ca_is_refused(front: tuple[HttpFront, Fake], pki: certs.Pki,
                                               tmp_path: Path) -> None:
    f, _ = front
    other = certs.ensure_pki(tmp_path)
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    ctx.load_cert_chain(str(other.admin_cert), str(other.admin_key))
    with pytest.raises(aiohttp.ClientError):
        await call(f, ctx, "GET", "/api/v1/pods")


async def test_bytes_body_and_handler_crash(front: tuple[HttpFront, Fake], pki: certs.Pki) -> None:
    f, _ = front
    code, body, ct = await call(f, client_ctx(pki, True), "GET", "/bytes")
    assert (code, body, ct) == (200, b"line1\nline2\n", "text/plain")
    code, body, _ = await call(f, client_ctx(pki, True), "GET", "/boom")
    assert code == 500 and body["reason"] == "InternalError"


async def test_upgrade_without_handler_is_refused(front: tuple[HttpFront, Fake], pki: certs.Pki) -> None:
    f, _ = front
    code, body, _ = await call(f, client_ctx(pki, True), "POST", "/api/v1/namespaces/d/pods/p/exec",
                               headers={"Connection": "Upgrade", "Upgrade": "websocket"})
    assert code == 400 and "upgrade" in body["message"]


async def test_debug_endpoints_are_admin_only(front: tuple[HttpFront, Fake], pki: certs.Pki) -> None:
    f, _ = front
    hits: list[str] = []

    async def compact(req: ApiRequest) -> ApiResponse:
        hits.append(req.user)
        return ApiResponse(200, {"ok": True})

    f.debug_handlers["compact"] = compact
    code, _, _ = await call(f, client_ctx(pki, False), "POST", "/debug/k8py/compact",
                            headers={"Authorization": "Bearer s3cret"})
    assert code == 403
    code, body, _ = await call(f, client_ctx(pki, True), "POST", "/debug/k8py/compact")
    assert (code, body, hits) == (200, {"ok": True}, ["admin"])
    code, _, _ = await call(f, client_ctx(pki, True), "POST", "/debug/k8py/nope")
    assert code == 404


async def test_watch_stream_lines_and_disconnect_closes_iterator(front: tuple[HttpFront, Fake],
                                                                 pki: certs.Pki) -> None:
    f, fake = front
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ctx(pki, True))) as s:
        async with s.get(f"https://127.0.0.1:{f.port}/watch") as r:
            assert r.status == 200
            buf = b""
            events = []
            async for chunk in r.content.iter_any():
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    events.append(json.loads(line))
                if len(events) == 2:
                    break
            assert [e["type"] for e in events] == ["ADDED", "MODIFIED"]
            assert len(events[0]["object"]["big"]) == 200_000
    await asyncio.wait_for(fake.stream_closed.wait(), 10)


async def test_disconnect_does_not_abort_a_write(front: tuple[HttpFront, Fake], pki: certs.Pki) -> None:
    f, fake = front
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ctx(pki, True))) as s:
        req = asyncio.create_task(s.post(f"https://127.0.0.1:{f.port}/slow", data=b"{}"))
        while not any(r.path == "/slow" for r in fake.requests):
            await asyncio.sleep(0.01)
        req.cancel()
    # The handler is shielded: it still runs to completion after the client left.
    server = f._runner.server  # type: ignore[union-attr]  # noqa: SLF001
    while server is not None and server.connections:  # the server saw the disconnect (and cancelled the handler)
        await asyncio.sleep(0.01)
    fake.release.set()
    await asyncio.wait_for(fake.completed.wait(), 10)


def test_pki_is_reused_and_serving_cert_follows_names(tmp_path: Path) -> None:
    from cryptography import x509

    a = certs.ensure_pki(tmp_path, certs.default_sans("10.1.2.3"))
    ca1, admin1, tok1 = a.ca_cert.read_bytes(), a.admin_cert.read_bytes(), a.agent_token
    b = certs.ensure_pki(tmp_path, certs.default_sans("10.1.2.3"))
    assert (b.ca_cert.read_bytes(), b.admin_cert.read_bytes(), b.agent_token) == (ca1, admin1, tok1)
    serving = x509.load_pem_x509_certificate(b.serving_cert.read_bytes())
    san = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ips = {str(i) for i in san.get_values_for_type(x509.IPAddress)}
    dns = set(san.get_values_for_type(x509.DNSName))
    assert {"127.0.0.1", "::1", "10.1.2.3"} <= ips
    assert {"localhost", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"} <= dns
    admin = x509.load_pem_x509_certificate(admin1)
    assert "CN=admin" in admin.subject.rfc4514_string() and "O=system:masters" in admin.subject.rfc4514_string()
    assert oct(a.admin_key.stat().st_mode & 0o777) == "0o600"
    c = certs.ensure_pki(tmp_path, certs.default_sans("10.9.9.9"))
    assert c.ca_cert.read_bytes() == ca1 and c.serving_cert.read_bytes() != serving.public_bytes(
        __import__("cryptography.hazmat.primitives.serialization", fromlist=["Encoding"]).Encoding.PEM)


async def test_close_ends_open_streams(pki: certs.Pki) -> None:
    fake = Fake()
    f = HttpFront(fake.handle, ssl_context=pki.server_ssl_context(), authenticator=None)
    await f.start("127.0.0.1", 0)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ctx(pki, True))) as s:
        async with s.get(f"https://127.0.0.1:{f.port}/watch") as r:
            await r.content.readline()  # the stream is open and idle after its first events
            # A watch never ends by itself: close() must end it rather than wait for the client.
            await asyncio.wait_for(f.close(), 30)
    assert fake.stream_closed.is_set()
