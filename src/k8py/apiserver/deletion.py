"""DELETE: options, preconditions, graceful deletion, finalizers, propagation.

- Objects with finalizers (or with a propagationPolicy that adds one: Foreground ->
  `foregroundDeletion`, Orphan -> `orphan`) get deletionTimestamp and stay until an
  update removes the last finalizer (the registry then deletes them).
- Pods bound to a node are deleted gracefully: deletionTimestamp = now + grace,
  deletionGracePeriodSeconds = grace (the pod's terminationGracePeriodSeconds unless
  the request says otherwise); the kubelet finishes with gracePeriodSeconds=0.
  Unbound or finished pods and grace 0 go at once.
- Namespaces become Terminating; `NamespaceFinalizer` then empties and removes them.
The response is the object while it remains (and for kinds Kubernetes returns the
deleted object: pods, services, namespaces), else a Status Success.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from k8py.api import resources
from k8py.api.customresource import CLEANUP_FINALIZER
from k8py.api.customresource import GROUP as CRD_GROUP
from k8py.api.resources import Resource
from k8py.api.types import Obj
from k8py.api.wellknown import NAMESPACE_DEFAULT, NAMESPACE_PUBLIC, NAMESPACE_SYSTEM
from k8py.apiserver import codec, storage
from k8py.apiserver.errors import bad_request, conflict, forbidden, success
from k8py.apiserver.registry import Registry, WriteOptions, parse_rv
from k8py.apiserver.storage import clone
from k8py.clock import rfc3339
from k8py.store import errors as store_errors

log = logging.getLogger(__name__)

RETURNS_OBJECT = {("", "pods"), ("", "services"), ("", "namespaces")}
UNDELETABLE_NAMESPACES = (NAMESPACE_DEFAULT, NAMESPACE_SYSTEM, NAMESPACE_PUBLIC)
POLICIES = ("Foreground", "Background", "Orphan")


@dataclass
class DeleteOptions:
    grace_period: int | None = None
    propagation: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    dry_run: bool = False


def parse_options(body: Any, query: dict[str, str]) -> DeleteOptions:
    o = DeleteOptions()
    if body is not None and not isinstance(body, dict):
        raise bad_request("DeleteOptions must be an object")
    b: Obj = body or {}
    grace = b.get("gracePeriodSeconds", codec.query_int(query, "gracePeriodSeconds"))
    if grace is not None:
        if not isinstance(grace, int) or isinstance(grace, bool):
            raise bad_request(f"gracePeriodSeconds must be an integer, got {grace!r}")
        o.grace_period = max(0, grace)
    pol = b.get("propagationPolicy", query.get("propagationPolicy"))
    orphan = b.get("orphanDependents", query.get("orphanDependents"))
    if pol not in (None, ""):
        if pol not in POLICIES:
            raise bad_request(f'propagationPolicy: Unsupported value: "{pol}": supported values: '
                              f'"Foreground", "Background", "Orphan"')
        o.propagation = pol
    elif orphan is not None:
        o.propagation = "Orphan" if orphan in (True, "true") else "Background"
    pre = b.get("preconditions") or {}
    if not isinstance(pre, dict):
        raise bad_request("preconditions must be an object")
    o.uid = pre.get("uid")
    o.resource_version = pre.get("resourceVersion")
    dry = b.get("dryRun") or ([query["dryRun"]] if query.get("dryRun") else [])
    o.dry_run = "All" in (dry if isinstance(dry, list) else [dry])
    return o


def _grace(r: Resource, obj: Obj, opts: DeleteOptions) -> int:
    if r.group != "" or r.plural != "pods":
        return 0
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
        return 0
    if opts.grace_period is not None:
        return opts.grace_period
    g = spec.get("terminationGracePeriodSeconds")
    return g if isinstance(g, int) and g >= 0 else 30


def _finalizers(current: list[str], policy: str | None) -> list[str]:
    fs = [f for f in current]
    if policy == "Foreground":
        fs = [f for f in fs if f != "orphan"]
        if "foregroundDeletion" not in fs:
            fs.append("foregroundDeletion")
    elif policy == "Orphan":
        fs = [f for f in fs if f != "foregroundDeletion"]
        if "orphan" not in fs:
            fs.append("orphan")
    return fs


class Deleter:
    def __init__(self, registry: Registry, on_namespace_terminating: Callable[[str], None]) -> None:
        self.reg = registry
        self.on_namespace_terminating = on_namespace_terminating

    def _response(self, r: Resource, obj: Obj, removed: bool) -> Obj:
        if not removed or (r.group, r.plural) in RETURNS_OBJECT:
            return obj
        md = obj.get("metadata") or {}
        return success(md.get("name", ""), r.group, r.plural, md.get("uid"))

    async def delete(self, r: Resource, namespace: str | None, name: str, opts: DeleteOptions,
                     wopts: WriteOptions | None = None) -> tuple[Obj, int]:
        """(response body, HTTP code)."""
        wopts = wopts or WriteOptions(dry_run=opts.dry_run)
        reg = self.reg
        for _ in range(reg.config.patch_retries):
            kv = await reg.get_kv(r, namespace, name)
            obj = storage.from_kv(r, kv)
            md = obj["metadata"]
            if opts.uid and opts.uid != md.get("uid"):
                raise conflict(r.plural, name, r.group,
                               f"Precondition failed: UID in precondition: {opts.uid}, "
                               f"UID in object meta: {md.get('uid')}")
            if opts.resource_version and parse_rv(opts.resource_version) != kv.mod_revision:
                raise conflict(r.plural, name, r.group,
                               f"Precondition failed: ResourceVersion in precondition: {opts.resource_version}, "
                               f"ResourceVersion in object meta: {kv.mod_revision}")
            for call_webhooks in reg.webhooks:
                await call_webhooks(reg, r, None, obj, wopts, None)
            try:
                if r.group == "" and r.plural == "namespaces":
                    return await self._delete_namespace(r, kv, obj, opts, wopts)
                return await self._delete(r, kv, obj, opts, wopts)
            except store_errors.Conflict:
                continue
            except store_errors.NotFound:
                continue
        raise conflict(r.plural, name, r.group)

    async def _delete(self, r: Resource, kv: Any, obj: Obj, opts: DeleteOptions,
                      wopts: WriteOptions) -> tuple[Obj, int]:
        reg = self.reg
        md = obj["metadata"]
        grace = _grace(r, obj, opts)
        finalizers = _finalizers(list(md.get("finalizers") or []), opts.propagation)
        now = reg.clock.now()
        if md.get("deletionTimestamp"):
            new = clone(obj)
            nmd = new["metadata"]
            cur_grace = nmd.get("deletionGracePeriodSeconds") or 0
            if opts.grace_period is not None and grace < cur_grace:
                nmd["deletionGracePeriodSeconds"] = grace
                nmd["deletionTimestamp"] = rfc3339(now + grace)
            nmd["finalizers"] = finalizers
            if not finalizers:
                nmd.pop("finalizers", None)
            if not finalizers and not nmd.get("deletionGracePeriodSeconds"):
                return await self._remove(r, kv, obj, wopts)
            if new == obj:
                return obj, 200
            if wopts.dry_run:
                return new, 200
            nkv = await reg.store.update(kv.key, storage.encode(r, new), kv.mod_revision)
            return storage.from_kv(r, nkv), 200
        if (r.group, r.plural) == (CRD_GROUP, "customresourcedefinitions") and CLEANUP_FINALIZER not in finalizers:
            finalizers.append(CLEANUP_FINALIZER)  # its custom resources go first (apiserver/customresources.py)
        if grace == 0 and not finalizers:
            return await self._remove(r, kv, obj, wopts)
        new = clone(obj)
        nmd = new["metadata"]
        nmd["deletionTimestamp"] = rfc3339(now + grace)
        nmd["deletionGracePeriodSeconds"] = grace
        if finalizers:
            nmd["finalizers"] = finalizers
        if wopts.dry_run:
            return new, 200
        nkv = await reg.store.update(kv.key, storage.encode(r, new), kv.mod_revision)
        return storage.from_kv(r, nkv), 200

    async def _remove(self, r: Resource, kv: Any, obj: Obj, wopts: WriteOptions) -> tuple[Obj, int]:
        if wopts.dry_run:
            return self._response(r, obj, True), 200
        dkv = await self.reg.store.delete(kv.key, kv.mod_revision)
        self.reg.allocator.observe(kv.key, dkv.mod_revision, None)
        gone = storage.decode(r, kv.value, dkv.mod_revision)
        return self._response(r, gone, True), 200

    async def _delete_namespace(self, r: Resource, kv: Any, obj: Obj, opts: DeleteOptions,
                                wopts: WriteOptions) -> tuple[Obj, int]:
        md = obj["metadata"]
        name = md["name"]
        if name in UNDELETABLE_NAMESPACES:
            raise forbidden("namespaces", name, "this namespace may not be deleted")
        spec_fin = (obj.get("spec") or {}).get("finalizers") or []
        finalizers = _finalizers(list(md.get("finalizers") or []), opts.propagation)
        if md.get("deletionTimestamp"):
            if not spec_fin and not finalizers:
                return await self._remove(r, kv, obj, wopts)
            if not wopts.dry_run:
                self.on_namespace_terminating(name)
            return obj, 200
        if not spec_fin and not finalizers:
            return await self._remove(r, kv, obj, wopts)
        new = clone(obj)
        new["metadata"]["deletionTimestamp"] = rfc3339(self.reg.clock.now())
        new["metadata"]["deletionGracePeriodSeconds"] = 0
        if finalizers:
            new["metadata"]["finalizers"] = finalizers
        new.setdefault("status", {})["phase"] = "Terminating"
        if wopts.dry_run:
            return new, 200
        nkv = await self.reg.store.update(kv.key, storage.encode(r, new), kv.mod_revision)
        self.on_namespace_terminating(name)
        return storage.from_kv(r, nkv), 200


def namespaced_storage_resources() -> list[Resource]:
    """One namespaced resource per storage (events.k8s.io shares core events)."""
    seen: set[str] = set()
    out = []
    for r in resources.RESOURCES:
        if not r.namespaced or not resources.stored(r):
            continue
        p = storage.prefix(r)
        if p not in seen:
            seen.add(p)
            out.append(r)
    return out


class NamespaceFinalizer:
    """Empties a Terminating namespace, then removes it (the `kubernetes` finalizer).

    One task per namespace, owned by the API server. Level-triggered: each pass
    deletes what is left and waits for a change under the namespace's keys (or a
    short poll), so it converges however deletions interleave; safe to restart.
    """

    def __init__(self, deleter: Deleter, poll: float = 1.0) -> None:
        self.deleter = deleter
        self.poll = poll
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._changed: dict[str, asyncio.Event] = {}
        # Namespaced resources served besides the table's (the CRDs' custom resources), one per storage.
        self.extra: Callable[[], list[Resource]] = list

    def start(self, namespace: str) -> None:
        t = self.tasks.get(namespace)
        if t is not None and not t.done():
            self.kick(namespace)
            return
        self._changed[namespace] = asyncio.Event()
        self.tasks[namespace] = asyncio.create_task(self._run(namespace), name=f"finalize ns {namespace}")

    def kick(self, namespace: str) -> None:
        ev = self._changed.get(namespace)
        if ev is not None:
            ev.set()

    def notify_key(self, key: str) -> None:
        """A store key changed: wake the finalizer of its namespace, if any."""
        parts = key.split("/")  # /registry/<group>/<plural>/<ns>/<name>
        if len(parts) >= 6:
            self.kick(parts[4])

    async def close(self) -> None:
        for t in self.tasks.values():
            t.cancel()
        for t in self.tasks.values():
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        self.tasks.clear()

    async def _run(self, namespace: str) -> None:
        while True:
            try:
                if await self._pass(namespace):
                    return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("finalizing namespace %s failed; retrying", namespace)
            ev = self._changed[namespace]
            try:
                await asyncio.wait_for(ev.wait(), self.poll)
            except TimeoutError:
                pass
            ev.clear()

    async def _pass(self, namespace: str) -> bool:
        """One pass; True when the namespace is gone (or no longer terminating)."""
        reg = self.deleter.reg
        ns_res = resources.lookup("", "namespaces")
        assert ns_res is not None
        kv = await reg.store.get(storage.key(ns_res, None, namespace))
        if kv is None:
            return True
        nsobj = storage.from_kv(ns_res, kv)
        if not nsobj["metadata"].get("deletionTimestamp"):
            return True
        remaining = 0
        left: dict[str, int] = {}  # "pods." / "deployments.apps" -> instances left
        finalizers: dict[str, int] = {}  # finalizer -> instances holding it
        for r in namespaced_storage_resources() + self.extra():
            res = await reg.store.list(storage.prefix(r, namespace))
            for item in res.items:
                remaining += 1
                left[f"{r.plural}.{r.group}"] = left.get(f"{r.plural}.{r.group}", 0) + 1
                obj = storage.from_kv(r, item)
                for f in obj["metadata"].get("finalizers") or []:
                    finalizers[f] = finalizers.get(f, 0) + 1
                if obj["metadata"].get("deletionTimestamp"):
                    continue
                try:
                    await self.deleter.delete(r, namespace, obj["metadata"]["name"], DeleteOptions())
                except Exception as e:  # noqa: BLE001 - gone already, or retried next pass
                    log.debug("namespace %s: deleting %s failed: %s", namespace, item.key, e)
        if remaining:
            await self._report(kv, nsobj, left, finalizers)
            return False
        # Everything is gone: drop the `kubernetes` finalizer, then the namespace.
        new = clone(nsobj)
        spec = new.setdefault("spec", {})
        spec["finalizers"] = [f for f in spec.get("finalizers") or [] if f != "kubernetes"]
        if spec["finalizers"] or new["metadata"].get("finalizers"):
            if new != nsobj:
                await reg.store.update(kv.key, storage.encode(ns_res, new), kv.mod_revision)
            return True  # whoever removes the other finalizers completes the deletion
        try:
            await reg.store.delete(kv.key, kv.mod_revision)
        except store_errors.Conflict:
            return False
        except store_errors.NotFound:
            pass
        return True

    async def _report(self, kv: Any, nsobj: Obj, left: dict[str, int], finalizers: dict[str, int]) -> None:
        """Namespace status conditions saying what is left, as Kubernetes' namespace
        controller reports them (`kubectl describe namespace` shows them)."""
        reg = self.deleter.reg
        ns_res = resources.lookup("", "namespaces")
        assert ns_res is not None
        old = {c.get("type"): c for c in (nsobj.get("status") or {}).get("conditions") or []}
        now = rfc3339(reg.clock.now())

        def cond(type_: str, status: str, reason: str, message: str) -> Obj:
            prev = old.get(type_)
            same = prev is not None and prev.get("status") == status and prev.get("message") == message
            return {"type": type_, "status": status, "reason": reason, "message": message,
                    "lastTransitionTime": prev.get("lastTransitionTime", now) if same and prev else now}
        content = ", ".join(f"{k} has {n} resource instances" for k, n in sorted(left.items()))
        fins = ", ".join(f"{f} in {n} resource instances" for f, n in sorted(finalizers.items()))
        conditions = [
            cond("NamespaceDeletionDiscoveryFailure", "False", "ResourcesDiscovered",
                 "All resources successfully discovered"),
            cond("NamespaceDeletionGroupVersionParsingFailure", "False", "ParsedGroupVersions",
                 "All legacy kube types successfully parsed"),
            cond("NamespaceDeletionContentFailure", "False", "ContentDeleted",
                 "All content successfully deleted, may be waiting on finalization"),
            cond("NamespaceContentRemaining", "True", "SomeResourcesRemain",
                 f"Some resources are remaining: {content}"),
            cond("NamespaceFinalizersRemaining", "True" if fins else "False",
                 "SomeFinalizersRemain" if fins else "ContentHasNoFinalizers",
                 f"Some content in the namespace has finalizers remaining: {fins}" if fins
                 else "All content-preserving finalizers finished"),
        ]
        if [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in conditions] == \
                [{k: v for k, v in c.items() if k != "lastTransitionTime"}
                 for c in (nsobj.get("status") or {}).get("conditions") or []]:
            return
        new = clone(nsobj)
        new.setdefault("status", {})["conditions"] = conditions
        try:
            await reg.store.update(kv.key, storage.encode(ns_res, new), kv.mod_revision)
        except (store_errors.Conflict, store_errors.NotFound):
            pass  # the next pass reports again
