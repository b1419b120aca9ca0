"""Node hosts benchmark (`k8py server --nodes`): prints numbers, asserts nothing.

Starts a private docker-registry (busybox, cached build) and `k8py server --nodes 1`
(the e2e NodesCluster: its own node network, pod and service ranges), then adds node
hosts one after another with `k8py node add` up to --n nodes and measures, as seen by one
`kubectl get nodes --watch`, the time from each `node add` to the node Ready; then the
RSS of every node's agent process, and the time a busybox pod bound to the newest node
takes from create to Running (its image pulled through the registry forward).

    sudo .venv/bin/python bench/cluster.py [--n 10]
Needs root, runc, nsenter, docker-registry, debootstrap, kubectl. Everything is removed at the end.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchcluster import REPO, free_port, json_stream, load, pct


def follow(watch: subprocess.Popen[str], ready: dict[str, float]) -> None:
    assert watch.stdout is not None
    for n in json_stream(watch.stdout):
        conds = {c["type"]: c["status"] for c in n.get("status", {}).get("conditions") or []}
        if conds.get("Ready") == "True":
            ready.setdefault(n["metadata"]["name"], time.monotonic())


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(c: Any, n: int) -> None:
    from k8py.nodehost import NodeHosts

    ready: dict[str, float] = {}
    watch = subprocess.Popen([c.kubectl_bin, "get", "nodes", "--watch", "-o", "json"],
                             stdout=subprocess.PIPE, text=True, env=c.env())
    threading.Thread(target=follow, args=(watch, ready), daemon=True).start()
    took = []
    try:
        for i in range(2, n + 1):
            name, t0 = f"node-{i}", time.monotonic()
            subprocess.run([sys.executable, "-m", "k8py.cli.main", "node", "add", name, "--data-dir",
                            str(c.data_dir)], check=True, capture_output=True)
            while name not in ready:
                time.sleep(0.01)
            took.append(ready[name] - t0)
            print(f"{name}: Ready {took[-1]:.2f} s after `k8py node add`", flush=True)
    finally:
        watch.terminate()
    print(f"node add -> Ready over {len(took)} nodes: p50 {pct(took, 50):.2f} s, max {max(took):.2f} s")
    pids = {name: int(r.get("pid") or 0) for name, r in NodeHosts.of(c.data_dir).records().items()}
    rss = {name: rss_mib(pid) for name, pid in pids.items()}
    print(f"agent RSS over {len(rss)} nodes: p50 {pct(list(rss.values()), 50):.1f} MiB, "
          f"max {max(rss.values()):.1f} MiB")


def pod_on(c: Any, node: str) -> None:
    pod = (f'{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"bench"}},"spec":{{"nodeName":"{node}",'
           '"containers":[{"name":"bb","image":"busybox:1.28","command":["sleep","3600"]}]}}')
    t0 = time.monotonic()
    c.kubectl("apply", "-f", "-", input=pod)
    c.kubectl("wait", "--for=jsonpath={.status.phase}=Running", "pod/bench", "--timeout=120s",
              timeout=130)
    print(f"busybox pod on {node} (first pull on that node): create -> Running {time.monotonic() - t0:.2f} s")
    c.kubectl("delete", "pod", "bench", "--wait=true", "--grace-period=0", timeout=60)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10, help="node hosts in the end (default 10)")
    n = ap.parse_args().n
    sys.path.insert(0, str(REPO / "tests" / "e2e"))
    from test_multinode import NodesCluster  # type: ignore[import-not-found]

    registry = load("registry")
    data = Path(tempfile.mkdtemp(prefix="k8py-bench-registry-", dir="/var/tmp"))
    tmp = Path(tempfile.mkdtemp(prefix="k8py-bench-nodes-"))
    try:
        addr = registry.start(data, free_port())
        subprocess.run([sys.executable, str(REPO / "scripts/images/build.py"), "--push", addr, "busybox"], check=True,
                       capture_output=True)
        regs = tmp / "registries.yaml"
        regs.write_text(f'mirrors:\n  "docker.io":\n    endpoint: ["http://{addr}"]\ndisable_default_endpoint: true\n')
        c = NodesCluster(tmp, regs, n=1)
        c.start()
        try:
            measure(c, n)
            pod_on(c, f"node-{n}")
        finally:
            c.stop()
            c.node_cmd("rm", "--all")
            left = c.leftovers()
            if left:
                print(f"left behind: {left}")
    finally:
        registry.stop(data)
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
