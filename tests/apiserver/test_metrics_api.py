"""metrics.k8s.io/v1beta1 served by the API server: CPU as a rate between two Summary
samples, memory working set, label selectors, namespaced and all pods, NotFound as
metrics-server words it, synthetic figures for simulated nodes; discovery lists the
group and the v1beta1.metrics.k8s.io APIService says Available."""

from __future__ import annotations

from typing import Any

import pytest

from k8py.api.types import Obj
from k8py.apiserver.metrics import ResourceMetrics
from k8py.apiserver.server import ApiServer
from k8py.client.client import Client

from apiserver_helpers import call

GI = 1 << 30


class Kubelets:
    """A scripted Summary source: each call advances time 10 s and every counter by `rate` cores."""

    def __init__(self) -> None:
        self.t = 0.0
        self.calls = 0
        self.down: set[str] = set()

    def now(self) -> float:
        return self.t

    async def summary(self, node: str) -> Obj | str:
        if node in self.down:
            return f"cannot reach the agent of node {node}"
        self.calls += 1
        self.t += 10.0
        ns = int(self.t * 1e9)
        c = {"name": "app", "startTime": "2026-01-01T00:00:00Z",
             "cpu": {"usageCoreNanoSeconds": ns // 4}, "memory": {"workingSetBytes": 64 << 20}}
        pod = {"podRef": {"name": "web", "namespace": "default", "uid": "u-web"}, "containers": [c],
               "cpu": c["cpu"], "memory": c["memory"]}
        return {"node": {"nodeName": node, "cpu": {"usageCoreNanoSeconds": ns // 2},
                         "memory": {"workingSetBytes": 2 * GI}}, "pods": [pod]}


@pytest.fixture
async def kubelets(api: ApiServer, client: Client) -> Kubelets:
    k = Kubelets()
    api.metrics = ResourceMetrics(api.handle, interval=5.0, min_window=0.0, monotonic=k.now)
    api.metrics.source = k.summary
    await client.create("nodes", {"apiVersion": "v1", "kind": "Node",
                                  "metadata": {"name": "n1", "labels": {"zone": "a"}}})
    return k


async def _running_pod(client: Client, name: str, node: str, labels: dict[str, str],
                       requests: dict[str, str] | None = None) -> Obj:
    pod = await client.create("pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "busybox",
                                                   "resources": {"requests": requests or {}}}]}}, "default")
    pod["status"] = {"phase": "Running"}
    return await client.update_status("pods", pod)


async def _web(client: Client, kubelets: Kubelets) -> Any:
    """A running pod "web" on n1, and the source whose Summary names it by its uid."""
    pod = await _running_pod(client, "web", "n1", {"app": "web"})

    async def with_uid(node: str) -> Obj | str:
        doc = await kubelets.summary(node)
        if isinstance(doc, dict):
            doc["pods"][0]["podRef"]["uid"] = pod["metadata"]["uid"]
        return doc
    return with_uid


async def test_node_metrics_are_a_rate_between_two_samples(api: ApiServer, kubelets: Kubelets) -> None:
    resp = await call(api, "GET", "/apis/metrics.k8s.io/v1beta1/nodes")
    assert resp.status == 200 and resp.body["kind"] == "NodeMetricsList"
    [m] = resp.body["items"]
    assert m["metadata"]["name"] == "n1" and m["metadata"]["labels"] == {"zone": "a"}
    assert m["usage"] == {"cpu": "500000000n", "memory": f"{2 * GI // 1024}Ki"}
    assert m["window"] == "10s" and kubelets.calls == 2
    again = await call(api, "GET", "/apis/metrics.k8s.io/v1beta1/nodes/n1")  # newest sample is fresh: reused
    assert again.status == 200 and again.body["kind"] == "NodeMetrics" and kubelets.calls == 2
    kubelets.t += 6  # older than the interval: one more sample
    await call(api, "GET", "/apis/metrics.k8s.io/v1beta1/nodes/n1")
    assert kubelets.calls == 3


@pytest.mark.parametrize("path,selector,names", [
    ("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods", "", ["web"]),
    ("/apis/metrics.k8s.io/v1beta1/pods", "app=web", ["web"]),
    ("/apis/metrics.k8s.io/v1beta1/pods", "app=db", []),
    ("/apis/metrics.k8s.io/v1beta1/namespaces/other/pods", "", []),
])
async def test_pod_metrics_lists(api: ApiServer, client: Client, kubelets: Kubelets, path: str, selector: str,
                                 names: list[str]) -> None:
    api.metrics.source = await _web(client, kubelets)
    resp = await call(api, "GET", path, query={"labelSelector": selector} if selector else None)
    assert resp.status == 200 and resp.body["kind"] == "PodMetricsList"
    assert [m["metadata"]["name"] for m in resp.body["items"]] == names
    for m in resp.body["items"]:
        assert m["containers"] == [{"name": "app", "usage": {"cpu": "250000000n", "memory": "65536Ki"}}]


