"""Shared watch encoding: an event is encoded once for all watchers of one representation;
watchers that see it differently (another representation, a selector) get their own."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from k8py.apiserver import storage
from k8py.apiserver.server import ApiServer
from k8py.client.client import Client

from apiserver_helpers import call

CM = "/api/v1/namespaces/default/configmaps"
PARTIAL = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"


async def frames(api: ApiServer, rv: str, accept: str = "application/json", **query: str) -> Any:
    resp = await call(api, "GET", CM, query={"watch": "true", "resourceVersion": rv, **query}, accept=accept)
    assert resp.status == 200 and resp.stream is not None
    return resp.stream


async def nxt(it: AsyncIterator[Any]) -> Any:
    return await asyncio.wait_for(it.__anext__(), 5)


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The revisions of the objects the watch module decodes (one per event object it builds)."""
    calls: list[int] = []
    real = storage.decode

    def counting(r: Any, value: bytes, revision: int) -> Any:
        if sys._getframe(1).f_globals["__name__"] == "k8py.apiserver.watch":
            calls.append(revision)
        return real(r, value, revision)
    monkeypatch.setattr(storage, "decode", counting)
    return calls


async def rv_now(client: Client) -> str:
    return str((await client.list("configmaps", "default"))["metadata"]["resourceVersion"])


async def test_two_watchers_get_the_same_bytes_built_once(api: ApiServer, client: Client,
                                                          decodes: list[int]) -> None:
    rv = await rv_now(client)
    streams = [await frames(api, rv) for _ in range(3)]
    lines = [s.frames() for s in streams]
    decodes.clear()
    await client.create("configmaps", {"metadata": {"name": "a", "namespace": "default"}, "data": {"k": "é"}})
    got = [await nxt(ln) for ln in lines]
    assert got[0] == got[1] == got[2] and got[0].endswith(b"\n")
    assert got[0] is got[1] is got[2]  # one buffer, written to every watcher
    ev = json.loads(got[0])
    assert ev["type"] == "ADDED" and ev["object"]["data"] == {"k": "é"}
    assert ev["object"]["metadata"]["resourceVersion"] == str(int(rv) + 1)
    assert len([d for d in decodes if d == int(rv) + 1]) == 1  # one build for three watchers
    for s in streams:
        await s.aclose()


async def test_other_representation_or_selector_gets_its_own(api: ApiServer, client: Client) -> None:
    await client.create("configmaps", {"metadata": {"name": "a", "namespace": "default", "labels": {"x": "1"}}})
    rv = await rv_now(client)
    plain = (await frames(api, rv)).frames()
    partial = (await frames(api, rv, accept=PARTIAL)).frames()
    selected = (await frames(api, rv, labelSelector="x=1")).frames()
    await client.patch("configmaps", "a", {"metadata": {"labels": {"x": "2"}}}, "default")
    p, m, s = json.loads(await nxt(plain)), json.loads(await nxt(partial)), json.loads(await nxt(selected))
    assert (p["type"], p["object"]["kind"]) == ("MODIFIED", "ConfigMap")
    assert (m["type"], m["object"]["kind"]) == ("MODIFIED", "PartialObjectMetadata")
    assert "data" not in m["object"] and m["object"]["metadata"]["labels"] == {"x": "2"}
    # it left the selector: DELETED, carrying the object as it was (still matching)
    assert s["type"] == "DELETED" and s["object"]["metadata"]["labels"] == {"x": "1"}
    for it in (plain, partial, selected):
        await it.aclose()


async def test_in_process_watchers_get_objects_of_their_own(api: ApiServer, client: Client) -> None:
    rv = await rv_now(client)
    a, b = await frames(api, rv), await frames(api, rv)
    await client.create("configmaps", {"metadata": {"name": "a", "namespace": "default"}})
    ea, eb = await nxt(a), await nxt(b)
    assert ea == eb and ea["type"] == "ADDED"
    assert ea is not eb and ea["object"] is not eb["object"]
    ea["object"]["metadata"]["name"] = "changed by one component"
    assert eb["object"]["metadata"]["name"] == "a"
    await a.aclose()
    await b.aclose()


async def test_table_watchers_render_their_own(api: ApiServer, client: Client) -> None:
    rv = await rv_now(client)
    t = await frames(api, rv, accept="application/json;as=Table;v=v1;g=meta.k8s.io")
    await client.create("configmaps", {"metadata": {"name": "a", "namespace": "default"}})
    ev = await nxt(t.frames())
    assert json.loads(ev)["object"]["kind"] == "Table"
    await t.aclose()
