"""Steady-load benchmark: prints numbers, asserts nothing.

A `k8py server --no-agent` (the control plane: API server over SQLite, scheduler,
controllers) in a process of its own, and --nodes simulated nodes in this process,
talking to it over HTTPS as real nodes would. Once the nodes are Ready, pods are created
at a steady --rate per second for --duration seconds (each POST sent on its tick, up to
64 in flight), and a watch from this process records when each is Running. Prints:

- the rate achieved, and create -> Running p50 / p99 (from the start of each pod's POST
  to the watch seeing it Running; Kubernetes' pod startup SLO is 5 s at p99);
- the RSS of the control plane (the server's process tree) and of this process (the
  simulated nodes, the watch and the load), apart, idle with the nodes and at the end.

    sudo .venv/bin/python bench/steady.py [--nodes 1000] [--rate 100] [--duration 60]

Everything runs on 127.0.0.1 and is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from k8py.client.client import Client
from k8py.client.rest import RestTransport
from k8py.clock import RealClock
from k8py.simnode.cluster import SimulatedCluster

from benchcluster import REPO, pct

NS = "default"


def rss_mb(pid: int) -> float:
    """RSS of a process and its descendants, in MB."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except OSError:
            continue
    return total / 1024


class RunningWatch:
    """When each pod is first seen Running (monotonic), from one watch."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.running: dict[str, float] = {}
        self.posted: dict[str, float] = {}  # filled by steady_load as it goes

    async def run(self) -> None:
        rv = (await self.client.list("pods", NS))["metadata"].get("resourceVersion")
        while True:
            try:
                async for ev in self.client.watch("pods", NS, resource_version=rv):
                    obj = ev["object"]
                    rv = obj["metadata"].get("resourceVersion", rv)
                    if (obj.get("status") or {}).get("phase") == "Running":
                        self.running.setdefault(obj["metadata"]["name"], time.monotonic())
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a dropped watch resumes from the last revision
                await asyncio.sleep(0.1)


def pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS},
            "spec": {"containers": [{"name": "app", "image": "nginx",
                                     "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}


async def progress(watch: RunningWatch, server_pid: int) -> None:
    t0 = time.monotonic()
    while True:
        await asyncio.sleep(10)
        print(f"  ... {time.monotonic() - t0:.0f} s: {len(watch.posted)} POSTs started, {len(watch.running)} Running; "
              f"control plane RSS {rss_mb(server_pid):.0f} MB; load average {os.getloadavg()[0]:.1f}", flush=True)


async def steady_load(client: Client, rate: float, duration: float,
                      posted: dict[str, float]) -> tuple[dict[str, float], float]:
    """POST rate pods/s for duration s, each at its tick; (name -> POST start, seconds taken)."""
    sem = asyncio.Semaphore(64)
    tasks = []

    async def create(name: str) -> None:
        async with sem:
            posted[name] = time.monotonic()
            await client.create("pods", pod(name), NS)

    t0 = time.monotonic()
    for i in range(int(rate * duration)):
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(create(f"s-{i}")))
    await asyncio.gather(*tasks)
    return posted, time.monotonic() - t0


async def run(a: argparse.Namespace, server_pid: int, kubeconfig: Path) -> None:
    clock = RealClock()
    client = Client(RestTransport.from_kubeconfig(kubeconfig))
    print(f"RSS idle: control plane {rss_mb(server_pid):.0f} MB, this process {rss_mb(os.getpid()):.0f} MB")
    cluster = SimulatedCluster(client, a.nodes, {"cpu": "32", "memory": "128Gi", "pods": "110"}, clock, workers=32)
    bg = [asyncio.create_task(cluster.run())]
    t = time.monotonic()
    while True:
        nodes = (await client.list("nodes"))["items"]
        ready = sum(1 for n in nodes if n["spec"].get("podCIDR") and any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (n.get("status") or {}).get("conditions") or []))
        if ready >= a.nodes:
            break
        await asyncio.sleep(1)
    print(f"{a.nodes} simulated nodes Ready with a podCIDR in {time.monotonic() - t:.1f} s")
    await asyncio.sleep(5)  # let the scheduler's cache and the heartbeats settle
    print(f"RSS with {a.nodes} nodes: control plane {rss_mb(server_pid):.0f} MB, "
          f"simulated nodes' process {rss_mb(os.getpid()):.0f} MB")
    watch = RunningWatch(client)
    bg.append(asyncio.create_task(watch.run()))
    await asyncio.sleep(0.5)
    bg.append(asyncio.create_task(progress(watch, server_pid)))
    try:
        load = steady_load(client, a.rate, a.duration, watch.posted)
        posted, took = await asyncio.wait_for(load, a.duration + a.timeout)
        print(f"created {len(posted)} pods in {took:.1f} s: {len(posted) / took:.0f} pods/s (asked {a.rate:.0f})")
    except TimeoutError:
        posted = dict(watch.posted)
        print(f"only {len(posted)} POSTs started within {a.duration + a.timeout:.0f} s")
    deadline = time.monotonic() + a.timeout
    while len(watch.running) < len(posted) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    # a pod not Running by the deadline counts as infinitely late
    lat = [watch.running[n] - posted[n] if n in watch.running else float("inf") for n in posted]
    print(f"{len(watch.running)} of {len(posted)} Running; create -> Running p50 {pct(lat, 50):.2f} s, "
          f"p99 {pct(lat, 99):.2f} s, max {max(lat):.2f} s (inf: not Running {a.timeout:.0f} s after the last POST)")
    print(f"RSS at the end: control plane {rss_mb(server_pid):.0f} MB, "
          f"simulated nodes' process {rss_mb(os.getpid()):.0f} MB; load average {os.getloadavg()[0]:.1f}")
    for task in bg:
        task.cancel()
    await asyncio.gather(*bg, return_exceptions=True)
    await client.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the last pods Running")
    ap.add_argument("--cluster-cidr", default="10.128.0.0/14",
                    help="the server's pod range: a /24 per node, so 1,024 nodes (the default /16 holds 256)")
    ap.add_argument("--server-log", default="", help="write the server's log to this file")
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a timeout still stops the server
    work = Path(tempfile.mkdtemp(prefix="k8py-bench-steady-"))
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.Popen([sys.executable, "-m", "k8py.cli.main", "server", "--no-agent", "--data-dir",
                             str(work / "data"), "--port", "0", "--cluster-cidr", a.cluster_cidr],
                            stdout=subprocess.PIPE,
                            stderr=open(a.server_log, "wb") if a.server_log else subprocess.DEVNULL, env=env,
                            start_new_session=True)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        print(f"nodes={a.nodes} rate={a.rate:.0f}/s duration={a.duration:.0f} s; machine: {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.1f} from other work")
        asyncio.run(run(a, proc.pid, work / "data" / "kubeconfig"))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
