"""k8py's nginx driven for real (Debian's nginx binary, loopback only): routing by host
and path, 503 for a missing Service, TLS by SNI, reload only on change and without
failing a request in flight, a refused config never loaded, stop leaves no process."""

from __future__ import annotations

import asyncio
import base64
import http.client
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from k8py.ingress.errors import NginxError
from k8py.ingress.nginx import Nginx, default_certificate, nginx_binary
from k8py.ingress.render import Rendered, Settings, State, render

from helpers.net import free_port

pytestmark = pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed (scripts/setup.sh)")


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.startswith("/slow"):
            time.sleep(1.5)
        body = f"{self.server.name} {self.path}".encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_a: Any) -> None:
        pass


@pytest.fixture(scope="module")
def backends() -> Iterator[dict[str, int]]:
    out, servers = {}, []
    for name in ("alpha", "beta"):
        srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        srv.name = name  # type: ignore[attr-defined]
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        out[name] = srv.server_address[1]
    yield out
    for srv in servers:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
async def nginx(tmp_path: Path) -> AsyncIterator[Nginx]:
    binary = nginx_binary()
    assert binary
    s = Settings(address="127.0.0.1", http_port=free_port(), https_port=free_port(), prefix=str(tmp_path / "ing"),
                 certs_dir=str(tmp_path / "ing" / "certs"))
    n = Nginx(s, binary)
    n.prepare()
    yield n
    await n.stop()


