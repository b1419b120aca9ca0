"""`k8py agent --server URL --token @file` joins a server that runs without its own agent
(as on another machine), runs real containers for the pods bound to it, and serves
their logs and exec through the server (which forwards to the agent's endpoint)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e_harness import K8pyServer, wait_for

pytestmark = pytest.mark.root


@pytest.fixture
def joined(tmp_path: Path, local_registry: Any) -> Iterator[tuple[K8pyServer, str]]:
    if os.geteuid() != 0 or shutil.which("runc") is None:
        pytest.skip("the node agent needs root and runc")
    server = K8pyServer(tmp_path / "data")
    server.start()
    ident = uuid.uuid4().hex[:6]
    node = f"remote-{ident}"
    env = dict(os.environ, K8PY_AGENT_ROOT=str(tmp_path / "agent"), K8PY_AGENT_STATE=f"/run/k8py-e2e-{ident}",
               K8PY_AGENT_ID=ident, K8PY_AGENT_CLUSTER_CIDR="10.199.0.0/16",
               K8PY_REGISTRIES=str(local_registry.write_registries_yaml(tmp_path / "registries.yaml")),
               K8PY_DNS_UPSTREAM="none")
    log = open(tmp_path / "agent.log", "wb")
    agent = subprocess.Popen([sys.executable, "-m", "k8py.cli.main", "agent", "--server", server.url,
                              "--token", f"@{tmp_path / 'data' / 'pki' / 'agent-token'}",
                              # the CA pinned by its hash (fetched from /cacerts, checked) rather than a file
                              "--ca-cert-hash", (tmp_path / "data" / "pki" / "ca-cert-hash").read_text(),
                              "--node-name", node,
                              "--pod-cidr", f"10.199.{int(ident[:2], 16)}.0/24", "--backoff-base", "1",
                              "--node-ip", "127.0.0.1", "--kubelet-port", "0"],
                             stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        yield server, node
        server.kubectl("delete", "pods", "--all", "--wait=true", "--timeout=60s", check=False, timeout=90)
    finally:
        agent.terminate()
        try:
            agent.wait(15)
        except subprocess.TimeoutExpired:
            agent.kill()
        tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
        left = [t for t in tables.split() if t == f"k8py-{ident}"]
        subprocess.run(["nft", "delete", "table", "ip", f"k8py-{ident}"], capture_output=True)
        server.stop()
        subprocess.run(["ip", "link", "del", f"k8pyb{ident}"], capture_output=True)
        code = (f"import asyncio; from k8py.runtime.runc import RuncRuntime; "
                f"asyncio.run(RuncRuntime('/run/k8py-e2e-{ident}', {str(tmp_path / 'agent')!r}, "
                f"cgroup_parent='k8py-{ident}', netns_prefix='k8py-{ident}-').cleanup())")
        subprocess.run([sys.executable, "-c", code], capture_output=True)
        shutil.rmtree(f"/run/k8py-e2e-{ident}", ignore_errors=True)
    assert not left, "the agent left its nftables table behind on SIGTERM"


def test_remote_agent_registers_and_runs_a_pod(joined: tuple[K8pyServer, str]) -> None:
    server, node = joined
    wait_for(lambda: node in server.kubectl("get", "nodes", check=False).stdout, 30, "the node registered")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "far"},
           "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "main", "image": "busybox",
                                    "command": ["sh", "-c", "echo hello-remote; sleep 3600"]}]}}
    server.kubectl("apply", "-f", "-", input=yaml.safe_dump(pod))

    def running() -> bool:
        p = server.kubectl_json("get", "pod", "far")
        return p["status"].get("phase") == "Running" and bool(p["status"].get("podIP"))
    wait_for(running, 60, "the pod running on the remote agent")
    rows = server.kubectl("get", "pod", "far", "-o", "wide", "--no-headers").stdout.split()
    assert rows[1] == "1/1" and rows[2] == "Running" and node in rows
    # logs and exec reach the remote agent through the server (the agent's own HTTPS endpoint)
    wait_for(lambda: server.kubectl("logs", "far", check=False).stdout == "hello-remote\n", 30, "remote logs")
    assert server.kubectl("logs", "far", "--tail=1", "--timestamps").stdout.endswith(" hello-remote\n")
    r = server.kubectl("exec", "far", "--", "sh", "-c", "echo via-agent; exit 7", check=False)
    assert (r.returncode, r.stdout) == (7, "via-agent\n"), r
    # metrics.k8s.io from the agent's Summary API (its /stats/summary) through the server
    top = wait_for(lambda: (p := server.kubectl("top", "pod", "far", "--no-headers", check=False)).returncode == 0
                   and p.stdout.split(), 60, "kubectl top pod of the remote agent's pod")
    assert top[0] == "far" and top[1].endswith("m") and top[2].endswith("Mi")
    wait_for(lambda: node in server.kubectl("top", "nodes", check=False).stdout, 30, "kubectl top nodes")
    server.kubectl("delete", "pod", "far", "--wait=true", timeout=60)  # the agent finishes the deletion
    assert server.kubectl("get", "pod", "far", check=False).returncode != 0
