"""Scale benchmark: prints numbers, asserts nothing.

One process, one event loop, as `k8py server --simulated-nodes N` runs: the API
server over a real store (SQLite by default; etcd if asked and installed), node
IPAM, the node lifecycle controller, the scheduler, the controller manager
(ReplicaSets and Deployments, when `--workload deployments`) and N simulated nodes,
all on in-process clients. It measures:

- node registration time (N nodes Ready with a podCIDR);
- scheduling throughput (pods bound per second, from the first pod seen to the
  last bound) and create -> Running latency p50/p99 (pod first seen by a watch ->
  seen Running);
- eviction: the nodes holding about `--evict-pods` pods stop heartbeating; time
  until they are Unknown, until their pods are evicted, and until as many
  replacement pods are Running elsewhere (needs Deployments);
- RSS of the whole process (control plane plus the simulated nodes) at the end;
- the ratio of the end-to-end rate (pods Running per second from the first create) to
  the scheduling algorithm's rate alone (no API), in the same run.

The scheduler and the controllers have no client-side rate limit unless asked
(`--kube-api-qps 0`: Kubernetes' defaults, 50/100 for the scheduler, 20/30 per controller).

    .venv/bin/python bench/scale.py [--nodes 1000] [--pods 10000] [--store sqlite|etcd|memory]
        [--workload deployments|pods] [--evict-pods 1000] [--grace 10] [--eviction-timeout 0]
        [--kube-api-qps -1] [--kube-api-burst 0]

No traffic leaves the process (in-process transport; etcd, if used, on 127.0.0.1).
Every wait is bounded by --timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import gc
import logging
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

from k8py.apiserver.config import ApiServerConfig
from k8py.apiserver.inprocess import InProcessTransport
from k8py.apiserver.server import ApiServer
from k8py.client.client import Client
from k8py.client.informer import SharedInformerFactory
from k8py.client.ratelimit import CONTROLLER_MANAGER_DEFAULT, SCHEDULER_DEFAULT, RateLimit, bucket, resolve
from k8py.clock import RealClock
from k8py.controllers.nodeipam import NodeIpamController, mask_for
from k8py.controllers.nodelifecycle import NodeLifecycleController
from k8py.scheduler.scheduler import Scheduler
from k8py.simnode.cluster import SimulatedCluster
from k8py.store import open_store

NS = "default"


def limit(default: RateLimit, a: argparse.Namespace) -> RateLimit:
    """The components' client-side rate limit: --kube-api-qps 0 gives Kubernetes' default
    of each component; the default (-1) none, as scheduler_perf raises its clients' QPS."""
    return resolve(default, a.kube_api_qps, a.kube_api_burst)


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


