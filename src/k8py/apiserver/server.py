"""ApiServer: the Kubernetes REST semantics of k8py, transport-neutral.

`handle(ApiRequest) -> ApiResponse` routes a request to the registry (CRUD, patch,
delete), listing, watch, or a subresource; discovery and OpenAPI are delegated to
`discovery.respond` / `openapi.respond`. Invariant: `handle` never raises; bad
input is answered with a Kubernetes Status (4xx) and anything unexpected is logged
and answered 500 InternalError. The server owns one watch cache per storage
prefix (shared by all watchers) and the namespace finalizer tasks; `close()`
stops and awaits them.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

from k8py.api import resources
from k8py.api.customresource import CustomResource
from k8py.api.request import ApiRequest, ApiResponse
from k8py.api.resources import Resource
from k8py.api.types import Obj
from k8py.apiserver import (
    bootstrap,
    codec,
    escalation,
    eviction,
    ingressclassadmission,
    listing,
    machinery,
    metrics,
    nodeauthz,
    noderestriction,
    patch,
    priority,
    rbac,
    reviews,
    routing,
    runtimeclass,
    saadmission,
    storage,
    subresources,
    tokenrequest,
    webhooks,
)
from k8py.apiserver import watch as watching
from k8py.apiserver.aggregator import APISERVICES, Aggregator
from k8py.apiserver.allocator import ServiceAllocator
from k8py.apiserver.authz import Authorizer
from k8py.apiserver.boundtokens import BoundTokenAuthenticator, LiveObjects
from k8py.apiserver.config import ApiServerConfig
from k8py.apiserver.conversion import Converter
from k8py.apiserver.crconversion import ConvertedVersions
from k8py.apiserver.customresources import CRDS, CustomResources
from k8py.apiserver.deletion import (
    DeleteOptions,
    Deleter,
    NamespaceFinalizer,
    parse_options,
)
from k8py.apiserver.errors import (
    StatusError,
    bad_request,
    conflict,
    internal,
    method_not_allowed,
    not_found,
    resource_not_found,
)
from k8py.apiserver.registry import (
    Registry,
    WriteOptions,
    check_metadata,
    check_type,
    parse_rv,
)
from k8py.apiserver.selection import compile_selection
from k8py.apiserver.serverleases import ServerLeases
from k8py.apiserver.storage import clone
from k8py.apiserver.subresources import NodeProxy
from k8py.apiserver.tokens import TokenIssuer
from k8py.apiserver.watchcache import WatchCache
from k8py.clock import Clock, RealClock
from k8py.store import errors as store_errors
from k8py.store.protocol import Store

log = logging.getLogger(__name__)

SCALE = Resource("autoscaling", "v1", "Scale", "scale", True)
STATUS_SUCCESS_CREATED: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                               "code": 201}


class ApiServer:
    def __init__(self, store: Store, config: ApiServerConfig | None = None, clock: Clock | None = None) -> None:
        self.store = store
        self.config = config or ApiServerConfig()
        self.clock: Clock = clock or RealClock()
        self.allocator = ServiceAllocator(store, self.config)
        self.registry = Registry(store, self.config, self.clock, self.allocator)
        self.registry.after_create.append(self._after_create)
        self.registry.class_admission += [lambda r, o: priority.admit(self.registry, r, o),
                                    lambda r, o: runtimeclass.admit(self.registry, r, o)]
        self.registry.update_admission.append(lambda r, new, old: priority.admit_update(self.registry, r, new, old))
        self.namespaces = NamespaceFinalizer(Deleter(self.registry, self._namespace_terminating))
        self.deleter = self.namespaces.deleter
        self.crds = CustomResources(self.registry, self.deleter)
        self.namespaces.extra = self.crds.namespaced_storage
        self.caches: dict[str, WatchCache] = {}
        self.node_proxy: NodeProxy | None = None
        # Signs service-account tokens; `k8py server` gives it a key in the data dir.
        self.tokens = TokenIssuer(None, self.clock.now)
        # Service-account tokens are checked against the live objects they name (boundtokens).
        self.live = LiveObjects()
        self.bound_tokens = BoundTokenAuthenticator(lambda: self.tokens, self.live)
        self.token_reviewer: Callable[[str], Any] | None = None  # TokenReview of other tokens (the front's)
        self.registry.admission.append(saadmission.admit)
        self.registry.admission.append(ingressclassadmission.admit)
        self.kubernetes_service = bootstrap.KubernetesServiceKeeper(self.registry, self.config)
        # This server's record among the cluster's servers: the `kubernetes` endpoints list every live one.
        self.server_leases = ServerLeases(self.registry, self.config, self.clock)
        self.kubernetes_service.servers = lambda: self.server_leases.live
        self._started = False
        # Who may do what: RBAC (the index follows the RBAC objects' watch caches) unless
        # the config says AlwaysAllow.
        self.authorizer = Authorizer(self.config.authorization_mode)
        self.metrics = metrics.ResourceMetrics(self.handle)  # metrics.k8s.io; the node proxy sets its source
        self.registry.validating_admission.append(self._no_escalation)
        # Admission webhooks, configured by the admissionregistration objects (watch caches).
        self.webhook_index = webhooks.WebhookIndex()
        self.webhook_dispatcher = webhooks.Dispatcher(self.webhook_index)
        self.registry.webhooks.append(self.webhook_dispatcher.admit)
        self.registry.validating_admission.append(noderestriction.admit)
        # CRD conversion webhooks and APIService backends, reached with the admission webhooks' HTTPS client.
        def resolve(ns: str, name: str, port: int) -> Awaitable[tuple[str, int]]:
            return webhooks.resolve_service(self.registry, ns, name, port)
        converter = Converter(self.webhook_dispatcher.clients, resolve)
        self.aggregator = Aggregator(self.registry, self.webhook_dispatcher.clients, resolve)
        self.converted = ConvertedVersions(converter, self.crds.storage_of, self._handle, self._renderer,
                                           self.clock.now, self.config.patch_retries)
        self._graph_refills: set[asyncio.Future[None]] = set()  # Node authorizer graph re-reads

    # -- lifecycle ---------------------------------------------------------
    async def start(self) -> None:
        """Start the watch caches, bootstrap the cluster, resume namespace deletions."""
        live_prefixes = LiveObjects.prefixes()
        for r in resources.RESOURCES:
            prefix = storage.prefix(r)
            if prefix in self.caches or not resources.stored(r):
                continue
            cache = WatchCache(self.store, prefix, self.config.watch_history, self.config.watcher_queue)
            if r.namespaced:
                cache.listeners.append(lambda e: self.namespaces.notify_key(e.key))
            if r.group == "" and r.plural == "services":
                cache.listeners.append(lambda e: self.allocator.observe(
                    e.key, e.revision, e.value if e.type == "PUT" else None))
            if prefix in live_prefixes:
                cache.listeners.append(self.live.observe)
                cache.on_restart.append(functools.partial(self.live.refill, self.store, prefix))
            if (r.group, r.plural) in (("", "services"), ("", "endpoints"), ("discovery.k8s.io", "endpointslices")):
                cache.listeners.append(self.kubernetes_service.observe)
            if r.group == "rbac.authorization.k8s.io":
                cache.listeners.append(self._observe_rbac)
            if r is CRDS:
                cache.listeners.append(self.crds.observe)
            if r is APISERVICES:
                cache.listeners.append(self.aggregator.observe)
            if (r.group, r.plural) in (("", "services"), ("", "endpoints")):
                cache.listeners.append(self.aggregator.observe_service)
            if r.group == webhooks.GROUP:
                cache.listeners.append(lambda e: self.webhook_index.observe_bytes(
                    e.key, e.value if e.type == "PUT" else None))
            if prefix in (nodeauthz.POD_PREFIX, nodeauthz.PVC_PREFIX):
                cache.listeners.append(self._observe_node_graph)
                cache.on_restart.append(functools.partial(self._refill_node_graph, prefix))
            await cache.start(replay=self.config.watch_history * 5)
            self.caches[prefix] = cache
        self._started = True
        await self.live.fill(self.store)
        for kv in (await self.store.list(rbac.PREFIX)).items:
            self.authorizer.index.observe_bytes(kv.key, kv.mod_revision, kv.value)
        for kv in (await self.store.list(webhooks.PREFIX)).items:
            self.webhook_index.observe_bytes(kv.key, kv.value)
        for prefix in (nodeauthz.POD_PREFIX, nodeauthz.PVC_PREFIX):
            await self._fill_node_graph(prefix)
        await bootstrap.bootstrap(self.registry, self.config)
        self.kubernetes_service.start()
        await self.crds.start()
        await self.aggregator.start()
        ns = resources.lookup("", "namespaces")
        assert ns is not None
        for kv in (await self.store.list(storage.prefix(ns))).items:
            obj = storage.from_kv(ns, kv)
            if obj["metadata"].get("deletionTimestamp"):
                self.namespaces.start(obj["metadata"]["name"])

    async def close(self) -> None:
        await self.server_leases.remove()
        await self.crds.close()
        await self.aggregator.close()
        await self.webhook_dispatcher.close()
        for t in list(self._graph_refills):
            t.cancel()
        await self.kubernetes_service.close()
        await self.live.close()
        await self.namespaces.close()
        for c in self.caches.values():
            await c.close()
        self.caches.clear()

    async def set_endpoint(self, address: str, port: int) -> None:
        """Point the `kubernetes` Service at the address and port the HTTPS front actually
        serves on (known only after it bound, e.g. with port 0), and from now on keep this
        server's record among the cluster's servers (`serverleases`): the endpoints name
        every live server."""
        self.config.advertise_address, self.config.port = address, port
        await bootstrap.set_target_port(self.registry, self.config)
        await self.server_leases.reconcile()
        self.server_leases.start()

    def _no_escalation(self, r: Resource, obj: Obj, _old: Obj | None, opts: WriteOptions) -> None:
        escalation.check(self.authorizer, r, obj, opts.user, opts.groups)

    def _observe_rbac(self, e: Any) -> None:
        self.authorizer.index.observe_bytes(e.key, e.revision, e.value if e.type == "PUT" else None)

    def _observe_node_graph(self, e: Any) -> None:
        self.authorizer.node.graph.observe(e.key, e.revision, e.value if e.type == "PUT" else None)

    async def _fill_node_graph(self, prefix: str) -> None:
        items = (await self.store.list(prefix)).items
        self.authorizer.node.graph.replace(prefix, [(kv.key, kv.mod_revision, kv.value) for kv in items])

    def _refill_node_graph(self, prefix: str) -> None:
        """The pods' or claims' watch cache restarted: re-read them in the background."""
        t = asyncio.ensure_future(self._fill_node_graph(prefix))
        self._graph_refills.add(t)
        t.add_done_callback(self._graph_refills.discard)

    def authenticate_token(self, token: str) -> Any:
        """The service account a TokenRequest token names (an `auth.User`), or None: the
        token must verify, and its account and the object it is bound to must exist now
        with the uids it names (`boundtokens`)."""
        return self.bound_tokens.authenticate(token)

    @property
    def watchers(self) -> int:
        """Open watches served from the watch caches (all resources)."""
        return sum(c.watchers for c in self.caches.values())

    def set_node_proxy(self, proxy: NodeProxy | None) -> None:
        """Forward pods/log, exec, attach and portforward to a node agent:
        `await proxy(request, pod, subresource) -> ApiResponse`."""
        self.node_proxy = proxy

    def _namespace_terminating(self, name: str) -> None:
        self.namespaces.start(name)

    async def _after_create(self, r: Resource, obj: Obj) -> None:
        if r.group == "" and r.plural == "namespaces":
            await bootstrap.ensure_service_account(self.registry, obj["metadata"]["name"])
        if r is CRDS:  # served (and Established) by the time the create answers
            await self.crds.reconcile(obj["metadata"]["name"])

    # -- entry point -------------------------------------------------------
    async def handle(self, req: ApiRequest) -> ApiResponse:
        try:
            self.authorizer.check(req)
            return await self._handle(req)
        except StatusError as e:
            return ApiResponse(e.code, e.status())
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - never raise; log and answer 500
            log.exception("internal error handling %s %s", req.method, req.path)
            err = internal(f"{type(e).__name__}: {e}")
            return ApiResponse(500, err.status())

    async def _handle(self, req: ApiRequest, route: routing.Route | None = None) -> ApiResponse:
        if route is None and (backend := self.aggregator.backend_of(req.path)) is not None:
            return await self.aggregator.proxy(req, backend)  # an APIService with a Service
        route = route or routing.parse(req.path, req.method, self.crds.lookup)
        if route is None:
            raise resource_not_found()
        if route.kind in ("discovery", "openapi"):
            return self._delegate(route.kind, req)
        r = route.resource
        assert r is not None
        if isinstance(r, CustomResource) and r.converts:  # through the CRD's conversion webhook
            return await self.converted.respond(req, route)
        q = req.query
        method = req.method.upper()
        if r.group == metrics.GROUP:
            return await self.metrics.respond(req, r, route.namespace, route.name, route.subresource)
        if r.group == tokenrequest.GROUP and r.plural == "tokenreviews":
            if method != "POST" or route.name is not None:
                raise method_not_allowed()
            return ApiResponse(201, tokenrequest.review_token(await self._body(req), self.bound_tokens,
                                                              self.token_reviewer))
        if not resources.stored(r):
            if route.name is not None:
                raise resource_not_found()
            body = (await codec.decode_async(req.body, req.headers.get("content-type", "application/json"))).value
            return reviews.respond(self.authorizer, req, r, route.namespace, body)
        if route.legacy_watch or (method == "GET" and route.subresource is None and codec.query_bool(q, "watch")):
            if method != "GET":
                raise method_not_allowed()
            return await self._watch(req, r, route.namespace, route.name)
        if route.name is None:
            if r.namespaced and route.namespace is None and method in ("POST", "DELETE"):
                raise method_not_allowed()
            if method == "GET":
                return await self._list(req, r, route.namespace)
            if method == "POST":
                return await self._create(req, r, route.namespace)
            if method == "DELETE" and "deletecollection" in r.verbs and r.plural != "namespaces":
                return await self._delete_collection(req, r, route.namespace)
            raise method_not_allowed()
        if r.namespaced and route.namespace is None:
            raise resource_not_found()
        sub = route.subresource
        ns, name = route.namespace, route.name
        if sub is None or sub == "status":
            if method == "GET":
                return self._render_one(req, r, await self.registry.get(r, ns, name))
            if method == "PUT":
                return await self._update(req, r, ns, name, sub)
            if method == "PATCH":
                return await self._patch(req, r, ns, name, sub)
            if method == "DELETE" and sub is None:
                return await self._delete(req, r, ns, name)
            raise method_not_allowed()
        if sub == "scale":
            return await self._scale(req, r, ns, name, method)
        if r.plural == "pods" and r.group == "":
            if sub == "resize":
                return await self._resize(req, r, ns, name, method)
            if sub == "binding" and method == "POST":
                return await self._bind(req, r, ns, name)
            if sub == "eviction" and method == "POST":
                return await self._evict(req, r, ns, name)
            if sub in subresources.NODE_SUBRESOURCES:
                return await self._node(req, r, ns, name, sub)
        if r.plural == "serviceaccounts" and r.group == "" and sub == "token" and method == "POST":
            return await self._token_request(req, r, ns, name)
        if r.plural == "namespaces" and r.group == "" and sub == "finalize" and method == "PUT":
            return await self._finalize(req, r, name)
        raise method_not_allowed()

    def _delegate(self, which: str, req: ApiRequest) -> ApiResponse:
        mod = importlib.import_module(f"k8py.apiserver.{which}")  # discovery or openapi, loaded when first asked
        served = self.crds.served()
        if which == "openapi":
            from k8py.apiserver import crdopenapi  # loads openapi, as asked
            resp: ApiResponse | None = mod.respond(req, crdopenapi.CustomDocs(served) if served else None)
        else:
            resp = mod.respond(req, served + self.aggregator.extra())
        if resp is None:
            raise resource_not_found()
        return resp

    # -- helpers -----------------------------------------------------------
    def _write_options(self, req: ApiRequest) -> WriteOptions:
        q = req.query
        dry = q.get("dryRun", "")
        if dry not in ("", "All"):
            raise bad_request(f'Invalid dryRun value: "{dry}": supported values: "All"')
        # Unset: Warn, as kube-apiserver (unknown fields dropped, with a Warning header).
        fv = q.get("fieldValidation", "") or "Warn"
        if fv not in ("Ignore", "Warn", "Strict"):
            raise bad_request(f'fieldValidation: Unsupported value: "{fv}": supported values: '
                              '"Ignore", "Strict", "Warn"')
        manager = q.get("fieldManager", "")
        if len(manager) > 128:
            raise bad_request("fieldManager: Too long: may not be more than 128 bytes")
        if not manager:
            ua = req.headers.get("user-agent", "")
            manager = ua.split("/", 1)[0].strip() or "unknown"
        return WriteOptions(dry_run=dry == "All", field_validation=fv, field_manager=manager[:128], user=req.user,
                            groups=req.groups)

    @staticmethod
    def _respond(code: int, body: Obj, opts: WriteOptions | None = None) -> ApiResponse:
        headers: dict[str, str] = {}
        if opts is not None and opts.warnings:
            headers["Warning"] = ", ".join(
                '299 - "' + w.replace("\\", "\\\\").replace('"', '\\"') + '"' for w in opts.warnings)
        return ApiResponse(code, body, headers=headers)

    def _renderer(self, req: ApiRequest, r: Resource) -> tuple[codec.Accept, Callable[[Obj], Obj]]:
        acc = codec.negotiate(req.headers.get("accept", ""))
        include = req.query.get("includeObject", "Metadata") or "Metadata"
        if include not in ("None", "Metadata", "Object"):
            raise bad_request(f'includeObject: Unsupported value: "{include}"')
        if acc.as_kind == "Table":
            def table(obj: Obj) -> Obj:
                t = machinery.to_table(r, [obj], self.clock.now(), include_object=include)
                t["apiVersion"] = f"meta.k8s.io/{acc.version}"
                return t
            return acc, table
        if acc.as_kind.startswith("PartialObjectMetadata"):
            return acc, lambda obj: {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{acc.version}",
                                     "metadata": obj.get("metadata", {})}
        return acc, lambda obj: obj

    def _render_one(self, req: ApiRequest, r: Resource, obj: Obj) -> ApiResponse:
        _, render = self._renderer(req, r)
        return ApiResponse(200, render(obj))

    async def _body(self, req: ApiRequest, opts: WriteOptions | None = None, kind: str = "") -> Obj:
        try:
            d = await codec.decode_object_async(req.body, req.headers.get("content-type", "application/json"))
        except StatusError as e:
            if kind and e.message.startswith("error converting YAML to JSON"):
                # kube-apiserver's transformDecodeError: the body's kind is unknown here
                raise bad_request(f"the object provided is unrecognized (must be of type {kind}): "
                                  f"{e.message} ({codec.summarize(req.body)})") from None
            raise
        if opts is not None:
            opts.duplicates = d.duplicates
        return cast(Obj, d.value)  # decode_object answers a JSON object or raises

    # -- collection verbs --------------------------------------------------
    async def _list(self, req: ApiRequest, r: Resource, ns: str | None) -> ApiResponse:
        q = req.query
        sel = compile_selection(r, q.get("labelSelector"), q.get("fieldSelector"), ns)
        items, rev, cont = await listing.list_objects(self.store, r, ns, sel, codec.query_int(q, "limit"),
                                                      q.get("continue") or None, self.caches.get(storage.prefix(r)))
        acc, render = self._renderer(req, r)
        if acc.as_kind == "Table":
            include = q.get("includeObject", "Metadata") or "Metadata"
            t = machinery.to_table(r, items, self.clock.now(), include_object=include)
            t["apiVersion"] = f"meta.k8s.io/{acc.version}"
            md = t.setdefault("metadata", {})
            md["resourceVersion"] = str(rev)
            if cont:
                md["continue"] = cont
            return ApiResponse(200, t)
        if acc.as_kind.startswith("PartialObjectMetadata"):
            body = listing.list_body(r, [render(i) for i in items], rev, cont)
            body["kind"], body["apiVersion"] = "PartialObjectMetadataList", f"meta.k8s.io/{acc.version}"
            return ApiResponse(200, body)
        return ApiResponse(200, listing.list_body(r, items, rev, cont))

    async def _watch(self, req: ApiRequest, r: Resource, ns: str | None, name: str | None) -> ApiResponse:
        q = req.query
        sel = compile_selection(r, q.get("labelSelector"), q.get("fieldSelector"), ns, name)
        rv = q.get("resourceVersion", "")
        initial = codec.query_bool(q, "sendInitialEvents")
        start = None if rv in ("", "0") or initial else parse_rv(rv)
        timeout = codec.query_int(q, "timeoutSeconds")
        acc, render = self._renderer(req, r)
        params = watching.WatchParams(
            resource=r, namespace=ns, selection=sel, start=start,
            bookmarks=codec.query_bool(q, "allowWatchBookmarks"),
            initial_events_end=initial, timeout=float(timeout) if timeout and timeout > 0 else None,
            render=render, encoding=watching.encoding_of(acc))
        cache = self.caches.get(storage.prefix(r))
        events = await watching.stream(self.store, cache, self.clock, self.config.bookmark_interval,
                                       self.config.watcher_queue, params)
        return ApiResponse(200, None, stream=events)

    async def _create(self, req: ApiRequest, r: Resource, ns: str | None) -> ApiResponse:
        self.crds.check_create(r)
        opts = self._write_options(req)
        obj = await self._body(req, opts, r.kind)
        out = await self.registry.create(r, ns, obj, opts)
        return self._respond(201, out, opts)

    async def _delete_collection(self, req: ApiRequest, r: Resource, ns: str | None) -> ApiResponse:
        q = req.query
        opts = self._write_options(req)
        body = (await codec.decode_async(req.body, req.headers.get("content-type", "application/json"))).value
        dopts = parse_options(body, q)
        dopts.dry_run = dopts.dry_run or opts.dry_run
        sel = compile_selection(r, q.get("labelSelector"), q.get("fieldSelector"), ns)
        items, rev, _ = await listing.list_objects(self.store, r, ns, sel, None, None)
        out = []
        for obj in items:
            md = obj["metadata"]
            try:
                body_obj, _ = await self.deleter.delete(r, md.get("namespace"), md["name"], dopts,
                                                        WriteOptions(dry_run=dopts.dry_run))
            except StatusError as e:
                if e.code == 404:
                    continue
                raise
            out.append(obj if body_obj.get("kind") == "Status" else body_obj)
        return ApiResponse(200, listing.list_body(r, out, rev, None))

    # -- object verbs ------------------------------------------------------
    async def _update(self, req: ApiRequest, r: Resource, ns: str | None, name: str,
                      sub: str | None) -> ApiResponse:
        opts = self._write_options(req)
        obj = await self._body(req, opts, r.kind)
        out, code = await self.registry.update(r, ns, name, obj, opts, sub)
        return self._respond(code, out, opts)

    async def _delete(self, req: ApiRequest, r: Resource, ns: str | None, name: str) -> ApiResponse:
        body = (await codec.decode_async(req.body, req.headers.get("content-type", "application/json"))).value
        dopts = parse_options(body, req.query)
        out, code = await self.deleter.delete(r, ns, name, dopts)
        return ApiResponse(code, out)

    async def _patch(self, req: ApiRequest, r: Resource, ns: str | None, name: str,
                     sub: str | None) -> ApiResponse:
        mt = patch.patch_type(req.headers.get("content-type", ""))
        opts = self._write_options(req)
        decoded = await patch.decode_patch(req.body, mt)
        opts.duplicates = decoded.duplicates
        apply = mt == patch.APPLY
        manager = req.query.get("fieldManager") or (None if apply else opts.field_manager)
        force = codec.query_bool(req.query, "force")
        if force and not apply:
            raise bad_request("force: Forbidden: may not be specified for non-apply patch")
        if apply:
            opts.record_managed = False
        key = storage.key(r, ns, name)
        for _ in range(self.config.patch_retries):
            kv = await self.store.get(key)
            if kv is None:
                if apply and sub is None:
                    return await self._apply_create(r, ns, name, decoded.value, manager, force, opts)
                raise not_found(r.plural, name, r.group)
            current = storage.from_kv(r, kv)
            pinned_rv = _patch_rv(decoded.value, mt)
            pinned = pinned_rv is not None
            if pinned and pinned_rv != current["metadata"]["resourceVersion"]:
                raise conflict(r.plural, name, r.group)
            patched = patch.apply_patch(r, current, decoded.value, mt, manager=manager, force=force,
                                        now=self.clock.now())
            check_type(r, patched)
            check_metadata(r, patched, ns, name)
            self.registry.field_check(r, patched, opts)
            new = self.registry.prepare_update(r, patched, current, sub, opts)
            try:
                out = await self.registry.commit_update(r, kv, current, new, opts, sub)
                return self._respond(200, out, opts)
            except (store_errors.Conflict, store_errors.NotFound):
                if pinned:
                    raise conflict(r.plural, name, r.group) from None
        raise conflict(r.plural, name, r.group)

    async def _apply_create(self, r: Resource, ns: str | None, name: str, applied: Obj,
                            manager: str | None, force: bool, opts: WriteOptions) -> ApiResponse:
        if (applied.get("metadata") or {}).get("name") not in (None, "", name):
            raise bad_request(f"the name of the object ({applied['metadata']['name']}) does not match "
                              f"the name on the URL ({name})")
        obj = patch.apply_patch(r, None, applied, patch.APPLY, manager=manager, force=force, now=self.clock.now())
        md = obj.setdefault("metadata", {})
        md["name"] = name
        md.pop("resourceVersion", None)
        out = await self.registry.create(r, ns, obj, opts)
        return self._respond(201, out, opts)

    # -- subresources ------------------------------------------------------
    async def _scale(self, req: ApiRequest, r: Resource, ns: str | None, name: str, method: str) -> ApiResponse:
        if method == "GET":
            return ApiResponse(200, subresources.to_scale(r, await self.registry.get(r, ns, name)))
        if method not in ("PUT", "PATCH"):
            raise method_not_allowed()
        opts = self._write_options(req)
        if method == "PUT":
            body = await self._body(req, opts)
            mt = ""
        else:
            mt = patch.patch_type(req.headers.get("content-type", ""))
            body = (await patch.decode_patch(req.body, mt)).value
        for _ in range(self.config.patch_retries):
            kv = await self.registry.get_kv(r, ns, name)
            current = storage.from_kv(r, kv)
            view = subresources.to_scale(r, current)
            if method == "PATCH":
                desired = patch.apply_patch(SCALE, view, body, mt, manager=req.query.get("fieldManager")
                                            or opts.field_manager, force=codec.query_bool(req.query, "force"),
                                            now=self.clock.now())
            else:
                desired = body
            want_rv = (desired.get("metadata") or {}).get("resourceVersion") if isinstance(desired, dict) else None
            pinned = want_rv not in (None, "") and (method == "PUT"
                                                    or want_rv != view["metadata"].get("resourceVersion"))
            if want_rv not in (None, "") and parse_rv(want_rv) != kv.mod_revision:
                raise conflict(r.plural, name, r.group)
            new = subresources.apply_scale(r, current, desired)
            new = self.registry.prepare_update(r, new, current, None, opts)
            try:
                out = await self.registry.commit_update(r, kv, current, new, opts, "scale")
                return self._respond(200, subresources.to_scale(r, out), opts)
            except (store_errors.Conflict, store_errors.NotFound):
                if pinned:
                    raise conflict(r.plural, name, r.group) from None
        raise conflict(r.plural, name, r.group)

    async def _resize(self, req: ApiRequest, r: Resource, ns: str | None, name: str, method: str) -> ApiResponse:
        """pods/resize: the pod; writes change only its containers' resources (registry, strategy)."""
        pod = await self.registry.get(r, ns, name)
        if method == "GET":
            return self._render_one(req, r, pod)
        if method not in ("PUT", "PATCH"):
            raise method_not_allowed()
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            await subresources.resize_node_present(self.registry, pod, node)
        if method == "PUT":
            return await self._update(req, r, ns, name, "resize")
        return await self._patch(req, r, ns, name, "resize")

    async def _bind(self, req: ApiRequest, r: Resource, ns: str | None, name: str) -> ApiResponse:
        body = await self._body(req)
        opts = self._write_options(req)
        for _ in range(self.config.patch_retries):
            kv = await self.registry.get_kv(r, ns, name)
            pod = storage.from_kv(r, kv)
            bound = subresources.bind(pod, body, self.clock.now())
            if opts.dry_run:
                return ApiResponse(201, dict(STATUS_SUCCESS_CREATED))
            try:
                await self.store.update(kv.key, storage.encode(r, bound), kv.mod_revision)
                return ApiResponse(201, dict(STATUS_SUCCESS_CREATED))
            except (store_errors.Conflict, store_errors.NotFound):
                continue
        raise conflict("pods/binding", name)

    async def _evict(self, req: ApiRequest, r: Resource, ns: str | None, name: str) -> ApiResponse:
        body = await self._body(req)
        if body.get("kind") not in (None, "", "Eviction"):
            raise bad_request(f"the kind in the data ({body.get('kind')}) does not match the expected kind (Eviction)")
        bname = (body.get("metadata") or {}).get("name")
        if bname not in (None, "", name):
            raise bad_request("name in URL does not match name in Eviction object")
        dopts = parse_options(body.get("deleteOptions"), req.query)
        pod = await self.registry.get(r, ns, name)
        await eviction.check_budget(self.registry, pod, self.clock.now(), dopts.dry_run)
        await self.deleter.delete(r, ns, name, dopts)
        return ApiResponse(201, dict(STATUS_SUCCESS_CREATED))

    async def _token_request(self, req: ApiRequest, r: Resource, ns: str | None, name: str) -> ApiResponse:
        """TokenRequest: a signed token for the service account (authentication.k8s.io/v1)."""
        body = await tokenrequest.create_token(self.registry, self.tokens, str(ns), name, await self._body(req),
                                               requester_node=nodeauthz.node_name(req.user, req.groups))
        return ApiResponse(201, body)

    async def _node(self, req: ApiRequest, r: Resource, ns: str | None, name: str, sub: str) -> ApiResponse:
        pod = await self.registry.get(r, ns, name)
        subresources.pod_needs_node(pod, sub)
        if self.node_proxy is None:
            raise subresources.no_node_proxy(pod, sub)
        return await self.node_proxy(req, pod, sub)

    async def _finalize(self, req: ApiRequest, r: Resource, name: str) -> ApiResponse:
        body = await self._body(req)
        check_type(r, body)
        check_metadata(r, body, None, name)
        fins = (body.get("spec") or {}).get("finalizers") or []
        if not isinstance(fins, list) or not all(isinstance(f, str) for f in fins):
            raise bad_request("spec.finalizers must be a list of strings")
        for _ in range(self.config.patch_retries):
            kv = await self.registry.get_kv(r, None, name)
            cur = storage.from_kv(r, kv)
            new = clone(cur)
            new.setdefault("spec", {})["finalizers"] = fins
            try:
                if cur["metadata"].get("deletionTimestamp") and not fins and not cur["metadata"].get("finalizers"):
                    dkv = await self.store.delete(kv.key, kv.mod_revision)
                    return ApiResponse(200, storage.decode(r, storage.encode(r, new), dkv.mod_revision))
                nkv = await self.store.update(kv.key, storage.encode(r, new), kv.mod_revision)
                return ApiResponse(200, storage.from_kv(r, nkv))
            except (store_errors.Conflict, store_errors.NotFound):
                continue
        raise conflict(r.plural, name)


def _patch_rv(body: Any, mt: str) -> str | None:
    """The resourceVersion a patch pins (a precondition), if it sets one."""
    if mt == patch.JSON:
        for op in body if isinstance(body, list) else []:
            if isinstance(op, dict) and op.get("path") == "/metadata/resourceVersion" \
                    and op.get("op") in ("add", "replace", "test"):
                v = op.get("value")
                return None if v is None else str(v)
        return None
    md = body.get("metadata") if isinstance(body, dict) else None
    v = md.get("resourceVersion") if isinstance(md, dict) else None
    return None if v in (None, "") else str(v)


__all__ = ["ApiServer", "ApiServerConfig", "DeleteOptions"]
