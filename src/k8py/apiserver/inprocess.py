"""The in-process transport: a client in the server process calls `ApiServer.handle`
directly, without sockets.

It belongs to the API server side and implements the client's `Transport` Protocol
(`k8py.client.transport`), which the client package keeps: components hold a
`Client(transport)` and never import the API server. Same contract as the HTTPS
transport: (status, decoded body) for requests, decoded events for watch streams,
ApiError when a stream cannot start. Bodies are JSON-encoded on the way in, exactly as
over HTTP, so the server sees the same bytes; responses are fresh objects per request,
so components never share Python objects through it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from k8py.api import jsonfast
from k8py.api.request import ApiRequest, ApiResponse
from k8py.api.wellknown import GROUP_MASTERS, USER_SYSTEM_ADMIN
from k8py.apiserver.server import ApiServer
from k8py.client.errors import ApiError
from k8py.client.transport import encode_body


class InProcessTransport:
    def __init__(self, api: ApiServer, *, user: str = USER_SYSTEM_ADMIN, user_agent: str = "k8py",
                 accept: str = "application/json", groups: tuple[str, ...] = (GROUP_MASTERS,)) -> None:
        self.api = api
        self.user = user
        self.groups = groups
        self.user_agent = user_agent
        self.accept = accept

    def _request(self, method: str, path: str, query: dict[str, str] | None, body: Any,
                 content_type: str) -> ApiRequest:
        data = encode_body(body) or b""
        path, _, qs = path.partition("?")
        q = dict(query or {})
        if qs:
            from urllib.parse import parse_qsl
            for k, v in parse_qsl(qs, keep_blank_values=True):
                q.setdefault(k, v)
        headers = {"accept": self.accept, "user-agent": self.user_agent}
        if data:
            headers["content-type"] = content_type
        return ApiRequest(method=method.upper(), path=path, query=q, body=data, headers=headers, user=self.user,
                          groups=self.groups)

    async def request(self, method: str, path: str, *, query: dict[str, str] | None = None,
                      body: Any = None, content_type: str = "application/json") -> tuple[int, Any]:
        resp = await self.api.handle(self._request(method, path, query, body, content_type))
        if resp.stream is not None:
            chunks = [c async for c in resp.stream]
            if chunks and all(isinstance(c, (bytes, bytearray)) for c in chunks):
                return resp.status, b"".join(chunks)
            return resp.status, chunks
        return resp.status, _body(resp)

    async def stream(self, path: str, *, query: dict[str, str] | None = None) -> AsyncIterator[dict[str, Any]]:
        resp = await self.api.handle(self._request("GET", path, query, None, "application/json"))
        if resp.status >= 300:
            raise ApiError(resp.status, _body(resp))
        if resp.stream is None:
            return
        it = resp.stream
        try:
            async for ev in it:
                yield ev
        finally:
            aclose = getattr(it, "aclose", None)
            if aclose is not None:
                await aclose()

    async def stream_bytes(self, path: str, *, query: dict[str, str] | None = None) -> AsyncIterator[bytes]:
        resp = await self.api.handle(self._request("GET", path, query, None, "application/json"))
        if resp.status >= 300:
            raise ApiError(resp.status, _body(resp))
        if resp.stream is None:
            if isinstance(resp.body, (bytes, bytearray)):
                yield bytes(resp.body)
            return
        it = resp.stream
        try:
            async for chunk in it:
                yield chunk if isinstance(chunk, bytes) else jsonfast.dumps(chunk)
        finally:  # closing this generator ends the server's stream (e.g. logs -f) at once
            aclose = getattr(it, "aclose", None)
            if aclose is not None:
                await aclose()

    async def close(self) -> None:
        return None


def _body(resp: ApiResponse) -> Any:
    b = resp.body
    if isinstance(b, (bytes, bytearray)) and "json" in resp.content_type:
        try:
            return jsonfast.loads(b)
        except ValueError:
            return bytes(b)
    return b
