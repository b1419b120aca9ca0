"""An ApiServer over MemoryStore with an in-process client, and condition polling, for
simulated-node and controller tests."""

from __future__ import annotations

from typing import Any

# An API over MemoryStore and condition polling: the shared test helpers.
from helpers.api import eventually, start_api  # noqa: E402,F401
