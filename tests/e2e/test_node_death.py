"""A node that dies (issue 9, item 3) on `k8py server --nodes 3` with the lab flags
`--node-monitor-grace-period 10 --pod-eviction-timeout 0`: `k8py node stop` of a node
holding two nginx replicas is a power cut; the node goes Ready=Unknown and is tainted
unreachable:NoExecute, its pods leave the Service and are replaced on the other nodes,
and a client loop through the NodePort on 127.0.0.1 loses only the requests of one
window, printed; the live nodes never look silent (their agents renew their Lease every
quarter of the grace period), so only the stopped node's pods are evicted. `k8py node
start`: the node is Ready again, untainted, takes a new pod, and none of its old pods
runs again. Its own cluster (the lab flags are the server's).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_multinode import NGINX, NODES, SERVICE, NodesCluster, apply, internal_ips, node_hosts, ready_pods

from e2e_harness import wait_for

pytestmark = pytest.mark.root
LAB_FLAGS = ("--node-monitor-grace-period", "10", "--pod-eviction-timeout", "0")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, local_registry: Any) -> Iterator[NodesCluster]:
    with node_hosts(tmp_path_factory, local_registry, "k8py-nodedeath", *LAB_FLAGS) as c:
        wait_for(lambda: sorted(internal_ips(c)) == NODES, 60, "3 nodes Ready")
        apply(c, NGINX, SERVICE)
        wait_for(lambda: len(ready_pods(c, "app=web")) == 6, 180, "6 ready nginx replicas")
        yield c


class ClientLoop(threading.Thread):
    """Requests the URL back to back (1 s timeout each); records (time, ok) of each."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.done = url, threading.Event()
        self.results: list[tuple[float, bool]] = []

    def run(self) -> None:
        while not self.done.is_set():
            t = time.monotonic()
            try:
                with urllib.request.urlopen(self.url, timeout=1) as r:  # noqa: S310 - this test's cluster
                    ok = b"Welcome to nginx" in r.read()
            except OSError:
                ok = False
            self.results.append((t, ok))
            if not ok:
                time.sleep(0.05)

    def failures(self, since: float = 0.0) -> list[float]:
        return [t for t, ok in self.results if not ok and t >= since]


def node_status(c: NodesCluster, name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    node = c.kubectl_json("get", "node", name)
    ready = next(x for x in node["status"]["conditions"] if x["type"] == "Ready")
    return ready, node["spec"].get("taints") or []


def nginx_masters_on(host: Any) -> int:
    """nginx master processes in the node host's cgroup subtree (its pods' containers)."""
    n = 0
    for proc in Path("/proc").iterdir():
        try:
            if host.cgroup_parent in (proc / "cgroup").read_text() and \
                    (proc / "cmdline").read_bytes().startswith(b"nginx: master"):
                n += 1
        except OSError:
            continue
    return n


def test_each_agent_reaches_the_server_only_through_its_host_address(cluster: NodesCluster) -> None:
    """Issue 9 item 6: a node host is a second machine as `k8py agent` sees it. Its agent was
    told the server's address on the host network (`--server https://<host bridge>:PORT`), its
    namespace has no default route, and the server's port on the node's own 127.0.0.1 is
    closed; yet the node is Ready: it reaches the server only through the host address."""
    from k8py.nodehost import NodeHosts

    port = int(cluster.url.rsplit(":", 1)[1])
    for name in NODES:
        host, rec = NodeHosts.of(cluster.data_dir).get(name)
        argv = Path(f"/proc/{rec['pid']}/cmdline").read_bytes().split(b"\0")
        server = argv[argv.index(b"--server") + 1].decode()
        assert server == f"https://{host.cluster.host_ip}:{port}" and host.cluster.host_ip != "127.0.0.1"
        routes = subprocess.run(["ip", "-n", host.netns, "route", "show", "default"], capture_output=True,
                                text=True, check=True).stdout
        assert routes.strip() == "", f"{name} has a default route: {routes}"
        probe = subprocess.run(["ip", "netns", "exec", host.netns, sys.executable, "-c",
                                f"import socket; socket.create_connection(('127.0.0.1', {port}), 2)"],
                               capture_output=True, text=True)
        assert probe.returncode != 0 and "ConnectionRefused" in probe.stderr, probe.stderr
    assert sorted(internal_ips(cluster)) == NODES  # all Ready


def test_a_node_that_dies_and_comes_back(cluster: NodesCluster) -> None:
    c = cluster
    by_node: dict[str, list[str]] = {}
    for p in ready_pods(c, "app=web"):
        by_node.setdefault(p["spec"]["nodeName"], []).append(p["metadata"]["name"])
    victim = next(n for n in NODES if len(by_node.get(n, [])) == 2)
    old = set(by_node[victim])
    host = c.node_host(victim)
    port = c.kubectl_json("get", "svc", "web")["spec"]["ports"][0]["nodePort"]
    loop = ClientLoop(f"http://127.0.0.1:{port}/")
    loop.start()
    wait_for(lambda: len(loop.results) >= 20, 60, "the client loop running")
    assert not loop.failures(), "requests failed before the node stopped"
    stopped_at = time.monotonic()
    r = c.node_cmd("stop", victim)
    assert r.returncode == 0, r

    def unreachable() -> bool:
        ready, taints = node_status(c, victim)
        return ready["status"] == "Unknown" and ready["message"] == "Kubelet stopped posting node status." and \
            {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"} in \
            [{"key": t["key"], "effect": t["effect"]} for t in taints]
    wait_for(unreachable, 120, f"{victim} Ready=Unknown and tainted unreachable:NoExecute")

    def replaced() -> bool:
        pods = ready_pods(c, "app=web")
        return len(pods) == 6 and all(p["spec"]["nodeName"] != victim for p in pods)
    wait_for(replaced, 180, "6 ready replicas, none on the stopped node")
    replaced_at = time.monotonic()
    after = len(loop.results)
    wait_for(lambda: len(loop.results) >= after + 30, 60, "30 more requests")
    loop.done.set()
    loop.join(5)
    failed = loop.failures()
    window = (max(failed) - min(failed)) if failed else 0.0
    print(f"\nnode stop: replacements ready after {replaced_at - stopped_at:.1f} s; "
          f"{len(failed)} of {len(loop.results)} requests failed, within a window of {window:.1f} s")
    assert not loop.failures(since=replaced_at), "requests failed after the replacements were ready"
    evicted = {e["involvedObject"]["name"] for e in c.kubectl_json("get", "events")["items"]
               if e["reason"] == "TaintManagerEviction"}
    assert evicted == old, "only the stopped node's pods are evicted (live nodes never look silent)"

    r = c.node_cmd("start", victim)
    assert r.returncode == 0, r
    wait_for(lambda: victim in internal_ips(c) and not node_status(c, victim)[1], 120,
             f"{victim} Ready again, untainted")
    wait_for(lambda: not old & {p["metadata"]["name"] for p in c.kubectl_json("get", "pods")["items"]}, 120,
             "the old pods deleted by the node that came back")
    assert nginx_masters_on(host) == 0, "an old pod runs again on the node that came back"
    c.kubectl("run", "newcomer", "--image=busybox:1.28", "--restart=Never",
              f"--overrides={{\"spec\":{{\"nodeSelector\":{{\"kubernetes.io/hostname\":\"{victim}\"}}}}}}",
              "--", "sleep", "3600")
    c.kubectl("wait", "--for=condition=Ready", "pod/newcomer", "--timeout=120s", timeout=130)
    assert c.kubectl_json("get", "pod", "newcomer")["spec"]["nodeName"] == victim
