"""Tests of k8py.client.informer against a scripted list/watch fake (for exact control of
410s and errors) and, when available, against the real ApiServer over MemoryStore."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest

from k8py.client.errors import ApiError
from k8py.client.informer import Informer, SharedInformerFactory, object_key
from k8py.clock import FakeClock

from helpers.api import eventually

Obj = dict[str, Any]


class FakeListWatch:
    """A revisioned set of objects with list and watch, as Client offers them.
    `compacted` makes watches from older revisions fail with 410."""

    def __init__(self) -> None:
        self.rev = 0
        self.objs: dict[str, Obj] = {}
        self.log: list[tuple[int, str, Obj]] = []
        self.compacted = 0
        self.fail_lists = 0
        self.lists = 0
        self.gone_as_event = True
        self._changed = asyncio.Event()

    def _put(self, etype: str, obj: Obj) -> None:
        self.rev += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.rev)
        if etype == "DELETED":
            self.objs.pop(object_key(obj), None)
        else:
            self.objs[object_key(obj)] = obj
        self.log.append((self.rev, etype, obj))
        self._changed.set()
        self._changed = asyncio.Event()

    def create(self, name: str, labels: dict[str, str] | None = None, ns: str = "default") -> None:
        self._put("ADDED", {"metadata": {"name": name, "namespace": ns, "labels": labels or {}}})

    def update(self, name: str, labels: dict[str, str], ns: str = "default") -> None:
        o = copy.deepcopy(self.objs[f"{ns}/{name}"])
        o["metadata"]["labels"] = labels
        self._put("MODIFIED", o)

    def delete(self, name: str, ns: str = "default") -> None:
        self._put("DELETED", self.objs[f"{ns}/{name}"])

    def break_watches(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def list(self, resource: Any, namespace: str | None = None, **kw: Any) -> Obj:
        self.lists += 1
        if self.fail_lists:
            self.fail_lists -= 1
            raise ApiError(500, {"reason": "InternalError", "message": "boom"})
        return {"metadata": {"resourceVersion": str(self.rev)},
                "items": [copy.deepcopy(o) for o in self.objs.values()]}

    async def watch(self, resource: Any, namespace: str | None = None, *,
                    resource_version: str | None = None, **kw: Any) -> AsyncIterator[Obj]:
        rv = int(resource_version or 0)
        if rv < self.compacted:
            if self.gone_as_event:
                yield {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}
                return
            raise ApiError(410, {"reason": "Expired", "message": "too old"})
        while True:
            for r, etype, obj in self.log:
                if r > rv:
                    yield {"type": etype, "object": copy.deepcopy(obj)}
                    rv = r
            changed = self._changed
            await changed.wait()
            if rv < self.compacted:  # the stream was cut: the client re-watches
                return


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def add(self, o: Obj) -> None:
        self.events.append(("add", o["metadata"]["name"]))

    def update(self, old: Obj, new: Obj) -> None:
        self.events.append(("update", new["metadata"]["name"]))

    def delete(self, o: Obj) -> None:
        self.events.append(("delete", o["metadata"]["name"]))


async def until(cond: Any, tries: int = 200) -> None:
    for _ in range(tries):
        if cond():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


@pytest.fixture
async def setup() -> AsyncIterator[tuple[FakeListWatch, Informer, Recorder, FakeClock]]:
    fake = FakeListWatch()
    clock = FakeClock()
    inf = Informer(fake, "pods", clock=clock)  # type: ignore[arg-type]
    rec = Recorder()
    inf.add_event_handler(rec.add, rec.update, rec.delete)
    inf.add_index("app", lambda o: [o["metadata"].get("labels", {}).get("app", "")])
    yield fake, inf, rec, clock


async def test_list_then_watch_feeds_cache_handlers_and_index(setup: Any) -> None:
    fake, inf, rec, _ = setup
    fake.create("a", {"app": "web"})
    task = asyncio.create_task(inf.run())
    await asyncio.wait_for(inf.wait_synced(), 1)
    assert inf.has_synced and rec.events == [("add", "a")]
    fake.create("b", {"app": "web"})
    fake.update("a", {"app": "db"})
    fake.delete("b")
    await until(lambda: len(rec.events) == 4)
    assert rec.events == [("add", "a"), ("add", "b"), ("update", "a"), ("delete", "b")]
    assert inf.get("default", "a")["metadata"]["labels"] == {"app": "db"}
    assert inf.get("default", "b") is None
    assert [o["metadata"]["name"] for o in inf.by_index("app", "db")] == ["a"]
    assert inf.by_index("app", "web") == []
    task.cancel()


@pytest.mark.parametrize("gone_as_event", [True, False])
async def test_relist_on_410_replaces_cache_with_diff(setup: Any, gone_as_event: bool) -> None:
    fake, inf, rec, _ = setup
    fake.gone_as_event = gone_as_event
    fake.create("a")
    fake.create("b")
    task = asyncio.create_task(inf.run())
    await asyncio.wait_for(inf.wait_synced(), 1)
    # changes the watch will not deliver: compact past them and cut the stream
    fake.log.clear()
    fake.delete("a")
    fake.create("c")
    fake.log.clear()
    fake.compacted = fake.rev
    fake.break_watches()
    await until(lambda: inf.relists == 2)
    await until(lambda: len(rec.events) == 4)
    assert sorted(rec.events[2:]) == [("add", "c"), ("delete", "a")]
    assert sorted(inf.keys()) == ["default/b", "default/c"]
    task.cancel()


async def test_list_failure_backs_off_on_the_clock(setup: Any) -> None:
    fake, inf, rec, clock = setup
    fake.fail_lists = 2
    fake.create("a")
    task = asyncio.create_task(inf.run())
    await until(lambda: fake.lists == 1 and clock.sleepers == 1)
    assert not inf.has_synced
    await clock.advance(0.8)
    await until(lambda: fake.lists == 2 and clock.sleepers == 1)
    await clock.advance(0.8)
    assert fake.lists == 2  # back-off doubled to 1.6 s
    await clock.advance(0.8)
    await asyncio.wait_for(inf.wait_synced(), 1)
    assert rec.events == [("add", "a")]
    task.cancel()


async def test_handler_failure_does_not_stop_informer(setup: Any) -> None:
    fake, inf, rec, _ = setup

    def bad(o: Obj) -> None:
        raise RuntimeError("handler bug")

    inf.add_event_handler(on_add=bad)
    task = asyncio.create_task(inf.run())
    await asyncio.wait_for(inf.wait_synced(), 1)
    fake.create("a")
    fake.create("b")
    await until(lambda: len(rec.events) == 2)
    task.cancel()


async def test_shared_factory_returns_one_informer_per_resource() -> None:
    fake = FakeListWatch()
    f = SharedInformerFactory(fake, FakeClock())  # type: ignore[arg-type]
    a = f.informer("pods")
    assert f.informer("po") is a
    assert f.informer("pods", field_selector="spec.nodeName=x") is not a
    fake.create("p")
    runner = asyncio.create_task(f.run())
    await asyncio.wait_for(f.wait_synced(), 1)
    assert a.keys() == ["default/p"]
    runner.cancel()


async def test_against_the_real_api_server() -> None:
    """List + watch through the in-process client: adds, updates, deletes and a
    field selector, as the scheduler and simulated nodes use them."""
    from k8py.apiserver.inprocess import InProcessTransport
    from k8py.apiserver.server import ApiServer
    from k8py.client.client import Client
    from k8py.store.memory import MemoryStore

    clock = FakeClock()
    store = MemoryStore()
    await store.start()
    api = ApiServer(store, None, clock)
    await api.start()
    client = Client(InProcessTransport(api))

    def pod(name: str, node: str = "") -> Obj:
        spec: Obj = {"containers": [{"name": "c", "image": "busybox"}]}
        if node:
            spec["nodeName"] = node
        return {"metadata": {"name": name, "namespace": "default"}, "spec": spec}

    await client.create("pods", pod("a", "n1"), "default")
    await client.create("pods", pod("b", "n2"), "default")
    everything = Informer(client, "pods", clock=clock)
    on_n1 = Informer(client, "pods", clock=clock, field_selector="spec.nodeName=n1")
    rec = Recorder()
    on_n1.add_event_handler(rec.add, rec.update, rec.delete)
    tasks = [asyncio.create_task(i.run()) for i in (everything, on_n1)]
    try:
        await asyncio.wait_for(asyncio.gather(everything.wait_synced(), on_n1.wait_synced()), 5)
        assert sorted(everything.keys()) == ["default/a", "default/b"]
        assert on_n1.keys() == ["default/a"] and everything.list()[0]["kind"] == "Pod"
        await client.create("pods", pod("c", "n1"), "default")
        await client.patch("pods", "a", {"metadata": {"labels": {"x": "y"}}}, "default")
        await client.delete("pods", "a", "default", grace_period_seconds=0)
        await eventually(lambda: len(rec.events) >= 4, what="four events")
        assert rec.events == [("add", "a"), ("add", "c"), ("update", "a"), ("delete", "a")]
        assert sorted(everything.keys()) == ["default/b", "default/c"]
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await api.close()
