"""Reading CRI logs: partial lines, tail, since, timestamps, streams, limits, follow."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from k8py.runtime.logs import parse_time, read_log

LOG = (
    b"2026-01-01T00:00:01.000000001Z stdout F one\n"
    b"2026-01-01T00:00:02.000000000Z stderr F warn\n"
    b"2026-01-01T00:00:03.500000000Z stdout P tw\n"
    b"2026-01-01T00:00:03.600000000Z stdout F o\n"
    b"garbage line\n"
    b"2026-01-01T00:00:04.000000000Z stdout F \n"
    b"2026-01-01T00:00:05.000000000Z stdout F three\n"
)


async def collect(path: Path, **kw: object) -> bytes:
    return b"".join([x async for x in read_log(str(path), **kw)])  # type: ignore[arg-type]


@pytest.mark.parametrize("kw, expected", [
    ({}, b"one\nwarn\ntwo\n\nthree\n"),
    ({"tail": 2}, b"\nthree\n"),
    ({"tail": 0}, b""),
    ({"stream": "stderr"}, b"warn\n"),
    ({"since": parse_time("2026-01-01T00:00:03Z")}, b"two\n\nthree\n"),
    ({"timestamps": True, "tail": 1}, b"2026-01-01T00:00:05.000000000Z three\n"),
    ({"timestamps": True, "stream": "stdout", "tail": 3},
     b"2026-01-01T00:00:03.500000000Z two\n2026-01-01T00:00:04.000000000Z \n2026-01-01T00:00:05.000000000Z three\n"),
    ({"limit_bytes": 6}, b"one\nwa"),
])
async def test_read(tmp_path: Path, kw: dict, expected: bytes) -> None:
    p = tmp_path / "0.log"
    p.write_bytes(LOG)
    assert await collect(p, **kw) == expected


async def test_missing_file_is_empty(tmp_path: Path) -> None:
    assert await collect(tmp_path / "nope.log") == b""


async def test_follow_until_exit(tmp_path: Path) -> None:
    p = tmp_path / "0.log"
    p.write_bytes(b"2026-01-01T00:00:01Z stdout F first\n2026-01-01T00:00:02Z stdout P hal")
    running = True
    got: list[bytes] = []
    appended = asyncio.Event()

    async def still_running() -> bool:
        return running

    async def reader() -> None:
        async for line in read_log(str(p), follow=True, still_running=still_running, poll=0.01):
            got.append(line)
            if line == b"first\n":
                appended.set()

    task = asyncio.create_task(reader())
    await asyncio.wait_for(appended.wait(), 5)
    with open(p, "ab") as f:
        f.write(b"f\n2026-01-01T00:00:03Z stdout F half\n2026-01-01T00:00:04Z stderr F last\n")
    running = False
    await asyncio.wait_for(task, 5)
    assert got == [b"first\n", b"halfhalf\n", b"last\n"]  # P line joined with its F continuation
