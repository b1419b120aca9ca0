"""HPA without a metrics API: replicas kept within [min, max], conditions as Kubernetes."""

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
    assert conds["ScalingActive"] == ("False", "FailedGetResourceMetric")
    assert conds["ScalingLimited"][1] == limited
    rescales = ctrl.recorder.for_reason("SuccessfulRescale")
    assert bool(rescales) == (want != replicas)
    if rescales:
        assert rescales[0].startswith(f"New size: {want}; reason: Current number of replicas")
