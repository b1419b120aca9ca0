"""The registry: create, read and update API objects in the Store.

Every write runs: type/metadata checks -> field validation (Strict/Warn/Ignore) ->
strategy (server-owned fields, status rules) -> on create, the `class_admission` hooks
(priority and runtime classes) -> defaults -> validation (422) -> admission (namespace
exists and is not terminating; then the mutating `admission` hooks, e.g. the
ServiceAccount plugin's, on create; the `validating_admission` checks, e.g. RBAC
escalation, on create and update; `update_admission` before an update's write; then the
admission `webhooks`) -> allocation (services) ->
managedFields -> compare-and-swap in the store. Nothing is stored when any step
fails, or for dryRun. Store conflicts surface as `store.errors.Conflict` so callers
choose between 409 (a client precondition) and retrying (PATCH, unconditional PUT).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from k8py.api import resources
from k8py.api.resources import Resource
from k8py.api.types import Obj
from k8py.api.wellknown import GROUP_MASTERS, NAMESPACE_DEFAULT, USER_SYSTEM_ADMIN
from k8py.apiserver import machinery, storage, strategy
from k8py.apiserver.allocator import ServiceAllocator
from k8py.apiserver.config import ApiServerConfig
from k8py.apiserver.errors import (
    StatusError,
    already_exists,
    bad_request,
    conflict,
    forbidden,
    invalid,
    not_found,
)
from k8py.apiserver.storage import clone
from k8py.clock import Clock, rfc3339
from k8py.store import errors as store_errors
from k8py.store.protocol import KeyValue, Store

log = logging.getLogger(__name__)

_NS = resources.lookup("", "namespaces")
assert _NS is not None
NAMESPACES: Resource = _NS
FIELD_VALIDATION = ("Ignore", "Warn", "Strict")
# Kinds a PUT may create (Kubernetes' AllowCreateOnUpdate).
CREATE_ON_UPDATE = {("", "endpoints"), ("", "events"), ("events.k8s.io", "events"),
                    ("coordination.k8s.io", "leases"), ("discovery.k8s.io", "endpointslices")}


@dataclass
class WriteOptions:
    dry_run: bool = False
    field_validation: str = "Warn"  # kube-apiserver's default when the request names none
    field_manager: str = "unknown"
    warnings: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)  # duplicate keys in the body
    record_managed: bool = True  # False for apply: server_side_apply records managedFields
    user: str = USER_SYSTEM_ADMIN  # who writes (admission checks such as RBAC escalation read it)
    groups: tuple[str, ...] = (GROUP_MASTERS,)


def parse_rv(value: Any, what: str = "resourceVersion") -> int:
    try:
        rv = int(str(value))
        if rv < 0:
            raise ValueError
        return rv
    except (TypeError, ValueError):
        raise bad_request(f'invalid {what}: "{value}" is not a valid resource version') from None


def check_type(r: Resource, obj: Obj, expected_av: str | None = None, expected_kind: str | None = None) -> None:
    """apiVersion/kind of a body must be the URL's (filled in when absent)."""
    av, kind = obj.get("apiVersion"), obj.get("kind")
    want_av, want_kind = expected_av or r.api_version, expected_kind or r.kind
    if av not in (None, "") and av != want_av:
        raise bad_request(f"the API version in the data ({av}) does not match the expected API version ({want_av})")
    if kind not in (None, "") and kind != want_kind:
        raise bad_request(f"the kind in the data ({kind}) does not match the expected kind ({want_kind})")
    obj["apiVersion"], obj["kind"] = want_av, want_kind


def check_metadata(r: Resource, obj: Obj, namespace: str | None, name: str | None) -> Obj:
    md = obj.get("metadata")
    if md is None:
        md = obj["metadata"] = {}
    if not isinstance(md, dict):
        raise bad_request("metadata must be an object")
    if r.namespaced:
        body_ns = md.get("namespace")
        if body_ns not in (None, "") and namespace is not None and body_ns != namespace:
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        if namespace is not None:
            md["namespace"] = namespace
    else:
        md.pop("namespace", None)
    if name is not None:
        if md.get("name") in (None, ""):
            md["name"] = name
        elif md["name"] != name:
            raise bad_request(f"the name of the object ({md['name']}) does not match the name on the URL ({name})")
    return md


