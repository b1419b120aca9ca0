"""The agent of a node host: `k8py agent`, the same command another machine runs, started
inside the node's network namespace (`nsenter --net`: the namespace only, so the
machine's mounts and cgroups stay shared, as runc needs them) in a session of its own.

`credentials` is the one place that says how a node host's agent authenticates to the
server (today: the cluster's agent token and CA, as a separate machine gets them).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from k8py.nodehost.layout import NodeHost


def credentials(node: NodeHost) -> tuple[Path, Path]:
    """(bearer token file, CA file) the node's agent joins with."""
    pki = Path(node.cluster.data_dir) / "pki"
    return pki / "agent-token", pki / "ca.crt"


def agent_env(node: NodeHost) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("K8PY_AGENT_")}
    env.update({"K8PY_AGENT_ROOT": str(node.root_dir), "K8PY_AGENT_STATE": str(node.state_dir),
                "K8PY_AGENT_ID": node.ident, "K8PY_AGENT_CLUSTER_CIDR": node.cluster.cluster_cidr,
                "K8PY_AGENT_SERVICE_CIDR": node.cluster.service_cidr,
                "K8PY_REGISTRIES": node.cluster.registries or "/nonexistent/registries.yaml",
                "K8PY_AGENT_LEASE_INTERVAL": str(node.cluster.lease_interval)})
    for k in ("K8PY_AGENT_BACKOFF_BASE", "K8PY_AGENT_STORAGE_CHECK_PERIOD"):  # lab timings, passed on
        if k in os.environ:
            env[k] = os.environ[k]
    return env


def agent_argv(node: NodeHost) -> list[str]:
    token, ca = credentials(node)
    return ["nsenter", f"--net=/run/netns/{node.netns}", "--",
            sys.executable, "-m", "k8py.cli.main", "agent", "--server", node.cluster.server_url,
            "--token", f"@{token}", "--ca-file", str(ca), "--node-name", node.name, "--node-ip", node.ip,
            "--flannel-backend", node.cluster.flannel_backend, "--node-network", node.cluster.node_network,
            "--backoff-base", os.environ.get("K8PY_AGENT_BACKOFF_BASE", "10")]


def spawn(node: NodeHost) -> int:
    """Start the node's agent; returns its pid (the leader of its own session)."""
    node.root_dir.mkdir(parents=True, exist_ok=True)
    with open(node.root_dir / "agent.log", "ab") as log:
        p = subprocess.Popen(agent_argv(node), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             env=agent_env(node), start_new_session=True)
    return p.pid


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def kill(pid: int, grace: float = 0.0) -> None:
    """Stop the agent's session: SIGTERM and up to `grace` seconds, then SIGKILL."""
    if pid <= 0 or not alive(pid):
        return
    if grace > 0:
        _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.02)


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
