"""The Transport protocol of the client: how a request reaches an API server.

Two implementations: `rest.RestTransport` (HTTPS, a kubeconfig's credentials) and, on
the API server's side, `k8py.apiserver.inprocess.InProcessTransport` (calls
`ApiServer.handle` directly, for components in the server process). Both answer
(status, decoded JSON body) and raise nothing for HTTP errors; the Client does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from k8py.api import jsonfast


def encode_body(body: Any) -> bytes | None:
    """A request body as bytes: None stays None, bytes and str as they are, anything else as
    compact JSON (what kubectl sends; the API server decodes it on its fast path)."""
    if body is None:
        return None
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode()
    return jsonfast.dumps(body)


class Transport(Protocol):
    async def request(self, method: str, path: str, *, query: dict[str, str] | None = None,
                      body: Any = None, content_type: str = "application/json") -> tuple[int, Any]:
        """`body` is a dict (sent as JSON), bytes, or None."""
        ...

    def stream(self, path: str, *, query: dict[str, str] | None = None) -> AsyncIterator[dict[str, Any]]:
        """GET a watch stream: yields decoded event dicts. Raises ApiError on a non-2xx start."""
        ...

    async def close(self) -> None: ...
