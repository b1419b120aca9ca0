"""Pod start benchmark at the kubelet level: prints numbers, asserts nothing.

Starts a private docker-registry (test images, cached build), a `k8py server` with its
embedded node agent (isolated dirs, cgroup parent, bridge and pod CIDR), then:
- creates --n busybox pods bound to the node at once (one `kubectl apply`, which POSTs
  them one after another) and measures, as seen by one `kubectl get pods --watch`, the
  time from the apply's start to phase Running and to Ready, and from each pod's own POST
  (klog timestamps of `kubectl -v=6`) to Running (p50/p99), and the wall time until all
  are Ready;
- where the time from the start of `kubectl apply` to the last pod Running goes: kubectl
  starting, its discovery and OpenAPI requests, the GET + POST of each pod, then the
  node agent (sandbox, containers) until the last pod is seen Running;
- beside it, the same --n containers (busybox `sleep 3600`, the image the agent pulled)
  with bare `runc run -d` at once, one bundle each on a shared read-only rootfs (no
  network, no overlay, no shim): launch -> running p50/p99;
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

from k8py.runtime.images import ImageStore

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


def bare_runc(images: Path, n: int, ident: str, work: Path) -> list[float]:
    """Seconds from launch to return of `runc run -d` for n busybox containers started at once."""
    store = ImageStore(images)
    layers = store.layer_dirs(store.require("busybox"))
    rootfs = work / "bare-rootfs"
    rootfs.mkdir()
    if len(layers) == 1:
        subprocess.run(["mount", "--bind", "-o", "ro", str(layers[0]), str(rootfs)], check=True)
    else:
        lower = ":".join(str(d) for d in reversed(layers))
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower}", str(rootfs)], check=True)
    root, parent = f"/run/k8py-bare-{ident}", f"k8py-bare-{ident}"
    try:
        for i in range(n):
            b = work / f"bare-{i}"
            b.mkdir()
            subprocess.run(["runc", "spec", "--bundle", str(b)], check=True)
            spec = json.loads((b / "config.json").read_text())
            spec["process"].update(terminal=False, args=["sleep", "3600"])
            spec["root"] = {"path": str(rootfs), "readonly": True}
            spec["linux"]["cgroupsPath"] = f"/{parent}/c{i}"
            (b / "config.json").write_text(json.dumps(spec))
        t0 = time.monotonic()
        procs = [subprocess.Popen(["runc", "--root", root, "run", "-d", "--bundle", str(work / f"bare-{i}"), f"c{i}"],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for i in range(n)]
        done = [0.0] * n
        while not all(done):
            for i, p in enumerate(procs):
                if not done[i] and p.poll() is not None:
                    done[i] = time.monotonic() - t0
            time.sleep(0.002)
        return done
    finally:
        for i in range(n):
            subprocess.run(["runc", "--root", root, "delete", "-f", f"c{i}"], capture_output=True)
        subprocess.run(["umount", str(rootfs)], capture_output=True)
        subprocess.run(["find", f"/sys/fs/cgroup/{parent}", "-depth", "-type", "d", "-delete"], capture_output=True)
        for ctl in Path("/sys/fs/cgroup").iterdir():
            subprocess.run(["find", str(ctl / parent), "-depth", "-type", "d", "-delete"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def apply_breakdown(stderr: str, wall0: float, running: dict[str, float]) -> None:
    """Where the time from the start of `kubectl apply` to the last pod Running went, from
    kubectl's -v=6 request lines (klog time, method, URL, duration)."""
    reqs = []
    for line in stderr.splitlines():
        if " in " not in line or " milliseconds" not in line:
            continue
        parts = line.split()
        ms = int(line.rsplit(" in ", 1)[1].split()[0]) / 1000
        end = klog_time(line, wall0) - wall0
        method = next(p for p in parts if p in ("GET", "POST", "PATCH", "PUT"))
        url = parts[parts.index(method) + 1]
        reqs.append((end - ms, end, method, url))
    if not reqs:
        return
    path = [r[3].split("?")[0].split("/", 3)[-1] for r in reqs]
    disc = [r for r, u in zip(reqs, path) if u.startswith(("api", "apis")) and "/namespaces/" not in u]
    oapi = [r for r, u in zip(reqs, path) if u.startswith("openapi")]
    gets = [r for r, u in zip(reqs, path) if "/pods" in u and r[2] == "GET"]
    posts = [r for r, u in zip(reqs, path) if "/pods" in u and r[2] == "POST"]
    first, last = reqs[0][0], reqs[-1][1]
    gaps = sum(max(0.0, b[0] - a[1]) for a, b in zip(reqs, reqs[1:]))
    print("where the time went, from the start of `kubectl apply` (s):")
    print(f"  {'kubectl starting (to its first request)':<46} {first:6.3f}")
    for name, rs in (("discovery requests", disc), ("OpenAPI requests", oapi), ("pod GETs (404)", gets),
                     ("pod POSTs", posts)):
        d = [r[1] - r[0] for r in rs]
        tail = f"   p50 {pct(d, 50) * 1000:5.0f} ms  max {max(d) * 1000:5.0f} ms" if d else ""
        print(f"  {f'{name} ({len(rs)}, summed)':<46} {sum(d):6.3f}{tail}")
    print(f"  {'kubectl between its requests (its own work)':<46} {gaps:6.3f}")
    print(f"  {'kubectl first request -> last response':<46} {last - first:6.3f}")
    if running:
        print(f"  {'last POST -> last pod Running':<46} {max(running.values()) - last:6.3f}")


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
        # The same apply into a namespace of pods bound to no node: kubectl and the API server
        # alone, without the node agent's work in the server's event loop.
        kubectl("create", "namespace", "idle")
        t = time.monotonic()
        idle = [{**p, "metadata": {**p["metadata"], "namespace": "idle"},  # type: ignore[dict-item]
                 "spec": {**p["spec"], "nodeName": "absent"}} for p in pods]  # type: ignore[dict-item]
        kubectl("apply", "-f", "-", input="\n".join(json.dumps(p) for p in idle))
        print(f"{f'kubectl apply of {args.n} pods, no node':<34} {time.monotonic() - t:7.2f} s")
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
        stderr = applied.stderr
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
        print(f"{f'start of kubectl apply -> {args.n} Running':<34} {max(running.values()):7.2f} s")
        apply_breakdown(stderr, wall0, running)
        bare = bare_runc(work / "agent" / "images", args.n, ident, work)
        print(f"{f'bare runc run -d, {args.n} at once':<34} p50 {pct(bare, 50) * 1000:7.0f} ms   "
              f"p99 {pct(bare, 99) * 1000:7.0f} ms")
        if created:
            print(f"{'k8py POST -> Running p99 / bare runc p99':<34} {pct(xs, 99) / pct(bare, 99):7.2f} x")
        t = time.monotonic()
        kubectl("delete", "pods", "--all", "--wait=true")
        kubectl("delete", "namespace", "idle", "--wait=false")
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
