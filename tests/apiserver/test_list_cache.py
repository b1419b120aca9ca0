"""Consistent lists from the watch cache: a list right after a write sees it, without
reading the store; pages and continue tokens as the store gives them; a cache that
cannot catch up is passed over for the store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from k8py.api import resources
from k8py.apiserver import listing
from k8py.apiserver.config import ApiServerConfig
from k8py.apiserver.inprocess import InProcessTransport
from k8py.apiserver.selection import compile_selection
from k8py.apiserver.server import ApiServer
from k8py.client.client import Client
from k8py.clock import FakeClock
from k8py.store.memory import MemoryStore
from k8py.store.sqlite import SqliteStore

CM_PREFIX = "/registry/core/configmaps/"


class Counting:
    """Records the prefixes the store is asked to list."""

    def __init__(self, store: Any) -> None:
        self.prefixes: list[str] = []
        real = store.list

        async def counted(prefix: str, **kw: Any) -> Any:
            self.prefixes.append(prefix)
            return await real(prefix, **kw)
        store.list = counted

    def configmap_lists(self) -> int:
        return sum(1 for p in self.prefixes if p.startswith(CM_PREFIX))


@pytest.fixture(params=["memory", "sqlite"])
async def served(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[ApiServer, Client, Counting]]:
    store: Any = MemoryStore() if request.param == "memory" else SqliteStore(str(tmp_path / "state.db"))
    await store.start()
    api = ApiServer(store, ApiServerConfig(), FakeClock())
    await api.start()
    cache = api.caches[CM_PREFIX]

    async def loaded() -> None:
        while not cache.state.loaded:
            await asyncio.sleep(0.01)
    await asyncio.wait_for(loaded(), 10)
    try:
        yield api, Client(InProcessTransport(api)), Counting(store)
    finally:
        await api.close()
        await store.close()


def names(lst: dict[str, Any]) -> list[str]:
    return [i["metadata"]["name"] for i in lst["items"]]


async def test_a_list_right_after_a_write_sees_it_from_the_cache(served: tuple[ApiServer, Client, Counting]) -> None:
    api, client, counting = served
    for i in range(5):
        made = await client.create("configmaps", {"metadata": {"name": f"c{i}", "namespace": "default"}})
        lst = await client.list("configmaps", "default")
        assert f"c{i}" in names(lst)
        assert int(lst["metadata"]["resourceVersion"]) >= int(made["metadata"]["resourceVersion"])
        mine = next(o for o in lst["items"] if o["metadata"]["name"] == f"c{i}")
        assert mine == made
    await client.patch("configmaps", "c1", {"data": {"k": "v"}}, "default")
    await client.delete("configmaps", "c2", "default")
    lst = await client.list("configmaps", "default")
    assert names(lst) == ["c0", "c1", "c3", "c4"]
    assert lst["items"][1]["data"] == {"k": "v"}
    assert counting.configmap_lists() == 0  # all from the cache


async def test_pages_and_continue_tokens_from_the_cache(served: tuple[ApiServer, Client, Counting]) -> None:
    api, client, counting = served
    for i in range(12):
        await client.create("configmaps", {"metadata": {"name": f"p{i:02d}", "namespace": "default",
                                                        "labels": {"odd": str(i % 2)}}})
    r = resources.lookup("", "configmaps")
    assert r is not None
    for label, limit in [(None, 5), ("odd=1", 2), (None, 100)]:
        sel = compile_selection(r, label, None, "default")
        pages: list[tuple[list[str], str | None]] = []
        direct: list[tuple[list[str], str | None]] = []
        for out, cache in ((pages, api.caches[CM_PREFIX]), (direct, None)):
            token: str | None = None
            while True:
                items, _rev, token = await listing.list_objects(api.store, r, "default", sel, limit, token, cache)
                out.append(([i["metadata"]["name"] for i in items], token))
                if token is None:
                    break
        assert pages == direct, (label, limit)
    before = counting.configmap_lists()  # the direct reads above
    lst = await client.list("configmaps", "default", limit=5)
    assert len(lst["items"]) == 5 and lst["metadata"]["continue"]
    nxt = await client.list("configmaps", "default", limit=5, continue_=lst["metadata"]["continue"])
    assert names(nxt) == [f"p{i:02d}" for i in range(5, 10)]
    assert counting.configmap_lists() == before  # both pages from the cache


async def test_a_cache_that_cannot_catch_up_is_passed_over(served: tuple[ApiServer, Client, Counting],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    api, client, counting = served
    cache = api.caches[CM_PREFIX]
    assert cache._hub is not None

    async def never(rev: int, timeout: float) -> bool:
        return False
    monkeypatch.setattr(cache._hub, "wait_for", never)
    await client.create("configmaps", {"metadata": {"name": "x", "namespace": "default"}})
    assert names(await client.list("configmaps", "default")) == ["x"]
    assert counting.configmap_lists() == 1  # read from the store


async def test_a_watch_starts_with_the_state_from_the_cache(served: tuple[ApiServer, Client, Counting]) -> None:
    api, client, counting = served
    await client.create("configmaps", {"metadata": {"name": "a", "namespace": "default"}})
    w = client.watch("configmaps", "default", bookmarks=False)
    first = await asyncio.wait_for(w.__anext__(), 5)
    assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "a")
    await client.create("configmaps", {"metadata": {"name": "b", "namespace": "default"}})
    nxt = await asyncio.wait_for(w.__anext__(), 5)
    assert (nxt["type"], nxt["object"]["metadata"]["name"]) == ("ADDED", "b")
    await w.aclose()
    assert counting.configmap_lists() == 0


async def test_two_api_servers_on_one_store_share_its_watch(tmp_path: Path) -> None:
    store = MemoryStore()
    await store.start()
    one, two = ApiServer(store, ApiServerConfig(), FakeClock()), ApiServer(store, ApiServerConfig(), FakeClock())
    await one.start()
    await two.start()
    try:
        c1, c2 = Client(InProcessTransport(one)), Client(InProcessTransport(two))
        w = c2.watch("configmaps", "default", resource_version=str(await store.current_revision()), bookmarks=False)
        await c1.create("configmaps", {"metadata": {"name": "a", "namespace": "default"}})
        ev = await asyncio.wait_for(w.__anext__(), 5)
        assert (ev["type"], ev["object"]["metadata"]["name"]) == ("ADDED", "a")
        await one.close()  # the other keeps following the store
        await c2.create("configmaps", {"metadata": {"name": "b", "namespace": "default"}})
        ev = await asyncio.wait_for(w.__anext__(), 5)
        assert (ev["type"], ev["object"]["metadata"]["name"]) == ("ADDED", "b")
        assert len(store._watchers) == 1
        await w.aclose()
    finally:
        await one.close()
        await two.close()
        await store.close()
