"""Endpoints and EndpointSlice controllers: addresses follow pods' readiness."""

from __future__ import annotations

from typing import Any

import pytest

from k8py.controllers.endpoints import EndpointsController, find_port, repack_subsets
from k8py.controllers.endpointslice import EndpointSliceController

from ctrl_helpers import Cluster, pod_template, set_pod_state

Obj = dict[str, Any]


def service(name: str = "web", selector: dict[str, str] | None = None, **spec: Any) -> Obj:
    s: Obj = {"ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}], **spec}
    if selector is not None:
        s["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default",
                                                               "labels": {"tier": "front"}}, "spec": s}


async def make_pod(c: Cluster, name: str, labels: dict[str, str], ip: str, ready: bool, node: str = "n1") -> Obj:
    p = await c.client.create("pods", {"metadata": {"name": name, "namespace": "default", "labels": labels},
                                       "spec": pod_template(labels)["spec"]})
    return await set_pod_state(c.client, p, ready=ready, ip=ip, node_name=node, when=c.clock.now())


async def start(c: Cluster) -> None:
    await c.client.create("nodes", {"metadata": {"name": "n1"}})
    await c.start(EndpointsController(c.client, c.factory, c.clock, c.recorder("endpoint-controller")),
                  EndpointSliceController(c.client, c.factory, c.clock, c.recorder("endpointslice-controller")))


async def endpoints(c: Cluster, name: str = "web") -> Obj | None:
    return await c.client.get_or_none("endpoints", name, "default")


def ips(ep: Obj, field: str = "addresses") -> list[str]:
    return [a["ip"] for s in ep.get("subsets") or [] for a in s.get(field) or []]


async def slices(c: Cluster, name: str = "web") -> list[Obj]:
    return await c.list("endpointslices", label_selector=f"kubernetes.io/service-name={name}")


async def test_endpoints_follow_readiness(cluster: Cluster) -> None:
    c = cluster
    await start(c)
    await make_pod(c, "a", {"app": "web"}, "10.42.0.10", ready=True)
    b = await make_pod(c, "b", {"app": "web"}, "10.42.0.9", ready=False)
    await make_pod(c, "other", {"app": "db"}, "10.42.0.11", ready=True)
    await c.client.create("services", service(selector={"app": "web"}))

    async def state(ready: list[str], not_ready: list[str]) -> Obj | None:
        ep = await endpoints(c)
        return ep if ep and ips(ep) == ready and ips(ep, "notReadyAddresses") == not_ready else None

    ep = await c.until(lambda: state(["10.42.0.10"], ["10.42.0.9"]), "a ready, b not")
    (subset,) = ep["subsets"]
    assert subset["ports"] == [{"name": "http", "port": 80, "protocol": "TCP"}]
    addr = subset["addresses"][0]
    assert addr["nodeName"] == "n1"
    assert addr["targetRef"]["kind"] == "Pod" and addr["targetRef"]["name"] == "a"
    assert ep["metadata"]["labels"] == {"tier": "front"}
    await set_pod_state(c.client, b, ready=True, ip="10.42.0.9", when=c.clock.now())
    await c.until(lambda: state(["10.42.0.9", "10.42.0.10"], []), "both ready, sorted by IP")
    await c.client.delete("pods", "a", "default", grace_period_seconds=0)
    await c.until(lambda: state(["10.42.0.9"], []), "a gone")
    await c.client.delete("services", "web", "default")
    await c.until(lambda: _none(endpoints(c)), "endpoints deleted with the service")


async def _none(aw: Any) -> bool:
    return await aw is None


async def test_publish_not_ready_and_services_without_selector(cluster: Cluster) -> None:
    c = cluster
    await start(c)
    await make_pod(c, "a", {"app": "web"}, "10.42.0.10", ready=False)
    await c.client.create("services", service(selector={"app": "web"}, publishNotReadyAddresses=True))
    await c.client.create("services", service("manual"))
    await c.client.create("endpoints", {"metadata": {"name": "manual", "namespace": "default"},
                                        "subsets": [{"addresses": [{"ip": "192.0.2.1"}], "ports": [{"port": 80}]}]})

    async def published() -> Obj | None:
        ep = await endpoints(c)
        return ep if ep and ips(ep) == ["10.42.0.10"] else None

    await c.until(published, "not-ready pod published")
    manual = await endpoints(c, "manual")
    assert manual is not None and ips(manual) == ["192.0.2.1"]
    assert await slices(c, "manual") == []


