"""Leader failover time: kill -9 of the leading `k8py server` -> the other holds both Leases.

Starts a 3-member etcd cluster on loopback, server A, then server B (`--join https://A --token @A/token`),
both `--no-agent` with the lab lease (`--lease 3`: lease 3 s, renew deadline 2 s, retry
0.5 s; `--lease 15` gives Kubernetes' 15/10/2 s). Each round kills the leader with SIGKILL,
times until the survivor holds kube-system/kube-scheduler and kube-controller-manager
(polled every 50 ms through the survivor's API), then restarts the killed server as the
standby. Prints each round, the median and the maximum. Asserts nothing.

    .venv/bin/python bench/ha.py [--rounds 5] [--lease 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from k8py.client.client import Client
from k8py.client.rest import RestTransport

from benchcluster import free_port

LOCKS = ("kube-scheduler", "kube-controller-manager")


def start_etcd(tmp: Path, size: int = 3) -> tuple[list[subprocess.Popen[bytes]], str]:
    clients = [f"http://127.0.0.1:{free_port()}" for _ in range(size)]
    peers = [f"http://127.0.0.1:{free_port()}" for _ in range(size)]
    initial = ",".join(f"m{i}={p}" for i, p in enumerate(peers))
    procs = [subprocess.Popen(
        ["etcd", "--name", f"m{i}", "--data-dir", str(tmp / f"etcd{i}"), "--listen-client-urls", clients[i],
         "--advertise-client-urls", clients[i], "--listen-peer-urls", peers[i],
         "--initial-advertise-peer-urls", peers[i], "--initial-cluster", initial,
         "--initial-cluster-token", tmp.name, "--initial-cluster-state", "new"],
        stdout=subprocess.DEVNULL, stderr=open(tmp / f"etcd{i}.log", "ab")) for i in range(size)]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            for c in clients:
                req = urllib.request.Request(c + "/v3/kv/range", data=b'{"key":"AA=="}',
                                             headers={"Content-Type": "application/json"})
                urllib.request.urlopen(req, timeout=2).close()
            return procs, "etcd://" + ",".join(c.split("://")[1] for c in clients)
        except OSError:
            time.sleep(0.1)
    raise SystemExit("etcd cluster did not start")


class Server:
    def __init__(self, data: Path, store: str, extra: list[str]) -> None:
        self.data, self.store, self.extra = data, store, extra
        self.proc: subprocess.Popen[bytes] | None = None
        self.identity = ""

    def start(self) -> Server:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "k8py.cli.main", "server", "--no-agent", "--data-dir", str(self.data),
             "--port", "0", "--store", self.store, *self.extra],
            stdout=subprocess.PIPE, stderr=open(self.data.parent / f"{self.data.name}.log", "ab"))
        assert self.proc.stdout
        line = self.proc.stdout.readline().decode()
        if "ready at " not in line:
            raise SystemExit(f"server did not start: {line!r}")
        url = line.split("ready at ", 1)[1].split()[0]
        self.identity = f"{socket.gethostname()}_{url.split('://', 1)[1]}"
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


async def holders(client: Client) -> set[str]:
    out = set()
    for name in LOCKS:
        try:
            lease = await client.get("leases", name, "kube-system")
        except Exception:  # noqa: BLE001 - not there yet / the server is starting
            return set()
        out.add((lease.get("spec") or {}).get("holderIdentity") or "")
    return out


async def wait_holder(server: Server, identity: str, timeout: float = 120) -> float:
    client = Client(RestTransport.from_kubeconfig(server.data / "kubeconfig"))
    try:
        t0 = time.monotonic()
        while await holders(client) != {identity}:
            if time.monotonic() - t0 > timeout:
                raise SystemExit(f"{identity} did not take the Leases within {timeout}s")
            await asyncio.sleep(0.05)
        return time.monotonic()
    finally:
        await client.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--lease", type=float, default=3.0, help="lease duration; renew deadline 2/3, retry 1/6 of it")
    args = ap.parse_args()
    lab = ["--leader-elect-lease-duration", f"{args.lease}s", "--leader-elect-renew-deadline",
           f"{args.lease * 2 / 3}s", "--leader-elect-retry-period", f"{args.lease / 6}s"]
    tmp = Path(tempfile.mkdtemp(prefix="k8py-bench-ha-"))
    etcd, store = start_etcd(tmp)
    a = Server(tmp / "a", store, lab).start()
    b = Server(tmp / "b", store, [*lab, "--join", "https://" + a.identity.rsplit("_", 1)[1],
                                  "--token", f"@{tmp / 'a' / 'token'}"]).start()
    try:
        leader, standby = a, b
        asyncio.run(wait_holder(standby, leader.identity))
        times = []
        for r in range(args.rounds):
            t0 = time.monotonic()
            leader.kill()
            took = asyncio.run(wait_holder(standby, standby.identity)) - t0
            times.append(took)
            print(f"round {r + 1}: kill -9 of the leader -> new holder of both Leases in {took:.2f} s", flush=True)
            leader.start()
            leader, standby = standby, leader
        print(f"leader failover (lease {args.lease:g} s, {args.rounds} rounds): "
              f"median {statistics.median(times):.2f} s, max {max(times):.2f} s")
    finally:
        for s in (a, b):
            s.stop()
        for p in etcd:
            p.kill()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("K8PY_LOG", "WARNING")
    main()
