"""A control plane that survives losing a server: 3 etcd members, 2 `k8py server`s on them.

Both servers run with --no-agent and the pods run on simulated nodes (--simulated-nodes,
on the second server only, as nodes that are not on the killed machine), so no container
is needed. Server B joins with `--join https://A --token <A's DATA_DIR/token>` (A's CA, keys and
encryption config over HTTPS). Lab
leader election: lease 3 s, renew deadline 2 s, retry 0.5 s.

One scenario, in order: A leads both Leases (their holderIdentity names it); kill -9 of A
while two writers create ConfigMaps through both servers' kubeconfigs (a create that fails
to connect is retried on the other server; AlreadyExists after such a retry means the first
attempt was applied) -> B takes both Leases, a Deployment scaled through B converges, and
every acknowledged create is there; kill -9 of one etcd member -> writes through B still succeed.
The `kubernetes` endpoints name both servers, then B alone once A's record expired.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.client.rest import RestTransport

from e2e_harness import K8pyServer, wait_for

pytestmark = pytest.mark.e2e

LAB = ("--leader-elect-lease-duration", "3s", "--leader-elect-renew-deadline", "2s",
       "--leader-elect-retry-period", "0.5s")
LOCKS = ("kube-scheduler", "kube-controller-manager")


def identity(s: K8pyServer) -> str:
    return f"{socket.gethostname()}_127.0.0.1:{s.port}"


def holders(s: K8pyServer) -> set[str]:
    out = s.kubectl("get", "leases", "-n", "kube-system", *LOCKS, "-o",
                    "jsonpath={.items[*].spec.holderIdentity}", check=False)
    return set(out.stdout.split()) if out.returncode == 0 else set()


class Writers:
    """Threads creating ConfigMaps `w<k>-<i>` through the servers' kubeconfigs in turn."""

    def __init__(self, servers: list[K8pyServer]) -> None:
        self.servers = servers
        self.acked: list[str] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=lambda k=k: asyncio.run(self._write(k))) for k in range(2)]

    def __enter__(self) -> Writers:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)

    async def _write(self, k: int) -> None:
        clients = [Client(RestTransport.from_kubeconfig(s.kubeconfig)) for s in self.servers]
        try:
            i = 0
            while not self.stop.is_set():
                name = f"w{k}-{i}"
                if await self._create(clients, (i + k) % 2, name):
                    self.acked.append(name)
                i += 1
        finally:
            for c in clients:
                await c.close()

    async def _create(self, clients: list[Client], first: int, name: str) -> bool:
        retried = False
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for c in clients[first:] + clients[:first]:
                try:
                    await c.create("configmaps", {"metadata": {"name": name}, "data": {"n": name}}, "default")
                    return True
                except ApiError as e:
                    if e.already_exists and retried:
                        return True  # the attempt whose answer was lost was applied
                    if e.status < 500:
                        raise
                except Exception:  # noqa: BLE001 - connection refused/reset: try the other server
                    pass
                retried = True
            await asyncio.sleep(0.1)
        return False


def api_servers(s: K8pyServer) -> set[tuple[str, int]]:
    """The servers the `kubernetes` Endpoints name (address, port)."""
    ep = s.kubectl_json("get", "endpoints", "kubernetes")
    return {(a["ip"], p["port"]) for sub in ep.get("subsets") or [] for a in sub["addresses"] for p in sub["ports"]}


def _ready_replicas(s: K8pyServer) -> int:
    d = s.kubectl_json("get", "deployment", "web")
    return int(d.get("status", {}).get("readyReplicas") or 0)


def test_the_control_plane_survives_losing_a_server_and_an_etcd_member(tmp_path: Path, etcd3: Any) -> None:
    a = K8pyServer(tmp_path / "a", store=etcd3.store_url, extra_args=LAB).start()
    b = None
    try:
        b = K8pyServer(tmp_path / "b", store=etcd3.store_url,
                       extra_args=(*LAB, "--join", a.url, "--token", (a.data_dir / "token").read_text().strip(),
                                   "--simulated-nodes", "2")).start()
        assert (b.data_dir / "pki" / "ca.crt").read_bytes() == (a.data_dir / "pki" / "ca.crt").read_bytes()
        wait_for(lambda: holders(b) == {identity(a)}, 30, "A holding both Leases")
        both = {("127.0.0.1", a.port), ("127.0.0.1", b.port)}
        wait_for(lambda: api_servers(a) == both, 30, "the kubernetes endpoints naming both servers")
        b.kubectl("create", "deployment", "web", "--image=nginx", "--replicas=2")
        wait_for(lambda: _ready_replicas(b) == 2, 60, "2 ready replicas")

        with Writers([a, b]) as writers:
            wait_for(lambda: len(writers.acked) >= 40, 60, "40 acknowledged creates")
            a.kill()
            wait_for(lambda: holders(b) == {identity(b)}, 30, "B holding both Leases")
            b.kubectl("scale", "deployment", "web", "--replicas=4")
            wait_for(lambda: _ready_replicas(b) == 4, 60, "4 ready replicas through B")
            n = len(writers.acked)
            wait_for(lambda: len(writers.acked) >= n + 20, 60, "20 more acknowledged creates")
        names = set(b.kubectl("get", "configmaps", "-n", "default", "-o", "name").stdout.split())
        missing = [n for n in writers.acked if f"configmap/{n}" not in names]
        assert not missing, f"{len(missing)} acknowledged creates lost: {missing[:10]}"

        etcd3.kill(0)
        for i in range(5):
            b.kubectl("create", "configmap", f"after-etcd-kill-{i}")
        b.kubectl("scale", "deployment", "web", "--replicas=3")
        wait_for(lambda: _ready_replicas(b) == 3 and
                 len(b.kubectl_json("get", "pods", "-l", "app=web")["items"]) == 3, 60, "3 replicas")
        # A's record stopped changing when it was killed: out of the endpoints after the TTL (15 s)
        wait_for(lambda: api_servers(b) == {("127.0.0.1", b.port)}, 60, "the kubernetes endpoints naming B only")
    finally:
        if b is not None:
            b.stop()
        a.stop()
