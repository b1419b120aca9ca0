"""The ingress controller against an in-process API server and a real nginx on loopback:
the default IngressClass is created, Ingresses are served and get the address in their
status, a change to an EndpointSlice reaches nginx, Ingresses of another class are not."""

from __future__ import annotations

import asyncio
import http.client
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from k8py.client.client import Client
from k8py.clock import RealClock
from k8py.ingress.controller import IngressController
from k8py.ingress.nginx import Nginx, nginx_binary
from k8py.ingress.render import Settings

from helpers.api import start_api
from helpers.net import free_port

pytestmark = pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed (scripts/setup.sh)")


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = b"hello " + self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_a: Any) -> None:
        pass


@pytest.fixture(scope="module")
def backend() -> Iterator[int]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield int(srv.server_address[1])
    srv.shutdown()
    srv.server_close()


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[Client, IngressController]]:
    api, client = await start_api(RealClock())
    s = Settings(address="127.0.0.1", http_port=free_port(), https_port=free_port(),
                 prefix=str(tmp_path / "ingress"), certs_dir=str(tmp_path / "ingress" / "certs"))
    binary = nginx_binary()
    assert binary
    ctl = IngressController(client, RealClock(), s, Nginx(s, binary))
    task = asyncio.create_task(ctl.run())
    yield client, ctl
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert ctl.nginx.proc is None
    await api.close()


def _get(port: int, host: str, path: str) -> tuple[int, str]:
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", path, headers={"Host": host})
        r = c.getresponse()
        return r.status, r.read().decode(errors="replace")
    except OSError as e:
        return 0, str(e)


async def until(port: int, host: str, path: str, want: tuple[int, str | None], timeout: float = 30.0) -> None:
    """Wait for (status, body) at host/path (body None: any body)."""
    deadline = time.monotonic() + timeout
    while (got := await asyncio.to_thread(_get, port, host, path)) != want and (want[1] is not None or
                                                                                  got[0] != want[0]):
        assert time.monotonic() < deadline, got
        await asyncio.sleep(0.1)


def _ingress(name: str, host: str, cls: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"rules": [{"host": host, "http": {"paths": [
        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}
    if cls:
        spec["ingressClassName"] = cls
    return {"metadata": {"name": name, "namespace": "default"}, "spec": spec}


def _slice(port: int, ready: bool) -> dict[str, Any]:
    return {"metadata": {"name": "web-1", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4", "ports": [{"name": "", "port": port, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": ready}}]}


async def test_serves_ingresses_and_writes_the_address(cluster: tuple[Client, IngressController],
                                                       backend: int) -> None:
    client, ctl = cluster
    port = ctl.s.http_port
    await client.create("services", {"metadata": {"name": "web", "namespace": "default"},
                                     "spec": {"ports": [{"port": 80, "targetPort": backend}]}})
    await client.create("endpointslices", _slice(backend, ready=False))
    await client.create("ingresses", _ingress("web", "web.example.com"))
    await client.create("ingresses", _ingress("other", "other.example.com", cls="someone-else"))
    await until(port, "web.example.com", "/", (503, None))  # no ready endpoint yet
    sl = await client.get("endpointslices", "web-1", "default")
    sl["endpoints"][0]["conditions"]["ready"] = True
    await client.update("endpointslices", sl)
    await until(port, "web.example.com", "/x", (200, "hello /x"))
    assert _get(port, "other.example.com", "/")[0] == 404  # another class's Ingress: not ours
    cls = await client.get("ingressclasses", "k8py")
    assert cls["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"] == "true"
    deadline = time.monotonic() + 30
    while not ((await client.get("ingresses", "web", "default")).get("status") or {}).get("loadBalancer"):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    got = await client.get("ingresses", "web", "default")
    assert got["status"]["loadBalancer"]["ingress"] == [{"ip": "127.0.0.1"}]
    assert not ((await client.get("ingresses", "other", "default")).get("status") or {}).get("loadBalancer")
    reloads = ctl.nginx.reloads
    await client.create("configmaps", {"metadata": {"name": "unrelated", "namespace": "default"}})
    ctl.dirty.set()
    syncs = ctl.syncs
    while ctl.syncs == syncs:
        await asyncio.sleep(0.05)
    assert ctl.nginx.reloads == reloads  # same config: no reload
