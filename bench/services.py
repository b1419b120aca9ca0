"""Service dataplane and cluster DNS benchmark: prints numbers, asserts nothing.

1. Rule sync: time to build and apply the nftables ruleset for 1, 100 and 1,000
   services (2 endpoints each), whole and as an incremental change of one endpoint,
   into a private table (removed at the end).
2. Through the kernel: a k8py cluster with its node agent, one nginx pod behind a
   ClusterIP; `wrk` (Debian's, installed if missing) against the pod IP and against
   the ClusterIP, requests/s and p99 latency side by side.
3. DNS: queries/s and p99 of the cluster DNS (kube-dns) answering A queries for a
   service name, from the host, with 32 queries in flight.

    sudo .venv/bin/python bench/services.py [--skip-cluster]
Needs root, nft, runc, docker-registry (for part 2 and 3). Everything is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from dnslib import DNSRecord

from k8py.proxy import nft
from k8py.proxy.model import Endpoint, ServicePort
from k8py.proxy.rules import build, diff, full

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from benchcluster import agent_cluster, pct  # noqa: E402

TABLE = "k8py-bench"


def ports(n: int, extra: bool = False) -> list[ServicePort]:
    out = []
    for i in range(n):
        eps = [Endpoint(f"10.42.{i // 200}.{(i % 200) + 2}", 8080, "n1"),
               Endpoint(f"10.42.9.{i % 250 + 2}", 8080, "n1")]
        if extra and i == n - 1:
            eps.append(Endpoint("10.42.10.2", 8080, "n1"))
        out.append(ServicePort("bench", f"s{i}", "http", "tcp", 80, f"10.43.{i // 250 + 1}.{i % 250 + 1}",
                               node_port=30000 + i, endpoints=tuple(eps)))
    return out


def rule_sync() -> None:
    print("== nftables rule sync (build + nft -f), 2 endpoints per service")
    for n in (1, 100, 1000):
        # as the proxy syncs: render (reusing unchanged services' parts), diff, apply
        cache: dict = {}  # type: ignore[type-arg]
        inputs = [ports(n), ports(n, extra=True)]
        t = time.perf_counter()
        applied = build(inputs[0], "n1", "10.42.0.0/16", cache)
        asyncio.run(nft.apply(full(applied, TABLE)))
        t_full = time.perf_counter() - t
        changes = []
        for i in range(6):
            t = time.perf_counter()
            want = build(inputs[(i + 1) % 2], "n1", "10.42.0.0/16", cache)
            asyncio.run(nft.apply(diff(applied, want, TABLE)))
            applied = want
            changes.append(time.perf_counter() - t)
        print(f"  {n:>5} services: whole table {t_full * 1000:7.1f} ms   one endpoint added/removed "
              f"p50 {pct(changes, 50) * 1000:6.1f} ms  max {max(changes) * 1000:6.1f} ms")
    nft.delete_table(TABLE)


def wrk(url: str) -> tuple[float, float]:
    out = subprocess.run(["wrk", "-t2", "-c32", "-d5s", "--latency", url], capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)] if m else float("nan")
    return rps, p99


async def dns_load(server: str, name: str, total: int = 5000, inflight: int = 32) -> tuple[float, list[float]]:
    loop = asyncio.get_running_loop()
    lat: list[float] = []
    sem = asyncio.Semaphore(inflight)

    async def one() -> None:
        async with sem:
            fut: asyncio.Future[bytes] = loop.create_future()

            class P(asyncio.DatagramProtocol):
                def datagram_received(self, d: bytes, a: Any) -> None:
                    if not fut.done():
                        fut.set_result(d)
            tr, _ = await loop.create_datagram_endpoint(P, remote_addr=(server, 53))
            t = time.perf_counter()
            tr.sendto(DNSRecord.question(name).pack())
            try:
                await asyncio.wait_for(fut, 2)
                lat.append(time.perf_counter() - t)
            except TimeoutError:
                pass
            finally:
                tr.close()
    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(total)))
    return len(lat) / (time.perf_counter() - t0), lat


def cluster_part() -> None:
    if shutil.which("wrk") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True)
    with agent_cluster(["nginx"], prefix="k8py-bench-services-") as c:
        c.kubectl("create", "deployment", "web", "--image=nginx:1.14.2", "--port=80")
        c.kubectl("expose", "deployment", "web", "--port=80")
        c.kubectl("rollout", "status", "deployment/web", "--timeout=120s", timeout=130)
        pods = json.loads(c.kubectl("get", "pods", "-l", "app=web", "-o", "json").stdout)
        pod_ip = pods["items"][0]["status"]["podIP"]
        svc_ip = json.loads(c.kubectl("get", "svc", "web", "-o", "json").stdout)["spec"]["clusterIP"]
        deadline = time.time() + 30
        while time.time() < deadline and subprocess.run(["curl", "-sf", "-o", "/dev/null", f"http://{svc_ip}/"]).returncode:
            time.sleep(0.2)
        print("== HTTP through the kernel (wrk -t2 -c32 -d5s, one nginx pod)")
        d_rps, d_p99 = wrk(f"http://{pod_ip}/")
        s_rps, s_p99 = wrk(f"http://{svc_ip}/")
        print(f"  pod IP     {d_rps:9.0f} req/s   p99 {d_p99:6.2f} ms")
        print(f"  ClusterIP  {s_rps:9.0f} req/s   p99 {s_p99:6.2f} ms   ({100 * s_rps / d_rps:.1f}% of direct)")
        dns_ip = c.pod_cidr.rsplit(".", 1)[0] + ".1"
        deadline = time.time() + 60
        while subprocess.run(["ss", "-lun", f"src {dns_ip}:53"], capture_output=True, text=True).stdout.count("\n") < 2:
            if time.time() > deadline:
                raise SystemExit(f"the cluster DNS never listened on {dns_ip}:53")
            time.sleep(0.2)
        qps, lat = asyncio.run(dns_load(dns_ip, "web.default.svc.cluster.local"))
        print("== cluster DNS (A web.default.svc.cluster.local, 32 in flight, 5000 queries)")
        print(f"  {qps:9.0f} queries/s   p50 {pct(lat, 50) * 1000:6.2f} ms   p99 {pct(lat, 99) * 1000:6.2f} ms")
        c.kubectl("delete", "deployment", "web", "--wait=true", check=False, timeout=60)
        c.kubectl("delete", "pods", "--all", "--wait=true", check=False, timeout=60)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-cluster", action="store_true")
    args = ap.parse_args()
    rule_sync()
    if not args.skip_cluster:
        cluster_part()


if __name__ == "__main__":
    main()
