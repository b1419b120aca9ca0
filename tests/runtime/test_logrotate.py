"""Container log rotation by the shim's LogWriter (the kubelet's --container-log-max-size and
--container-log-max-files), and a follow that goes on across a rotation."""
from __future__ import annotations

import asyncio
import gzip
import time
from pathlib import Path

from k8py.runtime.logs import parse_lines, read_log
from k8py.runtime.shim import LogWriter


def wait_until(cond, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.01)


def contents(w: LogWriter) -> list[bytes]:
    """The log's lines, oldest first, from every file kept (gzipped ones uncompressed)."""
    raw = b""
    for p in [*w.rotated(), w.path]:
        data = Path(p).read_bytes()
        raw += gzip.decompress(data) if p.endswith(".gz") else data
    return [ln.content for ln in parse_lines(raw.splitlines(keepends=True))]


def test_writer_past_max_size_keeps_at_most_max_files(tmp_path: Path) -> None:
    w = LogWriter(str(tmp_path / "0.log"), max_size=2000, max_files=3)
    for i in range(1000):
        w.write("stdout", b"line %04d " % i + b"x" * 40, False)

    def settled() -> bool:  # every rotated file but the newest compressed
        return all(p.endswith(".gz") for p in w.rotated()[:-1])

    wait_until(settled)
    rotated = w.rotated()
    assert len(rotated) == 2  # + the current file: max_files
    assert rotated[0].endswith(".gz") and not rotated[1].endswith(".gz")  # the newest stays plain
    record = 31 + 10 + 40 + 1  # timestamp, stream, tag, content, newline
    assert Path(rotated[1]).stat().st_size <= 2000 + record
    assert Path(w.path).stat().st_size <= 2000
    lines = contents(w)
    assert lines[-1] == b"line 0999 " + b"x" * 40
    first = int(lines[0].split()[1])
    assert [int(ln.split()[1]) for ln in lines] == list(range(first, 1000))  # nothing lost inside the kept files
    assert len(lines) > 2000 * 2 // record


def test_no_rotation_without_max_size(tmp_path: Path) -> None:
    w = LogWriter(str(tmp_path / "0.log"))
    for _ in range(200):
        w.write("stderr", b"y" * 100, False)
    assert w.rotated() == []
    assert Path(w.path).stat().st_size > 20000


def test_rotation_ignores_other_attempts_and_temporaries(tmp_path: Path) -> None:
    (tmp_path / "10.log").write_bytes(b"another attempt\n")
    (tmp_path / "0.log.20260101-000000.gz.tmp").write_bytes(b"")
    w = LogWriter(str(tmp_path / "0.log"), max_size=100, max_files=2)
    for _ in range(20):
        w.write("stdout", b"z" * 50, False)
    wait_until(lambda: len(w.rotated()) == 1)
    assert (tmp_path / "10.log").read_bytes() == b"another attempt\n"


async def test_follow_goes_on_after_a_rotation(tmp_path: Path) -> None:
    w = LogWriter(str(tmp_path / "0.log"), max_size=300, max_files=2)
    w.write("stdout", b"before", False)
    running = True

    async def still_running() -> bool:
        return running

    got: list[bytes] = []

    async def follow() -> None:
        async for out in read_log(w.path, follow=True, still_running=still_running, poll=0.01):
            got.append(out)

    task = asyncio.create_task(follow())
    for i in range(20):  # several rotations while following
        w.write("stdout", b"after %02d " % i + b"a" * 40, False)
        await asyncio.sleep(0.02)
    assert w.rotated()
    await asyncio.sleep(0.1)
    running = False
    await asyncio.wait_for(task, 5)
    assert got[0] == b"before\n"
    assert got[-1] == b"after 19 " + b"a" * 40 + b"\n"
    assert len(got) == 21


async def test_tail_reads_the_current_file_only(tmp_path: Path) -> None:
    w = LogWriter(str(tmp_path / "0.log"), max_size=200, max_files=5)
    for i in range(30):
        w.write("stdout", b"n %02d " % i + b"b" * 30, False)
    out = b"".join([x async for x in read_log(w.path, tail=1)])
    assert out == b"n 29 " + b"b" * 30 + b"\n"
    everything = b"".join([x async for x in read_log(w.path)])
    assert everything.count(b"\n") < 30  # the rotated lines are not in `kubectl logs` (as the kubelet)
