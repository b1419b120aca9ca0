"""Fixtures of whole-cluster tests: `cluster` (one k8py server per test module, SQLite;
all on etcd with K8PY_E2E_STORE=etcd), `fresh_cluster` (one per test), `etcd_cluster`
(one per module on the `etcd_url` fixture from tests/conftest.py). The harness itself
is in e2e_harness.py.
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e_harness import K8pyServer, default_kubectl


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if default_kubectl() is None:
        skip = pytest.mark.skip(reason="no kubectl: none on PATH, no K8PY_KUBECTL, no .venv/bin/kubectl")
        for it in items:
            if "tests/e2e/" in str(it.fspath):
                it.add_marker(skip)


def _server(tmp: Path, store: str | None = None) -> Iterator[K8pyServer]:
    s = K8pyServer(tmp / "data", store=store)
    s.start()
    try:
        yield s
    finally:
        s.stop()


def _etcd_store(url: str) -> str:
    """The k8py store URL for the etcd_url fixture's http://host:port, after wiping /registry
    (the session shares one etcd, and each module wants a fresh cluster)."""
    body = json.dumps({"key": base64.b64encode(b"/registry/").decode(),
                       "range_end": base64.b64encode(b"/registry0").decode()}).encode()
    req = urllib.request.Request(url.rstrip("/") + "/v3/kv/deleterange", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310 - our own etcd on loopback
        r.read()
    return "etcd://" + url.split("://", 1)[-1].rstrip("/")


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[K8pyServer]:
    """One server per module; K8PY_E2E_STORE=etcd runs them all on the session's etcd."""
    store = None
    if os.environ.get("K8PY_E2E_STORE") == "etcd":
        store = _etcd_store(request.getfixturevalue("etcd_url"))
    yield from _server(tmp_path_factory.mktemp("k8py"), store=store)


@pytest.fixture
def fresh_cluster(tmp_path: Path) -> Iterator[K8pyServer]:
    yield from _server(tmp_path)


@pytest.fixture(scope="module")
def etcd_cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[K8pyServer]:
    try:
        url = request.getfixturevalue("etcd_url")
    except pytest.FixtureLookupError:
        pytest.skip("no etcd_url fixture")
    yield from _server(tmp_path_factory.mktemp("k8py-etcd"), store=_etcd_store(url))




# ======================= kubelet: clusters with the real node agent (owner: kubelet) =======================


