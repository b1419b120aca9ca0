"""Attaching to a container's main process through its shim's attach socket.

AttachSession has the same surface as exec_session.ExecSession (stdout, stderr — None
with a tty —, write, close_stdin, resize, wait, kill, returncode), so the kubelet can
stream `kubectl attach` / `kubectl run -it` exactly as it streams exec. The wire format
is the shim's (shim.Attach): frames of 1 byte channel + 4 bytes length + payload.
Invariant: `wait()` returns the container's exit code if it ended while attached, or
None-ish -1 when the client detached first (`kill()` only detaches: the container lives on).
"""
from __future__ import annotations

import asyncio
import struct

STDIN, STDOUT, STDERR, EXIT, RESIZE = 0, 1, 2, 3, 4


class AttachSession:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tty: bool, stdin: bool) -> None:
        self._reader, self._writer = reader, writer
        self.tty = tty
        self.has_stdin = stdin
        self.stdout = asyncio.StreamReader()
        self.stderr: asyncio.StreamReader | None = None if tty else asyncio.StreamReader()
        self.returncode: int | None = None
        self._done = asyncio.Event()
        self._task = asyncio.create_task(self._pump())

    @classmethod
    async def connect(cls, path: str, tty: bool, stdin: bool) -> AttachSession:
        reader, writer = await asyncio.open_unix_connection(path)
        return cls(reader, writer, tty, stdin)

    async def _pump(self) -> None:
        try:
            while True:
                head = await self._reader.readexactly(5)
                ch, n = struct.unpack(">BI", head)
                payload = await self._reader.readexactly(n) if n else b""
                if ch == STDOUT or (ch == STDERR and self.stderr is None):
                    self.stdout.feed_data(payload)
                elif ch == STDERR and self.stderr is not None:
                    self.stderr.feed_data(payload)
                elif ch == EXIT and len(payload) == 4:
                    self.returncode = struct.unpack(">i", payload)[0]
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self.stdout.feed_eof()
            if self.stderr is not None:
                self.stderr.feed_eof()
            self._done.set()

    async def _send(self, ch: int, data: bytes) -> None:
        self._writer.write(struct.pack(">BI", ch, len(data)) + data)
        await self._writer.drain()

    async def write(self, data: bytes) -> None:
        if not self.has_stdin:
            raise RuntimeError("the container was not created with stdin")
        await self._send(STDIN, data)

    async def close_stdin(self) -> None:
        if self.has_stdin and not self._writer.is_closing():
            await self._send(EXIT, b"")

    def resize(self, cols: int, rows: int) -> None:
        if self.tty and not self._writer.is_closing():
            self._writer.write(struct.pack(">BI", RESIZE, 4) + struct.pack(">HH", cols, rows))

    async def wait(self) -> int:
        await self._done.wait()
        return self.returncode if self.returncode is not None else -1

    def kill(self) -> None:
        """Detach (the container keeps running)."""
        self._writer.close()
        self._task.cancel()
