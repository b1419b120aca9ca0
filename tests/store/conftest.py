"""Fixtures for the store suite: `store` is each implementation in turn (memory, sqlite,
etcd), started, with `pfx` a key prefix unique to the test (the etcd is shared)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from k8py.store.etcd import EtcdStore
from k8py.store.memory import MemoryStore
from k8py.store.protocol import Store
from k8py.store.sqlite import SqliteStore

KINDS = ["memory", "sqlite", "etcd"]


@pytest.fixture
def pfx() -> str:
    return f"/k8py-test/{uuid.uuid4().hex[:12]}/"


def make_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite":
        # A tiny read batch makes watch replays cross many batches.
        return SqliteStore(str(tmp_path / "state.db"), read_batch=3, poll_interval=0.2)
    if kind == "etcd":
        return EtcdStore(request.getfixturevalue("etcd_url"))
    raise AssertionError(kind)


@pytest.fixture(params=KINDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    s = make_store(request.param, request, tmp_path)
    await s.start()
    try:
        yield s
    finally:
        await s.close()
