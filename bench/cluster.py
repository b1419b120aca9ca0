"""Node hosts benchmark (`k8py server --nodes`): prints numbers, asserts nothing.

Starts a private docker-registry (busybox, cached build) and `k8py server --nodes 1`
(the e2e NodesCluster: its own node network, pod and service ranges), then adds node
hosts one after another with `k8py node add` up to --n nodes and measures, as seen by one
`kubectl get nodes --watch`, the time from each `node add` to the node Ready; then the
RSS of every node's agent process, and the time a busybox pod bound to the newest node
takes from create to Running (its image pulled through the registry forward). Then a
node that dies: a 6-replica nginx Deployment behind a NodePort, `k8py node stop` of the
node holding the most replicas while a client loop requests the NodePort on 127.0.0.1;
printed: the time from the stop to the replicas Ready again on the other nodes, and the
failed requests and their window (the server runs with the lab flags
`--node-monitor-grace-period G --pod-eviction-timeout 0`, G = --grace, default 10). Last, on
a fresh 2-node cluster, the pod-to-pod throughput (busybox wget of a big file from busybox
httpd) on one node and across the two, with the cluster's --flannel-backend.

    sudo .venv/bin/python bench/cluster.py [--n 10] [--grace 10] [--flannel-backend host-gw|vxlan]
Needs root, runc, nsenter, docker-registry, debootstrap, kubectl. Everything is removed at the end.
"""
from __future__ import annotations

import argparse
import json
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


def node_stop(c: Any) -> None:
    from test_multinode import NGINX, SERVICE, apply, ready_pods  # type: ignore[import-not-found]
    from test_node_death import ClientLoop  # type: ignore[import-not-found]

    apply(c, NGINX, SERVICE)
    while len(ready_pods(c, "app=web")) < 6:
        time.sleep(0.5)
    counts: dict[str, int] = {}
    for p in ready_pods(c, "app=web"):
        counts[p["spec"]["nodeName"]] = counts.get(p["spec"]["nodeName"], 0) + 1
    victim = max(counts, key=lambda n: counts[n])
    port = c.kubectl_json("get", "svc", "web")["spec"]["ports"][0]["nodePort"]
    loop = ClientLoop(f"http://127.0.0.1:{port}/")
    loop.start()
    time.sleep(2)
    t0 = time.monotonic()
    c.node_cmd("stop", victim)
    while True:
        pods = ready_pods(c, "app=web")
        if len(pods) == 6 and all(p["spec"]["nodeName"] != victim for p in pods):
            break
        time.sleep(0.2)
    took = time.monotonic() - t0
    time.sleep(3)
    loop.done.set()
    loop.join(5)
    failed = loop.failures()
    window = max(failed) - min(failed) if failed else 0.0
    print(f"node stop of {victim} ({counts[victim]} of 6 replicas): replacements Ready {took:.1f} s after the stop; "
          f"{len(failed)} of {len(loop.results)} requests through the NodePort failed, within {window:.1f} s "
          f"(at {', '.join(f'{t - t0:.1f}' for t in failed)} s after the stop)")


SERVE = ("mkdir -p /tmp/www && dd if=/dev/zero of=/tmp/www/big bs=1M count={mb} 2>/dev/null && "
         "httpd -f -p 8080 -h /tmp/www")
FETCH = ("read s _ </proc/uptime; for i in 1 2 3 4 5; do wget -q -O /dev/null http://{ip}:8080/big || exit 1; done; "
         "read e _ </proc/uptime; echo \"$s $e\"")  # 5 fetches; /proc/uptime counts in 1/100 s


def bb_pod(name: str, node: str, script: str) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                       "spec": {"nodeName": node, "terminationGracePeriodSeconds": 0,
                                "containers": [{"name": "bb", "image": "busybox:1.28",
                                                "command": ["sh", "-c", script]}]}})


def throughput(c: Any, mb: int = 300) -> None:
    """MB/s of a wget of a `mb` MB file from a busybox httpd on node-1, from a pod on node-1 and
    from a pod on node-2 (best of 3 each)."""
    pods = {"tp-srv": ("node-1", SERVE.format(mb=mb)), "tp-same": ("node-1", "sleep 3600"),
            "tp-far": ("node-2", "sleep 3600")}
    for name, (node, script) in pods.items():
        c.kubectl("apply", "-f", "-", input=bb_pod(name, node, script))
    for name in pods:
        c.kubectl("wait", "--for=condition=Ready", f"pod/{name}", "--timeout=120s", timeout=130)
    ip = c.kubectl("get", "pod", "tp-srv", "-o", "jsonpath={.status.podIP}").stdout.strip()
    for _ in range(120):  # the file is written before httpd listens
        probe = ("exec", "tp-same", "--", "wget", "-q", "--spider", f"http://{ip}:8080/big")
        if c.kubectl(*probe, check=False).returncode == 0:
            break
        time.sleep(1)
    rates = {}
    for name in ("tp-same", "tp-far"):
        took = []
        for _ in range(3):
            s, e = c.kubectl("exec", name, "--", "sh", "-c", FETCH.format(ip=ip), timeout=300).stdout.split()
            took.append(max(0.01, float(e) - float(s)))
        rates[name] = 5 * mb / min(took)
    print(f"pod-to-pod wget of {mb} MB ({c.flannel_backend}): same node {rates['tp-same']:.0f} MB/s, "
          f"across nodes {rates['tp-far']:.0f} MB/s ({100 * rates['tp-far'] / rates['tp-same']:.0f}% of same node)")
    c.kubectl("delete", "pod", *pods, "--wait=true", "--grace-period=0", timeout=60)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10, help="node hosts in the end (default 10)")
    ap.add_argument("--grace", type=float, default=10.0, help="--node-monitor-grace-period (default 10)")
    ap.add_argument("--flannel-backend", choices=("host-gw", "vxlan"), default="host-gw",
                    help="pod routes between the nodes (default host-gw)")
    ap.add_argument("--throughput-only", action="store_true", help="only the pod-to-pod throughput")
    args = ap.parse_args()
    n = args.n
    sys.path.insert(0, str(REPO / "tests" / "e2e"))
    from test_multinode import NodesCluster  # type: ignore[import-not-found]

    registry = load("registry")
    data = Path(tempfile.mkdtemp(prefix="k8py-bench-registry-", dir="/var/tmp"))
    tmp = Path(tempfile.mkdtemp(prefix="k8py-bench-nodes-"))
    try:
        addr = registry.start(data, free_port())
        subprocess.run([sys.executable, str(REPO / "scripts/images/build.py"), "--push", addr, "busybox", "nginx"],
                       check=True, capture_output=True)
        regs = tmp / "registries.yaml"
        regs.write_text(f'mirrors:\n  "docker.io":\n    endpoint: ["http://{addr}"]\ndisable_default_endpoint: true\n')
        for nodes in ([] if args.throughput_only else [1]) + [2]:  # then a fresh --nodes 2 for throughput
            (tmp / str(nodes)).mkdir()
            c = NodesCluster(tmp / str(nodes), regs, n=nodes)
            c.extra_args = (*c.extra_args, "--flannel-backend", args.flannel_backend)
            if nodes == 1:
                c.extra_args = (*c.extra_args, "--node-monitor-grace-period", str(args.grace),
                                "--pod-eviction-timeout", "0")
            c.flannel_backend = args.flannel_backend
            c.start()
            try:
                if nodes == 1:
                    measure(c, n)
                    pod_on(c, f"node-{n}")
                    node_stop(c)
                else:
                    throughput(c)
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
