"""Requests to a custom resource version that a conversion webhook converts.

A CRD with `spec.conversion.strategy: Webhook` stores its objects in the storage version;
a request to another served version is served here, around the usual handling of the
storage version (`inner`, the API server's own route handler given the storage version's
route): bodies of creates and updates are converted to the storage version before, the
objects answered (get, list, watch events, writes, deletes) converted to the requested
version after, tables rendered from the requested version's printer columns. A patch is
applied to the object converted to the requested version, then written back (converted)
as an update pinned to the resourceVersion it read, retried on conflict unless the patch
pins one itself. `scale` needs no conversion (its Scale is version-free). Webhook failures
are 500 Status errors (conversion.py); a failed conversion in a watch ends it with an
ERROR event. As Kubernetes decodes a request in its own version, a written object is first
pruned (unknown fields warned, 400 under fieldValidation=Strict), defaulted and validated
(openAPIV3Schema and CEL rules, 422 naming the field) with the requested version's schema;
then the storage version's own steps and admission run on the converted object.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

from k8py.api.customresource import CustomResource
from k8py.api.request import ApiRequest, ApiResponse
from k8py.api.types import Obj
from k8py.apiserver import codec, machinery, patch
from k8py.apiserver.conversion import Converter
from k8py.apiserver.errors import StatusError, bad_request, conflict, invalid, resource_not_found
from k8py.apiserver.routing import Route
from k8py.apiserver.watch import WatchStream

Inner = Callable[[ApiRequest, Route], Awaitable[ApiResponse]]
Renderer = Callable[[ApiRequest, Any], tuple[codec.Accept, Callable[[Obj], Obj]]]
_JSON = "application/json"


def _as_json(req: ApiRequest, **over: Any) -> ApiRequest:
    headers = {**req.headers, "accept": _JSON}
    if "body" in over:
        headers["content-type"] = _JSON
    return replace(req, headers=headers, **over)


class ConvertedVersions:
    def __init__(self, converter: Converter, storage_of: Callable[[CustomResource], CustomResource | None],
                 inner: Inner, renderer: Renderer, now: Callable[[], float], retries: int) -> None:
        self.converter, self.storage_of, self.inner = converter, storage_of, inner
        self.renderer, self.now, self.retries = renderer, now, retries

    async def _to(self, r: CustomResource, objs: list[Obj]) -> list[Obj]:
        assert r.conversion is not None
        return await self.converter.convert(r.conversion, objs, r.api_version)

    async def _one(self, r: CustomResource, resp: ApiResponse) -> ApiResponse:
        """The response with its object converted to `r` (Status bodies as they are)."""
        body = resp.body
        if 200 <= resp.status < 300 and isinstance(body, dict) and body.get("kind") == r.kind:
            resp.body = (await self._to(r, [body]))[0]
        return resp

    async def respond(self, req: ApiRequest, route: Route) -> ApiResponse:
        r = route.resource
        assert isinstance(r, CustomResource)
        rs = self.storage_of(r)
        if rs is None:
            raise resource_not_found()
        inner = replace(route, resource=rs)
        method = req.method.upper()
        if route.subresource == "scale":
            return await self.inner(req, inner)
        acc = codec.negotiate(req.headers.get("accept", ""))
        watch = method == "GET" and route.subresource is None and codec.query_bool(req.query, "watch")
        if route.legacy_watch or watch:
            return await self._watch(req, r, inner)
        if method == "GET" and acc.as_kind.startswith("PartialObjectMetadata"):
            return await self.inner(req, inner)  # metadata is the same in every version
        if method == "GET" and route.name is None:
            return await self._list(req, r, inner, acc)
        if method == "GET":
            resp = await self._one(r, await self.inner(_as_json(req), inner))
            if resp.status == 200:
                resp.body = self.renderer(req, r)[1](resp.body)
            return resp
        if method in ("POST", "PUT"):
            return await self._write(req, r, rs, inner)
        if method == "PATCH":
            return await self._patch(req, r, rs, inner)
        resp = await self.inner(_as_json(req), inner)
        if method == "DELETE" and route.name is None and resp.status == 200 and isinstance(resp.body, dict):
            resp.body["items"] = await self._to(r, list(resp.body.get("items") or []))
            resp.body["apiVersion"] = r.api_version
            return resp
        return await self._one(r, resp)

    async def _list(self, req: ApiRequest, r: CustomResource, inner: Route, acc: codec.Accept) -> ApiResponse:
        resp = await self.inner(_as_json(req), inner)
        if resp.status != 200 or not isinstance(resp.body, dict):
            return resp
        body = resp.body
        items = await self._to(r, list(body.get("items") or []))
        if acc.as_kind == "Table":
            include = req.query.get("includeObject", "Metadata") or "Metadata"
            t = machinery.to_table(r, items, self.now(), include_object=include)
            t["apiVersion"] = f"meta.k8s.io/{acc.version}"
            t.setdefault("metadata", {}).update(body.get("metadata") or {})
            return ApiResponse(200, t)
        body.update(apiVersion=r.api_version, items=items)
        return resp

    async def _watch(self, req: ApiRequest, r: CustomResource, inner: Route) -> ApiResponse:
        render = self.renderer(req, r)[1]
        resp = await self.inner(_as_json(req), inner)
        if resp.stream is None:
            return resp
        events = resp.stream

        async def converted() -> AsyncIterator[Obj]:
            try:
                async for ev in events:
                    obj = ev.get("object")
                    if ev.get("type") in ("ADDED", "MODIFIED", "DELETED") and isinstance(obj, dict):
                        try:
                            obj = (await self._to(r, [obj]))[0]
                        except StatusError as e:
                            yield {"type": "ERROR", "object": e.status()}
                            return
                        yield {"type": ev["type"], "object": render(obj)}
                    else:
                        if ev.get("type") == "BOOKMARK" and isinstance(obj, dict):
                            obj["apiVersion"] = r.api_version
                        yield ev
            finally:
                aclose = getattr(events, "aclose", None)
                if aclose is not None:
                    await aclose()
        return ApiResponse(200, None, stream=WatchStream(converted()))

    async def _write(self, req: ApiRequest, r: CustomResource, rs: CustomResource, inner: Route) -> ApiResponse:
        obj = (await codec.decode_object_async(req.body, req.headers.get("content-type", _JSON))).value
        warnings: list[str] = []
        if isinstance(obj, dict) and obj.get("apiVersion") == r.api_version and obj.get("kind") == r.kind:
            warnings = _in_version(req, r, obj)
            obj = (await self.converter.convert(r.conversion or {}, [obj], rs.api_version))[0]
        resp = await self.inner(_as_json(req, body=json.dumps(obj).encode()), inner)
        return _warn(await self._one(r, resp), warnings)

    async def _patch(self, req: ApiRequest, r: CustomResource, rs: CustomResource, inner: Route) -> ApiResponse:
        mt = patch.patch_type(req.headers.get("content-type", ""))
        value = (await patch.decode_patch(req.body, mt)).value
        apply = mt == patch.APPLY
        manager = req.query.get("fieldManager") or None
        force = codec.query_bool(req.query, "force")
        pinned = isinstance(value, dict) and bool((value.get("metadata") or {}).get("resourceVersion"))
        for _ in range(self.retries):
            got = await self.inner(_as_json(req, method="GET", body=b"", query={}), inner)
            if got.status == 404 and apply and inner.subresource is None:
                return await self._apply_create(req, r, rs, inner, value, manager, force)
            if got.status != 200:
                return got
            current = (await self._to(r, [got.body]))[0]
            patched = patch.apply_patch(r, current, value, mt, manager=manager, force=force, now=self.now())
            if not isinstance(patched, dict):
                raise bad_request("the patch does not give an object")
            if not pinned:
                patched.setdefault("metadata", {})["resourceVersion"] = current["metadata"]["resourceVersion"]
            warnings = _in_version(req, r, patched)
            new = (await self.converter.convert(r.conversion or {}, [patched], rs.api_version))[0]
            resp = await self.inner(_as_json(req, method="PUT", body=json.dumps(new).encode()), inner)
            if resp.status == 409 and not pinned:
                continue
            return _warn(await self._one(r, resp), warnings)
        raise conflict(r.plural, inner.name or "", r.group)

    async def _apply_create(self, req: ApiRequest, r: CustomResource, rs: CustomResource, inner: Route,
                            value: Any, manager: str | None, force: bool) -> ApiResponse:
        obj = patch.apply_patch(r, None, value, patch.APPLY, manager=manager, force=force, now=self.now())
        md = obj.setdefault("metadata", {})
        md["name"] = inner.name
        md.pop("resourceVersion", None)
        warnings = _in_version(req, r, obj)
        new = (await self.converter.convert(r.conversion or {}, [obj], rs.api_version))[0]
        created = await self.inner(_as_json(req, method="POST", body=json.dumps(new).encode()),
                                   replace(inner, name=None))
        return _warn(await self._one(r, created), warnings)


def _in_version(req: ApiRequest, r: CustomResource, obj: Obj) -> list[str]:
    """Decode `obj` as its own version does: prune (the unknown fields' warnings; 400 under
    Strict), default, validate against the version's schema and CEL rules (422)."""
    mode = req.query.get("fieldValidation", "") or "Warn"
    unknown, _ = machinery.decoding_problems(obj, r, prune=mode != "Strict")
    msgs = [f'unknown field "{f}"' for f in unknown]
    if msgs and mode == "Strict":
        raise bad_request(f'{r.kind} in version "{r.version}" cannot be handled as a {r.kind}: '
                          "strict decoding error: " + ", ".join(msgs))
    machinery.apply_defaults(obj, r)
    from k8py.api.validation import celrules, openapischema  # heavy: only when a converted write comes
    errs = openapischema.validate(obj, r.schema)
    if not errs:
        errs = celrules.validate(obj, None, r.schema)
    if errs:
        name = str((obj.get("metadata") or {}).get("name") or "")
        raise invalid(r.kind, name, [machinery.field_error_cause(e) for e in errs], r.group)
    return msgs if mode == "Warn" else []


def _warn(resp: ApiResponse, warnings: list[str]) -> ApiResponse:
    """The response with Warning headers for `warnings` added (before the storage version's)."""
    if warnings:
        mine = ", ".join('299 - "' + w.replace("\\", "\\\\").replace('"', '\\"') + '"' for w in warnings)
        old = resp.headers.get("Warning")
        resp.headers["Warning"] = f"{mine}, {old}" if old else mine
    return resp
