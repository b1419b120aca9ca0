"""Streaming exec sessions (what `kubectl exec [-it]` and `kubectl attach` need).

An ExecSession has `stdin` (write/close), `stdout`/`stderr` (asyncio.StreamReader;
stderr is None with a tty, as in Kubernetes where a tty merges both), `resize(cols, rows)`,
`wait() -> exit code` and `kill()`.

Without a tty it wraps a `runc exec` child with pipes. With a tty, runc needs a terminal of
its own: the child gets the slave side of a fresh pty as stdin/stdout/stderr and as its
controlling terminal (setsid + TIOCSCTTY); runc then proxies between it and the
container's pty. We keep the master: reading it is stdout, writing it is stdin, and
TIOCSWINSZ on it reaches the container as SIGWINCH through runc.
Invariant: all file descriptors are closed once the process has exited and the
output is drained (or on kill).
"""
from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import signal
import struct
import termios
from collections.abc import Sequence


class ExecSession:
    def __init__(self, proc: asyncio.subprocess.Process, master: int | None = None) -> None:
        self.proc = proc
        self.master = master
        self.tty = master is not None
        self.stderr: asyncio.StreamReader | None
        if master is None:
            assert proc.stdout is not None
            self.stdout: asyncio.StreamReader = proc.stdout
            self.stderr = proc.stderr
        else:
            loop = asyncio.get_running_loop()
            self.stdout = asyncio.StreamReader()
            self.stderr = None
            os.set_blocking(master, False)
            loop.add_reader(master, self._on_master)
        self._closed_stdin = False

    def _on_master(self) -> None:
        assert self.master is not None
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: the slave side closed (the process exited)
            data = b""
        if data:
            self.stdout.feed_data(data)
        else:
            asyncio.get_running_loop().remove_reader(self.master)
            self.stdout.feed_eof()

    async def write(self, data: bytes) -> None:
        if self.master is not None:
            view = memoryview(data)
            while view:
                try:
                    n = os.write(self.master, view)
                    view = view[n:]
                except BlockingIOError:
                    await asyncio.sleep(0.005)
            return
        if self.proc.stdin is None:
            raise RuntimeError("exec session has no stdin")
        self.proc.stdin.write(data)
        await self.proc.stdin.drain()

    async def close_stdin(self) -> None:
        if self._closed_stdin:
            return
        self._closed_stdin = True
        if self.master is not None:
            await self.write(b"\x04")  # EOF at the start of a line in canonical mode
        elif self.proc.stdin is not None:
            self.proc.stdin.close()

    def resize(self, cols: int, rows: int) -> None:
        if self.master is not None:
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    async def wait(self) -> int:
        rc = await self.proc.wait()
        if self.master is not None:
            try:
                await asyncio.wait_for(self._drained(), 2)
            except TimeoutError:
                pass
            self._close_master()
        return rc

    async def _drained(self) -> None:
        while not self.stdout.at_eof():
            await asyncio.sleep(0.01)

    def _close_master(self) -> None:
        if self.master is not None:
            try:
                asyncio.get_running_loop().remove_reader(self.master)
            except (RuntimeError, ValueError):
                pass
            try:
                os.close(self.master)
            except OSError:
                pass
            if not self.stdout.at_eof():
                self.stdout.feed_eof()
            self.master = None

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode


async def spawn(argv: Sequence[str], tty: bool, stdin: bool) -> ExecSession:
    if not tty:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        return ExecSession(proc)
    master, slave = pty.openpty()

    def make_controlling_tty() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
            preexec_fn=make_controlling_tty)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    return ExecSession(proc, master)
