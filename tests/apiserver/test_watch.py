"""WATCH: resourceVersion semantics, selectors, bookmarks, timeouts, 410, fan-out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from k8py.apiserver.config import ApiServerConfig
from k8py.apiserver.inprocess import InProcessTransport
from k8py.apiserver.server import ApiServer
from k8py.client.client import Client
from k8py.clock import FakeClock
from k8py.store.memory import MemoryStore

from apiserver_helpers import call, pod


async def nxt(it: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    return await asyncio.wait_for(it.__anext__(), 5)


async def ended(it: AsyncIterator[dict[str, Any]]) -> bool:
    try:
        await asyncio.wait_for(it.__anext__(), 5)
    except StopAsyncIteration:
        return True
    return False


async def sleeping(clock: FakeClock) -> None:
    """Wait until a watch stream has armed its timer on the fake clock."""
    async def loop() -> None:
        while not clock.sleepers:
            await asyncio.sleep(0.001)
    await asyncio.wait_for(loop(), 5)


def summary(ev: dict[str, Any]) -> tuple[str, str]:
    return ev["type"], ev["object"]["metadata"]["name"]


async def test_watch_from_empty_rv_sends_state_then_changes(client: Client) -> None:
    await client.create("configmaps", {"metadata": {"name": "a", "namespace": "default"}})
    w = client.watch("configmaps", "default", bookmarks=False)
    assert summary(await nxt(w)) == ("ADDED", "a")
    await client.create("configmaps", {"metadata": {"name": "b", "namespace": "default"}})
    await client.patch("configmaps", "a", {"data": {"x": "1"}}, "default")
    await client.delete("configmaps", "b", "default")
    evs = [await nxt(w) for _ in range(3)]
    assert [summary(e) for e in evs] == [("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]
    revs = [int(e["object"]["metadata"]["resourceVersion"]) for e in evs]
    assert revs == sorted(revs) and len(set(revs)) == 3
    await w.aclose()


async def test_watch_from_resource_version_replays_later_events_only(client: Client) -> None:
    await client.create("configmaps", {"metadata": {"name": "a", "namespace": "default"}})
    lst = await client.list("configmaps", "default")
    await client.create("configmaps", {"metadata": {"name": "b", "namespace": "default"}})
    w = client.watch("configmaps", "default", resource_version=lst["metadata"]["resourceVersion"], bookmarks=False)
    assert summary(await nxt(w)) == ("ADDED", "b")
    await client.create("configmaps", {"metadata": {"name": "c", "namespace": "default"}})
    assert summary(await nxt(w)) == ("ADDED", "c")
    await w.aclose()


async def test_namespace_scoping(client: Client) -> None:
    await client.create("namespaces", {"metadata": {"name": "other"}})
    rv = str((await client.list("configmaps"))["metadata"]["resourceVersion"])
    w = client.watch("configmaps", "default", resource_version=rv, bookmarks=False)
    await client.create("configmaps", {"metadata": {"name": "x", "namespace": "other"}})
    await client.create("configmaps", {"metadata": {"name": "y", "namespace": "default"}})
    assert summary(await nxt(w)) == ("ADDED", "y")
    await w.aclose()


async def test_selector_transitions(client: Client) -> None:
    cm = {"metadata": {"name": "a", "namespace": "default", "labels": {"app": "web"}}}
    await client.create("configmaps", cm)
    w = client.watch("configmaps", "default", label_selector="app=web", bookmarks=False)
    assert summary(await nxt(w)) == ("ADDED", "a")
    await client.patch("configmaps", "a", {"metadata": {"labels": {"app": "db"}}}, "default")
    ev = await nxt(w)
    assert summary(ev) == ("DELETED", "a")
    assert ev["object"]["metadata"]["labels"] == {"app": "web"}  # its last matching state
    await client.patch("configmaps", "a", {"data": {"k": "v"}}, "default")  # not matching: nothing
    await client.patch("configmaps", "a", {"metadata": {"labels": {"app": "web"}}}, "default")
    ev = await nxt(w)
    assert summary(ev) == ("ADDED", "a") and ev["object"]["data"] == {"k": "v"}
    await w.aclose()


async def test_field_selector_watch_on_pods(client: Client) -> None:
    w = client.watch("pods", field_selector="spec.nodeName=n1", bookmarks=False,
                     resource_version=(await client.list("pods"))["metadata"]["resourceVersion"])
    await client.create("pods", pod("unbound"))
    await client.create("pods", pod("bound", nodeName="n1"))
    assert summary(await nxt(w)) == ("ADDED", "bound")
    await w.aclose()


async def test_bookmarks_follow_the_fake_clock(client: Client, clock: FakeClock, config: ApiServerConfig) -> None:
    w = client.watch("configmaps", "default", bookmarks=True)
    first = asyncio.ensure_future(nxt(w))
    await asyncio.sleep(0)
    await client.create("configmaps", {"metadata": {"name": "a", "namespace": "default"}})
    ev = await first
    assert summary(ev) == ("ADDED", "a")
    pending = asyncio.ensure_future(nxt(w))
    await sleeping(clock)
    assert not pending.done()
    await clock.advance(config.bookmark_interval + 0.1)
    bm = await pending
    assert bm["type"] == "BOOKMARK"
    assert int(bm["object"]["metadata"]["resourceVersion"]) >= int(ev["object"]["metadata"]["resourceVersion"])
    assert bm["object"]["kind"] == "ConfigMap"
    await w.aclose()


async def test_timeout_ends_stream(client: Client, clock: FakeClock) -> None:
    w = client.watch("configmaps", "default", bookmarks=False, timeout_seconds=30)
    done = asyncio.ensure_future(ended(w))
    await sleeping(clock)
    assert not done.done()
    await clock.advance(31)
    assert await done


async def test_compacted_revision_gives_410_error_event(client: Client, store: MemoryStore,
                                                        config: ApiServerConfig) -> None:
    cm = await client.create("configmaps", {"metadata": {"name": "a", "namespace": "default"}})
    old_rv = cm["metadata"]["resourceVersion"]
    for i in range(3):
        await client.patch("configmaps", "a", {"data": {"i": str(i)}}, "default")
    await store.compact(await store.current_revision())
    w = client.watch("configmaps", "default", resource_version="1", bookmarks=False)
    ev = await nxt(w)
    assert ev["type"] == "ERROR"
    st = ev["object"]
    assert st["kind"] == "Status" and st["code"] == 410 and st["reason"] == "Expired"
    assert st["message"].startswith("too old resource version: 1 (")
    assert await ended(w)
    # The latest revision still watches fine.
    w2 = client.watch("configmaps", "default", resource_version=str(await store.current_revision()), bookmarks=False)
    await client.patch("configmaps", "a", {"data": {"i": "new"}}, "default")
    assert summary(await nxt(w2)) == ("MODIFIED", "a")
    await w2.aclose()
    assert old_rv


async def test_resume_older_than_cache_history_uses_store(store: MemoryStore, clock: FakeClock) -> None:
    api = ApiServer(store, ApiServerConfig(watch_history=2), clock)
    await api.start()
    try:
        client = Client(InProcessTransport(api))
        first = await client.create("configmaps", {"metadata": {"name": "c0", "namespace": "default"}})
        for i in range(1, 6):
            await client.create("configmaps", {"metadata": {"name": f"c{i}", "namespace": "default"}})
        w = client.watch("configmaps", "default", resource_version=first["metadata"]["resourceVersion"],
                         bookmarks=False)
        got = [summary(await nxt(w))[1] for _ in range(5)]
        assert got == [f"c{i}" for i in range(1, 6)]
        await client.create("configmaps", {"metadata": {"name": "live", "namespace": "default"}})
        assert summary(await nxt(w)) == ("ADDED", "live")
        await w.aclose()
    finally:
        await api.close()


async def test_many_watchers_share_one_store_watch(client: Client, store: MemoryStore, api: ApiServer) -> None:
    base = len(store._watchers)  # one per watch cache
    rv = (await client.list("configmaps"))["metadata"]["resourceVersion"]
    watchers = [client.watch("configmaps", "default", resource_version=rv, bookmarks=False) for _ in range(300)]
    firsts = [asyncio.ensure_future(nxt(w)) for w in watchers]
    await asyncio.sleep(0)
    await client.create("configmaps", {"metadata": {"name": "fan", "namespace": "default"}})
    results = await asyncio.gather(*firsts)
    assert all(summary(e) == ("ADDED", "fan") for e in results)
    assert len(store._watchers) == base
    cache = api.caches["/registry/core/configmaps/"]
    assert cache.watchers == 300
    # Each watcher got its own object: mutating one does not affect another.
    results[0]["object"]["metadata"]["name"] = "mutated"
    assert results[1]["object"]["metadata"]["name"] == "fan"
    for w in watchers:
        await w.aclose()
    for _ in range(100):  # closed generators unsubscribe as their finalizers run
        if cache.watchers == 0:
            break
        await asyncio.sleep(0)
    assert cache.watchers == 0


async def test_table_watch(api: ApiServer, client: Client) -> None:
    await client.create("pods", pod("t"))
    resp = await call(api, "GET", "/api/v1/namespaces/default/pods", query={"watch": "true"},
                      accept="application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
    assert resp.stream is not None
    ev = await nxt(resp.stream)
    assert ev["type"] == "ADDED" and ev["object"]["kind"] == "Table"
    assert len(ev["object"]["rows"]) == 1 and ev["object"]["rows"][0]["cells"][0] == "t"
    await resp.stream.aclose()  # type: ignore[attr-defined]


async def test_legacy_watch_path_and_single_object(api: ApiServer, client: Client) -> None:
    await client.create("configmaps", {"metadata": {"name": "one", "namespace": "default"}})
    await client.create("configmaps", {"metadata": {"name": "two", "namespace": "default"}})
    resp = await call(api, "GET", "/api/v1/watch/namespaces/default/configmaps/two")
    assert resp.status == 200 and resp.stream is not None
    assert summary(await nxt(resp.stream)) == ("ADDED", "two")
    await client.patch("configmaps", "one", {"data": {"a": "b"}}, "default")
    await client.patch("configmaps", "two", {"data": {"a": "b"}}, "default")
    assert summary(await nxt(resp.stream)) == ("MODIFIED", "two")
    await resp.stream.aclose()  # type: ignore[attr-defined]
    resp = await call(api, "GET", "/api/v1/namespaces/default/configmaps",
                      query={"watch": "1", "fieldSelector": "metadata.name=one"})
    assert summary(await nxt(resp.stream)) == ("ADDED", "one")  # type: ignore[arg-type]
    await resp.stream.aclose()  # type: ignore[union-attr]


async def test_send_initial_events_ends_with_marked_bookmark(api: ApiServer, client: Client) -> None:
    await client.create("configmaps", {"metadata": {"name": "a", "namespace": "default"}})
    resp = await call(api, "GET", "/api/v1/namespaces/default/configmaps",
                      query={"watch": "true", "sendInitialEvents": "true", "allowWatchBookmarks": "true",
                             "resourceVersionMatch": "NotOlderThan"})
    assert summary(await nxt(resp.stream)) == ("ADDED", "a")  # type: ignore[arg-type]
    bm = await nxt(resp.stream)  # type: ignore[arg-type]
    assert bm["type"] == "BOOKMARK"
    assert bm["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    await resp.stream.aclose()  # type: ignore[union-attr]


@pytest.mark.parametrize("query,code", [
    ({"watch": "true", "resourceVersion": "abc"}, 400),
    ({"watch": "true", "timeoutSeconds": "soon"}, 400),
    ({"watch": "true", "labelSelector": "a in ("}, 400),
    ({"watch": "true", "fieldSelector": "spec.bogus=1"}, 400),
])
async def test_bad_watch_requests(api: ApiServer, query: dict[str, str], code: int) -> None:
    resp = await call(api, "GET", "/api/v1/namespaces/default/pods", query=query)
    assert resp.status == code and resp.stream is None and resp.body["kind"] == "Status"


async def test_events_k8s_io_watch_sees_core_writes(client: Client) -> None:
    w = client.watch("events.events.k8s.io", "default", bookmarks=False)
    await asyncio.sleep(0)
    await client.create("events", {"metadata": {"name": "e", "namespace": "default"},
                                   "involvedObject": {"kind": "Pod", "name": "p"}, "message": "hi", "reason": "R"})
    ev = await nxt(w)
    assert ev["type"] == "ADDED" and ev["object"]["apiVersion"] == "events.k8s.io/v1" and ev["object"]["note"] == "hi"
    await w.aclose()


async def test_node_name_index_follows_binding(client: Client, api: ApiServer) -> None:
    rv = (await client.list("pods"))["metadata"]["resourceVersion"]
    pending = client.watch("pods", field_selector="spec.nodeName=", resource_version=rv, bookmarks=False)
    mine = client.watch("pods", field_selector="spec.nodeName=n1", resource_version=rv, bookmarks=False)
    other = client.watch("pods", field_selector="spec.nodeName=n2", resource_version=rv, bookmarks=False)
    other_next = asyncio.ensure_future(nxt(other))
    p = await client.create("pods", pod("p"))
    assert summary(await nxt(pending)) == ("ADDED", "p")
    await client.bind(p, "n1")
    assert summary(await nxt(pending)) == ("DELETED", "p")
    ev = await nxt(mine)
    assert summary(ev) == ("ADDED", "p") and ev["object"]["spec"]["nodeName"] == "n1"
    await client.delete("pods", "p", "default", grace_period_seconds=0)
    assert summary(await nxt(mine)) == ("DELETED", "p")
    cache = api.caches["/registry/core/pods/"]
    assert set(cache._indexed["nodeName"]) == {"", "n1", "n2"}
    assert not other_next.done()  # nothing for n2
    other_next.cancel()
    with pytest.raises(asyncio.CancelledError):
        await other_next
    for w in (pending, mine, other):
        await w.aclose()


async def test_watchers_resuming_after_a_restart_are_served_by_the_cache(store: MemoryStore, clock: FakeClock) -> None:
    first = ApiServer(store, ApiServerConfig(), clock)
    await first.start()
    c1 = Client(InProcessTransport(first))
    cm = await c1.create("configmaps", {"metadata": {"name": "a", "namespace": "default"}})
    await c1.patch("configmaps", "a", {"data": {"v": "1"}}, "default")
    await first.close()
    second = ApiServer(store, ApiServerConfig(), clock)
    await second.start()
    try:
        c2 = Client(InProcessTransport(second))
        w = c2.watch("configmaps", "default", resource_version=cm["metadata"]["resourceVersion"], bookmarks=False)
        ev = await nxt(w)
        assert summary(ev) == ("MODIFIED", "a") and ev["object"]["data"] == {"v": "1"}
        assert len(store._watchers) == 1  # the caches' one store watch (their hub), none of its own
        await w.aclose()
    finally:
        await second.close()
