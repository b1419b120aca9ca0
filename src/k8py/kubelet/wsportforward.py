"""Port-forward over the WebSocket channel protocol (`v4.channel.k8s.io`, or no
subprotocol), as the official Python client's `portforward()` speaks it.

For the i-th port of the request (`?ports=80,443`) channel 2i carries data both ways and
channel 2i+1 carries errors to the client; the server starts both channels with the port
(2 bytes, little-endian), then connects to <pod IP>:<port> at once, one TCP connection per
port for the life of the WebSocket, as the kubelet does. A failed connection is reported
on the port's error channel (`error forwarding port P to pod NAME, uid UID: ...`). When
the pod closes a connection, that port is done; once every port is done the WebSocket is
closed. kubectl's SPDY tunnel is `portforward.py`.
Invariant: every TCP connection is closed when the WebSocket goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiohttp import web

from k8py.kubelet import channels

log = logging.getLogger(__name__)
CHUNK = 32 * 1024
CONNECT_TIMEOUT = 10.0
PROTOCOLS = ("v4.channel.k8s.io",)  # also served when the client names no subprotocol


class ChannelPortForward:
    def __init__(self, ws: web.WebSocketResponse, pod_ip: str, ports: list[int], pod_name: str, uid: str) -> None:
        self.ws = ws
        self.pod_ip = pod_ip
        self.ports = ports
        self.pod_name = pod_name
        self.uid = uid
        self.inbox: list[asyncio.Queue[bytes]] = [asyncio.Queue() for _ in ports]
        self._send_lock = asyncio.Lock()

    async def send(self, channel: int, payload: bytes) -> None:
        async with self._send_lock:
            if not self.ws.closed:
                await self.ws.send_bytes(channels.frame(channel, payload))

    async def run(self) -> None:
        for i, port in enumerate(self.ports):
            await self.send(channels.data_channel(i), channels.port_prefix(port))
            await self.send(channels.error_channel(i), channels.port_prefix(port))
        forwards: asyncio.Future[Any] = asyncio.gather(*(self._forward(i, p)
                                                                 for i, p in enumerate(self.ports)))
        reader: asyncio.Future[Any] = asyncio.ensure_future(self._read())
        try:
            done, _ = await asyncio.wait([forwards, reader], return_when=asyncio.FIRST_COMPLETED)
            if reader in done:  # the client went away: close the pod's connections
                forwards.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await forwards
            else:  # every port is done: end the WebSocket
                await self.ws.close()
        finally:
            reader.cancel()
            forwards.cancel()

    async def _read(self) -> None:
        """Client data on a port's data channel goes to that port's connection."""
        async for msg in self.ws:
            got = channels.decode(msg)
            if got is None:
                continue
            ch, payload = got
            if ch % 2 == 0 and ch // 2 < len(self.inbox) and payload:
                self.inbox[ch // 2].put_nowait(payload)

    async def _forward(self, i: int, port: int) -> None:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(self.pod_ip, port), CONNECT_TIMEOUT)
        except (TimeoutError, OSError) as e:
            log.info("port-forward %s: connecting to %s:%d failed: %r", self.pod_name, self.pod_ip, port, e)
            await self.send(channels.error_channel(i),
                            f"error forwarding port {port} to pod {self.pod_name}, uid {self.uid}: "
                            f"failed to connect to {self.pod_ip}:{port}: {e}".encode())
            return
        to_pod = asyncio.ensure_future(self._to_pod(self.inbox[i], writer))
        try:
            while data := await reader.read(CHUNK):
                await self.send(channels.data_channel(i), data)
        except (ConnectionError, OSError):
            pass
        finally:
            to_pod.cancel()
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    @staticmethod
    async def _to_pod(inbox: asyncio.Queue[bytes], writer: asyncio.StreamWriter) -> None:
        while data := await inbox.get():
            writer.write(data)
            try:
                await writer.drain()
            except (ConnectionError, OSError):
                return
