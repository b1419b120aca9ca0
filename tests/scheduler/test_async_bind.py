"""The scheduler's asynchronous bind over the real ApiServer (MemoryStore, FakeClock), with
the scheduler's `bind` call held, failed or lost by the test: a failed bind frees the
node and re-queues the pod (and the pods it had crowded out), pods scheduled while binds
are pending never overcommit a node and are bound once each, an assumption never
confirmed expires and the pod is scheduled again."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.clock import FakeClock
from k8py.scheduler.scheduler import Scheduler

from helpers.api import eventually, start_api
from sched_helpers import node, pod

Obj = dict[str, Any]
BindFn = Callable[[Obj, str], Awaitable[None]]


@dataclass
class Env:
    client: Client
    clock: FakeClock
    sched: Scheduler
    real_bind: BindFn
    calls: Counter[str] = field(default_factory=Counter)

    def intercept(self, fn: Callable[[Env, Obj, str], Awaitable[None]]) -> None:
        async def bind(p: Obj, node_name: str) -> None:
            self.calls[p["metadata"]["name"]] += 1
            await fn(self, p, node_name)
        self.sched.client.bind = bind  # type: ignore[method-assign]

    def cpu_on(self, name: str) -> int:
        ni = self.sched.cache.node_info(name)
        assert ni is not None
        return ni.requested.milli_cpu

    async def node_of(self, name: str) -> str | None:
        p = await self.client.get("pods", name, "default")
        return p["spec"].get("nodeName")


async def make_env(nodes: list[Obj], ttl: float) -> AsyncIterator[Env]:
    clock = FakeClock()
    api, client = await start_api(clock)
    for n in nodes:
        await client.create("nodes", n)
    sched_client = Client(client.transport)
    sched = Scheduler(sched_client, clock, record_scheduled_events=False, assumed_pod_ttl=ttl)
    env = Env(client, clock, sched, sched_client.bind)
    task = asyncio.create_task(sched.run())
    yield env
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await api.close()


@pytest.fixture
async def one_small_node() -> AsyncIterator[Env]:
    async for env in make_env([node("n1", cpu="1", memory="4Gi")], ttl=30.0):
        yield env


@pytest.fixture
async def two_nodes() -> AsyncIterator[Env]:
    async for env in make_env([node("n1", cpu="4", memory="8Gi"), node("n2", cpu="4", memory="8Gi")], ttl=30.0):
        yield env


async def test_failed_bind_frees_the_node_and_requeues_the_pods(one_small_node: Env) -> None:
    env = one_small_node
    failed = asyncio.Event()

    async def fail_first(env: Env, p: Obj, node_name: str) -> None:
        if not failed.is_set():
            await failed.wait()  # held until "b" has been found not to fit beside "a"
            raise ApiError(500, {"kind": "Status", "message": "etcdserver: request timed out"})
        await env.real_bind(p, node_name)

    env.intercept(fail_first)
    await env.client.create("pods", pod("a", "1"), "default")
    await eventually(lambda: env.calls["a"] == 1, what="a's bind")
    assert env.cpu_on("n1") == 1000  # assumed: counted at once
    await env.client.create("pods", pod("b", "1"), "default")
    await eventually(lambda: env.sched.queue.is_unschedulable("default/b"), what="b parked")

    failed.set()
    await eventually(lambda: env.sched.queue.in_backoff("default/a"), what="a back in the queue")
    assert env.cpu_on("n1") == 0
    assert env.sched.cache.node_of("default/a") is None
    assert not env.sched.queue.is_unschedulable("default/b")  # the freed room is tried again

    await env.clock.advance(1.0)  # both back-offs are over: one of them gets the node
    await eventually(lambda: env.sched.scheduled == 1, what="one bind")
    await env.sched.wait_idle()
    placed = [await env.node_of("a"), await env.node_of("b")]
    assert sorted(placed, key=str) == [None, "n1"]
    assert env.cpu_on("n1") == 1000


async def test_pods_scheduled_while_binds_are_pending_never_overcommit(two_nodes: Env) -> None:
    env = two_nodes
    release = asyncio.Event()

    async def held(env: Env, p: Obj, node_name: str) -> None:
        await release.wait()
        await env.real_bind(p, node_name)

    env.intercept(held)
    for i in range(10):
        await env.client.create("pods", pod(f"p{i}", "1"), "default")
    await eventually(lambda: sum(env.calls.values()) == 8, what="8 binds in flight")
    await eventually(lambda: env.sched.queue.pending()["unschedulable"] == 2, what="2 pods parked")
    assert (env.cpu_on("n1"), env.cpu_on("n2")) == (4000, 4000)  # nothing bound yet, all assumed

    release.set()
    await eventually(lambda: env.sched.scheduled == 8, what="8 pods bound")
    await env.sched.wait_idle()
    placed = Counter([await env.node_of(f"p{i}") for i in range(10)])
    assert placed == {"n1": 4, "n2": 4, None: 2}
    assert set(env.calls.values()) == {1}  # no pod bound twice
    await eventually(lambda: not any(env.sched.cache.is_assumed(f"default/p{i}") for i in range(10)),
                     what="the informer confirms the binds")  # assumed -> bound
    assert (env.cpu_on("n1"), env.cpu_on("n2")) == (4000, 4000)


async def test_an_assumption_never_confirmed_expires_and_the_pod_is_scheduled_again(one_small_node: Env) -> None:
    env = one_small_node

    async def lost_first(env: Env, p: Obj, node_name: str) -> None:
        if env.calls[p["metadata"]["name"]] > 1:
            await env.real_bind(p, node_name)
        # the first answer is a success the API never saw: the watch will not confirm it

    env.intercept(lost_first)
    await env.client.create("pods", pod("a", "1"), "default")
    await eventually(lambda: env.sched.scheduled == 1, what="the lost bind")
    assert env.sched.cache.is_assumed("default/a") and env.cpu_on("n1") == 1000
    await env.clock.advance(25.0)
    assert env.sched.cache.is_assumed("default/a")  # not yet
    await env.clock.advance(5.5)  # past the 30 s TTL, within the pod's 1 s back-off after it
    await eventually(lambda: env.sched.cache.node_of("default/a") is None, what="expiry")
    assert env.cpu_on("n1") == 0 and env.calls["a"] == 1
    assert env.sched.queue.in_backoff("default/a")

    await env.clock.advance(1.0)  # its back-off
    await eventually(lambda: env.calls["a"] == 2, what="a scheduled again")
    assert await eventually(lambda: env.node_of("a"), what="a bound") == "n1"
    await eventually(lambda: not env.sched.cache.is_assumed("default/a"), what="confirmed")
    assert env.sched.cache.node_of("default/a") == "n1" and env.cpu_on("n1") == 1000


@pytest.mark.parametrize("finished, confirmed, expired", [
    (True, False, ["default/a"]),  # bind returned, never seen: expires
    (True, True, []),              # the watch confirmed it: bound, never expires
    (False, False, []),            # bind still in flight: no deadline yet
])
def test_cache_expiry(finished: bool, confirmed: bool, expired: list[str]) -> None:
    from k8py.scheduler.cache import SchedulerCache
    from k8py.scheduler.types import PodInfo

    cache = SchedulerCache()
    cache.add_or_update_node(node("n1", cpu="1"))
    p = pod("a", "1")
    cache.assume(PodInfo.from_pod(p), "n1")
    if finished:
        cache.finish_binding("default/a", 10.0)
    if confirmed:
        cache.add_or_update_pod({**p, "spec": {**p["spec"], "nodeName": "n1"}})
    assert cache.expire_assumed(9.0) == []
    assert cache.expire_assumed(10.0) == expired
    assert cache.node_of("default/a") == (None if expired else "n1")
