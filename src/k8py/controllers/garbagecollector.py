"""Garbage collector: deletes objects whose owners are gone, and carries out
Foreground and Orphan deletion of owners (as Kubernetes' garbagecollector).

It keeps a graph of the objects of the watched resources (uid -> node with its
ownerReferences; owner uid -> dependent uids) fed by informers. Work items:
- `dep:<uid>` (attempt to delete a dependent): classify its owners by uid as solid
  (exists), dangling (absent, or the name now holds another uid) or waiting (being
  deleted in the foreground). No solid owner -> delete the dependent (Foreground
  when an owner waits for it and it has dependents itself, else Background);
  solid owner(s) plus dangling/waiting ones -> remove those references.
- `owner:<uid>` (an owner being deleted with a finalizer): `orphan` -> remove the
  references to it from every dependent, then the finalizer; `foregroundDeletion`
  -> once no dependent with blockOwnerDeletion remains, remove the finalizer, else
  ask the dependents to be deleted.
Invariants: owners are matched by uid, never by name alone; an owner is declared
absent only after a live GET (the caches may lag); deletes carry a uid precondition;
finalizer and ownerReference edits are compare-and-swap PUTs.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from k8py.api import resources
from k8py.api.customresource import is_established, served_resources
from k8py.api.types import Obj, OwnerReference
from k8py.client.client import Client, retry_on_conflict
from k8py.client.errors import ApiError
from k8py.client.events import EventRecorder
from k8py.client.informer import Informer, SharedInformerFactory
from k8py.clock import Clock
from k8py.controllers.base import Controller
from k8py.controllers.controllerutil import meta

log = logging.getLogger(__name__)

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
CRDS = "customresourcedefinitions.apiextensions.k8s.io"

WATCHED_RESOURCES: tuple[str, ...] = (
    "pods", "replicasets.apps", "deployments.apps", "daemonsets.apps", "statefulsets.apps",
    "controllerrevisions.apps", "replicationcontrollers", "jobs.batch", "cronjobs.batch",
    "endpointslices.discovery.k8s.io", "services", "configmaps", "secrets",
    "persistentvolumeclaims", "persistentvolumes", "serviceaccounts", "leases.coordination.k8s.io",
)


@dataclass
class GraphNode:
    uid: str
    resource: resources.Resource
    namespace: str | None
    name: str
    owners: list[OwnerReference] = field(default_factory=list)
    deleting: bool = False
    finalizers: list[str] = field(default_factory=list)

    @property
    def waiting_for_dependents(self) -> bool:
        return self.deleting and FOREGROUND in self.finalizers


class GarbageCollector(Controller):
    name = "garbage-collector-controller"

    def __init__(self, client: Client, factory: SharedInformerFactory, clock: Clock,
                 recorder: EventRecorder | None = None, workers: int = 2,
                 watched: tuple[str, ...] = WATCHED_RESOURCES) -> None:
        super().__init__(client, factory, clock, recorder, workers)
        self.nodes: dict[str, GraphNode] = {}
        self.dependents: dict[str, set[str]] = {}
        for name in watched:
            r = resources.get(name)
            inf = self.informer(name)
            inf.add_event_handler(*self._handlers(r))
        # Custom resources are owners and dependents too: one informer per Established CRD.
        self.custom: dict[tuple[str, str], resources.Resource] = {}  # (group, kind) -> preferred version
        self._rechecks: set[asyncio.Task[None]] = set()
        crds = self.informer(CRDS)
        self.watch(crds, self._crd_changed, self._crd_deleted)

    def _crd_changed(self, crd: Obj) -> None:
        served = served_resources(crd)
        if not served or not is_established(crd) or meta(crd).get("deletionTimestamp"):
            return
        r = served[0]
        if (r.group, r.kind) in self.custom:
            return
        self.custom[(r.group, r.kind)] = r
        inf = self.factory.informer(r)
        inf.add_event_handler(*self._handlers(r))
        self.factory.start()
        task = asyncio.get_running_loop().create_task(self._recheck_owned_by(r, inf))
        self._rechecks.add(task)
        task.add_done_callback(self._rechecks.discard)

    async def _recheck_owned_by(self, r: resources.Resource, inf: Informer) -> None:
        """Once the new informer has listed, look again at the dependents of owners of its kind
        that it did not find (they may be gone: no event will ever say so)."""
        await inf.wait_synced()
        for node in list(self.nodes.values()):
            if any(o.get("kind") == r.kind and o.get("apiVersion", "").rpartition("/")[0] == r.group
                   and o["uid"] not in self.nodes for o in node.owners):
                self.queue.add(f"dep:{node.uid}")

    def _crd_deleted(self, crd: Obj) -> None:
        served = served_resources(crd)
        if served and self.custom.pop((served[0].group, served[0].kind), None) is not None:
            self.factory.remove(served[0])

    def _handlers(self, r: resources.Resource) -> tuple[Callable[[Obj], None], Callable[[Obj, Obj], None],
                                                         Callable[[Obj], None]]:
        def add(o: Obj) -> None:
            self._upsert(r, o)

        def update(old: Obj, new: Obj) -> None:
            self._upsert(r, new)

        return add, update, self._remove

    # -- graph ----------------------------------------------------------------
    def _upsert(self, r: resources.Resource, obj: Obj) -> None:
        md = meta(obj)
        uid = md.get("uid")
        if not uid:
            return
        owners = [o for o in md.get("ownerReferences") or [] if o.get("uid")]
        old = self.nodes.get(uid)
        node = GraphNode(uid, r, md.get("namespace"), md.get("name", ""), owners,
                         bool(md.get("deletionTimestamp")), list(md.get("finalizers") or []))
        self.nodes[uid] = node
        old_owner_uids = {o["uid"] for o in old.owners} if old else set()
        new_owner_uids = {o["uid"] for o in owners}
        for ou in old_owner_uids - new_owner_uids:
            deps = self.dependents.get(ou)
            if deps is not None:
                deps.discard(uid)
                self._owner_changed(ou)
        for ou in new_owner_uids:
            self.dependents.setdefault(ou, set()).add(uid)
        if owners and (old is None or old.owners != owners) and any(
                o["uid"] not in self.nodes or self.nodes[o["uid"]].waiting_for_dependents for o in owners):
            self.queue.add(f"dep:{uid}")  # an owner we do not know (yet) or one that waits: verify
        if node.deleting and (FOREGROUND in node.finalizers or ORPHAN in node.finalizers):
            self.queue.add(f"owner:{uid}")
        if node.waiting_for_dependents and (old is None or not old.waiting_for_dependents):
            for d in self.dependents.get(uid, ()):  # they now see a waiting owner
                self.queue.add(f"dep:{d}")

    def _remove(self, obj: Obj) -> None:
        uid = meta(obj).get("uid")
        if not uid:
            return
        node = self.nodes.pop(uid, None)
        if node is not None:
            for o in node.owners:
                deps = self.dependents.get(o["uid"])
                if deps is not None:
                    deps.discard(uid)
                    if not deps:
                        del self.dependents[o["uid"]]
                self._owner_changed(o["uid"])
        for d in self.dependents.get(uid, ()):  # their owner is gone
            self.queue.add(f"dep:{d}")

    def _owner_changed(self, owner_uid: str) -> None:
        owner = self.nodes.get(owner_uid)
        if owner is not None and owner.deleting and (FOREGROUND in owner.finalizers or ORPHAN in owner.finalizers):
            self.queue.add(f"owner:{owner_uid}")

    # -- sync -----------------------------------------------------------------
    async def sync(self, key: str) -> None:
        kind, _, uid = key.partition(":")
        if kind == "dep":
            await self.attempt_to_delete(uid)
        elif kind == "owner":
            await self.process_deleting_owner(uid)

    async def _live(self, node: GraphNode) -> Obj | None:
        obj = await self.client.get_or_none(node.resource, node.name, node.namespace)
        if obj is None or meta(obj).get("uid") != node.uid:
            return None
        return obj

    async def _owner_state(self, ref: OwnerReference, namespace: str | None) -> str:
        """"solid", "dangling" or "waiting"."""
        n = self.nodes.get(ref["uid"])
        if n is not None and n.waiting_for_dependents:
            return "waiting"
        r = resources.by_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
        if r is None:  # another version of a served kind: the group and kind decide, as in Kubernetes
            group = ref.get("apiVersion", "").rpartition("/")[0]
            r = next((x for x in resources.RESOURCES if x.group == group and x.kind == ref.get("kind")), None) \
                or self.custom.get((group, str(ref.get("kind", ""))))
        if r is None:
            return "solid" if n is not None else "solid"  # unknown kinds are never collected
        try:
            owner = await self.client.get_or_none(r, ref.get("name", ""), namespace if r.namespaced else None)
        except ApiError as e:
            if e.status in (403, 404, 405):
                return "solid"
            raise
        if owner is None or meta(owner).get("uid") != ref["uid"]:
            return "dangling"
        if meta(owner).get("deletionTimestamp") and FOREGROUND in (meta(owner).get("finalizers") or []):
            return "waiting"
        return "solid"

    async def attempt_to_delete(self, uid: str) -> None:
        node = self.nodes.get(uid)
        if node is None or not node.owners:
            return
        if node.deleting and not node.waiting_for_dependents:
            return
        obj = await self._live(node)
        if obj is None:
            return
        refs = [r for r in meta(obj).get("ownerReferences") or [] if r.get("uid")]
        if not refs:
            return
        solid: list[OwnerReference] = []
        dangling: list[OwnerReference] = []
        waiting: list[OwnerReference] = []
        for ref in refs:
            state = await self._owner_state(ref, node.namespace)
            {"solid": solid, "dangling": dangling, "waiting": waiting}[state].append(ref)
        if solid:
            gone = {r["uid"] for r in dangling + waiting}
            if gone:
                await self._remove_owner_refs(node, gone)
            return
        if waiting and self.dependents.get(uid):
            policy = "Foreground"
        else:
            fins = meta(obj).get("finalizers") or []
            policy = "Orphan" if ORPHAN in fins else "Foreground" if FOREGROUND in fins else "Background"
        if meta(obj).get("deletionTimestamp"):
            return
        log.info("garbage collector: deleting %s %s/%s (policy %s)", node.resource.kind,
                 node.namespace, node.name, policy)
        try:
            await self.client.delete(node.resource, node.name, node.namespace, propagation_policy=policy,
                                     preconditions={"uid": uid})
        except ApiError as e:
            if not (e.not_found or e.conflict):
                raise

    async def _remove_owner_refs(self, node: GraphNode, owner_uids: set[str]) -> None:
        async def edit() -> None:
            obj = await self._live(node)
            if obj is None:
                return
            refs = meta(obj).get("ownerReferences") or []
            kept = [r for r in refs if r.get("uid") not in owner_uids]
            if len(kept) == len(refs):
                return
            obj = copy.deepcopy(obj)
            if kept:
                obj["metadata"]["ownerReferences"] = kept
            else:
                obj["metadata"].pop("ownerReferences", None)
            await self.client.update(node.resource, obj)

        await retry_on_conflict(edit)

    async def _remove_finalizer(self, node: GraphNode, finalizer: str) -> None:
        async def edit() -> None:
            obj = await self._live(node)
            if obj is None:
                return
            fins = meta(obj).get("finalizers") or []
            if finalizer not in fins:
                return
            obj = copy.deepcopy(obj)
            obj["metadata"]["finalizers"] = [f for f in fins if f != finalizer]
            await self.client.update(node.resource, obj)

        await retry_on_conflict(edit)

    async def process_deleting_owner(self, uid: str) -> None:
        node = self.nodes.get(uid)
        if node is None or not node.deleting:
            return
        if ORPHAN in node.finalizers:
            for dep_uid in list(self.dependents.get(uid, ())):
                dep = self.nodes.get(dep_uid)
                if dep is not None:
                    await self._remove_owner_refs(dep, {uid})
            await self._remove_finalizer(node, ORPHAN)
            return
        if FOREGROUND in node.finalizers:
            blocking = []
            for dep_uid in self.dependents.get(uid, ()):
                dep = self.nodes.get(dep_uid)
                if dep is None:
                    continue
                ref = next((o for o in dep.owners if o["uid"] == uid), None)
                if ref is not None and ref.get("blockOwnerDeletion"):
                    blocking.append(dep_uid)
                self.queue.add(f"dep:{dep_uid}")
            if not blocking:
                await self._remove_finalizer(node, FOREGROUND)
