"""Service ClusterIP and NodePort allocation: range, reservations, races, release."""

from __future__ import annotations

import asyncio
import ipaddress
import json
from typing import Any

import pytest

from k8py.apiserver.config import ApiServerConfig
from k8py.apiserver.inprocess import InProcessTransport
from k8py.apiserver.server import ApiServer
from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.clock import FakeClock
from k8py.store.memory import MemoryStore


def svc(name: str, **spec: Any) -> dict[str, Any]:
    s: dict[str, Any] = {"selector": {"app": name}, "ports": [{"port": 80}]}
    s.update(spec)
    return {"metadata": {"name": name, "namespace": "default"}, "spec": s}


async def test_cluster_ips_are_unique_under_concurrent_creates(client: Client, store: MemoryStore,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    real_list = store.list

    async def slow_list(*a: Any, **k: Any) -> Any:
        res = await real_list(*a, **k)
        await asyncio.sleep(0)  # interleave the creates between reading what is allocated and storing
        return res
    monkeypatch.setattr(store, "list", slow_list)
    # A tiny range makes collisions certain without serialization.
    api = client.transport.api  # type: ignore[attr-defined]
    api.allocator._random_ip = lambda used: next(  # type: ignore[method-assign]
        f"10.43.0.{i}" for i in range(2, 250) if f"10.43.0.{i}" not in used and i != 10)
    out = await asyncio.gather(*(client.create("services", svc(f"s{i}")) for i in range(40)))
    ips = [o["spec"]["clusterIP"] for o in out]
    assert len(set(ips)) == 40
    net = ipaddress.ip_network("10.43.0.0/16")
    for o in out:
        ip = o["spec"]["clusterIP"]
        assert ipaddress.ip_address(ip) in net and ip not in ("10.43.0.1", "10.43.0.10")
        assert o["spec"]["clusterIPs"] == [ip]


async def test_requested_cluster_ip(client: Client) -> None:
    out = await client.create("services", svc("dns", clusterIP="10.43.0.10"))
    assert out["spec"]["clusterIP"] == "10.43.0.10"
    with pytest.raises(ApiError) as e:
        await client.create("services", svc("dup", clusterIP="10.43.0.10"))
    assert e.value.status == 422 and "provided IP is already allocated" in e.value.body["message"]
    with pytest.raises(ApiError) as e:
        await client.create("services", svc("far", clusterIP="192.168.1.1"))
    assert e.value.status == 422 and "not in the valid range" in e.value.body["message"]
    # Released on delete.
    await client.delete("services", "dns", "default")
    again = await client.create("services", svc("dns2", clusterIP="10.43.0.10"))
    assert again["spec"]["clusterIP"] == "10.43.0.10"


async def test_headless_and_external_name(client: Client) -> None:
    h = await client.create("services", svc("h", clusterIP="None"))
    assert h["spec"]["clusterIP"] == "None" and h["spec"]["clusterIPs"] == ["None"]
    x = await client.create("services", {"metadata": {"name": "x", "namespace": "default"},
                                         "spec": {"type": "ExternalName", "externalName": "example.com"}})
    assert "clusterIP" not in x["spec"]


async def test_update_keeps_and_protects_cluster_ip(client: Client) -> None:
    s = await client.create("services", svc("s"))
    ip = s["spec"]["clusterIP"]
    replaced = await client.update("services", {"metadata": {"name": "s", "namespace": "default"},
                                                "spec": {"selector": {"app": "t"}, "ports": [{"port": 81}]}})
    assert replaced["spec"]["clusterIP"] == ip
    replaced["spec"]["clusterIP"] = "10.43.9.9"
    replaced["spec"]["clusterIPs"] = ["10.43.9.9"]
    with pytest.raises(ApiError) as e:
        await client.update("services", replaced)
    assert e.value.status == 422


async def test_node_ports(client: Client) -> None:
    a = await client.create("services", svc("a", type="NodePort"))
    np = a["spec"]["ports"][0]["nodePort"]
    assert 30000 <= np <= 32767
    b = await client.create("services", svc("b", type="NodePort", ports=[{"port": 80, "nodePort": 30080}]))
    assert b["spec"]["ports"][0]["nodePort"] == 30080
    with pytest.raises(ApiError) as e:
        await client.create("services", svc("c", type="NodePort", ports=[{"port": 80, "nodePort": 30080}]))
    assert e.value.status == 422
    assert "spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated" in e.value.body["message"]
    with pytest.raises(ApiError) as e:
        await client.create("services", svc("d", type="NodePort", ports=[{"port": 80, "nodePort": 80}]))
    assert e.value.status == 422 and "not in the valid range" in e.value.body["message"]
    lb = await client.create("services", svc("lb", type="LoadBalancer"))
    assert 30000 <= lb["spec"]["ports"][0]["nodePort"] <= 32767
    # Unspecified on update: kept. Type back to ClusterIP: released.
    upd = await client.patch("services", "a", {"spec": {"selector": {"app": "z"}}}, "default")
    assert upd["spec"]["ports"][0]["nodePort"] == np
    await client.delete("services", "b", "default")
    c = await client.create("services", svc("c", type="NodePort", ports=[{"port": 80, "nodePort": 30080}]))
    assert c["spec"]["ports"][0]["nodePort"] == 30080


async def test_type_changes_allocate_and_release_node_ports(client: Client) -> None:
    s = await client.create("services", svc("s"))
    assert "nodePort" not in s["spec"]["ports"][0]
    s["spec"]["type"] = "NodePort"
    s = await client.update("services", s)
    np = s["spec"]["ports"][0]["nodePort"]
    assert 30000 <= np <= 32767
    s["spec"]["type"] = "ClusterIP"
    s["spec"]["ports"][0].pop("nodePort")
    s.pop("status", None)
    s = await client.update("services", s)
    assert "nodePort" not in s["spec"]["ports"][0]
    other = await client.create("services", svc("o", type="NodePort", ports=[{"port": 80, "nodePort": np}]))
    assert other["spec"]["ports"][0]["nodePort"] == np


async def test_small_range_reserves_and_fills(store: MemoryStore) -> None:
    cfg = ApiServerConfig(service_cidr="10.96.0.0/29", cluster_dns="10.96.0.2")
    api = ApiServer(store, cfg, FakeClock())
    await api.start()
    try:
        c = Client(InProcessTransport(api))
        k = await c.get("services", "kubernetes", "default")
        assert k["spec"]["clusterIP"] == "10.96.0.1"
        got = {(await c.create("services", svc(f"s{i}")))["spec"]["clusterIP"] for i in range(4)}
        assert got == {"10.96.0.3", "10.96.0.4", "10.96.0.5", "10.96.0.6"}
        with pytest.raises(ApiError) as e:
            await c.create("services", svc("full"))
        assert "range is full" in e.value.body["message"]
        assert (await c.create("services", svc("dns", clusterIP="10.96.0.2")))["spec"]["clusterIP"] == "10.96.0.2"
    finally:
        await api.close()


async def test_services_written_by_another_server_are_seen(client: Client, store: MemoryStore,
                                                          api: ApiServer) -> None:
    await client.create("services", svc("warmup"))  # the allocator has read the store
    other = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "elsewhere", "namespace": "default"},
             "spec": {"clusterIP": "10.43.7.7", "clusterIPs": ["10.43.7.7"], "ports": [{"port": 80}]}}
    await store.create("/registry/core/services/default/elsewhere", json.dumps(other).encode())

    async def observed() -> None:  # the services watch reaches the allocator
        while "10.43.7.7" not in (await api.allocator.in_use(None)).ips:
            await asyncio.sleep(0.001)
    await asyncio.wait_for(observed(), 5)
    with pytest.raises(ApiError) as e:
        await client.create("services", svc("mine", clusterIP="10.43.7.7"))
    assert e.value.status == 422 and "already allocated" in e.value.body["message"]
    await store.delete("/registry/core/services/default/elsewhere")

    async def freed() -> None:
        while True:
            try:
                await client.create("services", svc("mine", clusterIP="10.43.7.7"))
                return
            except ApiError:
                await asyncio.sleep(0.01)
    await asyncio.wait_for(freed(), 5)