async def test_get_pod_metrics_and_not_found(api: ApiServer, client: Client, kubelets: Kubelets) -> None:
    api.metrics.source = await _web(client, kubelets)
    resp = await call(api, "GET", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web")
    assert resp.status == 200 and resp.body["kind"] == "PodMetrics"
    assert resp.body["apiVersion"] == "metrics.k8s.io/v1beta1" and resp.body["metadata"]["namespace"] == "default"
    resp = await call(api, "GET", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/nope")
    assert resp.status == 404 and resp.body["message"] == 'podmetrics.metrics.k8s.io "default/nope" not found'
    resp = await call(api, "GET", "/apis/metrics.k8s.io/v1beta1/nodes/nope")
    assert resp.status == 404 and resp.body["message"] == 'nodemetrics.metrics.k8s.io "nope" not found'


async def test_unreachable_node_is_left_out(api: ApiServer, kubelets: Kubelets) -> None:
    kubelets.down.add("n1")
    resp = await call(api, "GET", "/apis/metrics.k8s.io/v1beta1/nodes")
    assert resp.status == 200 and resp.body["items"] == []
    assert (await call(api, "GET", "/apis/metrics.k8s.io/v1beta1/nodes/n1")).status == 404


async def test_read_only_and_bad_selector(api: ApiServer, kubelets: Kubelets) -> None:
    assert (await call(api, "DELETE", "/apis/metrics.k8s.io/v1beta1/nodes/n1")).status == 405
    assert (await call(api, "GET", "/apis/metrics.k8s.io/v1beta1/nodes", query={"watch": "true"})).status == 405
    resp = await call(api, "GET", "/apis/metrics.k8s.io/v1beta1/nodes", query={"labelSelector": "a===b"})
    assert resp.status == 400


async def test_simulated_nodes_report_their_pods_requests(api: ApiServer, client: Client,
                                                          kubelets: Kubelets) -> None:
    await client.create("nodes", {"apiVersion": "v1", "kind": "Node",
                                  "metadata": {"name": "sim-1", "labels": {"k8py.io/simulated": "true"}}})
    await _running_pod(client, "fake", "sim-1", {"app": "x"}, {"cpu": "250m", "memory": "64Mi"})
    resp = await call(api, "GET", "/apis/metrics.k8s.io/v1beta1/nodes/sim-1")
    assert resp.body["usage"] == {"cpu": "250000000n", "memory": "65536Ki"}
    assert "synthetic" in resp.body["metadata"]["annotations"]["k8py.io/simulated"]
    resp = await call(api, "GET", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/fake")
    assert resp.body["containers"] == [{"name": "app", "usage": {"cpu": "250000000n", "memory": "65536Ki"}}]
    assert "k8py.io/simulated" in resp.body["metadata"]["annotations"]


async def test_discovery_and_apiservice(api: ApiServer) -> None:
    groups = (await call(api, "GET", "/apis")).body["groups"]
    assert {"name": "metrics.k8s.io", "versions": [{"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}],
            "preferredVersion": {"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}} in groups
    svc = (await call(api, "GET", "/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io")).body
    assert svc["spec"]["group"] == "metrics.k8s.io" and svc["spec"].get("service") is None
    [cond] = svc["status"]["conditions"]
    assert (cond["type"], cond["status"], cond["reason"]) == ("Available", "True", "Local")
    names = [i["metadata"]["name"] for i in
             (await call(api, "GET", "/apis/apiregistration.k8s.io/v1/apiservices")).body["items"]]
    assert "v1.apps" in names and "v2.autoscaling" in names


async def test_metrics_reader_role_aggregates_to_view(api: ApiServer) -> None:
    role = (await call(api, "GET",
                       "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:aggregated-metrics-reader")).body
    assert role["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert role["rules"] == [{"apiGroups": ["metrics.k8s.io"], "resources": ["pods", "nodes"],
                              "verbs": ["get", "list", "watch"]}]


async def test_samples_of_deleted_nodes_are_dropped(api: ApiServer, client: Client, kubelets: Kubelets) -> None:
    await call(api, "GET", "/apis/metrics.k8s.io/v1beta1/nodes")
    assert "n1" in api.metrics._samples
    await client.delete("nodes", "n1")
    assert (await call(api, "GET", "/apis/metrics.k8s.io/v1beta1/nodes")).body["items"] == []
    assert api.metrics._samples == {}


async def test_tables_for_kubectl_get(api: ApiServer, client: Client, kubelets: Kubelets) -> None:
    api.metrics.source = await _web(client, kubelets)
    table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    resp = await call(api, "GET", "/apis/metrics.k8s.io/v1beta1/nodes", accept=table)
    assert resp.body["kind"] == "Table"
    assert [c["name"] for c in resp.body["columnDefinitions"]] == ["Name", "CPU", "Memory", "Window"]
    assert resp.body["rows"][0]["cells"] == ["n1", "500000000n", f"{2 * GI // 1024}Ki", "10s"]
    resp = await call(api, "GET", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web", accept=table)
    assert resp.body["rows"][0]["cells"][:3] == ["web", "250000000n", "65536Ki"]
