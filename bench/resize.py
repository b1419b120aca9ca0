"""Vertical scaling benchmark: in place (pods/resize) against a Deployment rollout.
Prints numbers, asserts nothing.

Starts a `k8py server` with its embedded node agent (busybox from a private registry),
a Deployment of --n busybox pods (memory limit 64Mi), then:
- in place: one `kubectl patch pod --subresource resize` per pod, all at once (threads),
  to a 96Mi memory limit and a 200m CPU limit; per pod, the time from its PATCH to its
  container's cgroup memory limit read on the node being 96Mi, and to the pod's status
  reporting it (`containerStatuses[].resources`, seen by `kubectl get pods --watch`);
  p50/p99, and that no container was restarted;
- through the Deployment: `kubectl patch deployment` of the template's memory limit to
  128Mi; the time from that patch to each new pod Ready (p50/p99) and until all --n new
  pods are Ready and the old ones gone.

    sudo .venv/bin/python bench/resize.py [--n 30]
Needs root, runc, docker-registry, debootstrap, kubectl. Everything is removed at the end.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from benchcluster import agent_cluster, json_stream, pct

MI = 1 << 20


def deployment(n: int, mem: str) -> dict[str, Any]:
    c = {"name": "main", "image": "busybox", "command": ["sleep", "3600"],
         "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": mem}}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "rz"},
            "spec": {"replicas": n, "selector": {"matchLabels": {"app": "rz"}},
                     "template": {"metadata": {"labels": {"app": "rz"}},
                                  "spec": {"terminationGracePeriodSeconds": 0, "containers": [c]}}}}


def pods(c: Any) -> list[dict[str, Any]]:
    return list(c.kubectl_json("get", "pods", "-l", "app=rz")["items"])


def ready(p: dict[str, Any]) -> bool:
    return any(x["type"] == "Ready" and x["status"] == "True" for x in (p.get("status") or {}).get("conditions") or [])


def wait_ready(c: Any, n: int, exclude: set[str], timeout: float = 300) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ps = [p for p in pods(c) if p["metadata"]["uid"] not in exclude]
        if len(ps) == n and all(ready(p) for p in ps):
            return ps
        time.sleep(0.5)
    raise SystemExit("pods not ready in time")


def cgroup_limit(c: Any, p: dict[str, Any]) -> Path:
    from k8py.runtime import cgroups
    cid = p["status"]["containerStatuses"][0]["containerID"].removeprefix("runc://")
    return Path(cgroups.memory_dir(f"/{c.cgroup_parent}/{p['metadata']['uid']}/{cid}"), "memory.limit_in_bytes")


def watch_status(c: Any, t0: float, seen: dict[str, float], stop: threading.Event) -> subprocess.Popen[str]:
    w = subprocess.Popen(["kubectl", "get", "pods", "-l", "app=rz", "--watch", "-o", "json"], env=c.env(),
                         stdout=subprocess.PIPE, text=True)

    def follow() -> None:
        assert w.stdout is not None
        for p in json_stream(w.stdout):
            cs = ((p.get("status") or {}).get("containerStatuses") or [{}])[0]
            if ((cs.get("resources") or {}).get("limits") or {}).get("memory") == "96Mi":
                seen.setdefault(p["metadata"]["name"], time.monotonic() - t0)
    threading.Thread(target=follow, daemon=True).start()
    return w


def in_place(c: Any, ps: list[dict[str, Any]]) -> None:
    t0 = time.monotonic()
    sent: dict[str, float] = {}
    status_seen: dict[str, float] = {}
    cgroup_seen: dict[str, float] = {}
    stop = threading.Event()
    w = watch_status(c, t0, status_seen, stop)
    time.sleep(1.0)  # the watch's initial list is in
    files = {p["metadata"]["name"]: cgroup_limit(c, p) for p in ps}
    body = json.dumps({"spec": {"containers": [{"name": "main", "resources": {"limits": {
        "memory": "96Mi", "cpu": "200m"}}}]}})

    def patch(name: str) -> None:
        sent[name] = time.monotonic() - t0
        subprocess.run(["kubectl", "patch", "pod", name, "--subresource", "resize", "-p", body], env=c.env(),
                       capture_output=True, check=True)
    threads = [threading.Thread(target=patch, args=(n,)) for n in files]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120
    while len(cgroup_seen) < len(files) and time.monotonic() < deadline:
        for n, f in files.items():
            if n not in cgroup_seen and int(f.read_text()) == 96 * MI:
                cgroup_seen[n] = time.monotonic() - t0
        time.sleep(0.005)
    for t in threads:
        t.join()
    while len(status_seen) < len(files) and time.monotonic() < deadline:
        time.sleep(0.05)
    w.terminate()
    w.wait()
    to_cg = [cgroup_seen[n] - sent[n] for n in cgroup_seen]
    to_st = [status_seen[n] - sent[n] for n in status_seen if n in sent]
    restarts = sum(p["status"]["containerStatuses"][0]["restartCount"] for p in pods(c))
    print(f"in place, {len(files)} pods at once: PATCH -> cgroup changed p50 {pct(to_cg, 50):.3f}s "
          f"p99 {pct(to_cg, 99):.3f}s ({len(to_cg)}/{len(files)}); PATCH -> status reports it "
          f"p50 {pct(to_st, 50):.3f}s p99 {pct(to_st, 99):.3f}s ({len(to_st)}/{len(files)}); "
          f"all done {max(list(status_seen.values()) + list(cgroup_seen.values())):.2f}s; restarts {restarts}")


def through_deployment(c: Any, n: int, old: set[str]) -> None:
    t0 = time.monotonic()
    c.kubectl("patch", "deployment", "rz", "-p", json.dumps({"spec": {"template": {"spec": {"containers": [
        {"name": "main", "resources": {"limits": {"memory": "128Mi"}}}]}}}}))
    first_ready: dict[str, float] = {}
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        ps = pods(c)
        for p in ps:
            if p["metadata"]["uid"] not in old and ready(p):
                first_ready.setdefault(p["metadata"]["uid"], time.monotonic() - t0)
        if len(first_ready) >= n and not any(p["metadata"]["uid"] in old for p in ps):
            break
        time.sleep(0.2)
    xs = list(first_ready.values())
    print(f"through the Deployment ({n} pods recreated): patch -> new pod Ready p50 {pct(xs, 50):.2f}s "
          f"p99 {pct(xs, 99):.2f}s; all new Ready and old gone {time.monotonic() - t0:.2f}s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=30)
    a = ap.parse_args()
    with agent_cluster(["busybox"], prefix="k8py-bench-resize-") as c:
        import yaml
        c.kubectl("apply", "-f", "-", input=yaml.safe_dump(deployment(a.n, "64Mi")))
        ps = wait_ready(c, a.n, set())
        in_place(c, ps)
        through_deployment(c, a.n, {p["metadata"]["uid"] for p in ps})
        c.kubectl("delete", "deployment", "rz", "--wait=true", "--timeout=120s", check=False, timeout=150)
        c.kubectl("delete", "pods", "--all", "--wait=true", "--timeout=120s", check=False, timeout=150)


if __name__ == "__main__":
    main()
