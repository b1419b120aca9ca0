"""Short helper processes (ip, unshare, runc start/kill/delete) run off the event loop.

asyncio's create_subprocess_exec forks on the event loop's thread and starts a watcher
thread per child: with many pods starting at once that is milliseconds of loop time per
process, which every API request served by the same loop waits behind. `run` forks,
waits and collects the output in a thread of a dedicated pool instead.

Invariants: the output is returned whole (these commands print little); a timeout
kills the child and raises asyncio.TimeoutError (as asyncio.wait_for would); a cancelled
caller does not stop the command, which runs to its end.
"""
from __future__ import annotations

import asyncio
import subprocess
from concurrent.futures import ThreadPoolExecutor

_POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="k8py-proc")


def _run(argv: list[str], stdin: bytes | None, merge: bool, timeout: float | None) -> tuple[int, bytes, bytes]:
    try:
        p = subprocess.run(argv, input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT if merge else subprocess.PIPE,
                           timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise TimeoutError(f"{argv[0]} timed out after {timeout}s") from e
    return p.returncode, p.stdout or b"", p.stderr or b""


async def run(*argv: str, stdin: bytes | None = None, merge_stderr: bool = False,
              timeout: float | None = None) -> tuple[int, bytes, bytes]:
    """(returncode, stdout, stderr) of argv; with merge_stderr, stderr is part of stdout."""
    return await asyncio.get_running_loop().run_in_executor(_POOL, _run, list(argv), stdin, merge_stderr, timeout)
