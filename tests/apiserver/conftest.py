"""Fixtures: an ApiServer on a MemoryStore with a FakeClock, and a Client on it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from k8py.apiserver.config import ApiServerConfig
from k8py.apiserver.inprocess import InProcessTransport
from k8py.apiserver.server import ApiServer
from k8py.client.client import Client
from k8py.clock import FakeClock
from k8py.store.memory import MemoryStore


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def config() -> ApiServerConfig:
    return ApiServerConfig(bookmark_interval=5.0)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[MemoryStore]:
    """A MemoryStore; K8PY_APISERVER_TEST_STORE=sqlite runs the suite on SqliteStore."""
    s: Any
    if os.environ.get("K8PY_APISERVER_TEST_STORE") == "sqlite":
        from k8py.store.sqlite import SqliteStore
        s = SqliteStore(str(tmp_path / "state.db"))
    else:
        s = MemoryStore()
    await s.start()
    yield s
    await s.close()


@pytest.fixture
async def api(store: MemoryStore, config: ApiServerConfig, clock: FakeClock) -> AsyncIterator[ApiServer]:
    a = ApiServer(store, config, clock)
    await a.start()
    yield a
    await a.close()


@pytest.fixture
def client(api: ApiServer) -> Client:
    return Client(InProcessTransport(api))


