"""The agent's own HTTPS endpoint (the kubelet's port 10250) for a remote API server:
pods/log, exec, attach and port-forward of the pods on this node, at the same paths as
the API (`/api/v1/namespaces/<ns>/pods/<name>/<sub>`), so the server only forwards;
and the Summary API (`GET /stats/summary`, kubelet/stats.py) for metrics.k8s.io.

Authentication: the bearer token the agent joined with (the cluster's agent token),
compared in constant time; TLS with a self-signed certificate made on first start
under `<root>/pki` (the server does not verify it, as Kubernetes' default
`--kubelet-certificate-authority` unset). Invariant: every request without the token
is answered 401 before anything else happens.
"""

from __future__ import annotations

import datetime
import hmac
import ipaddress
import json
import ssl
from pathlib import Path

from aiohttp import web

from k8py.api.request import ApiRequest
from k8py.api.streaming import DEFAULT_REMOTE_USER, POD_STREAM_PATH, REMOTE_USER_HEADER, STATS_SUMMARY_PATH
from k8py.kubelet.streaming import Streaming


def self_signed(dir_: Path, name: str, ips: list[str]) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    crt, key_path = dir_ / "kubelet.crt", dir_ / "kubelet.key"
    if crt.exists() and key_path.exists():
        return crt, key_path
    dir_.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    sans: list[x509.GeneralName] = [x509.DNSName(name)]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips if i]
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False).sign(key, hashes.SHA256()))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return crt, key_path


class KubeletServer:
    """Serves `streaming` (the node's pods) on `host:port` to holders of `token`; its TLS
    certificate (for `node_name` and `node_ip`) is kept in `pki_dir`."""

    def __init__(self, streaming: Streaming, token: str, port: int, pki_dir: Path, node_ip: str,
                 host: str = "0.0.0.0") -> None:
        self.streaming = streaming
        self.token = token
        self.port = port
        self.pki_dir = pki_dir
        self.node_ip = node_ip
        self.host = host
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        crt, key = self_signed(self.pki_dir, self.streaming.node_name, [self.node_ip, "127.0.0.1"])
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(crt), str(key))
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
        scheme, _, tok = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(tok.strip().encode(), self.token.encode()):
            return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                      "reason": "Unauthorized", "message": "Unauthorized", "code": 401}, status=401)
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

