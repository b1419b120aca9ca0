"""Service dataplane and cluster DNS benchmark: prints numbers, asserts nothing.

1. Rule sync: time to build and apply the nftables ruleset for 1, 100 and 1,000
   services (2 endpoints each), whole (median of --rounds) and as an incremental change
   of one endpoint, into a private table (removed at the end).
2. Through the kernel: a k8py cluster with its node agent, one nginx pod behind a
   ClusterIP; `wrk` (Debian's, installed if missing) against the pod IP and against
   the ClusterIP, --rounds rounds of --duration seconds each, the two in alternating
   order; per round and the median, with the spread of the ratio across rounds.
3. DNS: queries/s and p99 of `dnsperf` (Debian's, installed if missing; 32 queries in
   flight, A for a service name) against the cluster DNS (kube-dns) from the host, and
   against the same DNS server alone on loopback (a static zone), --rounds each.

    sudo .venv/bin/python bench/services.py [--skip-cluster] [--rounds 5] [--duration 10] [--dns-workers N]
Needs root, nft, runc, docker-registry (for part 2 and 3). Everything is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from k8py.proxy import nft
from k8py.proxy.model import Endpoint, ServicePort
from k8py.proxy.rules import build, diff, full

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from benchcluster import agent_cluster, free_port, pct  # noqa: E402

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


def rule_sync(rounds: int) -> None:
    print(f"== nftables rule sync (build + nft -f), 2 endpoints per service, {rounds} rounds")
    for n in (1, 100, 1000):
        # as the proxy syncs: render (reusing unchanged services' parts), diff, apply
        wholes, changes = [], []
        inputs = [ports(n), ports(n, extra=True)]
        for _ in range(rounds):
            nft.delete_table(TABLE)
            cache: dict = {}  # type: ignore[type-arg]
            t = time.perf_counter()
            applied = build(inputs[0], "n1", "10.42.0.0/16", cache)
            asyncio.run(nft.apply(full(applied, TABLE)))
            wholes.append(time.perf_counter() - t)
            for i in range(4):
                t = time.perf_counter()
                want = build(inputs[(i + 1) % 2], "n1", "10.42.0.0/16", cache)
                asyncio.run(nft.apply(diff(applied, want, TABLE)))
                applied = want
                changes.append(time.perf_counter() - t)
        print(f"  {n:>5} services: whole table median {pct(wholes, 50) * 1000:6.1f} ms (max "
              f"{max(wholes) * 1000:6.1f})   one endpoint added/removed p50 {pct(changes, 50) * 1000:6.1f} ms  "
              f"max {max(changes) * 1000:6.1f} ms")
    nft.delete_table(TABLE)


def wrk(url: str, duration: int) -> tuple[float, float]:
    out = subprocess.run(["wrk", "-t2", "-c32", f"-d{duration}s", "--latency", url], capture_output=True,
                         text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)] if m else float("nan")
    return rps, p99


def dnsperf(server: str, port: int, name: str, duration: int) -> tuple[float, float]:
    """(queries/s, p99 ms) of dnsperf with 32 queries in flight; p99 from its per-query lines."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as q:
        q.write(f"{name} A\n")
        q.flush()
        out = subprocess.run(["dnsperf", "-s", server, "-p", str(port), "-d", q.name, "-l", str(duration),
                              "-q", "32", "-v"], capture_output=True, text=True).stdout
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = [float(ln.rsplit(" ", 1)[1]) for ln in out.splitlines() if ln.startswith("> ")]
    return qps, pct(lat, 99) * 1000 if lat else float("nan")


def spread(xs: list[float]) -> float:
    """(max - min) / median, in percent."""
    return 100 * (max(xs) - min(xs)) / pct(xs, 50)


def dns_rounds(what: str, server: str, port: int, name: str, rounds: int, duration: int) -> None:
    runs = [dnsperf(server, port, name, duration) for _ in range(rounds)]
    for i, (qps, p99) in enumerate(runs, 1):
        print(f"  round {i}: {qps:9.0f} queries/s   p99 {p99:6.2f} ms")
    qs, ps = [r[0] for r in runs], [r[1] for r in runs]
    print(f"  {what}: median {pct(qs, 50):9.0f} queries/s (spread {spread(qs):.1f}%)   "
          f"p99 median {pct(ps, 50):6.2f} ms, max {max(ps):6.2f} ms")


