"""`kubectl port-forward` for the agent's pods: SPDY (see spdy.py) tunnelled in a WebSocket.

For each forwarded connection kubectl opens an error stream and a data stream
sharing a requestID; we answer both with SYN_REPLY, connect to <pod IP>:<port> and
copy bytes both ways (DATA frames <-> TCP). A failed connection is reported on the
error stream, as the kubelet does. Invariant: every TCP connection is closed when its
stream ends or the WebSocket goes away.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from k8py.kubelet import spdy

log = logging.getLogger(__name__)
CHUNK = 32 * 1024


@dataclass
class _Pair:
    error_id: int = 0
    data_id: int = 0
    port: int = 0
    writer: asyncio.StreamWriter | None = None
    pending: list[bytes] = field(default_factory=list)  # client data that came before the TCP connection
    fin: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class PortForwardSession:
    def __init__(self, ws: web.WebSocketResponse, pod_ip: str, pod_name: str, uid: str) -> None:
        self.ws = ws
        self.pod_ip = pod_ip
        self.pod_name = pod_name
        self.uid = uid
        self.parser = spdy.FrameParser()
        self.writer = spdy.FrameWriter()
        self.pairs: dict[str, _Pair] = {}
        self.by_stream: dict[int, _Pair] = {}
        self._send_lock = asyncio.Lock()

    async def send(self, data: bytes) -> None:
        async with self._send_lock:
            if not self.ws.closed:
                await self.ws.send_bytes(data)

    async def run(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type != WSMsgType.BINARY:
                    continue
                for f in self.parser.feed(msg.data):
                    await self.handle(f)
        finally:
            for p in self.pairs.values():
                for t in p.tasks:
                    t.cancel()
                if p.writer is not None:
                    p.writer.close()

    async def handle(self, f: spdy.Frame) -> None:
        if f.control:
            if f.type == spdy.SYN_STREAM:
                await self._syn_stream(f)
            elif f.type == spdy.PING:
                await self.send(spdy.FrameWriter.control(spdy.PING, 0, f.payload))
            elif f.type == spdy.RST_STREAM:
                p = self.by_stream.get(f.stream_id)
                if p is not None and p.writer is not None and f.stream_id == p.data_id:
                    p.writer.close()
            elif f.type != spdy.SYN_STREAM:
                log.debug("port-forward %s: control frame %d stream %d", self.pod_name, f.type, f.stream_id)
            if f.type == spdy.GOAWAY:
                await self.ws.close()
            return
        p = self.by_stream.get(f.stream_id)
        if p is None or f.stream_id != p.data_id:
            return  # data on the error stream (none expected) or an unknown stream
        if p.writer is None:
            p.pending.append(f.payload)
            p.fin = p.fin or bool(f.flags & spdy.FLAG_FIN)
            return
        if f.payload:
            p.writer.write(f.payload)
            try:
                await p.writer.drain()
            except ConnectionError:
                pass
        if f.flags & spdy.FLAG_FIN and p.writer.can_write_eof():
            try:
                p.writer.write_eof()
            except OSError:
                pass

    async def _syn_stream(self, f: spdy.Frame) -> None:
        h = f.headers
        log.debug("port-forward %s: stream %d %s", self.pod_name, f.stream_id, h)
        rid = h.get("requestid", str(f.stream_id))
        p = self.pairs.setdefault(rid, _Pair())
        self.by_stream[f.stream_id] = p
        try:
            p.port = int(h.get("port", "0"))
        except ValueError:
            p.port = 0
        await self.send(self.writer.syn_reply(f.stream_id))
        if h.get("streamtype") == "error":
            p.error_id = f.stream_id
        elif h.get("streamtype") == "data":
            p.data_id = f.stream_id
        if p.error_id and p.data_id and not p.tasks:
            p.tasks.append(asyncio.ensure_future(self._forward(p)))

    async def _forward(self, p: _Pair) -> None:
        log.debug("port-forward %s: connecting to %s:%d", self.pod_name, self.pod_ip, p.port)
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(self.pod_ip, p.port), 10)
        except (TimeoutError, OSError) as e:
            log.info("port-forward %s: connecting to %s:%d failed: %r", self.pod_name, self.pod_ip, p.port, e)
            msg = (f"error forwarding port {p.port} to pod {self.pod_name}, uid {self.uid}: "
                   f"failed to connect to {self.pod_ip}:{p.port}: {e}")
            await self.send(spdy.FrameWriter.data(p.error_id, msg.encode(), fin=True))
            await self.send(spdy.FrameWriter.data(p.data_id, b"", fin=True))
            return
        p.writer = writer
        log.debug("port-forward %s: connected to %s:%d (%d bytes waiting)", self.pod_name, self.pod_ip, p.port,
                 sum(len(c) for c in p.pending))
        for chunk in p.pending:
            writer.write(chunk)
        p.pending.clear()
        if p.fin and writer.can_write_eof():
            writer.write_eof()
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                await self.send(spdy.FrameWriter.data(p.data_id, data))
        except (ConnectionError, OSError):
            pass
        finally:
            await self.send(spdy.FrameWriter.data(p.data_id, b"", fin=True))
            await self.send(spdy.FrameWriter.data(p.error_id, b"", fin=True))
            writer.close()
