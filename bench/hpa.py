"""HPA reaction time: from the start of a CPU load to the new replica count. Prints
numbers, asserts nothing.

Starts a `k8py server` with its embedded node agent (busybox from a private registry), a
Deployment "php-apache" of one busybox pod that burns CPU (limit 200m, request 100m)
while /tmp/load exists, and an HPA at 50% CPU (1..4 replicas, the default 15 s sync
period). Per round: the load starts (`kubectl exec ... touch /tmp/load`); printed are the
times to the HPA's desiredReplicas > 1, to the Deployment's spec.replicas changing, and
to all new replicas Ready; then the load stops and the time back to 1 replica (scale-down
window 15 s through behavior) is printed too.

    sudo .venv/bin/python bench/hpa.py [--rounds 2]
Needs root, runc, docker-registry, debootstrap, kubectl. Everything is removed at the end.
"""
from __future__ import annotations

import argparse
import time
from typing import Any

from benchcluster import agent_cluster

BURN = "while true; do if [ -e /tmp/load ]; then i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; " \
       "else sleep 1; fi; done"


def objects() -> list[dict[str, Any]]:
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "php-apache"},
           "spec": {"selector": {"matchLabels": {"run": "php-apache"}},
                    "template": {"metadata": {"labels": {"run": "php-apache"}},
                                 "spec": {"terminationGracePeriodSeconds": 0, "containers": [{
                                     "name": "php-apache", "image": "busybox", "command": ["sh", "-c", BURN],
                                     "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "200m"}}}]}}}}
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "php-apache"},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "php-apache"},
                    "minReplicas": 1, "maxReplicas": 4,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                        "type": "Utilization", "averageUtilization": 50}}}],
                    "behavior": {"scaleDown": {"stabilizationWindowSeconds": 15}}}}
    return [dep, hpa]


def until(what: str, cond: Any, timeout: float = 300) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return time.monotonic()
        time.sleep(0.25)
    raise SystemExit(f"timed out: {what}")


def active(c: Any) -> bool:
    conds = (c.kubectl_json("get", "hpa", "php-apache").get("status") or {}).get("conditions") or []
    return any(x["type"] == "ScalingActive" and x["status"] == "True" for x in conds)


def one_round(c: Any, i: int) -> None:
    def hpa_status() -> dict[str, Any]:
        return c.kubectl_json("get", "hpa", "php-apache").get("status") or {}

    def dep() -> dict[str, Any]:
        return c.kubectl_json("get", "deployment", "php-apache")  # type: ignore[no-any-return]

    first = c.kubectl("get", "pods", "-l", "run=php-apache", "-o", "jsonpath={.items[0].metadata.name}").stdout
    t0 = time.monotonic()
    c.kubectl("exec", first, "--", "touch", "/tmp/load")
    t_desired = until("desiredReplicas > 1", lambda: hpa_status().get("desiredReplicas", 0) > 1)
    t_spec = until("spec.replicas > 1", lambda: dep()["spec"]["replicas"] > 1)
    n = dep()["spec"]["replicas"]
    t_ready = until("new replicas ready", lambda: (dep()["status"].get("readyReplicas") or 0) >= n)
    print(f"round {i}: load -> HPA desiredReplicas {hpa_status().get('desiredReplicas')}: {t_desired - t0:.1f} s; "
          f"-> Deployment replicas {n}: {t_spec - t0:.1f} s; -> all {n} Ready: {t_ready - t0:.1f} s")
    for name in c.kubectl("get", "pods", "-l", "run=php-apache", "-o",
                          "jsonpath={.items[*].metadata.name}").stdout.split():
        c.kubectl("exec", name, "--", "rm", "-f", "/tmp/load", check=False)
    t1 = time.monotonic()
    t_down = until("back to 1", lambda: dep()["spec"]["replicas"] == 1)
    print(f"round {i}: load stopped -> Deployment replicas 1: {t_down - t1:.1f} s (scale-down window 15 s)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    with agent_cluster(["busybox"], prefix="k8py-bench-hpa-") as c:
        import yaml
        c.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects()))
        until("the HPA active", lambda: active(c))
        for i in range(1, a.rounds + 1):
            one_round(c, i)


if __name__ == "__main__":
    main()
