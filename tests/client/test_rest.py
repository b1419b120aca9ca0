"""RestTransport: kubeconfig loading, TLS client certs, tokens, JSON and watch streams over HTTPS."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from k8py.api.request import ApiRequest, ApiResponse
from k8py.apiserver import certs, kubeconfig
from k8py.apiserver.auth import Authenticator, User
from k8py.apiserver.http import HttpFront
from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.client.rest import RestTransport


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> certs.Pki:
    return certs.ensure_pki(tmp_path_factory.mktemp("data"))


async def handle(req: ApiRequest) -> ApiResponse:
    if req.query.get("watch") == "true":
        async def events() -> AsyncIterator[dict[str, Any]]:
            for i in range(3):
                yield {"type": "ADDED", "object": {"metadata": {"name": f"p{i}"}, "pad": "y" * (100_000 * i)}}
        return ApiResponse(200, stream=events())
    if req.path.endswith("/missing"):
        return ApiResponse(404, {"kind": "Status", "reason": "NotFound", "code": 404, "message": "gone"})
    if req.path.endswith("/gone") and req.query.get("watch"):
        return ApiResponse(410, {"kind": "Status", "reason": "Expired", "code": 410})
    return ApiResponse(200, {"method": req.method, "path": req.path, "query": req.query, "user": req.user,
                             "ct": req.headers.get("content-type"),
                             "body": json.loads(req.body) if req.body else None})


@pytest.fixture
async def server(pki: certs.Pki) -> AsyncIterator[str]:
    auth = Authenticator()
    auth.add_token("tok", User("agent"))

    async def h(req: ApiRequest) -> ApiResponse:
        if req.path.endswith("/gone"):
            return ApiResponse(410, {"kind": "Status", "reason": "Expired", "code": 410})
        return await handle(req)

    f = HttpFront(h, ssl_context=pki.server_ssl_context(), authenticator=auth)
    port = await f.start("127.0.0.1", 0)
    yield kubeconfig.server_url("127.0.0.1", port)
    await f.close()


async def test_from_kubeconfig_with_client_cert(pki: certs.Pki, server: str, tmp_path: Path) -> None:
    kc = kubeconfig.write(tmp_path / "kubeconfig", pki, server)
    cfg = yaml.safe_load(kc.read_text())
    assert cfg["current-context"] == "k8py" and cfg["clusters"][0]["cluster"]["server"] == server
    t = RestTransport.from_kubeconfig(kc)
    try:
        status, body = await t.request("POST", "/api/v1/namespaces/default/configmaps", query={"dryRun": "All"},
                                       body={"kind": "ConfigMap"})
        assert status == 200
        assert body == {"method": "POST", "path": "/api/v1/namespaces/default/configmaps",
                        "query": {"dryRun": "All"}, "user": "admin", "ct": "application/json",
                        "body": {"kind": "ConfigMap"}}
        status, body = await t.request("GET", "/api/v1/namespaces/default/pods/missing")
        assert status == 404 and body["reason"] == "NotFound"
    finally:
        await t.close()


async def test_token_and_ca_file_from_kubeconfig_paths(pki: certs.Pki, server: str, tmp_path: Path) -> None:
    (tmp_path / "tok").write_text("tok\n")
    kc = tmp_path / "kc"
    kc.write_text(yaml.safe_dump({
        "clusters": [{"name": "c", "cluster": {"server": server, "certificate-authority": str(pki.ca_cert)}}],
        "users": [{"name": "u", "user": {"tokenFile": "tok"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}], "current-context": "x"}))
    t = RestTransport.from_kubeconfig(kc)
    try:
        status, body = await t.request("GET", "/api/v1/pods")
        assert (status, body["user"]) == (200, "agent")
    finally:
        await t.close()


async def test_without_credentials_answers_401(pki: certs.Pki, server: str) -> None:
    t = RestTransport(server, ca_file=str(pki.ca_cert))
    try:
        status, body = await t.request("GET", "/api/v1/pods")
        assert status == 401 and body["reason"] == "Unauthorized"
    finally:
        await t.close()


async def test_client_watch_over_rest(pki: certs.Pki, server: str) -> None:
    t = RestTransport(server, ca_file=str(pki.ca_cert), cert_file=str(pki.admin_cert), key_file=str(pki.admin_key))
    c = Client(t)
    try:
        names = [ev["object"]["metadata"]["name"] async for ev in c.watch("pods", "default")]
        assert names == ["p0", "p1", "p2"]
        with pytest.raises(ApiError) as e:
            async for _ in t.stream("/api/v1/namespaces/default/pods/gone", query={"watch": "true"}):
                pass
        assert e.value.gone
        with pytest.raises(ApiError) as e2:
            await c.get("pods", "missing", "default")
        assert e2.value.not_found
    finally:
        await c.close()
