"""An ApiServer over MemoryStore with an in-process client, and condition polling, for
simulated-node and controller tests."""

from __future__ import annotations

from typing import Any

# ------------------------------------------------------------------ an API over MemoryStore
import json as _json  # noqa: E402
from typing import AsyncIterator  # noqa: E402


class _ShimTransport:
    """Stands in for k8py.client.inprocess.InProcessTransport until it lands."""

    def __init__(self, api: Any) -> None:
        self.api = api

    async def request(self, method: str, path: str, *, query: dict[str, str] | None = None,
                      body: Any = None, content_type: str = "application/json") -> tuple[int, Any]:
        from k8py.apiserver.request import ApiRequest
        raw = body if isinstance(body, bytes) else (b"" if body is None else _json.dumps(body).encode())
        resp = await self.api.handle(ApiRequest(method, path, dict(query or {}), raw,
                                                {"content-type": content_type}))
        return resp.status, resp.body

    async def stream(self, path: str, *, query: dict[str, str] | None = None) -> AsyncIterator[dict[str, Any]]:
        from k8py.apiserver.request import ApiRequest
        from k8py.client.errors import ApiError
        resp = await self.api.handle(ApiRequest("GET", path, dict(query or {})))
        if resp.status >= 400 or resp.stream is None:
            raise ApiError(resp.status, resp.body)
        async for ev in resp.stream:
            yield ev

    async def close(self) -> None:
        pass


async def start_api(clock: Any) -> tuple[Any, Any]:
    """(ApiServer, Client) over a fresh MemoryStore; the caller closes the api."""
    from k8py.apiserver.server import ApiServer
    from k8py.client.client import Client
    from k8py.store.memory import MemoryStore
    store = MemoryStore()
    await store.start()
    api = ApiServer(store, None, clock)
    await api.start()
    try:
        from k8py.client.inprocess import InProcessTransport  # type: ignore[import-not-found]
        transport: Any = InProcessTransport(api)
    except ImportError:
        transport = _ShimTransport(api)
    return api, Client(transport)


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
