"""Fixtures of the simulated-node tests: the real ApiServer over MemoryStore with a FakeClock."""

from __future__ import annotations

from typing import Any, AsyncIterator

import pytest
from helpers.api import start_api

from k8py.clock import FakeClock


@pytest.fixture
async def api() -> AsyncIterator[tuple[Any, FakeClock]]:
    clock = FakeClock()
    server, client = await start_api(clock)
    yield client, clock
    await server.close()
