"""Pod start benchmark at the kubelet level: prints numbers, asserts nothing.

Starts a private docker-registry (test images, cached build), a `k8py server` with its
embedded node agent (isolated dirs, cgroup parent, bridge and pod CIDR), then:
- creates --n busybox pods bound to the node at once (one `kubectl apply`, which POSTs
  them one after another) and measures, as seen by one `kubectl get pods --watch`, the
  time from the apply's start to phase Running and to Ready, and from each pod's own POST
  (klog timestamps of `kubectl -v=6`) to Running (p50/p99), and the wall time until all
  are Ready;
- deletes them all and measures the time until they are gone (graceful deletion).
Runtime-level numbers are in bench/pods.py.

    sudo .venv/bin/python bench/agent_pods.py [--n 20]
Needs root, runc, docker-registry, debootstrap, kubectl. Everything is removed at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from benchcluster import REPO, free_port, json_stream, load, pct


def follow(watch: subprocess.Popen[str], t0: float, running: dict[str, float], ready: dict[str, float]) -> None:
    """Record when each b* pod is first seen Running / Ready in `kubectl get pods --watch -o json`."""
    assert watch.stdout is not None
    for p in json_stream(watch.stdout):
        n = p["metadata"]["name"]
        if not n.startswith("b"):
            continue
        st = p.get("status") or {}
        now = time.monotonic() - t0
        if st.get("phase") == "Running":
            running.setdefault(n, now)
        if any(c["type"] == "Ready" and c["status"] == "True" for c in st.get("conditions") or []):
            ready.setdefault(n, now)


def klog_time(line: str, near: float) -> float:
    """Wall time of a klog line (`I1127 09:40:01.123456 ...`, local time = UTC here), on the day of `near`."""
    hms = line.split()[1]
    h, m, sec = hms.split(":")
    day = near - near % 86400
    t = day + int(h) * 3600 + int(m) * 60 + float(sec)
    return t - 86400 if t - near > 43200 else t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--profile", default="", help="write a cProfile of the server process to this file")
    ap.add_argument("--server-log", default="", help="write the server's log (K8PY_LOG=DEBUG) to this file")
    args = ap.parse_args()
    registry = load("registry")
    rdata = Path(tempfile.mkdtemp(prefix="k8py-bench-registry-", dir="/var/tmp"))
    work = Path(tempfile.mkdtemp(prefix="k8py-bench-agent-"))
    addr = registry.start(rdata, free_port())
    ident = uuid.uuid4().hex[:6]
    proc = None
    try:
        subprocess.run([sys.executable, str(REPO / "scripts/images/build.py"), "--push", addr], check=True,
                       capture_output=True)
        (work / "registries.yaml").write_text(json.dumps({"mirrors": {"docker.io": {"endpoint": [f"http://{addr}"]}},
                                                          "disable_default_endpoint": True}))
        env = dict(os.environ, K8PY_AGENT_ROOT=str(work / "agent"), K8PY_AGENT_STATE=f"/run/k8py-bench-{ident}",
                   K8PY_AGENT_ID=ident, K8PY_AGENT_POD_CIDR="10.251.7.0/24", K8PY_AGENT_CLUSTER_CIDR="10.251.7.0/24",
                   K8PY_AGENT_NODE_NAME=f"bench-{ident}", K8PY_REGISTRIES=str(work / "registries.yaml"))
        t = time.monotonic()
        prof = ["-m", "cProfile", "-o", args.profile] if args.profile else []
        if args.server_log:
            env["K8PY_LOG"] = "DEBUG"
        err = open(args.server_log, "wb") if args.server_log else subprocess.DEVNULL
        proc = subprocess.Popen([sys.executable, *prof, "-m", "k8py.cli.main", "server",
                                 "--data-dir", str(work / "data"), "--port", "0"],
                                stdout=subprocess.PIPE, stderr=err, env=env,
                                start_new_session=True)
        assert proc.stdout is not None
        proc.stdout.readline()
        kenv = dict(os.environ, KUBECONFIG=str(work / "data" / "kubeconfig"), HOME=str(work))

        def kubectl(*a: str, input: str | None = None) -> str:
            return subprocess.run(["kubectl", *a], input=input, capture_output=True, text=True, env=kenv,
                                  check=True).stdout

        while f"bench-{ident}" not in subprocess.run(["kubectl", "get", "nodes"], capture_output=True, text=True,
                                                      env=kenv).stdout:
            time.sleep(0.1)
        print(f"{'server + agent ready':<34} {time.monotonic() - t:7.2f} s")
        kubectl("run", "warm", "--image=busybox", "--restart=Never", "--overrides",
                json.dumps({"spec": {"nodeName": f"bench-{ident}"}}), "--", "true")
        pods = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"b{i}"},
                 "spec": {"nodeName": f"bench-{ident}", "terminationGracePeriodSeconds": 1,
                          "containers": [{"name": "c", "image": "busybox", "imagePullPolicy": "IfNotPresent",
                                          "command": ["sleep", "3600"]}]}} for i in range(args.n)]
        running: dict[str, float] = {}
        ready: dict[str, float] = {}
        t0 = time.monotonic()
        # One watch (not a kubectl per poll, which loads the 2 cores it measures), read while apply runs.
        watch = subprocess.Popen(["kubectl", "get", "pods", "--watch", "-o", "json"], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True, env=kenv)
        threading.Thread(target=follow, args=(watch, t0, running, ready), daemon=True).start()
        wall0 = time.time()
        # -v=6 logs each request with a klog timestamp: the POSTs (in input order) give each pod's create time.
        applied = subprocess.run(["kubectl", "-v=6", "apply", "-f", "-"], capture_output=True, text=True, env=kenv,
                                 check=True, input="\n".join(json.dumps(p) for p in pods))
        posted = [klog_time(line, wall0) - wall0 - int(line.rsplit(" in ", 1)[1].split()[0]) / 1000
                  for line in applied.stderr.splitlines() if " POST " in line and "/pods?" in line]
        created = dict(zip((p["metadata"]["name"] for p in pods), posted)) if len(posted) == args.n else {}
        print(f"{f'kubectl apply of {args.n} pods':<34} {time.monotonic() - t0:7.2f} s")
        while len(ready) < args.n:
            if watch.poll() is not None:
                raise SystemExit("kubectl get --watch ended")
            time.sleep(0.05)
        watch.kill()
        watch.wait()
        for name, xs in (("create -> Running (seen)", list(running.values())),
                         ("create -> Ready (seen)", list(ready.values()))):
            print(f"{name:<34} p50 {pct(xs, 50) * 1000:7.0f} ms   p99 {pct(xs, 99) * 1000:7.0f} ms")
        if created:  # from each pod's own POST (what Kubernetes' pod startup SLO measures)
            xs = [running[n] - created[n] for n in running]
            print(f"{'POST -> Running (seen)':<34} p50 {pct(xs, 50) * 1000:7.0f} ms   p99 {pct(xs, 99) * 1000:7.0f} ms")
        print(f"{f'{args.n} pods all Ready':<34} {time.monotonic() - t0:7.2f} s")
        t = time.monotonic()
        kubectl("delete", "pods", "--all", "--wait=true")
        print(f"{f'delete {args.n + 1} pods (graceful)':<34} {time.monotonic() - t:7.2f} s")
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
        subprocess.run(["ip", "link", "del", f"k8pyb{ident}"], capture_output=True)
        code = (f"import asyncio; from k8py.runtime.runc import RuncRuntime; "
                f"asyncio.run(RuncRuntime('/run/k8py-bench-{ident}', {str(work / 'agent')!r}, "
                f"cgroup_parent='k8py-{ident}', netns_prefix='k8py-{ident}-').cleanup())")
        subprocess.run([sys.executable, "-c", code], capture_output=True)
        shutil.rmtree(f"/run/k8py-bench-{ident}", ignore_errors=True)
        registry.stop(rdata)
        shutil.rmtree(rdata, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
