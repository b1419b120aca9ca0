"""Transport-neutral request and response of the API (shared vocabulary of the API server,
its in-process transport and the node agent's streaming endpoints).

The HTTP front (aiohttp) and the in-process client transport both turn their
input into an `ApiRequest` and call `ApiServer.handle(req)`; so components in
the server process talk to the API exactly as remote clients do, minus sockets.
Invariant: `handle` never raises for bad input; it answers a Kubernetes Status.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from k8py.api.wellknown import GROUP_MASTERS, USER_SYSTEM_ADMIN


@dataclass
class ApiRequest:
    method: str  # GET, POST, PUT, PATCH, DELETE
    path: str  # e.g. /api/v1/namespaces/default/pods
    query: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    user: str = USER_SYSTEM_ADMIN
    # The user's groups, which authorization reads. The default is the in-process
    # components' (system:admin in system:masters); the HTTPS front always sets both.
    groups: tuple[str, ...] = (GROUP_MASTERS,)


@dataclass
class ApiResponse:
    status: int
    body: Any = None  # a JSON-able dict, or bytes when content_type is not JSON
    content_type: str = "application/json"
    # For watch and streaming (logs): an async iterator of chunks. For watch, each
    # chunk is an event dict {"type": ..., "object": ...}; for logs, bytes.
    stream: AsyncIterator[Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