async def test_endpoint_slices_carry_conditions_labels_and_owner(cluster: Cluster) -> None:
    c = cluster
    await start(c)
    svc = await c.client.create("services", service(selector={"app": "web"}))

    async def one_slice(n: int) -> Obj | None:
        ss = await slices(c)
        return ss[0] if len(ss) == 1 and len(ss[0].get("endpoints") or []) == n else None

    empty = await c.until(lambda: one_slice(0), "an empty slice")
    assert not empty.get("ports") and not empty.get("endpoints")  # Kubernetes' placeholder slice
    await make_pod(c, "a", {"app": "web"}, "10.42.0.10", ready=True)
    b = await make_pod(c, "b", {"app": "web"}, "10.42.0.11", ready=False)
    sl = await c.until(lambda: one_slice(2), "two endpoints")
    labels = sl["metadata"]["labels"]
    assert labels["kubernetes.io/service-name"] == "web"
    assert labels["endpointslice.kubernetes.io/managed-by"] == "endpointslice-controller.k8s.io"
    assert sl["metadata"]["ownerReferences"][0]["uid"] == svc["metadata"]["uid"]
    assert sl["addressType"] == "IPv4"
    assert sl["ports"] == [{"name": "http", "port": 80, "protocol": "TCP"}]
    by_pod = {e["targetRef"]["name"]: e for e in sl["endpoints"]}
    assert by_pod["a"]["conditions"] == {"ready": True, "serving": True, "terminating": False}
    assert by_pod["b"]["conditions"] == {"ready": False, "serving": False, "terminating": False}
    assert by_pod["a"]["addresses"] == ["10.42.0.10"] and by_pod["a"]["nodeName"] == "n1"
    await set_pod_state(c.client, b, ready=True, ip="10.42.0.11", when=c.clock.now())

    async def b_ready() -> bool:
        s = await one_slice(2)
        return bool(s) and all(e["conditions"]["ready"] for e in s["endpoints"])

    await c.until(b_ready, "b ready in the slice")
    # a terminating pod (bound, so deleted gracefully) stays listed, not ready
    await c.client.delete("pods", "a", "default")

    async def a_terminating() -> bool:
        s = await one_slice(2)
        if not s:
            return False
        e = next(e for e in s["endpoints"] if e["targetRef"]["name"] == "a")
        return bool(e["conditions"] == {"ready": False, "serving": True, "terminating": True})

    await c.until(a_terminating, "a terminating")
    ep = await endpoints(c)
    assert ep is not None and ips(ep) == ["10.42.0.11"]


@pytest.mark.parametrize("target,want", [
    (None, 80), (8080, 8080), ("8081", 8081), ("http", 9000), ("metrics", None),
])
def test_find_port(target: Any, want: int | None) -> None:
    pod = {"spec": {"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 9000}]}]}}
    sp: Obj = {"port": 80, "protocol": "TCP"}
    if target is not None:
        sp["targetPort"] = target
    assert find_port(pod, sp) == want


def test_repack_groups_by_port_set() -> None:
    p80 = [{"name": "http", "port": 80, "protocol": "TCP"}]
    p81 = [{"name": "http", "port": 81, "protocol": "TCP"}]
    subsets = repack_subsets([({"ip": "10.0.0.2"}, True, p80), ({"ip": "10.0.0.10"}, True, p80),
                              ({"ip": "10.0.0.3"}, False, p81)])
    assert subsets == [
        {"addresses": [{"ip": "10.0.0.2"}, {"ip": "10.0.0.10"}], "ports": p80},
        {"notReadyAddresses": [{"ip": "10.0.0.3"}], "ports": p81},
    ]
