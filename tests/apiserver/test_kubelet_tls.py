"""The kubelet endpoint trusts only the API server, and the API server trusts only the
kubelet whose certificate names the node: the old agent token, a node's certificate and a
certificate of another CA are refused; a Node claiming another node's address gets no
connection (the API server's kubelet-client certificate is never presented to it)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from k8py.api.request import ApiRequest, ApiResponse
from k8py.apiserver import certs
from k8py.apiserver.nodeproxy import attach_to_server
from k8py.apiserver.server import ApiServer
from k8py.client.client import Client
from k8py.component import NodeTLS
from k8py.kubelet.kubeletserver import KubeletServer

from apiserver_helpers import call


class Streams:
    """The kubelet's pods, as far as these tests need: every log is `hi <remote user>`."""

    node_name = "n1"

    def __init__(self) -> None:
        self.served: list[str] = []

    async def get_pod(self, ns: str, name: str, user: str) -> tuple[int, dict[str, Any]]:
        return 200, {"metadata": {"namespace": ns, "name": name}}

    async def node_proxy(self, req: ApiRequest, pod: Any, sub: str) -> ApiResponse:
        self.served.append(req.user)
        return ApiResponse(200, f"hi {req.user}".encode(), content_type="text/plain")

    async def stats_summary(self) -> dict[str, Any]:
        self.served.append("stats")
        return {"node": {"nodeName": "n1"}, "pods": []}


@pytest.fixture
async def kubelet(tmp_path: Path) -> AsyncIterator[tuple[certs.Pki, KubeletServer, Streams]]:
    pki = certs.ensure_pki(tmp_path / "data")
    d = certs.mint_node_credentials(pki.dir, "n1", ["127.0.0.1"]).write(tmp_path / "n1")
    streams = Streams()
    server = KubeletServer(streams, NodeTLS(d / "ca.crt", d / "kubelet.crt", d / "kubelet.key"),  # type: ignore[arg-type]
                           0, host="127.0.0.1")
    await server.start()
    yield pki, server, streams
    await server.close()


async def _get(ctx: ssl.SSLContext, port: int, hostname: str = "n1", **headers: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.get(f"https://127.0.0.1:{port}/api/v1/namespaces/default/pods/p/log",
                                                   ssl=ctx, server_hostname=hostname, headers=headers) as r:
        return r.status, await r.text()


def _client_ctx(pki: certs.Pki, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    if cert is not None and key is not None:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


async def test_only_the_api_server_is_served(kubelet: Any, tmp_path: Path) -> None:
    pki, server, streams = kubelet
    status, _ = await _get(_client_ctx(pki), server.port, Authorization=f"Bearer {pki.agent_token}",
                           **{"X-Remote-User": "admin"})
    assert status == 401  # the old shared agent token is nothing here
    status, body = await _get(_client_ctx(pki, tmp_path / "n1" / "node.crt", tmp_path / "n1" / "node.key"),
                              server.port)
    assert status == 403 and "system:node:n1" in body  # a node (or anyone) with a CA-signed cert
    other = certs.ensure_pki(tmp_path / "other")  # a certificate of another CA fails the handshake
    with pytest.raises(aiohttp.ClientError):
        await _get(_client_ctx(pki, other.admin_cert, other.admin_key), server.port)
    assert streams.served == []
    status, body = await _get(pki.kubelet_client_ssl_context(), server.port, **{"X-Remote-User": "alice"})
    assert (status, body) == (200, "hi alice")


async def test_a_claimed_address_gets_no_connection(kubelet: Any, api: ApiServer, client: Client) -> None:
    """Node n2 claims n1's address and port: the API server refuses n1's certificate for n2."""
    pki, server, streams = kubelet
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await _get(pki.kubelet_client_ssl_context(), server.port, hostname="n2")
    attach_to_server(api, SimpleNamespace(upgrade_handler=None), pki.kubelet_client_ssl_context())  # type: ignore[arg-type]
    for node in ("n1", "n2"):
        await client.create("nodes", {"metadata": {"name": node}})
        await client.patch("nodes", node, {"status": {
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": server.port}}}}, subresource="status")
        await client.create("pods", {"metadata": {"name": f"p-{node}"}, "spec": {
            "nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}}, "default")
    resp = await call(api, "GET", "/api/v1/namespaces/default/pods/p-n2/log")
    assert resp.status == 502 and "certificate verify failed" in resp.body["message"], resp.body
    assert streams.served == []
    resp = await call(api, "GET", "/api/v1/namespaces/default/pods/p-n1/log")
    assert resp.status == 200, resp.body
    assert streams.served == ["system:admin"]


async def test_stats_summary_only_for_the_api_server(kubelet: Any, api: ApiServer, client: Client) -> None:
    """metrics.k8s.io's source reaches the kubelet's /stats/summary with the API server's certificate."""
    pki, server, streams = kubelet
    async with aiohttp.ClientSession() as s, s.get(f"https://127.0.0.1:{server.port}/stats/summary",
                                                   ssl=_client_ctx(pki), server_hostname="n1") as r:
        assert r.status == 401
    assert streams.served == []
    proxy = attach_to_server(api, SimpleNamespace(upgrade_handler=None),  # type: ignore[arg-type]
                             pki.kubelet_client_ssl_context())
    await client.create("nodes", {"metadata": {"name": "n1"}})
    await client.patch("nodes", "n1", {"status": {
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": server.port}}}}, subresource="status")
    assert api.metrics.source == proxy.stats_summary
    assert await proxy.stats_summary("n1") == {"node": {"nodeName": "n1"}, "pods": []}
    assert streams.served == ["stats"]


def test_the_node_credentials_carry_a_policy_agent_identity_apart(tmp_path: Path) -> None:
    """The node's NetworkPolicy enforcer gets a certificate of its own (it may read every pod);
    the node's own stays system:node:<name> in system:nodes (confined to its pods)."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    pki = certs.ensure_pki(tmp_path / "data")
    d = certs.mint_node_credentials(pki.dir, "n1", ["127.0.0.1"]).write(tmp_path / "n1")

    def subject(name: str) -> tuple[str, str]:
        s = x509.load_pem_x509_certificate((d / name).read_bytes()).subject
        return (s.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value,
                s.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value)
    assert subject("node.crt") == ("system:node:n1", "system:nodes")
    assert subject("netpol.crt") == ("system:k8py:network-policy-agent:n1", "system:k8py:network-policy-agents")
    assert oct((d / "netpol.key").stat().st_mode & 0o777) == "0o600"
