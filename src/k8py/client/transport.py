"""The Transport protocol of the client: how a request reaches an API server.

Two implementations: `rest.RestTransport` (HTTPS, a kubeconfig's credentials) and
`inprocess.InProcessTransport` (calls `ApiServer.handle` directly). Both answer
(status, decoded JSON body) and raise nothing for HTTP errors; the Client does.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Protocol


class Transport(Protocol):
    async def request(self, method: str, path: str, *, query: dict[str, str] | None = None,
                      body: Any = None, content_type: str = "application/json") -> tuple[int, Any]:
        """`body` is a dict (sent as JSON), bytes, or None."""
        ...

    def stream(self, path: str, *, query: dict[str, str] | None = None) -> AsyncIterator[dict[str, Any]]:
        """GET a watch stream: yields decoded event dicts. Raises ApiError on a non-2xx start."""
        ...

    async def close(self) -> None: ...
