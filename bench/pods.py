"""Pod start benchmark at the runtime level (runc): prints numbers, asserts nothing.

Starts a private docker-registry on a free loopback port, builds/pushes the test images
(cached), pulls busybox into a temporary image store, then measures with RuncRuntime:
- sandbox creation (netns + loopback), container create (overlay + shim + runc create),
  start (runc start), start -> exit of `true`, and the whole pod (sandbox..exit) p50/p99
  over --n sequential pods;
- --parallel pods started at once (wall time);
- exec_sync latency; pull time of nginx (cold store);
- the shim's RSS per running container.
With --cluster, also through the API: a k8py server with its node agent, pods created with
the Python client, create -> Running one by one and --parallel at once, delete -> gone.

    sudo .venv/bin/python bench/pods.py [--n 30] [--parallel 10] [--cluster]
Needs root, runc, docker-registry, debootstrap. Everything is removed at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from k8py.runtime.images import ImageStore
from k8py.runtime.mirrors import RegistriesConfig
from k8py.runtime.protocol import ContainerConfig, ContainerState, PodSandboxConfig
from k8py.runtime.registry import RegistryClient
from k8py.runtime.runc import RuncRuntime

from benchcluster import REPO, agent_cluster, free_port, load, pct


def show(name: str, xs: list[float]) -> None:
    ms = [x * 1000 for x in xs]
    print(f"{name:<34} p50 {pct(ms, 50):7.1f} ms   p99 {pct(ms, 99):7.1f} ms   mean {statistics.mean(ms):7.1f} ms")


async def wait_exit(rt: RuncRuntime, cid: str) -> None:
    while (await rt.container_status(cid)).state != ContainerState.EXITED:
        await asyncio.sleep(0.002)


async def one_pod(rt: RuncRuntime, cmd: list[str]) -> tuple[float, float, float, float, str, str]:
    t0 = time.monotonic()
    sid = await rt.run_pod_sandbox(PodSandboxConfig(name="bench", namespace="default", uid=str(uuid.uuid4())))
    t1 = time.monotonic()
    cid = await rt.create_container(sid, ContainerConfig(name="c", image="busybox", command=cmd))
    t2 = time.monotonic()
    await rt.start_container(cid)
    t3 = time.monotonic()
    return t1 - t0, t2 - t1, t3 - t2, t3, sid, cid


async def main(args: argparse.Namespace) -> None:
    registry = load("registry")
    data = Path(tempfile.mkdtemp(prefix="k8py-bench-registry-", dir="/var/tmp"))
    work = Path(tempfile.mkdtemp(prefix="k8py-bench-"))
    addr = registry.start(data, free_port())
    t = time.monotonic()
    subprocess.run([sys.executable, str(REPO / "scripts/images/build.py"), "--push", addr], check=True,
                   capture_output=True)
    print(f"{'image build (cached) + push':<34} {time.monotonic() - t:7.1f} s")
    cfg = RegistriesConfig.from_dict({"mirrors": {"docker.io": {"endpoint": [f"http://{addr}"]}},
                                      "disable_default_endpoint": True})
    tag = uuid.uuid4().hex[:6]
    rt = RuncRuntime(f"/run/k8py-bench-{tag}", work / "data", images=ImageStore(work / "images", RegistryClient(cfg)),
                     cgroup_parent=f"k8py-bench-{tag}", netns_prefix=f"k8py-b{tag[:4]}-")
    try:
        for im in ("busybox", "nginx"):
            t = time.monotonic()
            await rt.pull_image(im)
            print(f"{'pull ' + im + ' (cold store)':<34} {time.monotonic() - t:7.2f} s")
        sb, create, start, run_exit, whole = [], [], [], [], []
        for _ in range(args.n):
            t0 = time.monotonic()
            a, b, c, t3, sid, cid = await one_pod(rt, ["true"])
            await wait_exit(rt, cid)
            t4 = time.monotonic()
            sb.append(a)
            create.append(b)
            start.append(c)
            run_exit.append(t4 - t3)
            whole.append(t4 - t0)
            await rt.remove_pod_sandbox(sid)
        show("sandbox (netns + lo up)", sb)
        show("create (overlay + shim + runc)", create)
        show("start (runc start)", start)
        show("start -> exit of `true`", run_exit)
        show("whole pod: sandbox .. exited", whole)
        t = time.monotonic()
        started = await asyncio.gather(*(one_pod(rt, ["sleep", "1000"]) for _ in range(args.parallel)))
        print(f"{f'{args.parallel} pods in parallel (to started)':<34} {time.monotonic() - t:7.2f} s")
        cid = started[0][5]
        ex = []
        for _ in range(20):
            t = time.monotonic()
            await rt.exec_sync(cid, ["true"], timeout=10)
            ex.append(time.monotonic() - t)
        show("exec_sync true", ex)
        rss = []
        for p in (rt.cdir).iterdir():
            try:
                pid = int((p / "shim.json").read_text().split(":")[1].strip(" }"))
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        rss.append(int(line.split()[1]) / 1024)
            except (OSError, ValueError, IndexError):
                continue
        if rss:
            print(f"{'shim RSS per container':<34} {statistics.mean(rss):7.1f} MiB")
        t = time.monotonic()
        await asyncio.gather(*(rt.remove_pod_sandbox(s[4]) for s in started))
        print(f"{f'remove {args.parallel} running pods':<34} {time.monotonic() - t:7.2f} s")
    finally:
        await rt.cleanup()
        await rt.close()
        shutil.rmtree(rt.state_dir, ignore_errors=True)
        registry.stop(data)
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def cluster_bench(args: argparse.Namespace) -> None:
    """API-level: a k8py server with its node agent (the e2e AgentCluster); pods created
    with the official Python client, time from create() returning to phase Running seen
    by polling (50 ms), and deletion to gone."""
    from typing import Any

    from kubernetes import client as kc
    from kubernetes import config as kconf

    with agent_cluster(["busybox"]) as c:
        api: Any = kc.CoreV1Api(kconf.new_client_from_config(str(c.kubeconfig)))

        def pod(name: str) -> dict:
            return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                    "spec": {"terminationGracePeriodSeconds": 0, "containers": [
                        {"name": "c", "image": "busybox:1.28", "command": ["sleep", "3600"]}]}}

        def run_batch(names: list[str]) -> dict[str, float]:
            created: dict[str, float] = {}
            for n in names:
                api.create_namespaced_pod("default", pod(n))
                created[n] = time.monotonic()
            running: dict[str, float] = {}
            deadline = time.monotonic() + 300
            while len(running) < len(names) and time.monotonic() < deadline:
                for p in api.list_namespaced_pod("default").items:
                    if p.metadata.name in created and p.status.phase == "Running" and p.metadata.name not in running:
                        running[p.metadata.name] = time.monotonic() - created[p.metadata.name]
                time.sleep(0.05)
            return running

        first = run_batch(["warm-0"])  # pulls the image
        print(f"{'first pod (image pull) to Running':<34} {first.get('warm-0', float('nan')):7.2f} s")
        seq = []
        for i in range(args.n):
            seq += list(run_batch([f"seq-{i}"]).values())
        show("pod create -> Running (one by one)", seq)
        t = time.monotonic()
        par = run_batch([f"par-{i}" for i in range(args.parallel)])
        print(f"{f'{args.parallel} pods at once to all Running':<34} {time.monotonic() - t:7.2f} s")
        show(f"  each of the {args.parallel}", list(par.values()))
        t = time.monotonic()
        api.delete_collection_namespaced_pod("default", grace_period_seconds=0)
        while api.list_namespaced_pod("default").items and time.monotonic() - t < 300:
            time.sleep(0.05)
        print(f"{'delete all pods until gone':<34} {time.monotonic() - t:7.2f} s")



if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--parallel", type=int, default=10)
    ap.add_argument("--cluster", action="store_true", help="also measure through the API with the node agent")
    ns = ap.parse_args()
    asyncio.run(main(ns))
    if ns.cluster:
        cluster_bench(ns)