class Registry:
    def __init__(self, store: Store, config: ApiServerConfig, clock: Clock,
                 allocator: ServiceAllocator) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.allocator = allocator
        # Called after an object was created (not for dry runs): e.g. namespace -> SA.
        self.after_create: list[Callable[[Resource, Obj], Awaitable[None]]] = []
        # Admission checks of a valid object about to be written (create, or update with the
        # old object): raise a StatusError to refuse it (e.g. RBAC escalation).
        self.validating_admission: list[Callable[[Resource, Obj, Obj | None, WriteOptions], None]] = []
        # Admission on create, after the server's own fields and before defaults and
        # validation (priority and runtime classes): mutate the object or raise a Status.
        self.class_admission: list[Callable[[Resource, Obj], Awaitable[None]]] = []
        # Admission on update (new, old), before the write: raise a Status to refuse it.
        self.update_admission: list[Callable[[Resource, Obj, Obj], Awaitable[None]]] = []
        # Called when an object with deletionTimestamp lost its last finalizer and was deleted.
        self.after_delete: list[Callable[[Resource, Obj], Awaitable[None]]] = []
        # Mutating admission of a create, after the namespace's (e.g. the ServiceAccount plugin):
        # `await hook(registry, resource, obj)` changes obj or raises a StatusError.
        self.admission: list[Callable[[Registry, Resource, Obj], Awaitable[None]]] = []
        # Admission webhooks of a create, update or delete, last (apiserver.webhooks): `await hook(
        # registry, resource, obj (None: a delete), old (None: a create), opts, subresource)`
        # changes obj or raises a StatusError.
        self.webhooks: list[Callable[[Registry, Resource, Obj | None, Obj | None, WriteOptions, str | None],
                                     Awaitable[None]]] = []

    def now(self) -> str:
        return rfc3339(self.clock.now())

    # -- reads -------------------------------------------------------------
    async def get_kv(self, r: Resource, namespace: str | None, name: str) -> KeyValue:
        kv = await self.store.get(storage.key(r, namespace, name))
        if kv is None:
            raise not_found(r.plural, name, r.group)
        return kv

    async def get(self, r: Resource, namespace: str | None, name: str) -> Obj:
        return storage.from_kv(r, await self.get_kv(r, namespace, name))

    # -- shared steps ------------------------------------------------------
    def field_check(self, r: Resource, obj: Obj, opts: WriteOptions) -> None:
        """Kubernetes' decoding and field validation: an integer out of its field's range
        fails decoding (400); unknown fields are dropped (decoding into Go types does), with a
        warning under Warn (the default), refused under Strict; duplicate fields likewise."""
        strict = opts.field_validation == "Strict"
        unknown, overflows = machinery.decoding_problems(obj, r, prune=not strict)
        cannot = f'{r.kind} in version "{r.version}" cannot be handled as a {r.kind}: '
        if overflows:
            raise bad_request(cannot + overflows[0])
        if opts.field_validation == "Ignore":
            return
        msgs = [f'unknown field "{f}"' for f in unknown] + [f'duplicate field "{d}"' for d in opts.duplicates]
        if not msgs:
            return
        if strict:
            raise bad_request(cannot + "strict decoding error: " + ", ".join(msgs))
        opts.warnings.extend(msgs)

    def validate(self, r: Resource, obj: Obj, old: Obj | None = None) -> None:
        causes = machinery.validate(obj, r, old)
        if causes:
            name = (obj.get("metadata") or {}).get("name") or ""
            raise invalid(r.kind, str(name), causes, r.group)

    async def admit_namespace(self, r: Resource, obj: Obj) -> None:
        """NamespaceLifecycle admission: the namespace must exist and not be terminating."""
        if not r.namespaced:
            return
        md = obj["metadata"]
        ns = md.get("namespace")
        if not ns:
            raise bad_request("the object must have a namespace")
        kv = await self.store.get(storage.key(NAMESPACES, None, ns))
        if kv is None:
            raise not_found("namespaces", ns)
        nsobj = storage.from_kv(NAMESPACES, kv)
        if (nsobj.get("status") or {}).get("phase") == "Terminating" or \
                nsobj["metadata"].get("deletionTimestamp"):
            raise forbidden(r.plural, md.get("name") or md.get("generateName") or "",
                            f"unable to create new content in namespace {ns} because it is being terminated",
                            r.group)

    async def allocate(self, r: Resource, obj: Obj, old: Obj | None, key: str) -> None:
        if r.group != "" or r.plural != "services":
            return
        used = await self.allocator.in_use(key)
        causes = self.allocator.allocate(obj, old, used)
        if causes:
            raise invalid(r.kind, obj["metadata"].get("name", ""), causes, r.group)

    # -- create ------------------------------------------------------------
    async def create(self, r: Resource, namespace: str | None, obj: Obj, opts: WriteOptions) -> Obj:
        check_type(r, obj)
        md = check_metadata(r, obj, namespace, None)
        if r.namespaced and namespace is None and not md.get("namespace"):
            md["namespace"] = NAMESPACE_DEFAULT
        self.field_check(r, obj, opts)
        if md.get("resourceVersion") not in (None, ""):
            raise bad_request("resourceVersion should not be set on objects to be created")
        for f in ("uid", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            md.pop(f, None)
        md["uid"] = str(uuid.uuid4())
        md["creationTimestamp"] = self.now()
        generate = not md.get("name") and bool(md.get("generateName"))
        if not md.get("name") and not generate:
            raise invalid(r.kind, "", [machinery.cause("FieldValueRequired", "metadata.name",
                                                       "Required value: name or generateName is required")],
                          r.group)
        if generate:
            md["name"] = strategy.generated_name(str(md["generateName"]))
        strategy.prepare_create(r, obj)
        for admit_class in self.class_admission:
            await admit_class(r, obj)
        machinery.apply_defaults(obj, r)
        self.validate(r, obj)
        for check in self.validating_admission:
            check(r, obj, None, opts)
        await self.admit_namespace(r, obj)
        for admit in self.admission:
            await admit(self, r, obj)
        for call_webhooks in self.webhooks:
            await call_webhooks(self, r, obj, None, opts, None)
        for attempt in range(8):
            key = storage.key(r, md.get("namespace"), md["name"])
            async with self._write_lock(r):
                await self.allocate(r, obj, None, key)
                out = machinery.record_update(None, obj, opts.field_manager, self.clock.now()) \
                    if opts.record_managed else obj
                if opts.dry_run:
                    return out
                try:
                    kv = await self.store.create(key, storage.encode(r, out))
                    self.allocator.observe(kv.key, kv.mod_revision, kv.value)
                except store_errors.KeyExists:
                    if generate and attempt < 7:
                        md["name"] = strategy.generated_name(str(md["generateName"]))
                        continue
                    raise already_exists(r.plural, md["name"], r.group) from None
            created = storage.from_kv(r, kv)
            for hook in self.after_create:
                try:
                    await hook(r, created)
                except Exception:
                    log.exception("after-create hook failed for %s %s", r.kind, md["name"])
            return created
        raise AssertionError("unreachable")

    def _write_lock(self, r: Resource) -> Any:
        if r.group == "" and r.plural == "services":
            return self.allocator.lock
        return _NoLock()

    # -- update ------------------------------------------------------------
    def prepare_update(self, r: Resource, new: Obj, old: Obj, subresource: str | None,
                       opts: WriteOptions) -> Obj:
        """Server rules, defaults and validation of an update; the object to store."""
        omd = old["metadata"]
        nmd = new.get("metadata") or {}
        if nmd.get("uid") not in (None, "") and nmd["uid"] != omd.get("uid"):
            raise conflict(r.plural, omd["name"], r.group,
                           f"Precondition failed: UID in precondition: {nmd['uid']}, "
                           f"UID in object meta: {omd.get('uid')}")
        out = strategy.prepare_update(r, new, old, subresource)
        md = out["metadata"]
        if omd.get("deletionTimestamp"):
            added = [f for f in md.get("finalizers") or [] if f not in (omd.get("finalizers") or [])]
            if added:
                raise invalid(r.kind, omd["name"], [machinery.cause(
                    "FieldValueForbidden", "metadata.finalizers",
                    ("Forbidden: no new finalizers can be added if the object is being deleted, "
                     f"found new finalizers {added!r}").replace("'", '"'))],
                    r.group)
        machinery.apply_defaults(out, r)
        strategy.bump_generation(r, out, old)
        if subresource == "resize":  # the spec as on create, then what a resize may change
            self.validate(r, out, None)
            causes = machinery.validate_resize(out, old)
            if causes:
                raise invalid(r.kind, omd["name"], causes, r.group)
        else:
            self.validate(r, out, old)
        for check in self.validating_admission:
            check(r, out, old, opts)
        return out

    async def commit_update(self, r: Resource, kv: KeyValue, old: Obj, new: Obj,
                            opts: WriteOptions, subresource: str | None = None) -> Obj:
        """CAS-write `new` over `kv` (raises store Conflict). A no-op write is skipped;
        an object being deleted that lost its last finalizer is deleted."""
        if _same(old, new):
            return old
        for admit in self.update_admission:
            await admit(r, new, old)
        for call_webhooks in self.webhooks:
            await call_webhooks(self, r, new, old, opts, subresource)
        md = new["metadata"]
        key = kv.key
        async with self._write_lock(r):
            await self.allocate(r, new, old, key)
            if not opts.record_managed:
                out = new
            elif subresource == "status":
                out = machinery.record_status_update(old, new, opts.field_manager, self.clock.now())
            else:
                out = machinery.record_update(old, new, opts.field_manager, self.clock.now(), subresource)
            if md.get("deletionTimestamp") and not md.get("finalizers") \
                    and not md.get("deletionGracePeriodSeconds"):
                if opts.dry_run:
                    return out
                dkv = await self.store.delete(key, kv.mod_revision)
                self.allocator.observe(key, dkv.mod_revision, None)
                gone = storage.decode(r, storage.encode(r, out), dkv.mod_revision)
                for hook in self.after_delete:
                    await hook(r, gone)
                return gone
            if opts.dry_run:
                return out
            nkv = await self.store.update(key, storage.encode(r, out), kv.mod_revision)
            self.allocator.observe(key, nkv.mod_revision, nkv.value)
        return storage.from_kv(r, nkv)

    async def update(self, r: Resource, namespace: str | None, name: str, obj: Obj,
                     opts: WriteOptions, subresource: str | None = None) -> tuple[Obj, int]:
        """PUT. CAS when the body carries metadata.resourceVersion; else retried."""
        check_type(r, obj)
        md = check_metadata(r, obj, namespace, name)
        self.field_check(r, obj, opts)
        want_rv = md.get("resourceVersion")
        expected = parse_rv(want_rv) if want_rv not in (None, "") else None
        for _ in range(self.config.patch_retries):
            kv = await self.store.get(storage.key(r, namespace, name))
            if kv is None:
                if subresource is None and (r.group, r.plural) in CREATE_ON_UPDATE:
                    md.pop("resourceVersion", None)
                    try:
                        return await self.create(r, namespace, clone(obj), opts), 201
                    except StatusError as e:
                        if e.reason != "AlreadyExists":
                            raise
                        continue
                raise not_found(r.plural, name, r.group)
            if expected is not None and kv.mod_revision != expected:
                raise conflict(r.plural, name, r.group)
            old = storage.from_kv(r, kv)
            new = self.prepare_update(r, clone(obj), old, subresource, opts)
            try:
                return await self.commit_update(r, kv, old, new, opts, subresource), 200
            except store_errors.Conflict:
                if expected is not None:
                    raise conflict(r.plural, name, r.group) from None
            except store_errors.NotFound:
                if expected is not None:
                    raise conflict(r.plural, name, r.group) from None
        raise conflict(r.plural, name, r.group)


def _strip(o: Obj) -> Obj:
    o = dict(o)
    md = dict(o.get("metadata") or {})
    md.pop("resourceVersion", None)
    md.pop("managedFields", None)
    o["metadata"] = md
    return o


def _same(a: Obj, b: Obj) -> bool:
    return _strip(a) == _strip(b)


class _NoLock:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None
