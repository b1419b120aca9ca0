"""`k8py server --join URL --token TOKEN`: the join token pins the CA; the server-bootstrap
endpoint answers only the server token; a bad join is a one-line error that writes nothing."""

from __future__ import annotations

import asyncio
import base64
import ssl
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from k8py.api.request import ApiRequest, ApiResponse
from k8py.apiserver import certs, serverbootstrap
from k8py.apiserver.auth import Authenticator, User
from k8py.apiserver.encryption import DEFAULT_FILE, ensure_config
from k8py.apiserver.http import HttpFront
from k8py.apiserver.tokens import KEY_FILE
from k8py.cli import join

from helpers.net import free_port


@dataclass
class First:
    """A first server's data dir and its HTTPS front serving /cacerts and the bootstrap endpoint."""

    data: Path
    pki: certs.Pki
    front: HttpFront
    token: serverbootstrap.JoinToken

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.front.port}"


async def _nothing(_req: ApiRequest) -> ApiResponse:
    return ApiResponse(200, {"kind": "Status"})


@pytest.fixture
async def first(tmp_path: Path) -> AsyncIterator[First]:
    data = tmp_path / "a"
    pki = certs.ensure_pki(data)
    ensure_config(data, None)
    token = serverbootstrap.ensure_token(data, pki.dir)
    auth = Authenticator()
    auth.add_token(pki.agent_token, User("system:bootstrap:k8py-agent", ("system:bootstrappers",)))
    front = HttpFront(_nothing, ssl_context=pki.server_ssl_context(), authenticator=auth)
    front.ca_bundle = pki.ca_cert.read_bytes()
    front.secret_handlers[serverbootstrap.PATH] = serverbootstrap.handler(pki.dir, data / DEFAULT_FILE)
    await front.start("127.0.0.1", 0)
    yield First(data, pki, front, token)
    await front.close()


def test_the_token_has_k3s_secure_format_and_pins_the_ca_bundle(tmp_path: Path) -> None:
    pki = certs.ensure_pki(tmp_path)
    token = serverbootstrap.ensure_token(tmp_path, pki.dir)
    text = (tmp_path / "token").read_text().strip()
    assert text == str(token) and text.startswith("K10") and "::server:" in text
    assert token.ca_hash == serverbootstrap.ca_bundle_hash(pki.ca_cert.read_bytes())
    assert (tmp_path / "token").stat().st_mode & 0o777 == 0o600
    assert serverbootstrap.ensure_token(tmp_path, pki.dir) == token  # stable across restarts
    assert serverbootstrap.parse_token(text) == token


async def test_join_fetches_the_ca_and_keys_and_installs_them(first: First, tmp_path: Path) -> None:
    b = tmp_path / "b"
    body = await join.fetch(first.url, str(first.token))
    assert not b.exists()  # fetching writes nothing
    join.install(b, body, copy_encryption_config=True)
    for name in ("ca.crt", "ca.key", "admin.crt", "admin.key", "agent-token", KEY_FILE,
                 serverbootstrap.SECRET_FILE):
        assert (b / "pki" / name).read_bytes() == (first.pki.dir / name).read_bytes(), name
    assert not (b / "pki" / certs.SERVING_KEY).exists()  # each server makes its own serving certificate
    assert (b / DEFAULT_FILE).read_bytes() == (first.data / DEFAULT_FILE).read_bytes()
    assert (b / "pki").stat().st_mode & 0o777 == 0o700 and (b / "pki" / "ca.key").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in b.iterdir() if p.name.startswith(".")] == []
    assert join.already_joined(b, str(first.token))
    # the joined server's own token is the cluster's: it can let the next server join
    assert serverbootstrap.ensure_token(b, certs.ensure_pki(b).dir) == first.token


@pytest.mark.parametrize("case, message", [
    ("wrong secret", r"refused the join token \(401\)"),
    ("wrong CA hash", "is not the one the token pins"),
    ("unreachable", "cannot join"),
    ("not a token", "want the full join token"),
])
async def test_a_bad_join_is_one_line_and_writes_nothing(first: First, tmp_path: Path, case: str,
                                                         message: str) -> None:
    t, url = first.token, first.url
    token = {"wrong secret": f"K10{t.ca_hash}::server:nope",
             "wrong CA hash": f"K10{'0' * 64}::server:{t.secret}",
             "unreachable": str(t), "not a token": t.secret}[case]
    if case == "unreachable":
        url = f"https://127.0.0.1:{free_port()}"
    with pytest.raises(ValueError, match=message) as e:
        await join.fetch(url, token)
    assert "\n" not in str(e.value)


async def test_a_wrong_ca_never_receives_the_secret(first: First, tmp_path: Path) -> None:
    """Another cluster's server: the token's hash does not match its CA, so the joiner stops
    before the bootstrap request (the other server sees no request carrying the secret)."""
    other_pki = certs.ensure_pki(tmp_path / "other")
    seen: list[str] = []

    async def spy(req: ApiRequest) -> ApiResponse:
        seen.append(req.headers.get("authorization", ""))
        return ApiResponse(401, {})
    other = HttpFront(_nothing, ssl_context=other_pki.server_ssl_context(), authenticator=Authenticator())
    other.ca_bundle = other_pki.ca_cert.read_bytes()
    other.secret_handlers[serverbootstrap.PATH] = spy
    await other.start("127.0.0.1", 0)
    try:
        with pytest.raises(ValueError, match="refusing to send the token"):
            await join.fetch(f"https://127.0.0.1:{other.port}", str(first.token))
    finally:
        await other.close()
    assert seen == []


@pytest.mark.parametrize("who", ["nobody", "agent token", "admin certificate", "bearer of the hash"])
async def test_the_bootstrap_endpoint_answers_only_the_server_token(first: First, who: str) -> None:
    ctx = ssl.create_default_context(cafile=str(first.pki.ca_cert))
    headers = {}
    if who == "agent token":
        headers["Authorization"] = f"Bearer {first.pki.agent_token}"
    if who == "admin certificate":
        ctx.load_cert_chain(str(first.pki.admin_cert), str(first.pki.admin_key))
    if who == "bearer of the hash":
        headers["Authorization"] = f"Bearer {first.token.ca_hash}"
    async with aiohttp.ClientSession() as s:
        async with s.get(first.url + serverbootstrap.PATH, ssl=ctx, headers=headers) as r:
            assert r.status == 401
            body = await r.json()
        assert body["kind"] == "Status" and body["reason"] == "Unauthorized"
        async with s.get(first.url + serverbootstrap.PATH, ssl=ctx,
                         headers={"Authorization": f"Bearer {first.token.secret}"}) as r:
            assert r.status == 200
            got = await r.json()
    assert base64.b64decode(got["pki"]["ca.key"]) == first.pki.ca_key.read_bytes()


async def test_k8py_server_join_with_a_bad_token_exits_with_one_line(first: First, tmp_path: Path) -> None:
    """The command: a wrong token is `k8py: cannot start: ...` on one line, exit 1, no data dir."""
    data = tmp_path / "b"
    bad = f"K10{first.token.ca_hash}::server:wrong"
    p = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "k8py.cli.main", "server", "--data-dir", str(data), "--port", "0", "--no-agent",
        "--join", first.url, "--token", bad, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(p.communicate(), 120)
    stderr = err.decode()
    assert p.returncode == 1
    assert stderr.count("\n") == 1 and stderr.startswith("k8py: cannot start: --join"), stderr
    assert "refused the join token" in stderr
    assert not data.exists()
