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

With `--burst N` it measures instead what bench/scale.py measures in one process, on the
supervised control plane: `--deployments` Deployments holding N pods in all are created at
once, and it prints the rate from the first pod seen to the last Running, create -> Running
p50 / p99 (each pod from its first watch event), and the ratio to the scheduling algorithm
alone (bench/scale.py's measure, in this process). `--store etcd` runs the server on a
single-member etcd started here.

    sudo .venv/bin/python bench/steady.py [--nodes 1000] [--rate 100] [--duration 60]
    sudo .venv/bin/python bench/steady.py --burst 10000 [--deployments 10] [--store sqlite|etcd]

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
        self.seen: dict[str, float] = {}  # first event of each pod (the burst's create time)

    async def run(self) -> None:
        rv = (await self.client.list("pods", NS))["metadata"].get("resourceVersion")
        while True:
            try:
                async for ev in self.client.watch("pods", NS, resource_version=rv):
                    obj = ev["object"]
                    rv = obj["metadata"].get("resourceVersion", rv)
                    self.seen.setdefault(obj["metadata"]["name"], time.monotonic())
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


def deployment(i: int, replicas: int) -> dict[str, Any]:
    labels = {"app": f"burst-{i}"}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"burst-{i}", "namespace": NS},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": pod("x")["spec"]}}}


async def burst(client: Client, watch: RunningWatch, a: argparse.Namespace) -> None:
    """--deployments Deployments of --burst pods in all, at once; the scale benchmark's figures."""
    from scale import scheduler_only
    alone = scheduler_only(a.nodes, min(a.burst, 5000), None)
    t0 = time.monotonic()
    per = a.burst // a.deployments
    for i in range(a.deployments):
        await client.create("deployments", deployment(i, per), NS)
    total = per * a.deployments
    deadline = time.monotonic() + a.timeout
    while len(watch.running) < total and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    if not watch.seen:
        print("no pod was created")
        return
    first = min(watch.seen.values())
    last = max(watch.running.values(), default=first)
    lat = [watch.running[n] - watch.seen[n] if n in watch.running else float("inf") for n in watch.seen]
    rate = len(watch.running) / max(last - first, 1e-9)
    print(f"{len(watch.running)} of {total} pods Running {last - t0:.1f} s after the first Deployment's POST; "
          f"first pod seen -> last Running: {rate:.0f} pods/s")
    print(f"create -> Running p50 {pct(lat, 50):.2f} s, p99 {pct(lat, 99):.2f} s (inf: not Running within "
          f"--timeout {a.timeout:.0f} s)")
    print(f"end to end / scheduler alone: {rate:.0f} / {alone:.0f} pods/s = {rate / alone:.2f}")


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
    if a.burst:
        await burst(client, watch, a)
    else:
        await measure_steady(a, watch)
    print(f"RSS at the end: control plane {rss_mb(server_pid):.0f} MB, "
          f"simulated nodes' process {rss_mb(os.getpid()):.0f} MB; load average {os.getloadavg()[0]:.1f}")
    for task in bg:
        task.cancel()
    await asyncio.gather(*bg, return_exceptions=True)
    await client.close()


async def measure_steady(a: argparse.Namespace, watch: RunningWatch) -> None:
    """--rate pods/s for --duration s; create -> Running of each from the start of its POST."""
    client = watch.client
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the last pods Running")
    ap.add_argument("--cluster-cidr", default="10.128.0.0/14",
                    help="the server's pod range: a /24 per node, so 1,024 nodes (the default /16 holds 256)")
    ap.add_argument("--server-log", default="", help="write the server's log to this file")
    ap.add_argument("--burst", type=int, default=0, help="instead of the steady load: this many pods at once")
    ap.add_argument("--deployments", type=int, default=10, help="the burst's Deployments")
    ap.add_argument("--store", choices=("sqlite", "etcd"), default="sqlite")
    ap.add_argument("--kube-api-qps", type=float, default=0.0,
                    help="the server's --kube-api-qps (0: Kubernetes' defaults, 50 for the scheduler, 20 per "
                         "controller; < 0: no client-side limit, as bench/scale.py runs by default)")
    ap.add_argument("--components", default="", help="the server's --components (default: its own, supervised)")
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a timeout still stops the server
    work = Path(tempfile.mkdtemp(prefix="k8py-bench-steady-"))
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    extra: list[str] = ["--components", a.components] if a.components else []
    if a.kube_api_qps:
        extra.append(f"--kube-api-qps={a.kube_api_qps:g}")
    if a.store == "etcd":
        from scale import start_etcd
        etcd, url = start_etcd(str(work))
        extra += ["--store", url]
    proc = subprocess.Popen([sys.executable, "-m", "k8py.cli.main", "server", "--no-agent", "--data-dir",
                             str(work / "data"), "--port", "0", "--cluster-cidr", a.cluster_cidr, *extra],
                            stdout=subprocess.PIPE,
                            stderr=open(a.server_log, "wb") if a.server_log else subprocess.DEVNULL, env=env,
                            start_new_session=True)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        what = (f"burst={a.burst} in {a.deployments} Deployments" if a.burst
                else f"rate={a.rate:.0f}/s duration={a.duration:.0f} s")
        print(f"nodes={a.nodes} {what} store={a.store} components={a.components or 'supervised'} "
              f"kube-api-qps={a.kube_api_qps:g}; machine: "
              f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} from other work")
        asyncio.run(run(a, proc.pid, work / "data" / "kubeconfig"))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        if a.store == "etcd":
            etcd.kill()
            etcd.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
