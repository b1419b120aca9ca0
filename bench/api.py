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

With `--authz` it measures instead the cost of authorization (SQLite): create and get p50/p99
as the default service account (a RoleBinding lets it write ConfigMaps), with
`--authorization-mode AlwaysAllow`, with RBAC, and with RBAC and 500 more RoleBindings (of
other users) in the namespace.

    .venv/bin/python bench/api.py [--rate 200] [--n 1000] [--clients 8] [--stores sqlite,etcd] [--authz]
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

import yaml

from k8py.client.client import Client
from k8py.client.rest import RestTransport

NS = "default"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, data: Path, store: str | None, extra: tuple[str, ...] = ()) -> None:
        self.data, self.store, self.extra = data, store, extra
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        args = [sys.executable, "-m", "k8py.cli.main", "server", "--no-agent", "--data-dir", str(self.data),
                "--port", "0", *self.extra]
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

    def pids(self) -> list[int]:
        """The server process and its children (`k8py server` supervises the control plane's
        processes: kube-apiserver, kube-scheduler, kube-controller-manager)."""
        assert self.proc
        out = [self.proc.pid]
        for d in Path("/proc").iterdir():
            try:
                if d.name.isdigit() and int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                    out.append(int(d.name))
            except (OSError, IndexError, ValueError):
                continue
        return out

    def cpu_s(self) -> float:
        """User + system CPU seconds the server's processes have used (from /proc)."""
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def rss_mib(self) -> float:
        """The resident memory of the server's processes together."""
        total = 0
        for pid in self.pids():
            try:
                lines = Path(f"/proc/{pid}/status").read_text().splitlines()
            except OSError:
                continue
            total += sum(int(line.split()[1]) for line in lines if line.startswith("VmRSS:"))
        return total / 1024

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
    """Issue op(i) for i < n at `rate`/s, spread over the clients; latencies in seconds. Each
    client waits for its answer before its next request, so the rate reached falls below
    `rate` when clients x 1/latency does (`load` reports it)."""
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


async def load(kubeconfig: Path, n: int, rate: float, nclients: int,
               reached: dict[str, float]) -> dict[str, list[float]]:
    """Latencies per operation; the rate each paced operation reached goes to `reached`."""
    clients = [Client(RestTransport.from_kubeconfig(kubeconfig)) for _ in range(nclients)]
    out: dict[str, list[float]] = {}
    try:
        ops: dict[str, Callable[[Client, int], Awaitable[Any]]] = {
            "create": lambda c, i: c.create("configmaps", {"metadata": {"name": f"b-{i}", "labels": {"bench": "1"}},
                                                           "data": {"i": str(i)}}, NS),
            "get": lambda c, i: c.get("configmaps", f"b-{i}", NS),
            "patch": lambda c, i: c.patch("configmaps", f"b-{i}", {"data": {"p": str(i)}}, NS)}
        for name, op in ops.items():
            t0 = time.monotonic()
            out[name] = await paced(n, rate, clients, op)
            reached[name] = n / max(time.monotonic() - t0, 1e-9)
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
        reached: dict[str, float] = {}
        res = asyncio.run(load(srv.data / "kubeconfig", args.n, args.rate, args.clients, reached))
        cpu = srv.cpu_s() - cpu0
        loaded = srv.rss_mib()
        srv.stop()
        return {"cold": cold, "warm": warm, "idle": idle, "loaded": loaded, "lat": res, "cpu": cpu,
                "achieved": reached}
    finally:
        if etcd:
            etcd.terminate()
            etcd.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


RBAC_V1 = "/apis/rbac.authorization.k8s.io/v1/namespaces/default"
AUTHZ_RUNS = (("authorization off (AlwaysAllow)", "AlwaysAllow", 0), ("RBAC", "RBAC", 0),
              ("RBAC, 500 RoleBindings", "RBAC", 500))


def _binding(name: str, subject: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": name}, "subjects": [subject],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "bench-cm"}}


async def as_service_account(kubeconfig: Path, bindings: int) -> Path:
    """Let default:default write ConfigMaps (plus `bindings` RoleBindings of other users); a
    kubeconfig with its token."""
    admin = RestTransport.from_kubeconfig(kubeconfig)
    try:
        await admin.request("POST", f"{RBAC_V1}/roles", body={"metadata": {"name": "bench-cm"}, "rules": [
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "get", "list", "patch"]}]})
        await admin.request("POST", f"{RBAC_V1}/rolebindings",
                            body=_binding("bench-sa", {"kind": "ServiceAccount", "name": "default"}))
        for i in range(bindings):
            await admin.request("POST", f"{RBAC_V1}/rolebindings", body=_binding(f"bench-{i}", {
                "kind": "User", "name": f"user-{i}", "apiGroup": "rbac.authorization.k8s.io"}))
        _, tr = await admin.request("POST", "/api/v1/namespaces/default/serviceaccounts/default/token",
                                    body={"spec": {}})
    finally:
        await admin.close()
    cfg = yaml.safe_load(kubeconfig.read_text())
    cfg["users"] = [{"name": u["name"], "user": {"token": tr["status"]["token"]}} for u in cfg["users"]]
    out = kubeconfig.with_name("sa-kubeconfig")
    out.write_text(yaml.safe_dump(cfg))
    await asyncio.sleep(1.0)  # the bindings reach the authorizer's index through a watch
    return out


