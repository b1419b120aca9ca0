"""A NodeAgent over FakeRuntime, FakeClock and an in-process API (MemoryStore) for unit tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from k8py.clock import FakeClock
from k8py.kubelet.agent import AgentOptions, NodeAgent
from k8py.runtime.fake import FakeRuntime

from helpers.api import eventually, publish_root_ca, start_api

NODE = "node-1"


class Harness:
    def __init__(self, api: Any, client: Any, clock: FakeClock, runtime: FakeRuntime, agent: NodeAgent,
                 tmp: Path) -> None:
        self.api = api
        self.client = client
        self.clock = clock
        self.runtime = runtime
        self.agent = agent
        self.tmp = tmp
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.agent.run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None

    async def tick(self, seconds: float = 1.0) -> None:
        await self.clock.advance(seconds)
        for _ in range(20):
            await asyncio.sleep(0)

    async def create_pod(self, name: str, containers: list[dict], **spec: Any) -> dict:
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
                "spec": {"nodeName": NODE, "containers": containers, **spec}}
        return await self.client.create("pods", body, "default")

    async def pod(self, name: str) -> dict:
        return await self.client.get("pods", name, "default")

    async def until(self, cond: Any, timeout: float = 30.0, step: float = 0.0) -> Any:
        """Poll cond (sync or async); with step > 0 advance the fake clock between polls. The
        timeout is real time, generous for a loaded machine: it only bounds a failing test."""
        async def poll() -> Any:
            import inspect
            while True:
                r = cond()
                if inspect.isawaitable(r):
                    r = await r
                if r:
                    return r
                if step:
                    await self.tick(step)
                else:
                    await asyncio.sleep(0.002)
        return await asyncio.wait_for(poll(), timeout)

    def containers(self, name: str | None = None) -> list[Any]:
        return sorted((st for _, st in self.runtime.containers.values() if name is None or st.name == name),
                      key=lambda s: s.attempt)

    async def events(self, reason: str | None = None) -> list[dict]:
        await self.agent.recorder.flush()
        items = (await self.client.list("events", "default"))["items"]
        return [e for e in items if reason is None or e["reason"] == reason]


def cstatus(pod: dict, name: str | None = None) -> dict:
    for s in (pod.get("status") or {}).get("containerStatuses") or []:
        if name is None or s["name"] == name:
            return s
    return {}


async def make_harness(tmp: Path, runtime: FakeRuntime | None = None, **opts: Any) -> Harness:
    clock = FakeClock()
    api, client = await start_api(clock)
    await publish_root_ca(client)
    rt = runtime or FakeRuntime(now=clock.now)
    rt.now = clock.now
    o = AgentOptions(root_dir=str(tmp / "kubelet"), log_root=str(tmp / "logs"), pod_cidr="10.99.0.0/24",
                     **opts)
    agent = NodeAgent(client, rt, None, NODE, clock, o)
    return Harness(api, client, clock, rt, agent, tmp)


__all__ = ["Harness", "make_harness", "cstatus", "eventually", "NODE"]


async def harness_fixture(tmp_path: Path, **opts: Any) -> AsyncIterator[Harness]:
    h = await make_harness(tmp_path, **opts)
    h.start()
    await h.until(lambda: h.agent.ready.is_set())
    try:
        yield h
    finally:
        await h.stop()
        await h.api.close() if hasattr(h.api, "close") else None