class AgentCluster(K8pyServer):
    """A k8py server with its embedded node agent, isolated by a random id: its own runc
    root, cgroup parent, netns prefix, bridge and pod CIDR (10.200-249.x.0/24), with
    docker.io mirrored to the local test registry and a 1 s crash back-off base."""

    def __init__(self, tmp: Path, registries_yaml: Path, extra_env: dict[str, str] | None = None) -> None:
        self.ident = uuid.uuid4().hex[:6]
        self.agent_root = tmp / "agent"
        self.state = Path(f"/run/k8py-e2e-{self.ident}")
        self.cgroup_parent = f"k8py-{self.ident}"
        self.netns_prefix = f"k8py-{self.ident}-"
        self.bridge = f"k8pyb{self.ident}"
        self.pod_cidr = f"10.{random.randint(200, 249)}.{random.randint(0, 255)}.0/24"
        env = {"K8PY_AGENT_ROOT": str(self.agent_root), "K8PY_AGENT_STATE": str(self.state),
               "K8PY_AGENT_ID": self.ident, "K8PY_AGENT_POD_CIDR": self.pod_cidr,
               "K8PY_AGENT_CLUSTER_CIDR": self.pod_cidr, "K8PY_AGENT_BACKOFF_BASE": "1",
               "K8PY_AGENT_STORAGE_CHECK_PERIOD": "1",
               "K8PY_AGENT_NODE_NAME": f"node-{self.ident}", "K8PY_REGISTRIES": str(registries_yaml),
               "K8PY_LOG": os.environ.get("K8PY_LOG", "INFO"),
               "K8PY_DNS_UPSTREAM": "none",  # tests never send DNS queries off the machine
               **(extra_env or {})}
        # Its own service range, DNS address and LoadBalancer pool too, so that clusters
        # running at once on this machine do not answer for each other.
        self.service_cidr = f"10.{random.randint(100, 199)}.0.0/16"
        self.cluster_dns = self.service_cidr.replace(".0.0/16", ".0.10")
        self.lb_pool = f"127.{random.randint(101, 250)}.{random.randint(0, 255)}.0/24"
        super().__init__(tmp / "data", env=env, agent=True,
                         extra_args=("--service-cidr", self.service_cidr, "--service-lb-pool", self.lb_pool,
                                     "--cluster-cidr", self.pod_cidr.rsplit(".", 2)[0] + ".0.0/16"))
        self.node_name = f"node-{self.ident}"

    def leftovers(self) -> list[str]:
        out: list[str] = []
        r = subprocess.run(["runc", "--root", str(self.state / "runc"), "list", "-q"], capture_output=True,
                           text=True)
        out += [f"runc container {n}" for n in r.stdout.split()]
        if Path("/run/netns").exists():
            out += [f"netns {n}" for n in os.listdir("/run/netns") if n.startswith(self.netns_prefix)]
        for h in Path("/sys/fs/cgroup").iterdir():
            for p in (h / self.cgroup_parent,):
                if p.exists() and any(x.is_dir() for x in p.iterdir()):
                    out += [f"cgroup {p}/{x.name}" for x in p.iterdir() if x.is_dir()]
        with open("/proc/self/mountinfo") as f:
            mps = [line.split()[4] for line in f]
        out += [f"mount {m}" for m in mps if m.startswith((str(self.state), str(self.agent_root)))]
        ipam = self.agent_root / "network" / "ipam"
        if ipam.exists():
            out += [f"ip address {p.name}" for p in ipam.iterdir() if not p.name.startswith(".")]
        logs = self.agent_root / "pod-logs"
        if logs.exists():
            out += [f"pod log dir {p.name}" for p in logs.iterdir()]
        return out  # an empty IPAM dir means every pod's veth was deleted with its address

    def cleanup_node(self) -> None:
        """After stop(): remove the node-level bridge and any remains (so nothing leaks even on failure)."""
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        subprocess.run(["nft", "delete", "table", "ip", f"k8py-{self.ident}"], capture_output=True)
        subprocess.run(["nft", "delete", "table", "inet", f"k8py-netpol-{self.ident}"], capture_output=True)
        code = (f"import asyncio; from k8py.runtime.runc import RuncRuntime; "
                f"rt = RuncRuntime({str(self.state)!r}, {str(self.agent_root)!r}, "
                f"cgroup_parent={self.cgroup_parent!r}, netns_prefix={self.netns_prefix!r}); "
                f"asyncio.run(rt.cleanup())")
        subprocess.run([sys.executable, "-c", code], capture_output=True)
        for h in Path("/sys/fs/cgroup").iterdir():
            p = h / self.cgroup_parent
            if p.exists():
                subprocess.run(["rmdir", str(p)], capture_output=True)
        shutil.rmtree(self.state, ignore_errors=True)


@pytest.fixture(scope="module")
def agent_cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,  # type: ignore[no-untyped-def]
                  local_registry) -> Iterator[AgentCluster]:
    """One k8py server with a real node agent per test module (with the module's `AGENT_ENV`,
    K8PY_AGENT_* settings, if it has one). Teardown deletes every pod, stops the server and
    asserts that no container, netns, cgroup or mount is left."""
    if os.geteuid() != 0 or shutil.which("runc") is None:
        pytest.skip("the node agent needs root and runc")
    tmp = tmp_path_factory.mktemp("k8py-agent")
    regs = local_registry.write_registries_yaml(tmp / "registries.yaml")
    c = AgentCluster(tmp, regs, getattr(request.module, "AGENT_ENV", None))
    c.start()
    left: list[str] = []
    try:
        yield c
        c.kubectl("delete", "deployments,replicasets,daemonsets,statefulsets,jobs,cronjobs", "--all",
                  "--all-namespaces", "--wait=true", "--timeout=60s", check=False, timeout=90)
        c.kubectl("delete", "pods", "--all", "--all-namespaces", "--wait=true", "--timeout=120s", check=False,
                  timeout=150)
        deadline = time.monotonic() + 60  # pods of a terminal phase vanish at once; the agent cleans up after
        while (left := c.leftovers()) and time.monotonic() < deadline:
            time.sleep(0.2)
        c.stop()
        tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
        left += [f"nftables {t.strip()}" for t in tables.splitlines()
                 if t.strip().endswith((f"k8py-{c.ident}", f"k8py-netpol-{c.ident}"))]
    finally:
        if c.proc is not None:
            c.stop()
        c.cleanup_node()
    assert not left, f"the agent left: {left}"
# ===================== end kubelet: clusters with the real node agent (owner: kubelet) =====================
