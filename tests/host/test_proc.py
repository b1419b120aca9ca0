"""host/proc.run: output, exit status, stdin, stderr merging and timeouts of helper commands."""
from __future__ import annotations

import asyncio

import pytest

from k8py.host import proc


@pytest.mark.parametrize("argv, kwargs, want", [
    (["sh", "-c", "echo out; echo err >&2; exit 3"], {}, (3, b"out\n", b"err\n")),
    (["sh", "-c", "echo out; echo err >&2"], {"merge_stderr": True}, (0, b"out\nerr\n", b"")),
    (["cat"], {"stdin": b"line one\nline two\n"}, (0, b"line one\nline two\n", b"")),
    (["cat"], {}, (0, b"", b"")),  # no stdin given: /dev/null, never the caller's terminal
])
async def test_run(argv: list[str], kwargs: dict, want: tuple[int, bytes, bytes]) -> None:  # type: ignore[type-arg]
    assert await proc.run(*argv, **kwargs) == want


async def test_a_timeout_kills_the_command() -> None:
    with pytest.raises(asyncio.TimeoutError):
        await proc.run("sleep", "30", timeout=0.2)


async def test_commands_run_concurrently_with_the_loop() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    t = asyncio.ensure_future(ticker())
    try:
        rc, _, _ = await proc.run("sh", "-c", "sleep 0.1")
    finally:
        t.cancel()
    assert rc == 0 and ticks > 1
