"""The async Kubernetes client every k8py component uses.

Resources are named as kubectl names them ("pods", "deploy", "deployments.apps");
objects are plain dicts as the API returns them. Every method raises `ApiError`
on a non-2xx answer. Writes that must not lose a race use `update` (a PUT that
carries metadata.resourceVersion: compare-and-swap) inside `retry_on_conflict`.
With a rate limiter (`client.ratelimit`), each request and each watch start takes a
token first; `with_rate_limiter` gives a client sharing the transport with a limiter
of its own (one per controller, as kube-controller-manager builds its clients).
A request the server turned away for load (429 with `retryAfterSeconds`: its max
in-flight limit) is sent again after that delay, up to MAX_RETRIES times, as client-go
does with Retry-After; a 429 with causes (an eviction refused by a disruption budget)
is an answer, returned at once.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar, cast

from k8py.api import jsonfast, resources
from k8py.api.types import Obj
from k8py.client.errors import ApiError
from k8py.client.ratelimit import TokenBucket
from k8py.client.transport import Transport
from k8py.clock import Clock, RealClock

T = TypeVar("T")
MAX_RETRIES = 10  # client-go's default for answers carrying Retry-After


def retry_after(status: int, data: Any) -> float | None:
    """Seconds to wait before sending the request again, or None: only a 429 Status that
    carries retryAfterSeconds and no causes (the server shed load; nothing was done)."""
    if status != 429 or not isinstance(data, dict):
        return None
    details = data.get("details") or {}
    seconds = details.get("retryAfterSeconds")
    if not isinstance(seconds, int) or isinstance(seconds, bool) or details.get("causes"):
        return None
    return float(min(max(seconds, 1), 60))


def _res(resource: str | resources.Resource) -> resources.Resource:
    return resource if isinstance(resource, resources.Resource) else resources.get(resource)


class Client:
    def __init__(self, transport: Transport, rate_limiter: TokenBucket | None = None, *,
                 clock: Clock | None = None) -> None:
        self.transport = transport
        self.rate_limiter = rate_limiter
        self.clock: Clock = clock or RealClock()  # waits before a retry

    def with_rate_limiter(self, rate_limiter: TokenBucket | None) -> Client:
        """This client (same class, same transport) with this limiter (None: unlimited)."""
        if rate_limiter is None and self.rate_limiter is None:
            return self
        clone = copy.copy(self)
        clone.rate_limiter = rate_limiter
        return clone

    async def _throttle(self) -> None:
        if self.rate_limiter is not None:
            await self.rate_limiter.wait()

    async def close(self) -> None:
        await self.transport.close()

    async def _call(self, method: str, path: str, *, query: dict[str, str] | None = None,
                    body: Any = None, content_type: str = "application/json") -> Any:
        for attempt in range(MAX_RETRIES + 1):
            await self._throttle()
            status, data = await self.transport.request(method, path, query=query, body=body,
                                                        content_type=content_type)
            wait = retry_after(status, data) if attempt < MAX_RETRIES else None
            if wait is None:
                break
            await self.clock.sleep(wait)
        if status >= 400:
            raise ApiError(status, data)
        return data

    async def _call_obj(self, method: str, path: str, *, query: dict[str, str] | None = None,
                        body: Any = None, content_type: str = "application/json") -> Obj:
        """`_call` for the requests whose answer is a JSON object (an object, a List, a Status)."""
        return cast(Obj, await self._call(method, path, query=query, body=body,
                                          content_type=content_type))

    # -- reads -------------------------------------------------------------
    async def get(self, resource: str | resources.Resource, name: str,
                  namespace: str | None = None) -> Obj:
        r = _res(resource)
        return await self._call_obj("GET", r.path(namespace, name))

    async def get_or_none(self, resource: str | resources.Resource, name: str,
                          namespace: str | None = None) -> Obj | None:
        try:
            return await self.get(resource, name, namespace)
        except ApiError as e:
            if e.not_found:
                return None
            raise

    async def list(self, resource: str | resources.Resource, namespace: str | None = None, *,
                   label_selector: str | None = None, field_selector: str | None = None,
                   limit: int | None = None, continue_: str | None = None,
                   resource_version: str | None = None) -> Obj:
        """The List object ({"items": [...], "metadata": {"resourceVersion": ...}})."""
        r = _res(resource)
        q: dict[str, str] = {}
        if label_selector:
            q["labelSelector"] = label_selector
        if field_selector:
            q["fieldSelector"] = field_selector
        if limit:
            q["limit"] = str(limit)
        if continue_:
            q["continue"] = continue_
        if resource_version is not None:
            q["resourceVersion"] = resource_version
        return await self._call_obj("GET", r.path(namespace), query=q)

    async def watch(self, resource: str | resources.Resource, namespace: str | None = None, *,
                    resource_version: str | None = None, label_selector: str | None = None,
                    field_selector: str | None = None, bookmarks: bool = True,
                    timeout_seconds: int | None = None) -> AsyncIterator[Obj]:
        """Watch events {"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": ...}.
        A 410 arrives as an ERROR event whose object is a Status with code 410
        (or as ApiError(410) when the watch cannot start)."""
        r = _res(resource)
        q: dict[str, str] = {"watch": "true"}
        if resource_version is not None:
            q["resourceVersion"] = resource_version
        if label_selector:
            q["labelSelector"] = label_selector
        if field_selector:
            q["fieldSelector"] = field_selector
        if bookmarks:
            q["allowWatchBookmarks"] = "true"
        if timeout_seconds is not None:
            q["timeoutSeconds"] = str(timeout_seconds)
        await self._throttle()
        events = self.transport.stream(r.path(namespace), query=q)
        try:
            async for ev in events:
                yield ev
        finally:
            # Closing this generator closes the transport's stream at once (the server's
            # watcher goes away now, not when the stream is garbage-collected).
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()

    # -- writes ------------------------------------------------------------
    async def create(self, resource: str | resources.Resource, obj: Obj,
                     namespace: str | None = None) -> Obj:
        r = _res(resource)
        ns = namespace or obj.get("metadata", {}).get("namespace")
        body = dict(obj)
        body.setdefault("apiVersion", r.api_version)
        body.setdefault("kind", r.kind)
        return await self._call_obj("POST", r.path(ns), body=body)

    async def update(self, resource: str | resources.Resource, obj: Obj,
                     subresource: str | None = None) -> Obj:
        """PUT; a compare-and-swap when obj carries metadata.resourceVersion."""
        r = _res(resource)
        md = obj["metadata"]
        body = dict(obj)
        body.setdefault("apiVersion", r.api_version)
        body.setdefault("kind", r.kind)
        return await self._call_obj(
            "PUT", r.path(md.get("namespace"), md["name"], subresource), body=body)

    async def update_status(self, resource: str | resources.Resource, obj: Obj) -> Obj:
        return await self.update(resource, obj, "status")

    async def patch(self, resource: str | resources.Resource, name: str, patch: Any,
                    namespace: str | None = None, *, patch_type: str = "merge",
                    subresource: str | None = None, field_manager: str | None = None,
                    force: bool = False) -> Obj:
        """patch_type: "merge", "strategic", "json" or "apply" (server-side apply)."""
        r = _res(resource)
        ct = {
            "merge": "application/merge-patch+json",
            "strategic": "application/strategic-merge-patch+json",
            "json": "application/json-patch+json",
            "apply": "application/apply-patch+yaml",
        }[patch_type]
        q: dict[str, str] = {}
        if field_manager:
            q["fieldManager"] = field_manager
        if force:
            q["force"] = "true"
        body = jsonfast.dumps(patch)
        return await self._call_obj("PATCH", r.path(namespace, name, subresource),
                                    query=q, body=body, content_type=ct)

    async def delete(self, resource: str | resources.Resource, name: str,
                     namespace: str | None = None, *, propagation_policy: str | None = None,
                     grace_period_seconds: int | None = None,
                     preconditions: dict[str, str] | None = None) -> Obj:
        r = _res(resource)
        body: Obj = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if propagation_policy:
            body["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            body["gracePeriodSeconds"] = grace_period_seconds
        if preconditions:
            body["preconditions"] = preconditions
        return await self._call_obj("DELETE", r.path(namespace, name), body=body)

    async def bind(self, pod: Obj, node_name: str) -> None:
        md = pod["metadata"]
        await self._call("POST", resources.get("pods").path(md["namespace"], md["name"], "binding"), body={
            "apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": md["name"], "namespace": md["namespace"], "uid": md.get("uid")},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node_name},
        })

    async def evict(self, namespace: str, name: str) -> None:
        await self._call("POST", resources.get("pods").path(namespace, name, "eviction"), body={
            "apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
        })

    async def raw(self, method: str, path: str, *, query: dict[str, str] | None = None,
                  body: Any = None, content_type: str = "application/json") -> Any:
        return await self._call(method, path, query=query, body=body, content_type=content_type)


async def retry_on_conflict(fn: Callable[[], Awaitable[T]], attempts: int = 10) -> T:
    """Run `fn` (a read-modify-write) again while the API answers 409 Conflict."""
    for i in range(attempts):
        try:
            return await fn()
        except ApiError as e:
            if not e.conflict or i == attempts - 1:
                raise
            await asyncio.sleep(0)
    raise AssertionError("unreachable")
