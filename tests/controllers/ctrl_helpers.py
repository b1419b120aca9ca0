"""Helpers for controller tests: a real ApiServer over MemoryStore, reached through the
in-process transport, with a FakeClock; helpers to wait for conditions (never sleeps)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from k8py.apiserver.server import ApiServer
from k8py.client.client import Client
from k8py.client.events import EventRecorder
from k8py.client.informer import SharedInformerFactory
from k8py.clock import FakeClock
from k8py.controllers.base import Controller

from helpers.api import start_api

Obj = dict[str, Any]


class RecordingEventRecorder(EventRecorder):
    """An EventRecorder that also remembers what it was asked to record, in order."""

    def __init__(self, client: Client, component: str, clock: FakeClock) -> None:
        super().__init__(client, component, clock)
        self.recorded: list[tuple[str, str, str, str]] = []  # (namespace/name, type, reason, message)

    def event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        md = obj.get("metadata") or {}
        self.recorded.append((f"{md.get('namespace', '')}/{md.get('name')}", type_, reason, message))
        super().event(obj, type_, reason, message)

    def for_reason(self, reason: str) -> list[str]:
        """Messages recorded with a reason."""
        return [m for _, _, r, m in self.recorded if r == reason]


@dataclass
class Cluster:
    api: ApiServer
    client: Client
    clock: FakeClock
    factory: SharedInformerFactory
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    recorders: list[RecordingEventRecorder] = field(default_factory=list)

    def recorder(self, component: str) -> RecordingEventRecorder:
        r = RecordingEventRecorder(self.client, component, self.clock)
        self.recorders.append(r)
        return r

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

    async def with_status(self, resource: str, name: str, ns: str = "default", **want: Any) -> Obj | None:
        """The object once every named status field has the wanted value (absent counts as 0)."""
        o = await self.client.get(resource, name, ns)
        st = o.get("status") or {}
        return o if all(st.get(k, 0) == v for k, v in want.items()) else None

    async def events(self, reason: str, ns: str = "default") -> list[str]:
        """Messages of the Events in the API with a reason, once the recorders made here wrote theirs."""
        for r in self.recorders:
            await r.flush()
        return [e.get("message", "") for e in await self.list("events", ns) if e.get("reason") == reason]


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    clock = FakeClock()
    api, client = await start_api(clock)
    c = Cluster(api, client, clock, SharedInformerFactory(client, clock))
    try:
        yield c
    finally:
        for t in c.tasks:
            t.cancel()
        c.factory.stop()
        await asyncio.gather(*c.tasks, return_exceptions=True)
        await api.close()
        await api.store.close()


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


class FakeKubelet:
    """Stands in for the node agents: makes every new pod Running and Ready (unless
    `hold` is set), with a unique IP; `observe` is called with the pod cache after
    every pod event (to check invariants over the whole run)."""

    def __init__(self, c: Cluster, observe: Callable[[list[Obj]], None] | None = None) -> None:
        from k8py.client.informer import Informer
        self.c = c
        self.hold = False
        self.observe = observe
        self.inf = Informer(c.client, "pods", clock=c.clock)
        self.inf.add_event_handler(self._seen, lambda o, n: self._seen(n), lambda o: self._observe())
        self._next_ip = 2
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.ensure_future(self.inf.run())
        self.c.tasks.append(self.task)

    def _observe(self) -> None:
        if self.observe is not None:
            self.observe(self.inf.list())

    async def _seen(self, pod: Obj) -> None:
        self._observe()
        if self.hold or pod["metadata"].get("deletionTimestamp"):
            return
        conds = {x["type"]: x["status"] for x in (pod.get("status") or {}).get("conditions") or []}
        if conds.get("Ready") == "True":
            return
        await self.make_ready(pod)

    async def make_ready(self, pod: Obj) -> None:
        from k8py.client.errors import ApiError
        ip = f"10.42.{self._next_ip // 250}.{self._next_ip % 250 + 2}"
        self._next_ip += 1
        try:
            await set_pod_state(self.c.client, pod, ready=True, ip=ip, when=self.c.clock.now())
        except ApiError as e:
            if not (e.not_found or e.conflict):
                raise

    async def release(self) -> None:
        """Stop holding: make every pending pod ready now."""
        self.hold = False
        for p in self.inf.list():
            if not p["metadata"].get("deletionTimestamp"):
                conds = {x["type"]: x["status"] for x in (p.get("status") or {}).get("conditions") or []}
                if conds.get("Ready") != "True":
                    await self.make_ready(p)
