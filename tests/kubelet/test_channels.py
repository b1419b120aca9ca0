"""The WebSocket channel framing (kubelet/channels.py) and port-forward over it
(kubelet/wsportforward.py) against a local TCP server on loopback."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMessage, WSMsgType, web

from k8py.kubelet import channels
from k8py.kubelet.wsportforward import ChannelPortForward


@pytest.mark.parametrize(("msg", "want"), [
    (WSMessage(WSMsgType.BINARY, b"\x00echo hi\n", None), (0, b"echo hi\n")),
    (WSMessage(WSMsgType.TEXT, "\x00echo hi\n", None), (0, b"echo hi\n")),  # the Python client's str
    (WSMessage(WSMsgType.TEXT, '\x04{"Width":80,"Height":24}', None), (4, b'{"Width":80,"Height":24}')),
    (WSMessage(WSMsgType.TEXT, "\x00h\u00e9", None), (0, "h\u00e9".encode())),
    (WSMessage(WSMsgType.BINARY, b"\xff\x00", None), (255, b"\x00")),  # v5 CLOSE of stdin
    (WSMessage(WSMsgType.BINARY, b"\x01", None), (1, b"")),
    (WSMessage(WSMsgType.BINARY, b"", None), None),
    (WSMessage(WSMsgType.PING, b"x", None), None),
])
def test_decode(msg: WSMessage, want: Any) -> None:
    assert channels.decode(msg) == want


def test_frames_and_port_prefixes() -> None:
    assert channels.frame(3, b'{"status":"Success"}') == b'\x03{"status":"Success"}'
    assert channels.port_prefix(80) == b"P\x00" and channels.port_prefix(8080) == b"\x90\x1f"
    assert struct.unpack("<H", channels.port_prefix(65535)) == (65535,)
    assert [channels.data_channel(i) for i in range(3)] == [0, 2, 4]
    assert [channels.error_channel(i) for i in range(3)] == [1, 3, 5]


@pytest.mark.parametrize(("values", "want"), [
    (["80"], [80]),
    (["80,443", "8080"], [80, 443, 8080]),
    ([], 'query parameter "ports" is required'),
    ([""], 'query parameter "ports" cannot be empty'),
    (["0"], 'unable to parse "0" as a port: a port must be a number in 1-65535'),
    (["80,x"], 'unable to parse "80,x" as a port: a port must be a number in 1-65535'),
    (["65536"], 'unable to parse "65536" as a port: a port must be a number in 1-65535'),
])
def test_parse_ports(values: list[str], want: Any) -> None:
    assert channels.parse_ports(values) == want


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    """A loopback TCP server that answers each line upper-cased, and closes on "BYE"."""
    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while (line := await r.readline()) and line.strip() != b"BYE":
            w.write(line.upper())
            await w.drain()
        w.close()
    srv = await asyncio.start_server(serve, "127.0.0.1", 0)
    yield srv.sockets[0].getsockname()[1]
    srv.close()
    await srv.wait_closed()


async def _forward_server(ports: list[int]) -> tuple[web.AppRunner, str]:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("v4.channel.k8s.io",))
        await ws.prepare(request)
        await ChannelPortForward(ws, "127.0.0.1", ports, "p", "uid-1").run()
        return ws
    app = web.Application()
    app.router.add_get("/pf", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/pf"


async def _recv(ws: aiohttp.ClientWebSocketResponse) -> bytes:
    msg = await asyncio.wait_for(ws.receive(), 10)
    assert msg.type == WSMsgType.BINARY, msg
    return bytes(msg.data)


async def test_port_forward_channels(echo_port: int) -> None:
    held = socket.socket()  # bound, never listening: connecting to it is refused
    held.bind(("127.0.0.1", 0))
    closed = held.getsockname()[1]
    runner, url = await _forward_server([echo_port, closed])
    try:
        async with aiohttp.ClientSession() as s, s.ws_connect(url, protocols=("v5.channel.k8s.io",
                                                                                "v4.channel.k8s.io")) as ws:
            assert ws.protocol == "v4.channel.k8s.io"
            first = {await _recv(ws) for _ in range(4)}  # every channel starts with its port
            assert first == {b"\x00" + channels.port_prefix(echo_port), b"\x01" + channels.port_prefix(echo_port),
                             b"\x02" + channels.port_prefix(closed), b"\x03" + channels.port_prefix(closed)}
            err = await _recv(ws)
            assert err[:1] == b"\x03" and err[1:].decode().startswith(
                f"error forwarding port {closed} to pod p, uid uid-1: failed to connect to 127.0.0.1:{closed}")
            await ws.send_str("\x00hello\n")  # text frames too
            assert await _recv(ws) == b"\x00HELLO\n"
            await ws.send_bytes(b"\x00BYE\n")  # the server closes its end: every port is done
            msg = await asyncio.wait_for(ws.receive(), 10)
            assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
    finally:
        await runner.cleanup()
        held.close()
