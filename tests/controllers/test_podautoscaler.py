"""HPA: replicas kept within [min, max]; without metrics ScalingActive False; with
metrics.k8s.io (the API server's, fed by scripted kubelets) it scales on CPU utilization,
reports currentMetrics and Kubernetes' conditions and events."""

from __future__ import annotations

from typing import Any

import pytest

from k8py.controllers.podautoscaler import HorizontalPodAutoscalerController

from ctrl_helpers import Cluster, pod_template

Obj = dict[str, Any]


def hpa(lo: int, hi: int) -> Obj:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "php-apache", "namespace": "default"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "php-apache"},
                     "minReplicas": lo, "maxReplicas": hi,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                         "type": "Utilization", "averageUtilization": 50}}}]}}


@pytest.mark.parametrize("replicas,lo,hi,want,limited", [
    (1, 2, 5, 2, "TooFewReplicas"), (8, 2, 5, 5, "TooManyReplicas"), (3, 2, 5, 3, "DesiredWithinRange")])
async def test_keeps_replicas_within_bounds(cluster: Cluster, replicas: int, lo: int, hi: int, want: int,
                                            limited: str) -> None:
    c = cluster
    ctrl = HorizontalPodAutoscalerController(c.client, c.factory, c.clock, c.recorder("hpa"))
    await c.start(ctrl)
    await c.client.create("deployments", {
        "metadata": {"name": "php-apache", "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"run": "php-apache"}},
                 "template": pod_template({"run": "php-apache"})}})
    await c.client.create("horizontalpodautoscalers", hpa(lo, hi))

    async def settled() -> Obj | None:
        o = await c.client.get("horizontalpodautoscalers", "php-apache", "default")
        return o if (o.get("status") or {}).get("desiredReplicas") == want else None

    o = await c.until(settled, "desired replicas")
    d = await c.client.get("deployments", "php-apache", "default")
    assert d["spec"]["replicas"] == want
    conds = {x["type"]: (x["status"], x["reason"]) for x in o["status"]["conditions"]}
    assert conds["AbleToScale"] == ("True", "SucceededGetScale")
    if limited == "DesiredWithinRange":  # metrics are only asked for within range: none here, no limit
        assert conds["ScalingActive"] == ("False", "FailedGetResourceMetric") and "ScalingLimited" not in conds
    else:
        assert "ScalingActive" not in conds and conds["ScalingLimited"][1] == limited
    rescales = ctrl.recorder.for_reason("SuccessfulRescale")
    assert bool(rescales) == (want != replicas)
    if rescales:
        assert rescales[0].startswith(f"New size: {want}; reason: Current number of replicas")


async def test_scales_on_cpu_utilization_from_metrics_api(cluster: Cluster) -> None:
    from k8py.apiserver.metrics import ResourceMetrics
    from k8py.clock import rfc3339
    c = cluster
    ticks = iter(range(0, 10**6, 15))
    c.api.metrics = ResourceMetrics(c.api.handle, interval=1.0, min_window=0.0, monotonic=lambda: float(next(ticks)))
    uids: dict[str, str] = {}
    calls = iter(range(1, 10**6))

    async def summary(node: str) -> Obj | str:
        n = next(calls)  # every pod has burnt 400m for each 15 s since the start
        cpu = {"usageCoreNanoSeconds": n * 15 * 400_000_000}
        return {"node": {"nodeName": node, "cpu": cpu, "memory": {"workingSetBytes": 1}},
                "pods": [{"podRef": {"name": k, "namespace": "default", "uid": u},
                          "containers": [{"name": "c", "startTime": "2026-01-01T00:00:00Z", "cpu": cpu,
                                          "memory": {"workingSetBytes": 1 << 20}}]} for k, u in uids.items()]}
    c.api.metrics.source = summary
    ctrl = HorizontalPodAutoscalerController(c.client, c.factory, c.clock, c.recorder("hpa"))
    await c.client.create("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
    tmpl = pod_template({"run": "php-apache"})
    tmpl["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "200m"}}
    await c.client.create("deployments", {
        "metadata": {"name": "php-apache", "namespace": "default"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"run": "php-apache"}}, "template": tmpl}})
    for i in range(2):
        p = await c.client.create("pods", {"metadata": {"name": f"php-{i}", "labels": {"run": "php-apache"}},
                                           "spec": {**tmpl["spec"], "nodeName": "n1"}}, "default")
        uids[p["metadata"]["name"]] = p["metadata"]["uid"]
        t = rfc3339(c.clock.now() - 3600)
        p["status"] = {"phase": "Running", "startTime": t,
                       "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": t}]}
        await c.client.update_status("pods", p)
    await c.start(ctrl)
    await c.client.create("horizontalpodautoscalers", hpa(1, 10))

    async def scaled() -> Obj | None:
        o = await c.client.get("horizontalpodautoscalers", "php-apache", "default")
        return o if (o.get("status") or {}).get("desiredReplicas") == 4 else None

    o = await c.until(scaled, "scaled to 4 (200% of 50%: 8, limited to max(2 * 2, 4))")
    assert (await c.client.get("deployments", "php-apache", "default"))["spec"]["replicas"] == 4
    conds = {x["type"]: (x["status"], x["reason"]) for x in o["status"]["conditions"]}
    assert conds == {"AbleToScale": ("True", "ReadyForNewScale"), "ScalingActive": ("True", "ValidMetricFound"),
                     "ScalingLimited": ("True", "ScaleUpLimit")}
    assert o["status"]["currentMetrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "current": {"averageValue": "400m", "averageUtilization": 200}}}]
    assert ctrl.recorder.for_reason("SuccessfulRescale") == [
        "New size: 4; reason: cpu resource utilization (percentage of request) above target"]


async def test_only_new_hpas_and_spec_changes_sync_at_once(cluster: Cluster) -> None:
    ctrl = HorizontalPodAutoscalerController(cluster.client, cluster.factory, cluster.clock)
    seen: list[Any] = []
    ctrl.enqueue = seen.append  # type: ignore[method-assign]  # a spy
    for uid, gen, status in [("u1", 1, {}), ("u1", 1, {"desiredReplicas": 2}), ("u1", 2, {}), ("u2", 1, {})]:
        o = hpa(1, 5)
        o["metadata"].update(uid=uid, generation=gen)
        o["status"] = status
        ctrl._on_hpa(o)
    assert [(x["metadata"]["uid"], x["metadata"]["generation"]) for x in seen] == [("u1", 1), ("u1", 2), ("u2", 1)]
