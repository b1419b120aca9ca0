"""The server join token and `GET /k8py/v1/server-bootstrap`: what a further server of the
cluster fetches to serve with the same CA and keys (k3s's `--token` join).

The token has k3s's secure format `K10<sha256 of the CA bundle, hex>::server:<secret>`:
the joining server fetches `/cacerts` (served to anyone), checks its hash against the
token BEFORE it sends the secret (so a server that is not the cluster's learns nothing),
then asks this endpoint over TLS verified with that CA, with `Authorization: Bearer
<secret>`. The secret is `pki/server-token` (made on the first start, and part of what a
joined server receives, so every server can let the next one join); every server writes
the full token to `DATA_DIR/token` (0600).

The endpoint is authenticated by that secret alone: no certificate, no other token (the
node agent token, the admin's) opens it (401 Status otherwise). Its answer: the PKI files
a server shares (the CA and its key, the admin and kubelet-client certificates, the agent
and server tokens, the service-account signing key; not the serving certificate, which
each server makes for its own addresses) and the encryption configuration in use, each
base64 in a JSON object.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from k8py.api.request import ApiRequest, ApiResponse
from k8py.apiserver import certs

PATH = "/k8py/v1/server-bootstrap"
SECRET_FILE = "server-token"  # in the PKI dir
TOKEN_FILE = "token"  # in the data dir: the full K10 token
NOT_SHARED = (certs.SERVING_CERT, certs.SERVING_KEY, certs.SANS_FILE)
_TOKEN = re.compile(r"^K10([0-9a-f]{64})::([^:\s]+):(\S+)$")


@dataclass(frozen=True)
class JoinToken:
    """A parsed join token: the CA bundle's sha256 (hex), the user (`server`) and the secret."""

    ca_hash: str
    user: str
    secret: str

    def __str__(self) -> str:
        return f"K10{self.ca_hash}::{self.user}:{self.secret}"


def ca_bundle_hash(bundle: bytes) -> str:
    """sha256 (hex) of the CA bundle's bytes as `/cacerts` serves them (k3s's token hash)."""
    return hashlib.sha256(bundle).hexdigest()


def parse_token(text: str) -> JoinToken:
    """A `K10<hash>::server:<secret>` token, or ValueError naming what is wrong."""
    m = _TOKEN.match(text.strip())
    if m is None:
        raise ValueError("--token: want the full join token K10<sha256 of the CA>::server:<secret> "
                         "(the first server's DATA_DIR/token)")
    if m.group(2) != "server":
        raise ValueError(f"--token: a server join token names the user 'server', not {m.group(2)!r}")
    return JoinToken(m.group(1), m.group(2), m.group(3))


def ensure_token(data_dir: Path, pki_dir: Path) -> JoinToken:
    """This cluster's join token (its secret made if missing), written to DATA_DIR/token."""
    secret_path = pki_dir / SECRET_FILE
    if not secret_path.exists():
        _write_private(secret_path, secrets.token_hex(24).encode())
    token = JoinToken(ca_bundle_hash((pki_dir / certs.CA_CERT).read_bytes()), "server",
                      secret_path.read_text().strip())
    path = data_dir / TOKEN_FILE
    if not path.exists() or path.read_text().strip() != str(token):
        _write_private(path, (str(token) + "\n").encode())
    return token


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _status(code: int, reason: str, message: str) -> ApiResponse:
    return ApiResponse(code, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                              "message": message, "reason": reason, "code": code})


def payload(pki_dir: Path, encryption_config: Path) -> dict[str, object]:
    """What a joining server receives: the shared PKI files and the encryption config (base64)."""
    files = {p.name: base64.b64encode(p.read_bytes()).decode() for p in sorted(pki_dir.iterdir())
             if p.is_file() and p.name not in NOT_SHARED and not p.name.endswith(".tmp")}
    return {"pki": files, "encryptionConfig": base64.b64encode(encryption_config.read_bytes()).decode()}


def _ensure_signing_key(pki_dir: Path) -> None:
    """The service-account signing key exists before it is sent (the issuer makes it lazily)."""
    import time

    from k8py.apiserver.tokens import TokenIssuer
    TokenIssuer(pki_dir, time.time)._private_key()


def handler(pki_dir: Path, encryption_config: Path) -> Callable[[ApiRequest], Awaitable[ApiResponse]]:
    """`GET PATH` with `Authorization: Bearer <secret>`: the payload; anyone else a 401 Status."""
    async def server_bootstrap(req: ApiRequest) -> ApiResponse:
        if req.method != "GET":
            return _status(405, "MethodNotAllowed", f"{req.method} is not allowed on {PATH}")
        scheme, _, given = req.headers.get("authorization", "").partition(" ")
        secret = (pki_dir / SECRET_FILE).read_text().strip()
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), secret.encode()):
            return _status(401, "Unauthorized", f"{PATH} needs the server join token")
        await asyncio.to_thread(_ensure_signing_key, pki_dir)
        return ApiResponse(200, await asyncio.to_thread(payload, pki_dir, encryption_config))
    return server_bootstrap
