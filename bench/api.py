"""API server benchmark: prints numbers, asserts nothing.

For each store (SQLite, then etcd when `etcd` is on PATH) it starts a real
`k8py server --no-agent` on a free loopback port and measures, over HTTPS with
the admin client certificate:
- cold start to the ready line (fresh data dir, then a restart on it);
- p50/p99 latency of create, get and merge-patch issued at a fixed rate
  (default 200/s) by concurrent clients; of list with 1,000 objects;
- watch delivery latency (write acknowledged -> event received);
- RSS when idle after start and after the load;
- the server's CPU time over the whole load (user + system, from /proc: what the
  work costs, less sensitive than latencies to other work on the machine).

    .venv/bin/python bench/api.py [--rate 200] [--n 1000] [--clients 8] [--stores sqlite,etcd]
Traffic goes to 127.0.0.1 only; every loop is bounded in count.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from k8py.client.client import Client
from k8py.client.rest import RestTransport

NS = "default"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, data: Path, store: str | None) -> None:
        self.data, self.store = data, store
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        args = [sys.executable, "-m", "k8py.cli.main", "server", "--no-agent", "--data-dir", str(self.data),
                "--port", "0"]
        if self.store:
            args += ["--store", self.store]
        t0 = time.monotonic()
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=open(self.data.parent / "server.log", "ab"))
        assert self.proc.stdout
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        buf = b""
        while b"\n" not in buf:
            if time.monotonic() - t0 > 60 or self.proc.poll() is not None:
                raise SystemExit(f"server did not start; see {self.data.parent / 'server.log'}")
            if sel.select(0.2):
                buf += os.read(self.proc.stdout.fileno(), 4096)
        return time.monotonic() - t0

    def cpu_s(self) -> float:
        """User + system CPU seconds the server process has used (from /proc)."""
        assert self.proc
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mib(self) -> float:
        assert self.proc
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] * 1000


async def paced(n: int, rate: float, clients: list[Client], op: Callable[[Client, int], Awaitable[Any]]) -> list[float]:
    """Issue op(i) for i < n at `rate`/s, spread over the clients; latencies in seconds."""
    lat: list[float] = []
    t0 = time.monotonic()
    nxt = 0

    async def worker(c: Client) -> None:
        nonlocal nxt
        while nxt < n:
            i = nxt
            nxt += 1
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            s = time.monotonic()
            await op(c, i)
            lat.append(time.monotonic() - s)

    await asyncio.gather(*(worker(c) for c in clients))
    return lat


async def load(kubeconfig: Path, n: int, rate: float, nclients: int) -> dict[str, list[float]]:
    clients = [Client(RestTransport.from_kubeconfig(kubeconfig)) for _ in range(nclients)]
    out: dict[str, list[float]] = {}
    try:
        out["create"] = await paced(n, rate, clients, lambda c, i: c.create(
            "configmaps", {"metadata": {"name": f"b-{i}", "labels": {"bench": "1"}}, "data": {"i": str(i)}}, NS))
        out["get"] = await paced(n, rate, clients, lambda c, i: c.get("configmaps", f"b-{i}", NS))
        out["patch"] = await paced(n, rate, clients, lambda c, i: c.patch(
            "configmaps", f"b-{i}", {"data": {"p": str(i)}}, NS))
        lst: list[float] = []
        for _ in range(30):
            s = time.monotonic()
            res = await clients[0].list("configmaps", NS, label_selector="bench=1")
            lst.append(time.monotonic() - s)
            assert len(res["items"]) == n
        out[f"list ({n} objects)"] = lst
        out["watch delivery"] = await watch_latency(clients)
    finally:
        for c in clients:
            await c.close()
    return out


async def watch_latency(clients: list[Client], count: int = 200, rate: float = 50) -> list[float]:
    c = clients[0]
    rv = (await c.list("configmaps", NS, limit=1))["metadata"]["resourceVersion"]
    sent: dict[str, float] = {}
    lat: list[float] = []
    done = asyncio.Event()

    async def watcher() -> None:
        async for ev in c.watch("configmaps", NS, resource_version=rv, label_selector="wbench=1"):
            name = ev.get("object", {}).get("metadata", {}).get("name", "")
            if ev.get("type") == "ADDED" and name in sent:
                lat.append(time.monotonic() - sent[name])
                if len(lat) >= count:
                    done.set()
                    return

    task = asyncio.create_task(watcher())
    writer = clients[1 % len(clients)]
    for i in range(count):
        name = f"w-{i}"
        sent[name] = time.monotonic()
        await writer.create("configmaps", {"metadata": {"name": name, "labels": {"wbench": "1"}}}, NS)
        await asyncio.sleep(1 / rate)
    try:
        await asyncio.wait_for(done.wait(), 30)
    except TimeoutError:
        pass
    task.cancel()
    return lat


def start_etcd(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    cport, pport = free_port(), free_port()
    p = subprocess.Popen(["etcd", "--name", "k8py-bench", "--data-dir", str(tmp / "etcd"),
                          "--listen-client-urls", f"http://127.0.0.1:{cport}",
                          "--advertise-client-urls", f"http://127.0.0.1:{cport}",
                          "--listen-peer-urls", f"http://127.0.0.1:{pport}",
                          "--initial-advertise-peer-urls", f"http://127.0.0.1:{pport}",
                          "--initial-cluster", f"k8py-bench=http://127.0.0.1:{pport}"],
                         stdout=subprocess.DEVNULL, stderr=open(tmp / "etcd.log", "ab"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", cport)) == 0:
                return p, f"etcd://127.0.0.1:{cport}"
        time.sleep(0.1)
    p.kill()
    raise SystemExit("etcd did not start")


def bench_store(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix=f"k8py-bench-{kind}-"))
    etcd = None
    try:
        url = None
        if kind == "etcd":
            etcd, url = start_etcd(tmp)
        srv = Server(tmp / "data", url)
        cold = srv.start()
        srv.stop()
        warm = srv.start()
        time.sleep(1.0)
        idle = srv.rss_mib()
        cpu0 = srv.cpu_s()
        res = asyncio.run(load(srv.data / "kubeconfig", args.n, args.rate, args.clients))
        cpu = srv.cpu_s() - cpu0
        loaded = srv.rss_mib()
        srv.stop()
        return {"cold": cold, "warm": warm, "idle": idle, "loaded": loaded, "lat": res, "cpu": cpu}
    finally:
        if etcd:
            etcd.terminate()
            etcd.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--stores", default="sqlite,etcd")
    args = ap.parse_args()
    stores = [s for s in args.stores.split(",") if s != "etcd" or shutil.which("etcd")]
    results = {s: bench_store(s, args) for s in stores}
    print(f"k8py API benchmark: {args.n} objects, writes at {args.rate:.0f}/s over {args.clients} HTTPS clients, "
          f"{os.cpu_count()} CPUs")
    print("| metric | " + " | ".join(stores) + " |")
    print("|---|" + "---|" * len(stores))

    def row(name: str, f: Callable[[dict[str, Any]], str]) -> None:
        print(f"| {name} | " + " | ".join(f(results[s]) for s in stores) + " |")

    row("cold start to ready (fresh data dir)", lambda r: f"{r['cold'] * 1000:.0f} ms")
    row("restart to ready", lambda r: f"{r['warm'] * 1000:.0f} ms")
    def p50_p99(op: str) -> Callable[[dict[str, Any]], str]:
        return lambda r: f"{pct(r['lat'][op], 50):.1f} / {pct(r['lat'][op], 99):.1f} ms"

    def mean(op: str) -> Callable[[dict[str, Any]], str]:
        return lambda r: f"{statistics.fmean(r['lat'][op]) * 1000:.1f} ms" if r["lat"][op] else "n/a"

    for op in results[stores[0]]["lat"]:
        row(f"{op} p50 / p99", p50_p99(op))
    for op in results[stores[0]]["lat"]:
        row(f"{op} mean", mean(op))
    row("server CPU time for the whole load", lambda r: f"{r['cpu']:.1f} s")
    row("RSS idle after start", lambda r: f"{r['idle']:.0f} MiB")
    row("RSS after the load", lambda r: f"{r['loaded']:.0f} MiB")


if __name__ == "__main__":
    main()