def _svc(name: str, port: int) -> tuple[dict[str, Any], dict[str, Any]]:
    return ({"metadata": {"name": name, "namespace": "default"}, "spec": {"ports": [{"port": 80}]}},
            {"ports": [{"port": port}], "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}]})


def _path(p: str, svc: str, ptype: str = "Prefix") -> dict[str, Any]:
    return {"path": p, "pathType": ptype, "backend": {"service": {"name": svc, "port": {"number": 80}}}}


def world(backends: dict[str, int], extra_paths: list[dict[str, Any]] | None = None,
          tls: dict[str, bytes] | None = None) -> State:
    spec: dict[str, Any] = {"rules": [
        {"host": "a.example.com", "http": {"paths": [_path("/", "alpha"), _path("/beta", "beta"),
                                                     *(extra_paths or [])]}},
        {"host": "b.example.com", "http": {"paths": [_path("/", "beta")]}}]}
    st = State(ingresses=[{"metadata": {"name": "web", "namespace": "default"}, "spec": spec}])
    for name, port in backends.items():
        svc, sl = _svc(name, port)
        st.services[f"default/{name}"], st.slices[f"default/{name}"] = svc, [sl]
    if tls:
        spec["tls"] = [{"hosts": ["a.example.com"], "secretName": "tls"}]
        st.secrets["default/tls"] = {"type": "kubernetes.io/tls", "data": {
            k: base64.b64encode(v).decode() for k, v in tls.items()}}
    return st


def get(n: Nginx, host: str, path: str) -> tuple[int, str]:
    c = http.client.HTTPConnection("127.0.0.1", n.s.http_port, timeout=10)
    try:
        c.request("GET", path, headers={"Host": host})
        r = c.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        c.close()


async def aget(n: Nginx, host: str, path: str) -> tuple[int, str]:
    return await asyncio.to_thread(get, n, host, path)


ROUTES = [("a.example.com", "/", 200, "alpha /"), ("a.example.com", "/beta", 200, "beta /beta"),
          ("a.example.com", "/beta/x", 200, "beta /beta/x"), ("a.example.com", "/betax", 200, "alpha /betax"),
          ("b.example.com", "/anything", 200, "beta /anything"), ("A.Example.COM", "/", 200, "alpha /"),
          ("c.example.com", "/", 404, ""), ("a.example.com", "/gone/x", 503, "")]


async def test_routes_by_host_and_path_and_503_for_a_missing_service(nginx: Nginx,
                                                                     backends: dict[str, int]) -> None:
    assert await nginx.apply(render(world(backends, [_path("/gone", "missing")]), nginx.s))
    for host, path, status, body in ROUTES:
        got = await aget(nginx, host, path)
        assert got[0] == status, (host, path, got)
        if body:
            assert got[1] == body, (host, path, got)


async def test_reload_only_on_change_and_without_failing_a_request_in_flight(
        nginx: Nginx, backends: dict[str, int]) -> None:
    r = render(world(backends), nginx.s)
    assert await nginx.apply(r) and not await nginx.apply(r) and nginx.reloads == 0
    slow = asyncio.create_task(aget(nginx, "a.example.com", "/slow"))
    await asyncio.sleep(0.5)  # the request is at the backend
    assert await nginx.apply(render(world(backends, [_path("/exact", "beta", "Exact")]), nginx.s))
    assert nginx.reloads == 1
    assert await slow == (200, "alpha /slow")
    await until(nginx, "a.example.com", "/exact", (200, "beta /exact"))  # the new workers have taken over


async def until(n: Nginx, host: str, path: str, want: tuple[int, str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while (got := await aget(n, host, path)) != want:
        assert time.monotonic() < deadline, got
        await asyncio.sleep(0.1)


async def test_a_refused_config_is_never_loaded(nginx: Nginx, backends: dict[str, int]) -> None:
    good = render(world(backends), nginx.s)
    await nginx.apply(good)
    with pytest.raises(NginxError):
        await nginx.apply(Rendered(good.config.replace("events {", "events { bogus_directive;"), {}))
    assert nginx.loaded == good.config and (Path(nginx.s.prefix) / "nginx.conf").read_text() == good.config
    assert await aget(nginx, "b.example.com", "/") == (200, "beta /")


def _https(n: Nginx, host: str, ca: bytes) -> tuple[int, str, bytes]:
    ctx = ssl.create_default_context(cadata=ca.decode())
    c = http.client.HTTPSConnection("127.0.0.1", n.s.https_port, timeout=10, context=ctx)
    c._tunnel_host = None  # plain connect; SNI from server_hostname below
    sock = socket.create_connection(("127.0.0.1", n.s.https_port), timeout=10)
    tls = ctx.wrap_socket(sock, server_hostname=host)
    c.sock = tls
    c.request("GET", "/", headers={"Host": host})
    r = c.getresponse()
    out = r.status, r.read().decode(), tls.getpeercert(binary_form=True) or b""
    c.close()
    return out


async def test_tls_from_a_secret_by_sni(nginx: Nginx, backends: dict[str, int]) -> None:
    crt, key = _cert("a.example.com")
    r = render(world(backends, tls={"tls.crt": crt, "tls.key": key}), nginx.s)
    await nginx.apply(r)
    status, body, _ = await asyncio.to_thread(_https, nginx, "a.example.com", crt)
    assert (status, body) == (200, "alpha /")
    files = [p for p in Path(nginx.s.certs_dir).iterdir() if p.suffix == ".key"]
    assert files and all(p.stat().st_mode & 0o777 == 0o600 for p in files)
    with pytest.raises(ssl.SSLCertVerificationError):  # b.example.com has no certificate: the default one
        await asyncio.to_thread(_https, nginx, "b.example.com", crt)


def _cert(host: str) -> tuple[bytes, bytes]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


async def test_stop_leaves_no_nginx(nginx: Nginx, backends: dict[str, int]) -> None:
    await nginx.apply(render(world(backends), nginx.s))
    assert nginx.proc is not None
    pid = nginx.proc.pid
    await nginx.stop()
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    with pytest.raises(OSError):
        get(nginx, "a.example.com", "/")


def test_default_certificate_is_a_pem_pair() -> None:
    crt, key = default_certificate()
    assert crt.startswith(b"-----BEGIN CERTIFICATE") and b"PRIVATE KEY" in key
