"""The HTTPS transport of the k8py client: a kubeconfig's server and credentials over aiohttp.

Authenticates with a client certificate (verified by the server against its CA)
or a bearer token; verifies the server against the cluster CA. Watch streams are
read as newline-delimited JSON, one event per line, of any length. Invariants:
HTTP errors are returned as (status, body), never raised (the Client raises
ApiError); a stream that cannot start raises ApiError; the aiohttp session is
created on first use inside the running loop and closed by `close()`.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from k8py.api import jsonfast
from k8py.client.errors import ApiError
from k8py.client.transport import encode_body

REQUEST_TIMEOUT = 60.0


def _decode(data: bytes, content_type: str) -> Any:
    if not data:
        return None
    if "json" in content_type or data[:1] in (b"{", b"["):
        try:
            return jsonfast.loads(data)
        except ValueError:
            pass
    return data.decode("utf-8", "replace") if content_type.startswith("text/") else data


def _load_pem_pair(ctx: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    """ssl needs files: write the pair to a private temp dir, load it, remove it."""
    with tempfile.TemporaryDirectory(prefix="k8py-cred-") as d:
        cf, kf = Path(d, "c.pem"), Path(d, "k.pem")
        for p, data in ((cf, cert_pem), (kf, key_pem)):
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        ctx.load_cert_chain(str(cf), str(kf))


class RestTransport:
    """`k8py.client.transport.Transport` over HTTPS."""

    def __init__(self, server: str, *, ca_file: str | None = None, ca_data: bytes | None = None,
                 cert_file: str | None = None, key_file: str | None = None,
                 cert_data: bytes | None = None, key_data: bytes | None = None,
                 token: str | None = None, insecure: bool = False, server_hostname: str | None = None) -> None:
        self.server = server.rstrip("/")
        # The name the server's certificate is checked for, when not the URL's host (the agent
        # dials its local balancer at 127.0.0.1 and checks for the API server's own name).
        self.server_hostname = server_hostname
        ctx = ssl.create_default_context(cafile=ca_file,
                                         cadata=ca_data.decode() if ca_data else None)
        if insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if cert_file and key_file:
            ctx.load_cert_chain(cert_file, key_file)
        elif cert_data and key_data:
            _load_pem_pair(ctx, cert_data, key_data)
        self.ssl_context = ctx
        self.headers = {"Accept": "application/json", "User-Agent": "k8py-client"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_kubeconfig(cls, path: str | os.PathLike[str] | None = None, context: str | None = None) -> RestTransport:
        """Build from a kubeconfig file (default: $KUBECONFIG or ~/.kube/config)."""
        p = Path(path or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or "~/.kube/config").expanduser()
        cfg = yaml.safe_load(p.read_text()) or {}
        base = p.parent
        ctx_name = context or cfg.get("current-context")
        ctxs = {c["name"]: c["context"] for c in cfg.get("contexts") or []}
        if ctx_name not in ctxs:
            raise ValueError(f"{p}: no context {ctx_name!r}")
        c = ctxs[ctx_name]
        cluster = {x["name"]: x["cluster"] for x in cfg.get("clusters") or []}[c["cluster"]]
        user = {x["name"]: x.get("user") or {} for x in cfg.get("users") or []}.get(c.get("user"), {})

        def data(d: dict[str, Any], key: str) -> bytes | None:
            v = d.get(f"{key}-data")
            return base64.b64decode(v) if v else None

        def file(d: dict[str, Any], key: str) -> str | None:
            v = d.get(key)
            return str((base / v).resolve()) if v else None

        token = user.get("token")
        if not token and user.get("tokenFile"):
            token = Path(file(user, "tokenFile") or "").read_text().strip()
        return cls(cluster["server"], ca_file=file(cluster, "certificate-authority"),
                   ca_data=data(cluster, "certificate-authority"),
                   cert_file=file(user, "client-certificate"), key_file=file(user, "client-key"),
                   cert_data=data(user, "client-certificate"), key_data=data(user, "client-key"),
                   token=token, insecure=bool(cluster.get("insecure-skip-tls-verify")))

    def _sess(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self.ssl_context, limit=0),
                headers=self.headers)
        return self._session

    async def request(self, method: str, path: str, *, query: dict[str, str] | None = None,
                      body: Any = None, content_type: str = "application/json") -> tuple[int, Any]:
        data = encode_body(body)
        headers = {"Content-Type": content_type} if data is not None else {}
        async with self._sess().request(method, self.server + path, params=query or None, data=data,
                                        headers=headers, server_hostname=self.server_hostname,
                                        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)) as resp:
            raw = await resp.read()
            return resp.status, _decode(raw, resp.headers.get("Content-Type", ""))

    async def stream(self, path: str, *, query: dict[str, str] | None = None) -> AsyncIterator[dict[str, Any]]:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=REQUEST_TIMEOUT, sock_read=None)
        async with self._sess().get(self.server + path, params=query or None, timeout=timeout,
                                    server_hostname=self.server_hostname) as resp:
            if resp.status >= 300:
                raw = await resp.read()
                raise ApiError(resp.status, _decode(raw, resp.headers.get("Content-Type", "")))
            buf = b""
            async for chunk in resp.content.iter_any():
                buf += chunk
                while True:
                    i = buf.find(b"\n")
                    if i < 0:
                        break
                    line, buf = buf[:i], buf[i + 1:]
                    if line.strip():
                        yield jsonfast.loads(line)
            if buf.strip():
                yield jsonfast.loads(buf)

    async def stream_bytes(self, path: str, *, query: dict[str, str] | None = None) -> AsyncIterator[bytes]:
        """GET a byte stream (pod logs with follow=true)."""
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=REQUEST_TIMEOUT, sock_read=None)
        async with self._sess().get(self.server + path, params=query or None, timeout=timeout,
                                    server_hostname=self.server_hostname) as resp:
            if resp.status >= 300:
                raw = await resp.read()
                raise ApiError(resp.status, _decode(raw, resp.headers.get("Content-Type", "")))
            async for chunk in resp.content.iter_any():
                yield chunk

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
