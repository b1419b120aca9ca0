"""LoadBalancer addresses from the pool: one per service, released when the type changes."""

from __future__ import annotations

from typing import Any

from k8py.controllers.servicelb import ServiceLoadBalancerController

from ctrl_helpers import Cluster

Obj = dict[str, Any]


def lb(name: str, type_: str = "LoadBalancer") -> Obj:
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"type": type_, "selector": {"app": name}, "ports": [{"port": 80}]}}


async def ingress(c: Cluster, name: str) -> list[str]:
    svc = await c.client.get("services", name, "default")
    return [i["ip"] for i in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []]


async def test_each_load_balancer_gets_its_own_address(cluster: Cluster) -> None:
    c = cluster
    await c.start(ServiceLoadBalancerController(c.client, c.factory, c.clock, c.recorder("service-lb-controller"),
                                                pool="127.0.100.0/29"))
    await c.client.create("services", lb("a"))
    await c.client.create("services", lb("b"))
    await c.client.create("services", lb("plain", "ClusterIP"))
    a = await c.until(lambda: ingress(c, "a"), "a's address")
    b = await c.until(lambda: ingress(c, "b"), "b's address")
    assert a != b and {a[0], b[0]} <= {f"127.0.100.{i}" for i in range(1, 7)}
    assert await ingress(c, "plain") == []
    # switching a service to ClusterIP releases its address for the next one
    svc = await c.client.get("services", "a", "default")
    svc["spec"]["type"] = "ClusterIP"
    for p in svc["spec"]["ports"]:
        p.pop("nodePort", None)
    await c.client.update("services", svc)
    await c.until(lambda: _empty(c, "a"), "a released")
    await c.client.create("services", lb("c"))
    assert await c.until(lambda: ingress(c, "c"), "c's address") == a
    assert await c.events("IPAllocated")


async def test_pool_exhausted_is_an_event_not_a_crash(cluster: Cluster) -> None:
    c = cluster
    await c.start(ServiceLoadBalancerController(c.client, c.factory, c.clock, pool="127.0.100.0/30"))
    for n in ("a", "b", "c"):  # a /30 has two usable addresses
        await c.client.create("services", lb(n))
    await c.until(lambda: c.events("AllocationFailed"), "allocation failure event")
    got = [await ingress(c, n) for n in ("a", "b", "c")]
    assert sorted(len(g) for g in got) == [0, 1, 1]


async def _empty(c: Cluster, name: str) -> bool:
    return await ingress(c, name) == []


async def test_an_address_removed_by_someone_else_is_given_again(cluster: Cluster) -> None:
    c = cluster
    await c.start(ServiceLoadBalancerController(c.client, c.factory, c.clock, pool="127.0.100.0/29"))
    await c.client.create("services", lb("a"))
    first = await c.until(lambda: ingress(c, "a"), "a's address")
    svc = await c.client.get("services", "a", "default")
    svc["status"] = {"loadBalancer": {}}
    await c.client.update_status("services", svc)
    assert await c.until(lambda: ingress(c, "a"), "a's address again") == first
