"""autoscaling/v1 and v2 HorizontalPodAutoscalers: two served versions over one storage (v2)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from k8py.api import resources
from k8py.apiserver import autoscaling
from k8py.apiserver.inprocess import InProcessTransport
from k8py.apiserver.server import ApiServer
from k8py.client.client import Client

from apiserver_helpers import call

V1 = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers"
V2 = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers"
REF = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
CPU50 = {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}
PODS = {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}}
BEHAVIOR = {"scaleDown": {"stabilizationWindowSeconds": 60}}


def hpa_v2(name: str, metrics: list[Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": name},
            "spec": {"scaleTargetRef": REF, "minReplicas": 1, "maxReplicas": 5, "metrics": metrics, **spec}}


CONVERSIONS = [
    ("cpu only", hpa_v2("a", [CPU50]), {"targetCPUUtilizationPercentage": 50}, {}),
    ("cpu and pods and behavior", hpa_v2("b", [CPU50, PODS], behavior=BEHAVIOR),
     {"targetCPUUtilizationPercentage": 50},
     {autoscaling.METRICS: [PODS], autoscaling.BEHAVIOR: BEHAVIOR}),
    ("pods only", hpa_v2("c", [PODS]), {}, {autoscaling.METRICS: [PODS]}),
]


@pytest.mark.parametrize("name,v2,v1_spec,annotations", CONVERSIONS, ids=[c[0] for c in CONVERSIONS])
def test_conversion_round_trips(name: str, v2: dict[str, Any], v1_spec: dict[str, Any],
                                annotations: dict[str, Any]) -> None:
    orig = copy.deepcopy(v2)
    v1 = autoscaling.v2_to_v1(v2)
    assert v2 == orig  # not modified
    assert v1["apiVersion"] == "autoscaling/v1"
    assert v1["spec"] == {"scaleTargetRef": REF, "minReplicas": 1, "maxReplicas": 5, **v1_spec}
    got = {k: json.loads(v) for k, v in (v1["metadata"].get("annotations") or {}).items()}
    assert got == annotations
    assert autoscaling.v1_to_v2(v1) == orig


def test_status_conversion() -> None:
    conds = [{"type": "AbleToScale", "status": "True"}]
    v2 = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "s"},
          "spec": {"scaleTargetRef": REF, "maxReplicas": 2, "metrics": [CPU50]},
          "status": {"currentReplicas": 2, "desiredReplicas": 3, "conditions": conds, "currentMetrics": [
              {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 70}}}]}}
    v1 = autoscaling.v2_to_v1(v2)
    assert v1["status"] == {"currentReplicas": 2, "desiredReplicas": 3, "currentCPUUtilizationPercentage": 70}
    assert autoscaling.v1_to_v2(v1) == v2


def test_v1_without_target_reads_as_v2_default_cpu() -> None:
    v1 = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "d"},
          "spec": {"scaleTargetRef": REF, "maxReplicas": 2}}
    m = autoscaling.v1_to_v2(v1)["spec"]["metrics"]
    assert m == [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": 80}}}]


async def test_write_v1_read_v2_and_back(api: ApiServer) -> None:
    body = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": REF, "maxReplicas": 3, "targetCPUUtilizationPercentage": 60}}
    resp = await call(api, "POST", V1, body)
    assert resp.status == 201, resp.body
    assert resp.body["apiVersion"] == "autoscaling/v1" and resp.body["spec"]["minReplicas"] == 1
    assert "metrics" not in resp.body["spec"]
    v2 = (await call(api, "GET", f"{V2}/web")).body
    assert v2["apiVersion"] == "autoscaling/v2"
    assert v2["spec"]["metrics"] == [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": 60}}}]
    # a v2 write adds a second metric; a v1 read-modify-write keeps it
    v2["spec"]["metrics"].append(PODS)
    assert (await call(api, "PUT", f"{V2}/web", v2)).status == 200
    v1 = (await call(api, "GET", f"{V1}/web")).body
    assert v1["spec"]["targetCPUUtilizationPercentage"] == 60
    v1["spec"]["targetCPUUtilizationPercentage"] = 70
    resp = await call(api, "PUT", f"{V1}/web", v1)
    assert resp.status == 200, resp.body
    v2 = (await call(api, "GET", f"{V2}/web")).body
    assert [m["type"] for m in v2["spec"]["metrics"]] == ["Resource", "Pods"]
    assert v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
    assert not (v2["metadata"].get("annotations") or {})
    items = (await call(api, "GET", V1)).body
    assert items["kind"] == "HorizontalPodAutoscalerList" and items["apiVersion"] == "autoscaling/v1"
    assert [i["spec"].get("targetCPUUtilizationPercentage") for i in items["items"]] == [70]
    r1 = resources.lookup_version("autoscaling", "v1", "horizontalpodautoscalers")
    assert r1 is not None
    gen = Client(InProcessTransport(api)).watch(r1, "default", resource_version="0")
    try:
        ev = await gen.__anext__()
    finally:
        await gen.aclose()
    assert ev["type"] == "ADDED" and ev["object"]["apiVersion"] == "autoscaling/v1"
    assert ev["object"]["spec"]["targetCPUUtilizationPercentage"] == 70


async def test_discovery_lists_v2_preferred_then_v1(api: ApiServer) -> None:
    group = (await call(api, "GET", "/apis/autoscaling")).body
    assert [v["version"] for v in group["versions"]] == ["v2", "v1"]
    assert group["preferredVersion"]["version"] == "v2"
    v1 = (await call(api, "GET", "/apis/autoscaling/v1")).body
    assert any(r["name"] == "horizontalpodautoscalers" and r["kind"] == "HorizontalPodAutoscaler"
               for r in v1["resources"])
    assert any(r["name"] == "horizontalpodautoscalers/status" for r in v1["resources"])
