"""Helpers for controller tests: a real ApiServer over MemoryStore, reached through the
in-process transport, with a FakeClock; helpers to wait for conditions (never sleeps)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable

import pytest

from k8py.apiserver.request import ApiRequest
from k8py.apiserver.server import ApiServer
from k8py.client.client import Client
from k8py.client.informer import SharedInformerFactory
from k8py.clock import FakeClock
from k8py.controllers.base import Controller
from k8py.controllers.events import EventRecorder
from k8py.store.memory import MemoryStore

Obj = dict[str, Any]

try:
    from k8py.client.inprocess import InProcessTransport  # type: ignore[import-not-found]
except ImportError:  # until the client package ships it: the same thing, minimal
    class InProcessTransport:  # type: ignore[no-redef]
        def __init__(self, api: ApiServer) -> None:
            self.api = api

        async def request(self, method: str, path: str, *, query: dict[str, str] | None = None,
                          body: Any = None, content_type: str = "application/json") -> tuple[int, Any]:
            raw = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else b"")
            resp = await self.api.handle(ApiRequest(method, path, dict(query or {}), raw,
                                                    {"content-type": content_type}))
            return resp.status, resp.body

        async def stream(self, path: str, *, query: dict[str, str] | None = None) -> AsyncIterator[Obj]:
            from k8py.client.errors import ApiError
            resp = await self.api.handle(ApiRequest("GET", path, dict(query or {})))
            if resp.status >= 400 or resp.stream is None:
                raise ApiError(resp.status, resp.body)
            async for ev in resp.stream:
                yield ev

        async def close(self) -> None:
            pass


@dataclass
class Cluster:
    api: ApiServer
    client: Client
    clock: FakeClock
    factory: SharedInformerFactory
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    def recorder(self, component: str) -> EventRecorder:
        return EventRecorder(self.client, component, self.clock)

    async def start(self, *controllers: Controller) -> None:
        self.factory.start()
        for c in controllers:
            self.tasks.append(asyncio.ensure_future(c.run()))
        await asyncio.wait_for(self.factory.wait_synced(), 5)

    async def until(self, cond: Callable[[], Any], what: str = "condition", steps: int = 3000,
                    tick: float = 0.01) -> Any:
        """Wait until cond() is truthy (it may be a coroutine function), letting the
        event loop run and moving the fake clock forward by `tick` now and then (so
        rate-limited retries fire). Returns cond()'s value."""
        for i in range(steps):
            v = cond()
            if asyncio.iscoroutine(v):
                v = await v
            if v:
                return v
            if i % 20 == 19:
                await self.clock.advance(tick)
            else:
                await asyncio.sleep(0)
        raise AssertionError(f"timed out waiting for {what}")

    async def list(self, resource: str, ns: str | None = "default", **kw: Any) -> list[Obj]:
        return (await self.client.list(resource, ns, **kw)).get("items") or []

    async def events(self, reason: str, ns: str = "default") -> list[str]:
        return [e.get("message", "") for e in await self.list("events", ns) if e.get("reason") == reason]


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    clock = FakeClock()
    store = MemoryStore()
    await store.start()
    api = ApiServer(store, clock=clock)
    await api.start()
    client = Client(InProcessTransport(api))
    c = Cluster(api, client, clock, SharedInformerFactory(client, clock))
    try:
        yield c
    finally:
        for t in c.tasks:
            t.cancel()
        c.factory.stop()
        await asyncio.gather(*c.tasks, return_exceptions=True)
        close = getattr(api, "close", None)
        if close is not None:
            await close()
        await store.close()


# ------------------------------------------------------------------ builders


def pod_template(labels: dict[str, str], image: str = "nginx:1.25", **spec: Any) -> Obj:
    return {"metadata": {"labels": dict(labels)},
            "spec": {"containers": [{"name": "c", "image": image,
                                     "ports": [{"name": "http", "containerPort": 80}]}], **spec}}


def node(name: str, labels: dict[str, str] | None = None, taints: list[Obj] | None = None) -> Obj:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "spec": {"taints": taints or []},
            "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                       "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}


async def set_pod_state(client: Client, pod: Obj, *, ready: bool, ip: str | None = None,
                        node_name: str | None = None, restarts: int = 0, when: float = 0.0) -> Obj:
    """What a kubelet would report: phase Running and the Ready condition."""
    from k8py.clock import rfc3339
    md = pod["metadata"]
    live = await client.get("pods", md["name"], md["namespace"])
    if node_name and not live["spec"].get("nodeName"):
        await client.bind(live, node_name)
        live = await client.get("pods", md["name"], md["namespace"])
    t = rfc3339(when)
    live["status"] = {
        "phase": "Running",
        "podIP": ip or live.get("status", {}).get("podIP") or "10.42.0.1",
        "conditions": [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": t},
                       {"type": "ContainersReady", "status": "True" if ready else "False",
                        "lastTransitionTime": t}],
        "containerStatuses": [{"name": "c", "ready": ready, "restartCount": restarts, "image": "nginx",
                               "imageID": "", "started": True, "state": {"running": {"startedAt": t}}}],
    }
    live["status"]["podIPs"] = [{"ip": live["status"]["podIP"]}]
    return await client.update_status("pods", live)
