"""pods/log through the node proxy: container choice, previous, tail, timestamps, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from k8py.api.request import ApiRequest
from k8py.kubelet.streaming import Streaming, api_pod_getter

from agent_helpers import Harness, harness_fixture


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    async for x in harness_fixture(tmp_path):
        yield x


def _write(path: str, lines: list[tuple[str, str]]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        for i, (stream, text) in enumerate(lines):
            f.write(f"2024-01-02T03:04:{i:02d}.000000000Z {stream} F {text}\n")


async def _log(s: Streaming, pod: dict, **q: str) -> tuple[int, object]:
    r = await s.node_proxy(ApiRequest("GET", "/x", query=q), pod, "log")
    return r.status, r.body if r.status != 200 else r.body.decode()  # type: ignore[union-attr]


async def test_logs(h: Harness) -> None:
    two = [{"name": "a", "image": "busybox"}, {"name": "b", "image": "busybox"}]
    await h.create_pod("p", two)
    await h.until(lambda: len(h.containers()) == 2)
    pod = await h.pod("p")
    s = Streaming(h.runtime, h.agent.node_name, h.clock, api_pod_getter(h.api))
    status, body = await _log(s, pod)
    assert status == 400
    assert body["message"] == "a container name must be specified for pod p, choose one of: [a b]"  # type: ignore[index]
    a0 = h.containers("a")[0]
    _write(a0.log_path, [("stdout", "one"), ("stderr", "two"), ("stdout", "three")])
    assert await _log(s, pod, container="a") == (200, "one\ntwo\nthree\n")
    assert await _log(s, pod, container="a", tailLines="1") == (200, "three\n")
    assert await _log(s, pod, container="a", timestamps="true", tailLines="1") == (
        200, "2024-01-02T03:04:02.000000000Z three\n")
    status, body = await _log(s, pod, container="a", previous="true")
    assert status == 400 and body["message"] == 'previous terminated container "a" in pod "p" not found'  # type: ignore[index]
    # a restart: attempt 1 writes its own file; --previous reads attempt 0's
    h.runtime.finish(a0.id, 1)
    await h.until(lambda: len(h.containers("a")) == 2, step=1)
    _write(h.containers("a")[1].log_path, [("stdout", "second run")])
    assert await _log(s, pod, container="a") == (200, "second run\n")
    assert await _log(s, pod, container="a", previous="true") == (200, "one\ntwo\nthree\n")
    assert h.containers("a")[1].log_path.endswith("/a/1.log")
    status, body = await _log(s, pod, container="zzz")
    assert status == 400 and body["message"] == "container zzz is not valid for pod p"  # type: ignore[index]


async def test_an_exec_that_cannot_start_answers_an_internal_error_on_channel_3(h: Harness) -> None:
    import aiohttp
    from aiohttp import web

    from k8py.api.request import ApiRequest

    await h.create_pod("p", [{"name": "a", "image": "busybox"}])
    await h.until(lambda: h.containers("a"))
    s = Streaming(h.runtime, h.agent.node_name, h.clock, api_pod_getter(h.api))

    async def handler(request: web.Request) -> web.StreamResponse:
        return await s.upgrade_handler(request, ApiRequest("GET", request.path, user="admin"), None)
    app = web.Application()
    app.router.add_get("/api/v1/namespaces/{ns}/pods/{name}/exec", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession() as sess, sess.ws_connect(
                f"http://127.0.0.1:{port}/api/v1/namespaces/default/pods/p/exec?command=ls",
                protocols=("v5.channel.k8s.io",)) as ws:
            msg = await ws.receive(timeout=10)
            why = "FakeRuntime does not stream exec"  # the runtime's refusal
            assert msg.data == (
                b'\x03{"metadata":{},"status":"Failure","message":"Internal error occurred: error executing command '
                b'in container: ' + why.encode() + b'","reason":"InternalError","details":{"causes":[{"message":'
                b'"error executing command in container: ' + why.encode() + b'"}]},"code":500}')
    finally:
        await runner.cleanup()
