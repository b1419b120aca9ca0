"""The `kubernetes` endpoints list every live server (the lease endpoint reconciler): two API
servers on one store, each with its own clock; one stops renewing (kill -9) and drops out
after the TTL on the other's clock; one stops gracefully and drops out at once."""

from __future__ import annotations

from typing import Any

from k8py.apiserver import serverleases
from k8py.apiserver.config import ApiServerConfig
from k8py.apiserver.inprocess import InProcessTransport
from k8py.apiserver.server import ApiServer
from k8py.client.client import Client
from k8py.clock import FakeClock
from k8py.store.memory import MemoryStore


async def _endpoints(api: ApiServer) -> tuple[list[tuple[str, int]], dict[str, list[Any]]]:
    c = Client(InProcessTransport(api))
    ep = await c.get("endpoints", "kubernetes", "default")
    servers = sorted((a["ip"], p["port"]) for s in ep["subsets"] for a in s["addresses"] for p in s["ports"])
    slices = (await c.list("endpointslices", "default",
                           label_selector="kubernetes.io/service-name=kubernetes"))["items"]
    by_name = {s["metadata"]["name"]: [(e["addresses"][0], p["port"]) for e in s["endpoints"] for p in s["ports"]]
               for s in slices}
    return servers, by_name


async def _server(store: MemoryStore, port: int) -> tuple[ApiServer, FakeClock]:
    clock = FakeClock()
    api = ApiServer(store, ApiServerConfig(port=0), clock)
    await api.start()
    await api.set_endpoint("127.0.0.1", port)
    return api, clock


async def test_every_live_server_is_in_the_kubernetes_endpoints() -> None:
    store = MemoryStore()
    await store.start()
    a, a_clock = await _server(store, 6443)
    b, _ = await _server(store, 6444)
    c: ApiServer | None = None
    try:
        await a.server_leases.reconcile()
        servers, slices = await _endpoints(a)
        assert servers == [("127.0.0.1", 6443), ("127.0.0.1", 6444)]
        assert slices == {"kubernetes": [("127.0.0.1", 6443)], "kubernetes-6444": [("127.0.0.1", 6444)]}

        # B is killed: its record stops changing; A keeps it until the TTL passed on A's clock.
        task = b.server_leases._task
        assert task is not None
        task.cancel()
        b.server_leases._task = None
        await a_clock.advance(serverleases.TTL - 1)
        assert (await _endpoints(a))[0] == [("127.0.0.1", 6443), ("127.0.0.1", 6444)]
        await a_clock.advance(serverleases.INTERVAL)
        await a.server_leases.reconcile()
        servers, slices = await _endpoints(a)
        assert servers == [("127.0.0.1", 6443)] and list(slices) == ["kubernetes"]
        assert [kv.key for kv in (await store.list(serverleases.PREFIX)).items] == [
            serverleases.PREFIX + "127.0.0.1:6443"]

        # A third server joins, then stops gracefully: out of the endpoints at once.
        c, _ = await _server(store, 6445)
        assert (await _endpoints(a))[0] == [("127.0.0.1", 6443), ("127.0.0.1", 6445)]
        await c.close()
        c = None
        assert (await _endpoints(a))[0] == [("127.0.0.1", 6443)]
    finally:
        for api in (c, b, a):
            if api is not None:
                await api.close()
        await store.close()
