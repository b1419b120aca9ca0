"""The watch cache's consistent reads on every store (memory, sqlite, etcd): a list
from the cache right after a write sees it, and pages as the store pages."""

from __future__ import annotations

import asyncio

from k8py.apiserver.watchcache import WatchCache
from k8py.store.protocol import ListResult, Store


async def loaded(cache: WatchCache) -> None:
    async def wait() -> None:
        while not cache.state.loaded:
            await asyncio.sleep(0.01)
    await asyncio.wait_for(wait(), 10)


async def cached_list(cache: WatchCache, prefix: str, start_after: str | None = None, limit: int = 0) -> ListResult:
    read = await cache.reader(10)
    assert read is not None, "the cache should serve a consistent read"
    return await read(prefix, start_after, limit)


def keys(res: ListResult) -> list[str]:
    return [kv.key for kv in res.items]


async def test_a_list_right_after_a_write_sees_it(store: Store, pfx: str) -> None:
    prefix = pfx + "cms/"
    await store.create(prefix + "ns/before", b'{"v":0}')
    cache = WatchCache(store, prefix)
    await cache.start()
    try:
        await loaded(cache)
        revs = {}
        for i in range(5):  # each write is in the very next list, with its revision
            kv = await store.create(f"{prefix}ns/c{i}", b'{"v":%d}' % i)
            revs[kv.key] = kv.mod_revision
            res = await cached_list(cache, prefix)
            assert kv.key in keys(res) and res.revision >= kv.mod_revision
        await store.update(prefix + "ns/c1", b'{"v":"new"}', revs[prefix + "ns/c1"])
        deleted = await store.delete(prefix + "ns/c2")
        res = await cached_list(cache, prefix)
        assert prefix + "ns/c2" not in keys(res) and res.revision >= deleted.mod_revision
        assert {k.key: k.value for k in res.items}[prefix + "ns/c1"] == b'{"v":"new"}'
        direct = await store.list(prefix)
        assert [(k.key, k.value, k.mod_revision) for k in res.items] == \
            [(k.key, k.value, k.mod_revision) for k in direct.items]
    finally:
        await cache.close()


async def test_pages_from_the_cache_match_the_store(store: Store, pfx: str) -> None:
    prefix = pfx + "pods/"
    for ns in ("a", "b"):
        for i in range(7):
            await store.create(f"{prefix}{ns}/p{i:02d}", b"{}")
    await store.create(pfx + "podsx/a/not-mine", b"{}")  # a neighbouring prefix
    cache = WatchCache(store, prefix)
    await cache.start()
    try:
        await loaded(cache)
        for sub, start_after, limit in [(prefix, None, 0), (prefix, None, 5), (prefix, f"{prefix}a/p03", 4),
                                        (prefix + "b/", None, 3), (prefix + "b/", f"{prefix}b/p05", 0),
                                        (prefix + "a/", f"{prefix}a/p06", 2)]:
            mine = await cached_list(cache, sub, start_after, limit)
            theirs = await store.list(sub, start_after=start_after, limit=limit)
            assert (keys(mine), mine.more) == (keys(theirs), theirs.more), (sub, start_after, limit)
    finally:
        await cache.close()
