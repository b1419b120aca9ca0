"""The aggregation layer: APIServices backed by a Service, proxied as kube-aggregator does.

An `apiregistration.k8s.io/v1` APIService with `spec.service` claims `/apis/<group>/<version>`:
every request under it (its discovery document included) is proxied over HTTPS to one ready
endpoint of the Service (the Service port, default 443, mapped to the endpoints' port), the
backend's certificate checked against `caBundle` for `<service>.<namespace>.svc` (or not at
all with `insecureSkipTLSVerify`). k8py sends what kube-aggregator sends: the authenticated
user in `X-Remote-User`, one `X-Remote-Group` per group, no Authorization header, and
presents its API server client certificate (`client_cert`: the one it shows kubelets, CN
kube-apiserver-kubelet-client, signed by the cluster CA) instead of a front-proxy one.
Watches are streamed through. `/apis/<group>`, `/apis` and aggregated discovery include the
group with the resources the backend's discovery document lists.
The availability check (on every APIService, Service and Endpoints change, and every
`resync` seconds) writes the `Available` condition as kube-aggregator words it: True
`Passed` once the backend answers its discovery path, else False `ServiceNotFound`,
`ServicePortError`, `MissingEndpoints` or `FailedDiscoveryCheck`. A request to an APIService
that is not available, or whose backend cannot be reached, answers 503 with kube-aggregator's
plain-text body (`service unavailable`, `error trying to reach service: ...`).
Local APIServices (`service: null`, apiservices.py) are served in-process and never proxied.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import ssl
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from multidict import CIMultiDict

from k8py.api import resources
from k8py.api.request import ApiRequest, ApiResponse
from k8py.api.resources import Resource
from k8py.api.types import Obj
from k8py.apiserver import storage
from k8py.apiserver.errors import StatusError
from k8py.apiserver.registry import Registry, WriteOptions
from k8py.apiserver.webhookcall import CallError, Clients, Resolver

log = logging.getLogger(__name__)

GROUP = "apiregistration.k8s.io"
_R = resources.lookup(GROUP, "apiservices")
assert _R is not None
APISERVICES: Resource = _R
MANAGER = "kube-apiserver"
PROBE_TIMEOUT = 5.0  # seconds the discovery check waits for the backend
_PASSED_HEADERS = ("accept", "content-type", "user-agent", "accept-encoding")


def unavailable(message: str) -> ApiResponse:
    """kube-aggregator's 503: plain text, as Go's http.Error writes it."""
    return ApiResponse(503, (message + "\n").encode(), content_type="text/plain; charset=utf-8",
                       headers={"X-Content-Type-Options": "nosniff"})


def _resources_of(doc: Any, group: str, version: str) -> tuple[Resource, ...]:
    """The Resources an APIResourceList lists (subresources folded into their parents)."""
    entries = [e for e in (doc.get("resources") or [] if isinstance(doc, dict) else []) if isinstance(e, dict)]
    subs: dict[str, list[str]] = {}
    for e in entries:
        parent, _, sub = str(e.get("name", "")).partition("/")
        if sub:
            subs.setdefault(parent, []).append(sub)
    out = []
    for e in entries:
        name = str(e.get("name", ""))
        if not name or "/" in name:
            continue
        out.append(Resource(group, version, str(e.get("kind", "")), name, bool(e.get("namespaced")),
                            short_names=tuple(e.get("shortNames") or ()), subresources=tuple(subs.get(name, ())),
                            categories=tuple(e.get("categories") or ()), singular=str(e.get("singularName") or ""),
                            verbs=tuple(e.get("verbs") or ())))
    return tuple(out)


def _condition(obj: Obj) -> tuple[str, str, str] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == "Available":
            return str(c.get("status")), str(c.get("reason")), str(c.get("message"))
    return None


class Aggregator:
    def __init__(self, registry: Registry, clients: Clients, resolve: Resolver, resync: float = 30.0) -> None:
        self.registry, self.clients, self.resolve, self.resync = registry, clients, resolve, resync
        self.client_cert: tuple[str, str] | None = None  # (cert, key) files shown to backends
        self._by_gv: dict[tuple[str, str], Obj] = {}  # (group, version) -> its remote APIService
        self._specs: dict[str, Any] = {}  # name -> the spec last checked
        self._available: dict[str, bool] = {}
        self._resources: dict[str, tuple[Resource, ...]] = {}
        self._contexts: dict[tuple[str, bool], ssl.SSLContext] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- what the API server reads -------------------------------------------------------
    def backend_of(self, path: str) -> Obj | None:
        """The remote APIService claiming `path` (/apis/<group>/<version>/...), if any."""
        if not self._by_gv:
            return None
        parts = path.split("?", 1)[0].strip("/").split("/")
        if len(parts) < 3 or parts[0] != "apis":
            return None
        return self._by_gv.get((parts[1], parts[2]))

    def extra(self) -> tuple[Resource, ...]:
        """The aggregated groups' resources, for discovery (only those of available APIServices)."""
        out: list[Resource] = []
        for svc in self._by_gv.values():
            name = svc["metadata"]["name"]
            if self._available.get(name):
                out.extend(self._resources.get(name, ()))
        return tuple(out)

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        for kv in (await self.registry.store.list(storage.prefix(APISERVICES))).items:
            obj = storage.from_kv(APISERVICES, kv)
            if (obj.get("spec") or {}).get("service"):
                self.kick(obj["metadata"]["name"])
        self._spawn(self._resync())

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def kick(self, name: str) -> None:
        self._spawn(self._safe_check(name))

    def observe(self, e: Any) -> None:
        """Watch cache listener of APIServices: check the one of the event when its spec changed."""
        name = e.key.rsplit("/", 1)[-1]
        if e.type == "DELETE":
            self.kick(name)
            return
        spec = storage.decode(APISERVICES, e.value, e.revision).get("spec")
        if spec != self._specs.get(name):
            self.kick(name)

    def observe_service(self, e: Any) -> None:
        """Watch cache listener of Services and Endpoints: check the APIServices they back."""
        ns, name = e.key.rsplit("/", 2)[-2:]
        for svc in list(self._by_gv.values()):
            ref = (svc.get("spec") or {}).get("service") or {}
            if ref.get("namespace") == ns and ref.get("name") == name:
                self.kick(svc["metadata"]["name"])

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.resync)
            for svc in list(self._by_gv.values()):
                self.kick(svc["metadata"]["name"])

    async def _safe_check(self, name: str) -> None:
        try:
            await self.check(name)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("checking APIService %s failed", name)

    # -- availability --------------------------------------------------------------------
    async def check(self, name: str) -> None:
        async with self._locks.setdefault(name, asyncio.Lock()):
            kv = await self.registry.store.get(storage.key(APISERVICES, None, name))
            obj = storage.from_kv(APISERVICES, kv) if kv is not None else None
            spec = (obj or {}).get("spec") or {}
            self._by_gv = {gv: s for gv, s in self._by_gv.items() if s["metadata"]["name"] != name}
            if obj is None or not spec.get("service"):
                for d in (self._specs, self._available, self._resources):
                    d.pop(name, None)
                return
            self._specs[name] = spec
            self._by_gv[(str(spec.get("group", "")), str(spec.get("version", "")))] = obj
            status, reason, message, found = await self._probe(spec)
            self._available[name] = status == "True"
            self._resources[name] = found
            if _condition(obj) != (status, reason, message):
                await self._write_condition(name, status, reason, message)

    async def _probe(self, spec: Obj) -> tuple[str, str, str, tuple[Resource, ...]]:
        ref = spec["service"]
        ns, name, port = str(ref.get("namespace", "")), str(ref.get("name", "")), int(ref.get("port") or 443)
        where = f'service/{name} in "{ns}"'
        svcs, eps = resources.lookup("", "services"), resources.lookup("", "endpoints")
        assert svcs is not None and eps is not None
        try:
            svc = await self.registry.get(svcs, ns, name)
        except StatusError:
            return "False", "ServiceNotFound", f"{where} is not present", ()
        sport = next((p for p in (svc.get("spec") or {}).get("ports") or [] if p.get("port") == port), None)
        if sport is None:
            return "False", "ServicePortError", f"{where} is not listening on port {port}", ()
        try:
            addr, eport = await self.resolve(ns, name, port)
        except CallError:
            return ("False", "MissingEndpoints",
                    f'endpoints for {where} have no addresses with port name "{sport.get("name", "")}"', ())
        group, version = spec.get("group", ""), spec.get("version", "")
        host = f"[{addr}]" if ":" in addr else addr
        url = f"https://{host}:{eport}/apis/{group}/{version}"
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                async with self.clients.session().get(url, ssl=self._context(spec),
                                                      server_hostname=f"{name}.{ns}.svc",
                                                      headers={"Accept": "application/json"}) as resp:
                    body = await resp.json(content_type=None) if resp.status == 200 else None
                    code = resp.status
        except (TimeoutError, aiohttp.ClientError, OSError, ssl.SSLError, ValueError) as e:
            why = str(e) or type(e).__name__
            return "False", "FailedDiscoveryCheck", f"failing or missing response from {url}: {why}", ()
        if code != 200:
            why = f"bad status from {url}: {code}"
            return "False", "FailedDiscoveryCheck", f"failing or missing response from {url}: {why}", ()
        return "True", "Passed", "all checks passed", _resources_of(body, str(group), str(version))

    async def _write_condition(self, name: str, status: str, reason: str, message: str) -> None:
        for _ in range(self.registry.config.patch_retries):
            try:
                cur = await self.registry.get(APISERVICES, None, name)
            except StatusError:
                return
            conds = [c for c in (cur.get("status") or {}).get("conditions") or [] if c.get("type") != "Available"]
            old = _condition(cur)
            since = next((c.get("lastTransitionTime") for c in (cur.get("status") or {}).get("conditions") or []
                          if c.get("type") == "Available" and old and old[0] == status), None)
            conds.append({"type": "Available", "status": status, "lastTransitionTime": since or self.registry.now(),
                          "reason": reason, "message": message})
            cur["status"] = {**(cur.get("status") or {}), "conditions": conds}
            try:
                await self.registry.update(APISERVICES, None, name, cur, WriteOptions(field_manager=MANAGER),
                                           subresource="status")
                return
            except StatusError as e:
                if e.code != 409:
                    return

    # -- proxying ------------------------------------------------------------------------
    def _context(self, spec: Obj) -> ssl.SSLContext:
        bundle, insecure = str(spec.get("caBundle") or ""), bool(spec.get("insecureSkipTLSVerify"))
        ctx = self._contexts.get((bundle, insecure))
        if ctx is None:
            ctx = ssl.create_default_context()
            if insecure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            elif bundle:
                try:
                    ctx.load_verify_locations(cadata=base64.b64decode(bundle).decode())
                except (binascii.Error, UnicodeDecodeError, ssl.SSLError, ValueError) as e:
                    log.warning("APIService caBundle unusable: %s", e)
            if self.client_cert is not None:
                ctx.load_cert_chain(*self.client_cert)
            self._contexts[(bundle, insecure)] = ctx
        return ctx

    async def proxy(self, req: ApiRequest, apiservice: Obj) -> ApiResponse:
        name = apiservice["metadata"]["name"]
        if name not in self._available:
            await self.check(name)
        if not self._available.get(name):
            return unavailable("service unavailable")
        spec = apiservice["spec"]
        ref = spec["service"]
        ns, svc = str(ref.get("namespace", "")), str(ref.get("name", ""))
        try:
            addr, port = await self.resolve(ns, svc, int(ref.get("port") or 443))
        except CallError as e:
            return unavailable(f"error trying to reach service: {e}")
        host = f"[{addr}]" if ":" in addr else addr
        query = urllib.parse.urlencode(req.query)
        url = f"https://{host}:{port}{req.path}" + (f"?{query}" if query else "")
        headers: CIMultiDict[str] = CIMultiDict((k, v) for k, v in req.headers.items() if k in _PASSED_HEADERS)
        headers.add("X-Remote-User", req.user)
        for g in req.groups:
            headers.add("X-Remote-Group", g)
        try:
            resp = await self.clients.session().request(
                req.method, url, data=req.body or None, headers=headers, ssl=self._context(spec),
                server_hostname=f"{svc}.{ns}.svc", timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        except (aiohttp.ClientError, OSError, ssl.SSLError) as e:
            return unavailable(f"error trying to reach service: {e}")
        ct = resp.headers.get("Content-Type", "application/json")
        if req.query.get("watch") in ("true", "1") or "watch" in req.path.split("/")[4:5]:
            return ApiResponse(resp.status, None, content_type=ct, stream=_chunks(resp))
        try:
            body = await resp.read()
        finally:
            resp.release()
        return ApiResponse(resp.status, body, content_type=ct)


async def _chunks(resp: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """A streamed answer (a watch); its connection closed when the client goes, so the backend sees it."""
    try:
        async for chunk in resp.content.iter_any():
            yield chunk
    finally:
        resp.close()
