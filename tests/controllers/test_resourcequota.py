"""ResourceQuota controller: status.used follows the namespace's objects."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from k8py.controllers.resourcequota import ResourceQuotaController, pod_amounts

from ctrl_helpers import Cluster

Obj = dict[str, Any]


def pod(name: str, cpu: str | None = None, memory: str | None = None, limit_cpu: str | None = None) -> Obj:
    res: Obj = {}
    if cpu or memory:
        res["requests"] = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    if limit_cpu:
        res["limits"] = {"cpu": limit_cpu}
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "nginx", "resources": res}]}}


async def used(c: Cluster, want: dict[str, str]) -> Obj | None:
    q = await c.client.get("resourcequotas", "compute", "default")
    return q if (q.get("status") or {}).get("used") == want else None


async def test_used_follows_pods_services_and_claims(cluster: Cluster) -> None:
    c = cluster
    await c.start(ResourceQuotaController(c.client, c.factory, c.clock))
    await c.client.create("resourcequotas", {"metadata": {"name": "compute", "namespace": "default"}, "spec": {
        "hard": {"pods": "10", "requests.cpu": "2", "requests.memory": "1Gi", "limits.cpu": "4",
                 "services": "5", "persistentvolumeclaims": "3", "requests.storage": "10Gi",
                 "count/deployments.apps": "2"}}})
    await c.client.create("pods", pod("a", cpu="250m", memory="128Mi", limit_cpu="500m"))
    await c.client.create("pods", pod("b", cpu="500m", memory="64Mi"))
    await c.client.create("services", {"metadata": {"name": "s", "namespace": "default"},
                                       "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}})
    await c.client.create("persistentvolumeclaims", {"metadata": {"name": "d", "namespace": "default"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}}})
    want = {"pods": "2", "requests.cpu": "750m", "requests.memory": "192Mi", "limits.cpu": "500m",
            "services": "1", "persistentvolumeclaims": "1", "requests.storage": "2Gi",
            "count/deployments.apps": "0"}
    # services: the cluster's own `kubernetes` service lives in default too
    svc_count = len(await c.list("services"))
    want["services"] = str(svc_count)
    q = await c.until(lambda: used(c, want), "usage")
    assert q["status"]["hard"]["pods"] == "10"
    await c.client.delete("pods", "a", "default")
    want.update({"pods": "1", "requests.cpu": "500m", "requests.memory": "64Mi", "limits.cpu": "0"})
    await c.until(lambda: used(c, want), "usage after a pod went")


@pytest.mark.parametrize("inits, expected_cpu", [
    ([{"name": "i", "resources": {"requests": {"cpu": "3"}}}], "3"),  # an init container: a maximum
    ([{"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "2"}}}], "3"),  # a sidecar: summed
    ([{"name": "i", "resources": {"requests": {"cpu": "3"}}},
      {"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "2"}}}], "3"),
    ([{"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "2"}}},
      {"name": "i", "resources": {"requests": {"cpu": "3"}}}], "5"),  # i runs beside s
])
def test_pod_requests_with_sidecars_as_kubernetes(inits: list[dict], expected_cpu: str) -> None:
    p = {"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}], "initContainers": inits}}
    assert pod_amounts(p, "requests")["cpu"] == Fraction(expected_cpu)