def dns_alone(rounds: int, duration: int, workers: int) -> None:
    """The DNS server by itself on loopback (a one-service static zone), in a process of its own
    (and `workers` worker processes)."""
    port = free_port()
    code = ("import asyncio\nfrom k8py.dns.records import ClusterZone\nfrom k8py.dns.server import DnsServer\n"
            "svc = {'metadata': {'name': 'web', 'namespace': 'default'}, 'spec': {'clusterIP': '10.43.0.50'}}\n"
            "zone = ClusterZone(lambda ns, n: svc if (ns, n) == ('default', 'web') else None, lambda ns, n: [])\n"
            f"asyncio.run(DnsServer(zone, [], workers={workers}).serve('127.0.0.1', {port}))\n")
    proc = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(REPO / "src")))
    try:
        while subprocess.run(["ss", "-lun", f"sport = :{port}"], capture_output=True, text=True
                             ).stdout.count("\n") < 2:
            time.sleep(0.1)
        time.sleep(1 if workers else 0)  # the workers binding
        print(f"== DNS server alone on loopback, {workers} worker processes (dnsperf, 32 in flight, "
              f"{duration} s per round)")
        dns_rounds("alone", "127.0.0.1", port, "web.default.svc.cluster.local", rounds, duration)
    finally:
        proc.kill()
        proc.wait()


def http_rounds(pod_ip: str, svc_ip: str, rounds: int, duration: int) -> None:
    print(f"== HTTP through the kernel (wrk -t2 -c32 -d{duration}s, one nginx pod, {rounds} rounds, "
          "alternating order)")
    ratios, direct, service = [], [], []
    for i in range(rounds):
        order = [("d", pod_ip), ("s", svc_ip)] if i % 2 == 0 else [("s", svc_ip), ("d", pod_ip)]
        got = {k: wrk(f"http://{ip}/", duration) for k, ip in order}
        direct.append(got["d"])
        service.append(got["s"])
        ratios.append(got["s"][0] / got["d"][0])
        print(f"  round {i + 1}: pod IP {got['d'][0]:9.0f} req/s p99 {got['d'][1]:6.2f} ms   ClusterIP "
              f"{got['s'][0]:9.0f} req/s p99 {got['s'][1]:6.2f} ms   ({100 * ratios[-1]:.1f}% of direct)")
    print(f"  median: pod IP {pct([d[0] for d in direct], 50):9.0f} req/s (p99 {pct([d[1] for d in direct], 50):.2f} "
          f"ms)   ClusterIP {pct([s[0] for s in service], 50):9.0f} req/s (p99 {pct([s[1] for s in service], 50):.2f}"
          f" ms)   ClusterIP/direct median {100 * pct(ratios, 50):.1f}% (rounds {100 * min(ratios):.1f}–"
          f"{100 * max(ratios):.1f}%, spread {spread(ratios):.1f}%)")


def cluster_part(rounds: int, duration: int) -> None:
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
        http_rounds(pod_ip, svc_ip, rounds, duration)
        dns_ip = c.pod_cidr.rsplit(".", 1)[0] + ".1"
        deadline = time.time() + 60
        while subprocess.run(["ss", "-lun", f"src {dns_ip}:53"], capture_output=True, text=True).stdout.count("\n") < 2:
            if time.time() > deadline:
                raise SystemExit(f"the cluster DNS never listened on {dns_ip}:53")
            time.sleep(0.2)
        print(f"== cluster DNS (A web.default.svc.cluster.local, dnsperf, 32 in flight, {duration} s per round)")
        dns_rounds("cluster DNS", dns_ip, 53, "web.default.svc.cluster.local", rounds, duration)
        c.kubectl("delete", "deployment", "web", "--wait=true", check=False, timeout=60)
        c.kubectl("delete", "pods", "--all", "--wait=true", check=False, timeout=60)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-cluster", action="store_true")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk / dnsperf run")
    ap.add_argument("--dns-workers", type=int, default=0, help="K8PY_DNS_WORKERS for the DNS (0: one process)")
    args = ap.parse_args()
    os.environ["K8PY_DNS_WORKERS"] = str(args.dns_workers)  # for the cluster's DNS too
    for tool, pkg in (("wrk", "wrk"), ("dnsperf", "dnsperf")):
        if shutil.which(tool) is None:
            subprocess.run(["apt-get", "install", "-y", "-qq", pkg], check=True, capture_output=True)
    rule_sync(args.rounds)
    dns_alone(args.rounds, args.duration, args.dns_workers)
    if not args.skip_cluster:
        cluster_part(args.rounds, args.duration)


if __name__ == "__main__":
    main()