class PodWatch:
    """Follows every pod through a watch: first seen, bound, Running, deleted (monotonic)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.seen: dict[str, float] = {}
        self.bound: dict[str, float] = {}
        self.running: dict[str, float] = {}
        self.node: dict[str, str] = {}
        self.terminating: set[str] = set()
        self.deleted: set[str] = set()

    def record(self, obj: dict[str, Any]) -> None:
        md = obj.get("metadata") or {}
        uid = md.get("uid")
        if not uid:
            return
        now = time.monotonic()
        self.seen.setdefault(uid, now)
        node = (obj.get("spec") or {}).get("nodeName")
        if node and uid not in self.bound:
            self.bound[uid] = now
            self.node[uid] = node
        if md.get("deletionTimestamp"):
            self.terminating.add(uid)
        if (obj.get("status") or {}).get("phase") == "Running" and uid not in self.running:
            self.running[uid] = now

    def gone(self, obj: dict[str, Any]) -> None:
        self.deleted.add(str((obj.get("metadata") or {}).get("uid")))

    async def run(self) -> None:
        """An informer of its own (it relists if its watch is dropped)."""
        from k8py.client.informer import Informer
        inf = Informer(self.client, "pods")
        inf.add_event_handler(self.record, lambda old, new: self.record(new), self.gone)
        await inf.run()

    def running_alive(self, exclude_nodes: set[str]) -> int:
        return sum(1 for u in self.running if u not in self.terminating and u not in self.deleted
                   and self.node.get(u) not in exclude_nodes)


async def wait_for(cond: Any, timeout: float, what: str) -> float:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - t0


def start_etcd(tmp: str) -> tuple[subprocess.Popen[bytes], str]:
    exe = shutil.which("etcd")
    if exe is None:
        raise SystemExit("etcd is not installed")
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    client_url = f"http://127.0.0.1:{ports[0]}"
    proc = subprocess.Popen([exe, "--data-dir", os.path.join(tmp, "etcd"), "--listen-client-urls", client_url,
                             "--advertise-client-urls", client_url,
                             "--listen-peer-urls", f"http://127.0.0.1:{ports[1]}",
                             "--initial-advertise-peer-urls", f"http://127.0.0.1:{ports[1]}",
                             "--initial-cluster", f"default=http://127.0.0.1:{ports[1]}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    def stop_etcd() -> None:
        if proc.poll() is None:
            proc.kill()

    atexit.register(stop_etcd)
    return proc, f"etcd://127.0.0.1:{ports[0]}"


def scheduler_only(nodes: int, pods: int, percentage: int | None) -> float:
    """The scheduling algorithm alone (filters, scores, assume) against the cache:
    what the scheduler could do if the API server cost nothing."""
    from k8py.scheduler.cache import SchedulerCache
    from k8py.scheduler.framework import CycleState, Framework
    from k8py.scheduler.plugins import default_plugins
    from k8py.scheduler.types import PodInfo

    cache = SchedulerCache()
    for i in range(nodes):
        cache.add_or_update_node({"metadata": {"name": f"n{i}", "labels": {"kubernetes.io/hostname": f"n{i}"}},
                                  "spec": {}, "status": {"allocatable": {"cpu": "32", "memory": "128Gi",
                                                                         "pods": "110"}}})
    fw = Framework(default_plugins(), percentage)
    objs = [{"metadata": {"name": f"p{i}", "namespace": NS, "uid": f"u{i}",
                          "ownerReferences": [{"kind": "ReplicaSet", "name": f"rs{i % 10}", "uid": f"rs{i % 10}",
                                               "controller": True}]},
             "spec": {"containers": [{"name": "app", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}
            for i in range(pods)]
    t = time.perf_counter()
    for o in objs:
        pi = PodInfo.from_pod(o)
        ni = fw.select_host(CycleState(cache), pi, cache.node_infos())
        cache.assume(pi, ni.name)
    dt = time.perf_counter() - t
    print(f"scheduler algorithm alone (no API): {pods} pods on {nodes} nodes in {dt:.1f} s = {pods / dt:.0f} pods/s "
          f"(percentageOfNodesToScore {percentage or 'adaptive'})")
    return pods / dt


async def main(a: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING)
    alone = scheduler_only(a.nodes, min(a.pods, 5000), a.percentage or None)
    tmp = tempfile.mkdtemp(prefix="k8py-bench-scale-")
    atexit.register(shutil.rmtree, tmp, True)  # also when stopped by a timeout (SIGTERM below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    etcd_proc = None
    url: str | None
    if a.store == "etcd":
        etcd_proc, url = start_etcd(tmp)
        await asyncio.sleep(2)
    elif a.store == "memory":
        url = "memory://"
    else:
        url = None
    clock = RealClock()
    store = open_store(url, tmp)
    r = store.start()
    if asyncio.iscoroutine(r):
        await r
    api = ApiServer(store, ApiServerConfig(), clock)
    await api.start()

    def client() -> Client:
        return Client(InProcessTransport(api))

    print(f"client rate limits: scheduler {limit(SCHEDULER_DEFAULT, a)}, each controller "
          f"{limit(CONTROLLER_MANAGER_DEFAULT, a)} (qps < 0: none)")
    print(f"store={a.store} nodes={a.nodes} pods={a.pods} workload={a.workload}  (one process; machine: "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} from other work)")
    print(f"RSS after API start: {rss_mb():.0f} MB")
    tasks: list[asyncio.Task[Any]] = []
    loop = asyncio.get_running_loop()
    # one set of informers for the components that can share (as one process should)
    factory = SharedInformerFactory(client(), clock)
    ipam = NodeIpamController(client(), clock, node_cidr_mask_size=mask_for(a.nodes + 1), factory=factory)
    tasks.append(loop.create_task(ipam.run()))
    lifecycle = NodeLifecycleController(client(), clock, node_monitor_grace_period=a.grace,
                                        node_monitor_period=5.0, pod_eviction_timeout=a.eviction_timeout,
                                        factory=factory)
    tasks.append(loop.create_task(lifecycle.run()))
    sched_limit = limit(SCHEDULER_DEFAULT, a)
    sched = Scheduler(client().with_rate_limiter(bucket(sched_limit, clock)), clock,
                      percentage_of_nodes_to_score=a.percentage or None, factory=factory,
                      event_client=client().with_rate_limiter(bucket(sched_limit, clock)))
    tasks.append(loop.create_task(sched.run()))
    if a.workload == "deployments":
        from k8py.controllers.manager import ControllerManager, ControllerManagerOptions
        cm = ControllerManager(client(), clock, ControllerManagerOptions(
            enabled=("replicaset", "deployment", "garbagecollector"), workers=4,
            rate_limit=limit(CONTROLLER_MANAGER_DEFAULT, a)))
        tasks.append(loop.create_task(cm.run()))
    watch = PodWatch(client())
    tasks.append(loop.create_task(watch.run()))

    # -- nodes ------------------------------------------------------------------
    cap = {"cpu": "32", "memory": "128Gi", "pods": "110"}
    cluster = SimulatedCluster(client(), a.nodes, cap, clock, workers=32, factory=factory)
    t0 = time.monotonic()
    tasks.append(loop.create_task(cluster.run()))
    watcher = client()

    nodes_ready = 0

    async def count_nodes() -> None:
        nonlocal nodes_ready
        while True:
            items = (await watcher.list("nodes"))["items"]
            nodes_ready = sum(1 for n in items if n["spec"].get("podCIDR"))
            if nodes_ready >= a.nodes:
                return
            await asyncio.sleep(0.5)

    await asyncio.wait_for(count_nodes(), a.timeout)
    print(f"{a.nodes} nodes registered with podCIDRs in {time.monotonic() - t0:.1f} s; RSS {rss_mb():.0f} MB")
    await wait_for(lambda: len(sched.cache) >= a.nodes, a.timeout, "scheduler cache")

    # -- pods -------------------------------------------------------------------
    t_create = time.monotonic()
    if a.workload == "deployments":
        per = a.pods // a.deployments
        for d in range(a.deployments):
            await watcher.create("deployments", {
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": f"web-{d}", "namespace": NS},
                "spec": {"replicas": per, "selector": {"matchLabels": {"app": f"web-{d}"}},
                         "template": {"metadata": {"labels": {"app": f"web-{d}"}},
                                      "spec": {"containers": [{"name": "app", "image": "nginx",
                                                               "resources": {"requests": {"cpu": "100m",
                                                                                          "memory": "64Mi"}}}]}}},
            }, NS)
    else:
        sem = asyncio.Semaphore(64)

        async def create(i: int) -> None:
            async with sem:
                await watcher.create("pods", {
                    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p-{i}", "namespace": NS},
                    "spec": {"containers": [{"name": "app", "image": "nginx",
                                             "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}, NS)

        await asyncio.gather(*(create(i) for i in range(a.pods)))
        print(f"created {a.pods} pods directly in {time.monotonic() - t_create:.1f} s")
    async def progress() -> None:
        while True:
            await asyncio.sleep(10)
            print(f"  ... {time.monotonic() - t_create:.0f} s: seen {len(watch.seen)}, bound {len(watch.bound)}, "
                  f"running {len(watch.running)}; scheduler queue {sched.queue.pending()}, "
                  f"failed attempts {sched.failed_attempts}, scheduler bound {sched.scheduled}, "
                  f"tasks in flight {len(sched._tasks)}, "
                  f"tainted nodes {sum(1 for n in sched.cache.node_infos() if n.taints)}, "
                  f"scheduler's pod cache {len(sched.pods)} at rv {sched.pods.resource_version}; "
                  f"RSS {rss_mb():.0f} MB", flush=True)

    bind_times: list[float] = []

    async def sample_binds() -> None:
        """Times at which the scheduler's bind count grew (scheduler-side view)."""
        last = sched.scheduled
        while True:
            await asyncio.sleep(0.05)
            if sched.scheduled != last:
                bind_times.append(time.monotonic())
                last = sched.scheduled

    prog = loop.create_task(progress())
    sampler = loop.create_task(sample_binds())
    await wait_for(lambda: len(watch.running) >= a.pods, a.timeout, "pods Running")
    prog.cancel()
    sampler.cancel()
    t_done = time.monotonic()
    first_seen = min(watch.seen.values())
    last_bound = max(watch.bound.values())
    bind_span = last_bound - first_seen
    lat = [watch.running[u] - watch.seen[u] for u in watch.running]
    create_span = max(watch.seen.values()) - first_seen
    print(f"pods created at {len(watch.seen) / max(create_span, 1e-9):.0f} pods/s as a watcher saw them "
          f"({len(watch.seen)} pods in {create_span:.1f} s)")
    if bind_times:
        span = bind_times[-1] - t_create
        print(f"scheduler bound {sched.scheduled} pods by {span:.1f} s after the first create: "
              f"{sched.scheduled / span:.0f} pods/s end to end ({sched.failed_attempts} failed attempts)")
    print(f"a watcher saw {len(watch.bound)} pods bound within {bind_span:.1f} s of the first: "
          f"{len(watch.bound) / bind_span:.0f} pods/s")
    print(f"all {a.pods} Running {t_done - t_create:.1f} s after the first create; create->Running "
          f"p50 {pct(lat, 50):.2f} s, p99 {pct(lat, 99):.2f} s")
    e2e = a.pods / (t_done - t_create)
    print(f"end to end (first create to all Running) / scheduler alone: {e2e:.0f} / {alone:.0f} pods/s "
          f"= {e2e / alone:.2f}")
    gc.collect()
    print(f"RSS with {a.nodes} nodes and {a.pods} pods: {rss_mb():.0f} MB "
          f"(peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")

    # -- eviction -----------------------------------------------------------------
    if a.evict_pods > 0:
        per_node: dict[str, int] = {}
        for u, n in watch.node.items():
            if u in watch.running and u not in watch.deleted:
                per_node[n] = per_node.get(n, 0) + 1
        victims: set[str] = set()
        count = 0
        for n, c in sorted(per_node.items()):
            if count >= a.evict_pods:
                break
            victims.add(n)
            count += c
        before = watch.running_alive(victims)
        t_pause = time.monotonic()
        for name in victims:
            cluster.node(name).pause()
        print(f"paused {len(victims)} nodes holding {count} pods "
              f"(grace {a.grace:.0f} s, eviction timeout {a.eviction_timeout:.0f} s)")

        def unknown() -> bool:
            return all(any(c.get("type") == "Ready" and c.get("status") == "Unknown"
                           for c in ((lifecycle.nodes.get(None, n) or {}).get("status") or {}).get("conditions") or [])
                       for n in victims)

        t_unknown = await wait_for(unknown, a.timeout, "nodes Unknown")
        evicted_uids = {u for u, n in watch.node.items() if n in victims}
        t_evicted = await wait_for(lambda: evicted_uids <= watch.terminating | watch.deleted, a.timeout,
                                   "pods evicted")
        print(f"nodes Unknown after {t_unknown:.1f} s; {len(evicted_uids)} pods marked for deletion "
              f"{t_evicted:.1f} s later")
        if a.workload == "deployments":
            t_evict_done = time.monotonic()
            target = before + count
            t_back = await wait_for(lambda: watch.running_alive(victims) >= target, a.timeout,
                                    "replacements Running")
            print(f"{count} replacement pods Running elsewhere {t_back:.1f} s after the evictions "
                  f"({time.monotonic() - t_pause:.1f} s after the heartbeats stopped)")
            del t_evict_done
        else:
            print("(direct pods have no controller: no replacements to time)")
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(f"final RSS {rss_mb():.0f} MB; load average {os.getloadavg()[0]:.1f}; "
          f"CPU time of the process {ru.ru_utime + ru.ru_stime:.1f} s (less sensitive to other load than wall time)")

    # stop in reverse order: every component (each awaits what it started), the shared
    # informers, the event writes of the controllers run here directly, then the API and the store
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await factory.shutdown()
    await asyncio.gather(ipam.recorder.close(), lifecycle.recorder.close())
    await api.close()
    r = store.close()
    if asyncio.iscoroutine(r):
        await r
    if etcd_proc is not None:
        etcd_proc.terminate()
        etcd_proc.wait(10)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--pods", type=int, default=10000)
    p.add_argument("--deployments", type=int, default=10)
    p.add_argument("--store", choices=("sqlite", "etcd", "memory"), default="sqlite")
    p.add_argument("--workload", choices=("deployments", "pods"), default="deployments")
    p.add_argument("--evict-pods", type=int, default=1000)
    p.add_argument("--grace", type=float, default=40.0, help="node monitor grace period (s)")
    p.add_argument("--eviction-timeout", type=float, default=0.0, help="pod eviction timeout (s)")
    p.add_argument("--percentage", type=int, default=0, help="percentageOfNodesToScore (0: adaptive)")
    p.add_argument("--kube-api-qps", type=float, default=-1.0,
                   help="client-side QPS of the scheduler and each controller (-1: none, default; "
                        "0: Kubernetes' defaults, 50 and 20)")
    p.add_argument("--kube-api-burst", type=int, default=0, help="their burst (0: Kubernetes' 100 and 30)")
    p.add_argument("--timeout", type=float, default=900.0)
    sys.exit(asyncio.run(main(p.parse_args())))
