"""EtcdStore over several members: failing over to the next member, and resolving writes
whose answer was lost (applied once, reported once)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from k8py.store.errors import Conflict, KeyExists, NotFound
from k8py.store.etcd import EtcdStore
from k8py.store.protocol import WatchEvent


def _dead_url() -> str:
    import socket
    with socket.socket() as s:  # bound, never listening: connections are refused
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


async def _next(it: AsyncIterator[WatchEvent]) -> WatchEvent:
    return await asyncio.wait_for(it.__anext__(), 30)


async def test_a_refused_member_is_skipped(etcd_url: str) -> None:
    pfx = f"/k8py-test/{uuid.uuid4().hex[:12]}/"
    s = EtcdStore([_dead_url(), etcd_url])
    await s.start()
    try:
        kv = await s.create(pfx + "a", b"1")
        assert await s.get(pfx + "a") == kv
        assert s.url == etcd_url
        assert [k.key for k in (await s.list(pfx)).items] == [pfx + "a"]
    finally:
        await s.close()


class LosingProxy:
    """An etcd member's stand-in that forwards each txn to the real etcd, then drops the
    connection before answering, `lose` times: the write is applied, its answer lost."""

    def __init__(self, target: str, lose: int) -> None:
        self.target, self.lose = target, lose
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{path:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        async with aiohttp.ClientSession() as sess, \
                sess.post(self.target + request.path, data=body) as resp:
            data = await resp.read()
        if request.path == "/v3/kv/txn" and self.lose > 0:
            self.lose -= 1
            assert request.transport is not None
            request.transport.close()  # applied; the answer never reaches the client
        return web.Response(body=data, content_type="application/json")

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


Op = Callable[[EtcdStore, str], Awaitable[object]]


async def _create(s: EtcdStore, key: str) -> object:
    return await s.create(key, b"new")


async def _update(s: EtcdStore, key: str) -> object:
    kv = await s.get(key)
    assert kv is not None
    return await s.update(key, b"changed", kv.mod_revision)


async def _delete(s: EtcdStore, key: str) -> object:
    kv = await s.get(key)
    assert kv is not None
    return await s.delete(key, kv.mod_revision)


@pytest.mark.parametrize("op, existing, want_value, without_resolution", [
    (_create, None, b"new", KeyExists),
    (_update, b"old", b"changed", Conflict),
    (_delete, b"old", None, NotFound),
])
async def test_a_write_whose_answer_was_lost_is_reported_once(
        etcd_url: str, op: Op, existing: bytes | None, want_value: bytes | None,
        without_resolution: type[Exception]) -> None:
    key = f"/k8py-test/{uuid.uuid4().hex[:12]}/k"
    direct = EtcdStore(etcd_url)
    proxy = LosingProxy(etcd_url, lose=1)
    await direct.start()
    await proxy.start()
    s = EtcdStore([proxy.url, etcd_url])
    await s.start()
    try:
        if existing is not None:
            await direct.create(key, existing)
        rev0 = await direct.current_revision()
        await op(s, key)  # the first attempt is applied, its answer lost; the retry resolves it
        after = await direct.get(key)
        assert (after.value if after else None) == want_value
        assert await direct.current_revision() == rev0 + 1  # written exactly once
        # the same retry, without an earlier lost attempt, is a genuine failure
        with pytest.raises(without_resolution):
            if op is _create:
                await direct.create(key, b"new")
            elif op is _update:
                assert after is not None
                await direct.update(key, b"changed", after.mod_revision - 1)
            else:
                await direct.delete(key, rev0)
    finally:
        await s.close()
        await proxy.close()
        await direct.close()


async def test_kill_9_of_the_member_in_use(etcd3: Any) -> None:
    """Writes go on and the watch delivers every event, in order, once, across the kill."""
    pfx = f"/k8py-test/{uuid.uuid4().hex[:12]}/"
    s = EtcdStore(etcd3.urls)
    await s.start()
    try:
        it = s.watch(pfx, await s.current_revision()).__aiter__()
        await s.create(pfx + "0", b"0")
        assert (await _next(it)).kv.key == pfx + "0"
        used = etcd3.urls.index(s.url)
        etcd3.kill(used)
        for i in range(1, 6):
            await s.create(pfx + str(i), str(i).encode())
        assert s.url != etcd3.urls[used]
        seen = [(await _next(it)).kv.key for _ in range(1, 6)]
        assert seen == [pfx + str(i) for i in range(1, 6)]
        assert len((await s.list(pfx)).items) == 6
    finally:
        await s.close()