async def authz_load(kubeconfig: Path, n: int, rate: float, nclients: int) -> dict[str, list[float]]:
    clients = [Client(RestTransport.from_kubeconfig(kubeconfig)) for _ in range(nclients)]
    try:
        return {"create": await paced(n, rate, clients, lambda c, i: c.create(
                    "configmaps", {"metadata": {"name": f"b-{i}"}, "data": {"i": str(i)}}, NS)),
                "get": await paced(n, rate, clients, lambda c, i: c.get("configmaps", f"b-{i}", NS))}
    finally:
        for c in clients:
            await c.close()


def decision_cost(bindings: int, n: int = 20000) -> float:
    """Microseconds per authorization of a default-SA `get configmaps` (in process, no I/O),
    with the bootstrap policy, the SA's binding and `bindings` other RoleBindings indexed."""
    from k8py.api.request import ApiRequest
    from k8py.apiserver import bootstrappolicy
    from k8py.apiserver.authz import Authorizer

    authz = Authorizer("RBAC")
    idx, rev = authz.index, 0
    objs = [("clusterroles", o) for o in bootstrappolicy.cluster_roles()]
    objs += [("clusterrolebindings", o) for o in bootstrappolicy.cluster_role_bindings()]
    objs.append(("roles/default", {"rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
                                   "metadata": {"name": "bench-cm"}}))
    objs.append(("rolebindings/default", _binding("bench-sa", {"kind": "ServiceAccount", "name": "default"})))
    objs += [("rolebindings/default", _binding(f"bench-{i}", {"kind": "User", "name": f"user-{i}"}))
             for i in range(bindings)]
    for where, o in objs:
        rev += 1
        idx.observe(f"/registry/rbac.authorization.k8s.io/{where}/{o['metadata']['name']}", rev, o)
    req = ApiRequest("GET", "/api/v1/namespaces/default/configmaps/b-1", user="system:serviceaccount:default:default",
                     groups=("system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"))
    t0 = time.perf_counter()
    for _ in range(n):
        authz.check(req)
    return (time.perf_counter() - t0) / n * 1e6


def bench_authz(args: argparse.Namespace) -> None:
    print(f"k8py authorization cost: {args.n} ConfigMaps created then read at {args.rate:.0f}/s over "
          f"{args.clients} HTTPS clients as the default service account, SQLite, {os.cpu_count()} CPUs")
    print("| run | create p50 / p99 | get p50 / p99 |")
    print("|---|---|---|")
    for label, mode, extra in AUTHZ_RUNS:
        tmp = Path(tempfile.mkdtemp(prefix="k8py-bench-authz-"))
        srv = Server(tmp / "data", None, ("--authorization-mode", mode))
        try:
            srv.start()
            kc = asyncio.run(as_service_account(srv.data / "kubeconfig", extra))
            lat = asyncio.run(authz_load(kc, args.n, args.rate, args.clients))
        finally:
            srv.stop()
            shutil.rmtree(tmp, ignore_errors=True)
        cells = [f"{pct(lat[op], 50):.1f} / {pct(lat[op], 99):.1f} ms" for op in ("create", "get")]
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)
    print(f"authorizer decision (in process): {decision_cost(0):.1f} us per request; "
          f"{decision_cost(500):.1f} us with 500 more RoleBindings")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--stores", default="sqlite,etcd")
    ap.add_argument("--authz", action="store_true", help="authorization off vs RBAC vs RBAC with 500 RoleBindings")
    args = ap.parse_args()
    if args.authz:
        bench_authz(args)
        return
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

    row("rate reached: create / get / patch", lambda r: " / ".join(
        f"{r['achieved'].get(op, 0):.0f}/s" for op in ("create", "get", "patch")))
    for op in results[stores[0]]["lat"]:
        row(f"{op} p50 / p99", p50_p99(op))
    for op in results[stores[0]]["lat"]:
        row(f"{op} mean", mean(op))
    row("server CPU time for the whole load", lambda r: f"{r['cpu']:.1f} s")
    row("RSS idle after start", lambda r: f"{r['idle']:.0f} MiB")
    row("RSS after the load", lambda r: f"{r['loaded']:.0f} MiB")


if __name__ == "__main__":
    main()
