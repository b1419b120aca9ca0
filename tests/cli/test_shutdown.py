"""Ctrl-C on a busy `k8py server`: a clean exit. The components (controllers, scheduler,
simulated nodes) stop, with everything they started (event writes included), before
the store closes: exit code 0 and no traceback, no "store is closed", no task left
pending when the loop closes."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path

from k8py.api.types import Obj
from k8py.client.client import Client
from k8py.client.rest import RestTransport
from tests.e2e.e2e_harness import K8pyServer

REPLICAS = 6
SCALED = 300


def _deployment(replicas: int) -> Obj:
    labels = {"app": "web"}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "app", "image": "nginx"}]}}}}


async def _pods(c: Client) -> list[Obj]:
    return list((await c.list("pods", "default"))["items"])


async def _eventually(c: Client, cond: str, ok: Callable[[list[Obj]], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not ok(await _pods(c)):
        assert time.monotonic() < deadline, f"timed out waiting for {cond}"
        await asyncio.sleep(0.1)


async def _busy_cluster(kubeconfig: Path) -> None:
    """A Deployment Running on the simulated nodes, then scaled up: the controllers and
    nodes are creating, binding and starting pods (and writing events) when this returns."""
    c = Client(RestTransport.from_kubeconfig(kubeconfig))
    try:
        await c.create("deployments", _deployment(REPLICAS), "default")
        await _eventually(c, "pods Running", lambda pods: sum(
            1 for p in pods if (p.get("status") or {}).get("phase") == "Running") >= REPLICAS)
        await c.patch("deployments", "web", {"spec": {"replicas": SCALED}}, "default")
        await _eventually(c, "the scale-up under way", lambda pods: len(pods) >= SCALED // 3)
    finally:
        await c.close()


def test_sigint_on_a_busy_server_exits_cleanly(tmp_path: Path) -> None:
    server = K8pyServer(tmp_path / "data", extra_args=("--simulated-nodes", "3"), env={"K8PY_LOG": "info"})
    server.start()
    try:
        asyncio.run(_busy_cluster(server.kubeconfig))
        assert server.proc is not None
        server.proc.send_signal(signal.SIGINT)
        rc = server.proc.wait(60)
    finally:
        server.stop()
    log = server.log_path.read_text(errors="replace")
    assert rc == 0, log[-5000:]
    assert "components   at" in log  # K8PY_LOG=info is on: a quiet log means a clean stop, not silence
    for bad in ("Traceback", "store is closed", "Task was destroyed"):
        assert bad not in log, f"{bad!r} in the server's stderr:\n{log[-5000:]}"
