"""Fixtures of the simulated-node tests: the real ApiServer over MemoryStore with a FakeClock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from k8py.clock import FakeClock

from helpers.api import start_api


@pytest.fixture
async def api() -> AsyncIterator[tuple[Any, FakeClock]]:
    clock = FakeClock()
    server, client = await start_api(clock)
    yield client, clock
    await server.close()
