"""Probe handlers (exec, httpGet, tcpSocket) and the startup/readiness state machine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from k8py.clock import FakeClock
from k8py.kubelet.prober import PodProber, run_probe
from k8py.runtime.fake import FakeRuntime
from k8py.runtime.protocol import ContainerConfig, ExecResult, PodSandboxConfig


@pytest.fixture
async def http_port() -> AsyncIterator[int]:
    async def ok(req: web.Request) -> web.Response:
        if req.headers.get("X-Probe") != "yes":
            return web.Response(status=403)
        return web.Response(text="fine")

    async def bad(req: web.Request) -> web.Response:
        return web.Response(status=500)

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/bad", bad)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield port
    await runner.cleanup()


async def _container(rt: FakeRuntime) -> str:
    await rt.pull_image("busybox")
    sid = await rt.run_pod_sandbox(PodSandboxConfig(name="p", namespace="d", uid="u"))
    cid = await rt.create_container(sid, ContainerConfig(name="c", image="busybox"))
    await rt.start_container(cid)
    return cid


@pytest.mark.parametrize("probe, ok, message", [
    ({"httpGet": {"path": "/ok", "port": "PORT", "httpHeaders": [{"name": "X-Probe", "value": "yes"}]}}, True, "fine"),
    ({"httpGet": {"path": "/ok", "port": "PORT"}}, False, "HTTP probe failed with statuscode: 403"),
    ({"httpGet": {"path": "/bad", "port": "web"}}, False, "HTTP probe failed with statuscode: 500"),
    ({"tcpSocket": {"port": "PORT"}}, True, ""),
    ({"exec": {"command": ["check"]}}, False, "broken"),
])
async def test_handlers(http_port: int, probe: dict, ok: bool, message: str) -> None:
    rt = FakeRuntime()
    cid = await _container(rt)
    rt.exec_results[("c", ("check",))] = ExecResult(1, b"broken\n", b"")
    for v in probe.values():
        if v.get("port") == "PORT":
            v["port"] = http_port
    container = {"name": "c", "ports": [{"name": "web", "containerPort": http_port}]}
    r = await run_probe(rt, cid, probe, container, "127.0.0.1")
    assert (r.ok, r.message) == (ok, message)


async def test_tcp_probe_to_a_closed_port_fails() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = await run_probe(FakeRuntime(), "x", {"tcpSocket": {"port": port}}, {}, "127.0.0.1")
    assert not r.ok and r.message


async def test_startup_gates_readiness_and_liveness() -> None:
    clock = FakeClock()
    rt = FakeRuntime(now=clock.now)
    cid = await _container(rt)
    rt.exec_results[("c", ("started",))] = ExecResult(1, b"", b"")
    rt.exec_results[("c", ("ready",))] = ExecResult(0, b"", b"")
    events: list[tuple[str, str, str]] = []
    killed: list[str] = []
    changes: list[int] = []

    async def on_fail(cid: str, name: str, msg: str) -> None:
        killed.append(msg)

    p = PodProber(rt, clock, event=lambda *a: events.append(a), on_liveness_failure=on_fail,
                  on_change=lambda: changes.append(1))
    c: dict[str, Any] = {"name": "c", "startupProbe": {"exec": {"command": ["started"]}, "periodSeconds": 1,
                                                       "failureThreshold": 30},
                         "readinessProbe": {"exec": {"command": ["ready"]}, "periodSeconds": 1},
                         "livenessProbe": {"exec": {"command": ["alive"]}, "periodSeconds": 1}}
    p.ensure(cid, c, clock.now(), "127.0.0.1")
    for _ in range(3):
        await clock.advance(1)
    assert not p.is_started(cid, c) and not p.is_ready(cid, c)
    assert not [e for e in events if "Liveness" in e[2] or "Readiness" in e[2]]
    assert ("Warning", "Unhealthy", "Startup probe failed: command ['started'] exited with 1") in events
    rt.exec_results[("c", ("started",))] = ExecResult(0, b"", b"")
    for _ in range(4):
        await clock.advance(1)
    assert p.is_started(cid, c) and p.is_ready(cid, c)
    rt.exec_results[("c", ("alive",))] = ExecResult(1, b"dead", b"")
    for _ in range(5):
        await clock.advance(1)
    assert killed == ["Container c failed liveness probe, will be restarted"]
    p.stop_all()
    await asyncio.sleep(0)
