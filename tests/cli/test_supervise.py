"""The supervisor of `k8py server --components processes`, on stand-in children: the ready
line printed once, prefixed logs, restarts with backoff, and the stop order."""

from __future__ import annotations

import asyncio
import io
import sys
from pathlib import Path

import pytest

from k8py.cli import supervisor
from k8py.cli.server import ServerArgs
from k8py.cli.supervisor import BACKOFF_BASE, BACKOFF_CAP, HEALTHY_AFTER, Child, Supervisor, next_backoff


@pytest.mark.parametrize(("delay", "ran", "want"), [
    (BACKOFF_BASE, 0.1, BACKOFF_BASE * 2),  # crashed at once: doubles
    (BACKOFF_CAP, 0.1, BACKOFF_CAP),  # capped
    (BACKOFF_CAP * 0.75, 1.0, BACKOFF_CAP),
    (BACKOFF_CAP, HEALTHY_AFTER, BACKOFF_BASE),  # ran a while: back to the base
])
def test_next_backoff(delay: float, ran: float, want: float) -> None:
    assert next_backoff(delay, ran) == want


# A stand-in child: the API server prints the ready line; each appends its name to a
# file when SIGTERM stops it; the scheduler crashes on its first two starts.
CHILD = """
import os, signal, sys, time
name, log = sys.argv[1], sys.argv[2]
signal.signal(signal.SIGTERM, lambda *_: (open(log, "a").write(name + "\\n"), sys.exit(0)))
print(f"{name} says hello", file=sys.stderr, flush=True)
if name == "kube-apiserver":
    print("k8py: ready at https://127.0.0.1:12345 (store sqlite)", flush=True)
crashes = log + "." + name
if name == "kube-scheduler" and len(open(crashes).read()) < 2:
    open(crashes, "a").write("x")
    sys.exit(3)
while True:
    time.sleep(1)
"""


@pytest.fixture
def stand_ins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "stopped"
    for name in ("kube-apiserver", "kube-scheduler", "kube-controller-manager"):
        Path(f"{log}.{name}").write_text("")

    def child(self: Supervisor, name: str) -> Child:
        c = self.children[name] = Child(name, [sys.executable, "-c", CHILD, name, str(log)], {})
        return c
    monkeypatch.setattr(Supervisor, "_child", child)
    monkeypatch.setattr(supervisor, "BACKOFF_BASE", 0.01)
    return log


async def test_supervises_and_stops_the_api_server_last(stand_ins: Path, tmp_path: Path) -> None:
    out, err = io.StringIO(), io.BytesIO()
    sup = Supervisor(ServerArgs(data_dir=str(tmp_path / "data"), port=0, no_agent=True), out=out, err=err)
    stop = asyncio.Event()
    task = asyncio.create_task(sup.run(stop))
    while err.getvalue().count(b"[kube-scheduler] kube-scheduler says hello") < 3 \
            or b"[kube-controller-manager] kube-controller-manager says hello" not in err.getvalue():
        await asyncio.sleep(0.02)
    stop.set()
    assert await task == 0
    assert out.getvalue() == "k8py: ready at https://127.0.0.1:12345 (store sqlite)\n"
    assert sup.args.port and sup.url == f"https://127.0.0.1:{sup.args.port}"  # chosen first: restarts keep it
    assert sup.children["kube-scheduler"].exits[:2] == [3, 3]
    assert b"[supervisor] kube-scheduler exited with code 3; restarting" in err.getvalue()
    stopped = stand_ins.read_text().split()
    assert sorted(stopped[:2]) == ["kube-controller-manager", "kube-scheduler"] and stopped[2:] == ["kube-apiserver"]


async def test_an_api_server_that_never_comes_up_ends_the_supervisor(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def child(self: Supervisor, name: str) -> Child:
        c = self.children[name] = Child(name, [sys.executable, "-c", "import sys; sys.exit(7)"], {})
        return c
    monkeypatch.setattr(Supervisor, "_child", child)
    sup = Supervisor(ServerArgs(data_dir=str(tmp_path / "data")), out=io.StringIO(), err=io.BytesIO())
    assert await sup.run(asyncio.Event()) == 7
    assert sup.children["kube-apiserver"].restarts == 0
