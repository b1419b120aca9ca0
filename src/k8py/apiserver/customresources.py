"""The custom resources the API server serves, kept in step with the CRDs in the store.

`CustomResources` is the apiextensions-apiserver of k8py, owned by the `ApiServer`:
- `lookup(group, version, plural)` is routing's hook, `served()` what discovery and
  OpenAPI add to the built-in table;
- `reconcile(name)` is level-triggered (run on every CRD event of the watch cache,
  synchronously after a create, and for every CRD at start): a live CRD whose names
  do not clash with another CRD's in its group is served, and its status gets
  `acceptedNames`, `storedVersions` and the `NamesAccepted` and `Established`
  conditions (a CAS write, only when they change); a CRD being deleted gets
  `Terminating`, its custom resources are deleted (their own finalizers honoured),
  and once none is left its `customresourcecleanup` finalizer is removed, which
  deletes it; a CRD gone from the store is no longer served.
Invariants: one reconcile per CRD at a time; tasks are owned and awaited by `close()`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from k8py.api import customresource as cr
from k8py.api import resources
from k8py.api.customresource import CustomResource
from k8py.api.resources import Resource
from k8py.api.types import Obj
from k8py.apiserver import storage
from k8py.apiserver.deletion import DeleteOptions, Deleter
from k8py.apiserver.errors import StatusError
from k8py.apiserver.registry import Registry, WriteOptions
from k8py.apiserver.storage import clone
from k8py.store import errors as store_errors

log = logging.getLogger(__name__)

_CRD = resources.lookup(cr.GROUP, "customresourcedefinitions")
assert _CRD is not None
CRDS: Resource = _CRD
_MANAGER = "kube-apiserver"


class CustomResources:
    def __init__(self, registry: Registry, deleter: Deleter, poll: float = 0.5) -> None:
        self.registry, self.deleter, self.poll = registry, deleter, poll
        self._by_crd: dict[str, list[CustomResource]] = {}
        self._storage: dict[str, CustomResource] = {}  # CRD name -> its storage version's resource
        self._by_gvr: dict[tuple[str, str, str], CustomResource] = {}
        self._served: tuple[CustomResource, ...] = ()
        self._locks: dict[str, asyncio.Lock] = {}
        self._terminating: set[str] = set()  # CRDs being deleted: their resources take no creates
        self._tasks: set[asyncio.Task[None]] = set()

    # -- what routing, discovery and OpenAPI read --------------------------------------
    def lookup(self, group: str, version: str, plural: str) -> CustomResource | None:
        return self._by_gvr.get((group, version, plural))

    def storage_of(self, r: CustomResource) -> CustomResource | None:
        """The resource of `r`'s CRD's storage version (served or not)."""
        return self._storage.get(r.crd_name)

    def served(self) -> tuple[CustomResource, ...]:
        return self._served

    def check_create(self, r: Resource) -> None:
        """A create of a custom resource whose CRD is being deleted is refused (405), as Kubernetes does."""
        if isinstance(r, CustomResource) and r.crd_name in self._terminating:
            raise StatusError(405, "MethodNotAllowed",
                              'create not allowed while custom resource definition is terminating')

    def namespaced_storage(self) -> list[Resource]:
        """One namespaced custom resource per CRD (all its versions share one storage)."""
        return [rs[0] for rs in self._by_crd.values() if rs and rs[0].namespaced]

    def _set(self, name: str, rs: list[CustomResource], crd: Obj | None = None) -> None:
        stored = cr.storage_resource(crd) if crd is not None and rs else None
        if rs:
            self._by_crd[name] = rs
        else:
            self._by_crd.pop(name, None)
        if stored is not None:
            self._storage[name] = stored
        else:
            self._storage.pop(name, None)
        self._served = tuple(r for n in sorted(self._by_crd) for r in self._by_crd[n])
        self._by_gvr = {(r.group, r.version, r.plural): r for r in self._served}

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        for kv in (await self.registry.store.list(storage.prefix(CRDS))).items:
            await self.reconcile(storage.from_kv(CRDS, kv)["metadata"]["name"])

    def observe(self, e: Any) -> None:
        """Watch cache listener of the CRD prefix: reconcile the CRD of the event."""
        self.kick(e.key.rsplit("/", 1)[-1])

    def kick(self, name: str) -> None:
        task = asyncio.get_running_loop().create_task(self._safe_reconcile(name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _safe_reconcile(self, name: str) -> None:
        try:
            await self.reconcile(name)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reconciling CustomResourceDefinition %s failed", name)

    # -- reconcile ---------------------------------------------------------------------
    async def reconcile(self, name: str) -> None:
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            kv = await self.registry.store.get(storage.key(CRDS, None, name))
            if kv is None:
                self._terminating.discard(name)
                self._set(name, [])
                return
            crd = storage.from_kv(CRDS, kv)
            if crd["metadata"].get("deletionTimestamp"):
                self._terminating.add(name)
                await self._terminate(crd)
                return
            self._terminating.discard(name)
            conflict = self._name_conflict(crd)
            self._set(name, [] if conflict else cr.served_resources(crd), crd)
            await self._write_status(name, lambda c: _accepted_status(c, conflict, self.registry.now()))

    def _name_conflict(self, crd: Obj) -> str:
        """Why the CRD's names clash with another served CRD of its group ("" if they do not)."""
        mine = cr.served_resources(crd)
        if not mine:
            return ""
        me = mine[0]
        names = {me.plural, me.name_singular, *me.short_names}
        for other_name, rs in self._by_crd.items():
            o = rs[0]
            if other_name == me.crd_name or o.group != me.group:
                continue
            if o.kind == me.kind:
                return f'"{me.kind}" is already in use'
            clash = names & {o.plural, o.name_singular, *o.short_names}
            if clash:
                return f'"{sorted(clash)[0]}" is already in use'
        return ""

    async def _write_status(self, name: str, change: Any) -> Obj | None:
        """CAS-write `change(crd)` (a new status, or None for no change) until it sticks."""
        for _ in range(self.registry.config.patch_retries):
            kv = await self.registry.store.get(storage.key(CRDS, None, name))
            if kv is None:
                return None
            old = storage.from_kv(CRDS, kv)
            status = change(old)
            if status is None or status == old.get("status"):
                return old
            new = clone(old)
            new["status"] = status
            try:
                return await self.registry.commit_update(CRDS, kv, old, new, WriteOptions(field_manager=_MANAGER),
                                                         "status")
            except (store_errors.Conflict, store_errors.NotFound):
                continue
        return None

    async def _terminate(self, crd: Obj) -> None:
        name = crd["metadata"]["name"]
        now = self.registry.now()
        await self._write_status(name, lambda c: _with_condition(
            c, "Terminating", "True", "InstanceDeletionInProgress", "CustomResource deletion is in progress", now))
        rs = cr.served_resources(crd) or self._by_crd.get(name, [])
        if rs and await self._delete_all(rs[0]):
            self.kick_later(name)
            return
        self._set(name, [])
        for _ in range(self.registry.config.patch_retries):
            kv = await self.registry.store.get(storage.key(CRDS, None, name))
            if kv is None:
                return
            old = storage.from_kv(CRDS, kv)
            new = clone(old)
            fins = [f for f in new["metadata"].get("finalizers") or [] if f != cr.CLEANUP_FINALIZER]
            if fins == (old["metadata"].get("finalizers") or []):
                return
            new["metadata"]["finalizers"] = fins
            try:
                await self.registry.commit_update(CRDS, kv, old, new, WriteOptions(field_manager=_MANAGER))
                return
            except (store_errors.Conflict, store_errors.NotFound):
                continue

    async def _delete_all(self, r: CustomResource) -> bool:
        """Delete every custom resource of `r`; True while some remain (finalizers)."""
        left = (await self.registry.store.list(storage.prefix(r))).items
        for kv in left:
            md = storage.from_kv(r, kv)["metadata"]
            if md.get("deletionTimestamp"):
                continue
            try:
                await self.deleter.delete(r, md.get("namespace"), md["name"], DeleteOptions())
            except StatusError as e:
                if e.code != 404:
                    raise
        return bool((await self.registry.store.list(storage.prefix(r))).items)

    def kick_later(self, name: str) -> None:
        async def later() -> None:
            await asyncio.sleep(self.poll)
            await self._safe_reconcile(name)
        task = asyncio.get_running_loop().create_task(later())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _with_condition(crd: Obj, type_: str, status: str, reason: str, message: str, now: str) -> Obj:
    st = clone(crd.get("status") or {})
    conds = [c for c in st.get("conditions") or [] if isinstance(c, dict)]
    for c in conds:
        if c.get("type") == type_:
            if (c.get("status"), c.get("reason"), c.get("message")) != (status, reason, message):
                c.update(status=status, reason=reason, message=message, lastTransitionTime=now)
            break
    else:
        conds.append({"type": type_, "status": status, "lastTransitionTime": now, "reason": reason,
                      "message": message})
    st["conditions"] = conds
    return st


def _accepted_status(crd: Obj, conflict: str, now: str) -> Obj:
    """The status of a live CRD: names accepted (or why not) and Established."""
    st = crd.get("status") or {}
    spec = crd.get("spec") or {}
    if conflict:
        new = _with_condition(crd, "NamesAccepted", "False", "NameConflict", conflict, now)
        new["acceptedNames"] = st.get("acceptedNames") or {"kind": "", "plural": ""}
        return _with_condition({"status": new}, "Established", "False", "NotAccepted", "not all names are accepted",
                               now)
    names = {k: v for k, v in cr.names(crd).items() if v not in (None, "", [])}
    new = _with_condition(crd, "NamesAccepted", "True", "NoConflicts", "no conflicts found", now)
    new["acceptedNames"] = names
    new = _with_condition({"status": new}, "Established", "True", "InitialNamesAccepted",
                          "the initial names have been accepted", now)
    stored = list(st.get("storedVersions") or [])
    for v in spec.get("versions") or []:
        if isinstance(v, dict) and v.get("storage") and v.get("name") not in stored:
            stored.append(v.get("name"))
    new["storedVersions"] = stored
    return new
