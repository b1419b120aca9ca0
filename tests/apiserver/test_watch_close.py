"""Closing a Client.watch generator closes the transport's stream at once, so the API
server's watcher goes away then (not when the generator is garbage-collected); over both
transports: in-process and REST (HTTPS through the real front)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from k8py.apiserver import certs, kubeconfig
from k8py.apiserver.auth import Authenticator
from k8py.apiserver.http import HttpFront
from k8py.apiserver.inprocess import InProcessTransport
from k8py.apiserver.server import ApiServer
from k8py.client.client import Client
from k8py.client.rest import RestTransport


@pytest.fixture
async def rest_client(api: ApiServer, tmp_path: Path) -> AsyncIterator[Client]:
    pki = certs.ensure_pki(tmp_path)
    front = HttpFront(api.handle, ssl_context=pki.server_ssl_context(), authenticator=Authenticator())
    port = await front.start("127.0.0.1", 0)
    kc = kubeconfig.write(tmp_path / "kubeconfig", pki, kubeconfig.server_url("127.0.0.1", port))
    c = Client(RestTransport.from_kubeconfig(kc))
    yield c
    await c.close()
    await front.close()


@pytest.mark.parametrize("transport", ["inprocess", "rest"])
async def test_aclose_ends_the_server_side_watch(api: ApiServer, rest_client: Client, transport: str) -> None:
    client = Client(InProcessTransport(api)) if transport == "inprocess" else rest_client
    await client.create("configmaps", {"metadata": {"name": "w", "namespace": "default"}, "data": {}})
    base = api.watchers
    # Generators dropped without aclose are kept here instead of being finalized: garbage
    # collection may come late, so nothing may rely on it.
    unfinalized: list[object] = []
    hooks = sys.get_asyncgen_hooks()
    sys.set_asyncgen_hooks(firstiter=hooks.firstiter, finalizer=unfinalized.append)
    try:
        gen = client.watch("configmaps", "default")
        ev = await gen.__anext__()
    finally:
        sys.set_asyncgen_hooks(*hooks)
    try:
        assert ev["type"] == "ADDED" and ev["object"]["metadata"]["name"] == "w"
        assert api.watchers == base + 1
        await gen.aclose()
        if transport == "inprocess":
            assert api.watchers == base  # closed within aclose
        else:
            async def gone() -> None:  # the server learns of the disconnect from the socket
                while api.watchers != base:
                    await asyncio.sleep(0.01)
            await asyncio.wait_for(gone(), 10)
    finally:
        for g in unfinalized:
            await g.aclose()  # type: ignore[attr-defined]
