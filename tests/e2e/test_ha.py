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
A `k8py agent --server A` (real containers, as on another machine) learns B from the
`kubernetes` endpoints and runs a pod; after the kill it renews its node's Lease through B and
the pod was not restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.client.rest import RestTransport

from e2e_harness import K8pyServer, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.root]

LAB = ("--leader-elect-lease-duration", "3s", "--leader-elect-renew-deadline", "2s",
       "--leader-elect-retry-period", "0.5s")
LAB_ENV = {"K8PY_SERVER_LEASE_TTL": "3"}  # Kubernetes' 15 s for the servers' records in the endpoints
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


@contextlib.contextmanager
def remote_agent(tmp_path: Path, servers: list[K8pyServer], registry: Any) -> Iterator[tuple[str, Path]]:
    """`k8py agent --server A` (real containers), as on another machine: it learns B from the
    `kubernetes` endpoints; yields the node's name and the agent's log (K8PY_LOG=INFO: the
    servers it knows); stops it and removes what it made."""
    ident = uuid.uuid4().hex[:6]
    node, state, root = f"remote-{ident}", f"/run/k8py-e2e-{ident}", tmp_path / f"agent-{ident}"
    first = servers[0].data_dir / "pki"
    env = dict(os.environ, K8PY_AGENT_ROOT=str(root), K8PY_AGENT_STATE=state, K8PY_AGENT_ID=ident,
               K8PY_AGENT_CLUSTER_CIDR="10.199.0.0/16", K8PY_DNS_UPSTREAM="none", K8PY_AGENT_LEASE_INTERVAL="1",
               K8PY_LOG="INFO",
               K8PY_REGISTRIES=str(registry.write_registries_yaml(tmp_path / "registries.yaml")))
    log_path = tmp_path / "agent.log"
    with open(log_path, "wb") as log:
        agent = subprocess.Popen(
            [sys.executable, "-m", "k8py.cli.main", "agent", "--server", servers[0].url,
             "--token", f"@{first / 'agent-token'}", "--ca-cert-hash", (first / "ca-cert-hash").read_text(),
             "--node-name", node, "--pod-cidr", f"10.199.{int(ident[:2], 16)}.0/24", "--backoff-base", "1",
             "--node-ip", "127.0.0.1", "--kubelet-port", "0"],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        yield node, log_path
    finally:
        agent.terminate()
        try:
            agent.wait(15)
        except subprocess.TimeoutExpired:
            agent.kill()
        subprocess.run(["nft", "delete", "table", "ip", f"k8py-{ident}"], capture_output=True)
        subprocess.run(["ip", "link", "del", f"k8pyb{ident}"], capture_output=True)
        code = (f"import asyncio; from k8py.runtime.runc import RuncRuntime; "
                f"asyncio.run(RuncRuntime({state!r}, {str(root)!r}, "
                f"cgroup_parent='k8py-{ident}', netns_prefix='k8py-{ident}-').cleanup())")
        subprocess.run([sys.executable, "-c", code], capture_output=True)
        shutil.rmtree(state, ignore_errors=True)


def _pinned_pod(s: K8pyServer, node: str) -> dict[str, Any]:
    """uid, containerID, restartCount and phase of the pod `pinned` (on the agent's node)."""
    p = s.kubectl_json("get", "pod", "pinned")
    cs = (p["status"].get("containerStatuses") or [{}])[0]
    return {"uid": p["metadata"]["uid"], "phase": p["status"].get("phase"), "id": cs.get("containerID"),
            "restarts": cs.get("restartCount"), "node": p["spec"].get("nodeName") == node}


def _lease_renewed_after(s: K8pyServer, node: str, t: float) -> bool:
    lease = s.kubectl_json("get", "lease", "-n", "kube-node-lease", node)
    renew = lease["spec"].get("renewTime", "")
    return bool(renew) and datetime.fromisoformat(renew.replace("Z", "+00:00")).timestamp() > t


def _ready_replicas(s: K8pyServer) -> int:
    d = s.kubectl_json("get", "deployment", "web")
    return int(d.get("status", {}).get("readyReplicas") or 0)


def test_the_control_plane_survives_losing_a_server_and_an_etcd_member(tmp_path: Path, etcd3: Any,
                                                                        local_registry: Any) -> None:
    if os.geteuid() != 0 or shutil.which("runc") is None:
        pytest.skip("the node agent needs root and runc")
    a = K8pyServer(tmp_path / "a", store=etcd3.store_url, extra_args=LAB, env=LAB_ENV).start()
    b = None
    try:
        b = K8pyServer(tmp_path / "b", store=etcd3.store_url,
                       extra_args=(*LAB, "--join", a.url, "--token", (a.data_dir / "token").read_text().strip(),
                                   "--simulated-nodes", "2"), env=LAB_ENV).start()
        assert (b.data_dir / "pki" / "ca.crt").read_bytes() == (a.data_dir / "pki" / "ca.crt").read_bytes()
        wait_for(lambda: holders(b) == {identity(a)}, 30, "A holding both Leases")
        both = {("127.0.0.1", a.port), ("127.0.0.1", b.port)}
        wait_for(lambda: api_servers(a) == both, 30, "the kubernetes endpoints naming both servers")
        with remote_agent(tmp_path, [a, b], local_registry) as (node, agent_log):
            _survive(a, b, etcd3, node, agent_log)  # (the agent's teardown removes its containers)
    finally:
        if b is not None:
            b.stop()
        a.stop()


def _survive(a: K8pyServer, b: K8pyServer, etcd3: Any, node: str, agent_log: Path) -> None:
    wait_for(lambda: node in b.kubectl("get", "nodes", check=False).stdout, 30, "the agent's node registered")
    b.kubectl("taint", "node", node, "k8py.io/e2e=agent:NoSchedule")  # the Deployment stays on simulated nodes
    b.kubectl("run", "pinned", "--image=busybox", "--restart=Never",
              f"--overrides={{\"spec\": {{\"nodeName\": \"{node}\"}}}}", "--", "sleep", "3600")
    wait_for(lambda: _pinned_pod(b, node)["phase"] == "Running" and _pinned_pod(b, node)["id"], 60,
             "the pinned pod running on the agent")
    before = _pinned_pod(b, node)
    known = f"API servers: 127.0.0.1:{a.port}, 127.0.0.1:{b.port}"
    wait_for(lambda: known in agent_log.read_text(), 30, "the agent learning B from the kubernetes endpoints")
    b.kubectl("create", "deployment", "web", "--image=nginx", "--replicas=2")
    wait_for(lambda: _ready_replicas(b) == 2, 60, "2 ready replicas")

    with Writers([a, b]) as writers:
        wait_for(lambda: len(writers.acked) >= 40, 60, "40 acknowledged creates")
        a.kill()
        killed = time.time()
        wait_for(lambda: holders(b) == {identity(b)}, 30, "B holding both Leases")
        b.kubectl("scale", "deployment", "web", "--replicas=4")
        wait_for(lambda: _ready_replicas(b) == 4, 60, "4 ready replicas through B")
        n = len(writers.acked)
        wait_for(lambda: len(writers.acked) >= n + 20, 60, "20 more acknowledged creates")
    names = set(b.kubectl("get", "configmaps", "-n", "default", "-o", "name").stdout.split())
    missing = [n for n in writers.acked if f"configmap/{n}" not in names]
    assert not missing, f"{len(missing)} acknowledged creates lost: {missing[:10]}"

    # The agent moved to B (its balancer says so), renews its node's Lease through it, and its
    # pod kept running: same uid, same container, no restart.
    wait_for(lambda: _lease_renewed_after(b, node, killed + 1), 30, "the agent's Lease renewed through B")
    assert f"now using 127.0.0.1:{b.port}" in agent_log.read_text()
    assert _pinned_pod(b, node) == before
    # A's kubeconfig (its CA, its admin credentials) serves against B too
    assert "configmap/w0-0" in a.kubectl("--server", b.url, "get", "configmaps", "-o", "name").stdout

    etcd3.kill(0)
    for i in range(5):
        b.kubectl("create", "configmap", f"after-etcd-kill-{i}")
    b.kubectl("scale", "deployment", "web", "--replicas=3")
    wait_for(lambda: _ready_replicas(b) == 3 and
             len(b.kubectl_json("get", "pods", "-l", "app=web")["items"]) == 3, 60, "3 replicas")
    # A's record stopped changing when it was killed: out of the endpoints after the TTL (lab: 3 s)
    wait_for(lambda: api_servers(b) == {("127.0.0.1", b.port)}, 60, "the kubernetes endpoints naming B only")
