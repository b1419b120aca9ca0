"""An ApiServer over MemoryStore with an in-process client, and condition polling, for
simulated-node and controller tests."""

from __future__ import annotations

from typing import Any

# ------------------------------------------------------------------ an API over MemoryStore


async def start_api(clock: Any) -> tuple[Any, Any]:
    """(ApiServer, Client) over a fresh MemoryStore; the caller closes the api."""
    from k8py.apiserver.server import ApiServer
    from k8py.client.client import Client
    from k8py.store.memory import MemoryStore
    store = MemoryStore()
    await store.start()
    api = ApiServer(store, None, clock)
    await api.start()
    from k8py.client.inprocess import InProcessTransport
    return api, Client(InProcessTransport(api))


async def eventually(cond: Any, timeout: float = 10.0) -> Any:
    """Poll an (async or sync) condition until it returns something truthy."""
    import asyncio
    import inspect

    async def poll() -> Any:
        while True:
            r = cond()
            if inspect.isawaitable(r):
                r = await r
            if r:
                return r
            await asyncio.sleep(0.002)

    return await asyncio.wait_for(poll(), timeout)
