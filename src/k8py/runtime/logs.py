"""Reading CRI-format container logs (what `kubectl logs` shows).

A CRI log line is `<RFC3339Nano> <stdout|stderr> <F|P> <content>`; `P` marks a partial
line whose continuation follows. `read_log` yields whole lines (partials joined) as bytes
ending in "\\n", optionally prefixed with the timestamp (`--timestamps`), filtered by
stream, `since` (UNIX seconds), `tail` (last N lines) and `limit_bytes`; with `follow`
it keeps reading as the file grows until `still_running()` turns false and the file is
drained. Only the current file is read (as the kubelet does: `--tail`/`--since` do not
reach into rotated files); a follow that sees the file rotated (renamed away by the shim,
see shim.LogWriter) drains the old one and goes on with the new one.
Invariant: malformed lines are skipped, never raised.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import BinaryIO


@dataclass(frozen=True)
class LogLine:
    timestamp: str  # RFC3339Nano as written
    stream: str
    content: bytes  # without the trailing newline

    @property
    def time(self) -> float:
        return parse_time(self.timestamp)


def parse_time(ts: str) -> float:
    """RFC3339 with up to nanoseconds -> UNIX seconds (float)."""
    base, _, frac = ts.rstrip("Z").partition(".")
    secs = dt.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.UTC).timestamp()
    return secs + (float("0." + frac) if frac else 0.0)


def parse_line(raw: bytes) -> tuple[str, str, bool, bytes] | None:
    parts = raw.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3 or parts[1] not in (b"stdout", b"stderr") or parts[2] not in (b"F", b"P"):
        return None
    return parts[0].decode(), parts[1].decode(), parts[2] == b"P", parts[3] if len(parts) > 3 else b""


class _Joiner:
    def __init__(self) -> None:
        self.partial: dict[str, tuple[str, bytes]] = {}

    def feed(self, raw: bytes) -> LogLine | None:
        p = parse_line(raw)
        if p is None:
            return None
        ts, stream, partial, content = p
        first_ts, acc = self.partial.pop(stream, (ts, b""))
        if partial:
            self.partial[stream] = (first_ts, acc + content)
            return None
        return LogLine(first_ts, stream, acc + content)


def parse_lines(raw_lines: Iterable[bytes]) -> list[LogLine]:
    j = _Joiner()
    return [line for raw in raw_lines if (line := j.feed(raw)) is not None]


def render(line: LogLine, timestamps: bool) -> bytes:
    return (line.timestamp.encode() + b" " if timestamps else b"") + line.content + b"\n"


async def read_log(path: str, *, follow: bool = False, tail: int | None = None, since: float | None = None,
                   timestamps: bool = False, stream: str | None = None, limit_bytes: int | None = None,
                   still_running: Callable[[], Awaitable[bool]] | None = None,
                   poll: float = 0.1) -> AsyncIterator[bytes]:
    """Yield rendered log lines from a CRI log file (see module docstring)."""
    sent = 0

    def wanted(line: LogLine) -> bool:
        return (stream is None or line.stream == stream) and (since is None or line.time >= since)

    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return
    try:
        joiner = _Joiner()
        first: Iterable[LogLine] = (ln for raw in f.readlines() if raw.endswith(b"\n")
                                    and (ln := joiner.feed(raw)) is not None)
        # an unterminated last line is being written: re-read it on the next pass
        selected = [ln for ln in first if wanted(ln)]
        if tail is not None:
            selected = list(deque(selected, maxlen=max(tail, 0)))
        f.seek(0, 2)
        pos = f.tell()
        # step back over a trailing partial (no newline) so that follow picks it up complete
        f.seek(0)
        data = f.read()
        if data and not data.endswith(b"\n"):
            pos = data.rfind(b"\n") + 1
        for ln in selected:
            out = render(ln, timestamps)
            if limit_bytes is not None and sent + len(out) > limit_bytes:
                yield out[: limit_bytes - sent]
                return
            sent += len(out)
            yield out
        if not follow:
            return
        buf = b""
        rotated = False
        f.seek(pos)
        while True:
            chunk = f.read()
            if chunk:
                buf += chunk
                *complete, buf = buf.split(b"\n")
                for raw in complete:
                    ln = joiner.feed(raw + b"\n")
                    if ln is None or not wanted(ln):
                        continue
                    out = render(ln, timestamps)
                    if limit_bytes is not None and sent + len(out) > limit_bytes:
                        yield out[: limit_bytes - sent]
                        return
                    sent += len(out)
                    yield out
                continue
            if rotated:  # the old file is drained: go on with the new one, as the kubelet does
                rotated = False
                f.close()
                try:
                    f = open(path, "rb")
                except FileNotFoundError:
                    return
                continue
            if _rotated(path, f):  # renamed: nothing more is written to it, but read it once more
                rotated = True
                continue
            if still_running is not None and not await still_running():
                rest = f.read()
                if not rest:
                    return
                buf += rest
                continue
            await asyncio.sleep(poll)

    finally:
        f.close()

def _rotated(path: str, f: BinaryIO) -> bool:
    """Whether `path` now names another file than the open `f` (the writer rotated it)."""
    try:
        return os.stat(path).st_ino != os.fstat(f.fileno()).st_ino
    except FileNotFoundError:
        return False
