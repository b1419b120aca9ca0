"""Ingress benchmark: requests/s through the Ingress (k8py's nginx) vs straight to the pod.
Prints numbers, asserts nothing.

A k8py cluster with its node agent, one nginx pod behind a Service and an Ingress for
`bench.ingress.test`; `wrk` (Debian's, installed if missing) against the pod IP and
against the ingress address (with the Host header), requests/s and p99 side by side
(anchor: ingress-nginx adds one proxy hop, so expect well under the direct figure).

    sudo .venv/bin/python bench/ingress.py
Needs root, runc, docker-registry, nginx. Everything is removed at the end.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from benchcluster import agent_cluster  # noqa: E402

HOST = "bench.ingress.test"
INGRESS = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web"},
           "spec": {"rules": [{"host": HOST, "http": {"paths": [
               {"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}


def wrk(url: str, host: str | None = None) -> tuple[float, float]:
    hdr = ["-H", f"Host: {host}"] if host else []
    out = subprocess.run(["wrk", "-t2", "-c32", "-d5s", "--latency", *hdr, url], capture_output=True,
                         text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)] if m else float("nan")
    return rps, p99


def main() -> None:
    if shutil.which("wrk") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True)
    with agent_cluster(["nginx"], prefix="k8py-bench-ingress-") as c:
        c.kubectl("create", "deployment", "web", "--image=nginx:1.14.2", "--port=80")
        c.kubectl("expose", "deployment", "web", "--port=80")
        c.kubectl("apply", "-f", "-", input=yaml.safe_dump(INGRESS))
        c.kubectl("rollout", "status", "deployment/web", "--timeout=120s", timeout=130)
        pods = json.loads(c.kubectl("get", "pods", "-l", "app=web", "-o", "json").stdout)
        pod_ip = pods["items"][0]["status"]["podIP"]
        addr = str(ipaddress.ip_network(c.lb_pool).broadcast_address - 1)
        deadline = time.time() + 60
        while time.time() < deadline and subprocess.run(
                ["curl", "-sf", "-o", "/dev/null", "-H", f"Host: {HOST}", f"http://{addr}/"]).returncode:
            time.sleep(0.2)
        print("== HTTP through the Ingress (wrk -t2 -c32 -d5s, one nginx pod)")
        d_rps, d_p99 = wrk(f"http://{pod_ip}/")
        i_rps, i_p99 = wrk(f"http://{addr}/", HOST)
        print(f"  pod IP     {d_rps:9.0f} req/s   p99 {d_p99:6.2f} ms")
        print(f"  Ingress    {i_rps:9.0f} req/s   p99 {i_p99:6.2f} ms   ({100 * i_rps / d_rps:.1f}% of direct)")
        c.kubectl("delete", "ingress", "web", check=False)
        c.kubectl("delete", "deployment", "web", "--wait=true", check=False, timeout=60)
        c.kubectl("delete", "pods", "--all", "--wait=true", check=False, timeout=60)


if __name__ == "__main__":
    main()
