"""ReplicaSet (and ReplicationController) controller: keeps `spec.replicas` pods.

sync(key): claim the namespace's active pods (adopt orphans the selector matches,
release owned pods it no longer matches), then, when the expectations for the
owner are satisfied, create the missing pods in slow-start batches (1, 2, 4, ...)
or delete the surplus in Kubernetes' order (unscheduled, pending, not ready,
doubled-up, recently ready, restarted, newest first), and write the status
subresource. Invariants: a pod is never created twice for one missing replica
(expectations hold the owner until the informer has seen the writes or they expire);
only pods whose controllerRef carries the owner's uid are counted; writes to pods are
compare-and-swap (PUT with resourceVersion) or plain create/delete.
"""

from __future__ import annotations

import copy
import logging

from k8py.api.selectors import LabelSelector, label_selector_from_dict
from k8py.api.types import Obj
from k8py.client.client import Client, retry_on_conflict
from k8py.client.errors import ApiError
from k8py.client.events import EventRecorder
from k8py.client.informer import SharedInformerFactory, split_key
from k8py.clock import Clock, rfc3339
from k8py.controllers.base import Controller
from k8py.controllers.controllerutil import (
    controller_ref,
    deletion_rank,
    is_deleting,
    is_pod_active,
    is_pod_available,
    is_pod_ready,
    key_of,
    meta,
    new_controller_ref,
)
from k8py.controllers.expectations import Expectations
from k8py.controllers.indexes import (
    BY_CONTROLLER,
    claim_candidates,
    ensure_indexes,
)
from k8py.controllers.podcontrol import create_pods, delete_pods
from k8py.controllers.refmanager import (
    claim,
    matching_owners,
    resolve_controller_ref,
    selector_match,
    spec_selector,
)

log = logging.getLogger(__name__)

BURST_REPLICAS = 500

class ReplicaSetController(Controller):
    name = "replicaset-controller"
    resource = "replicasets"
    kind = "ReplicaSet"
    api_version = "apps/v1"

    def __init__(self, client: Client, factory: SharedInformerFactory, clock: Clock,
                 recorder: EventRecorder | None = None, workers: int = 2,
                 burst_replicas: int = BURST_REPLICAS) -> None:
        super().__init__(client, factory, clock, recorder, workers)
        self.burst_replicas = burst_replicas
        self.expectations = Expectations(clock)
        self.owners = self.informer(self.resource)
        self.pods = self.informer("pods")
        ensure_indexes(self.pods)
        ensure_indexes(self.owners)
        self.watch(self.owners, self.enqueue, self._owner_deleted)
        self.pods.add_event_handler(self._pod_added, self._pod_updated, self._pod_deleted)

    # -- selectors ------------------------------------------------------------
    def selector(self, owner: Obj) -> LabelSelector:
        return spec_selector(owner)

    # -- handlers -------------------------------------------------------------
    def _owner_deleted(self, obj: Obj) -> None:
        self.expectations.delete(key_of(obj))
        self.enqueue(obj)

    def _pod_added(self, pod: Obj) -> None:
        if is_deleting(pod):
            self._pod_deleted(pod)
            return
        if controller_ref(pod) is not None:
            owner = resolve_controller_ref(self.owners, self.kind, pod)
            if owner is not None:
                self.expectations.creation_observed(key_of(owner), key_of(pod))
                self.enqueue(owner)
            return
        for o in matching_owners(self.owners, pod, self.selector):
            self.enqueue(o)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if meta(old).get("resourceVersion") == meta(new).get("resourceVersion"):
            return
        labels_changed = meta(old).get("labels") != meta(new).get("labels")
        if is_deleting(new):
            self._pod_deleted(new)
            if labels_changed:
                self._pod_deleted(old)
            return
        old_ref, cur_ref = controller_ref(old), controller_ref(new)
        if old_ref is not None and old_ref != cur_ref:
            o = resolve_controller_ref(self.owners, self.kind, old)
            if o is not None:
                self.enqueue(o)
        if cur_ref is not None:
            o = resolve_controller_ref(self.owners, self.kind, new)
            if o is not None:
                self.enqueue(o)
                self.enqueue_when_available(o, old, new)
            return
        if labels_changed or old_ref != cur_ref:
            for o in matching_owners(self.owners, new, self.selector):
                self.enqueue(o)

    def _pod_deleted(self, pod: Obj) -> None:
        owner = resolve_controller_ref(self.owners, self.kind, pod)
        if owner is None:
            return
        self.expectations.pod_deleted(key_of(owner), key_of(pod))
        self.enqueue(owner)

    # -- sync -----------------------------------------------------------------
    async def sync(self, key: str) -> None:
        ns, name = split_key(key)
        owner = self.owners.get(ns, name)
        if owner is None:
            self.expectations.delete(key)
            return
        needs_sync = self.expectations.satisfied(key)
        selector = self.selector(owner)
        all_candidates = claim_candidates(self.pods, owner)
        candidates = [p for p in all_candidates if is_pod_active(p)]
        pods = await self.claim_pods(owner, selector, candidates)
        err: BaseException | None = None
        if needs_sync and not is_deleting(owner):
            err = await self.manage_replicas(owner, pods)
        await self.update_status(owner, pods, err, self.terminating(owner, all_candidates))
        if err is not None:
            raise err

    async def claim_pods(self, owner: Obj, selector: LabelSelector, pods: list[Obj]) -> list[Obj]:
        """The pods this owner controls after adopting matching orphans and releasing
        owned pods that no longer match (ControllerRefManager.ClaimPods)."""
        return await claim(self.client, "pods", owner, pods, selector_match(selector),
                           new_controller_ref(owner, self.api_version, self.kind))

    def pod_from_template(self, owner: Obj) -> Obj:
        template = copy.deepcopy((owner.get("spec") or {}).get("template") or {})
        tmd = template.get("metadata") or {}
        md: Obj = {
            "generateName": f"{meta(owner)['name']}-",
            "namespace": meta(owner).get("namespace"),
            "labels": tmd.get("labels") or {},
            "ownerReferences": [new_controller_ref(owner, self.api_version, self.kind)],
        }
        if tmd.get("annotations"):
            md["annotations"] = tmd["annotations"]
        if tmd.get("finalizers"):
            md["finalizers"] = tmd["finalizers"]
        return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": template.get("spec") or {}}

    async def manage_replicas(self, owner: Obj, pods: list[Obj]) -> BaseException | None:
        key = key_of(owner)
        want = int((owner.get("spec") or {}).get("replicas", 1) or 0)
        diff = len(pods) - want
        if diff < 0:
            n = min(-diff, self.burst_replicas)
            known = {key_of(p) for p in self.pods.by_index(BY_CONTROLLER, meta(owner).get("uid") or "")}
            self.expectations.expect_creations(key, n, known)
            return await create_pods(self.client, self.recorder, self.expectations, owner, n,
                                     lambda: self.pod_from_template(owner))
        if diff > 0:
            n = min(diff, self.burst_replicas)
            on_node: dict[str, int] = {}
            for p in pods:
                node = (p.get("spec") or {}).get("nodeName")
                if node:
                    on_node[node] = on_node.get(node, 0) + 1
            victims = sorted(pods, key=lambda p: deletion_rank(p, on_node))[:n]
            self.expectations.expect_deletions(key, [key_of(p) for p in victims])
            return await delete_pods(self.client, self.recorder, self.expectations, owner, victims,
                                     failed_delete_events=True)
        return None

    def terminating(self, owner: Obj, pods: list[Obj]) -> int | None:
        """status.terminatingReplicas (ReplicaSets since 1.33, beta and on by default): the
        owner's pods being deleted that have not yet reached Succeeded or Failed."""
        if self.kind != "ReplicaSet":
            return None
        uid = meta(owner).get("uid")
        return sum(1 for p in pods if is_deleting(p) and (controller_ref(p) or {}).get("uid") == uid
                   and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed"))

    def calculate_status(self, owner: Obj, pods: list[Obj], err: BaseException | None,
                         terminating: int | None = None) -> Obj:
        spec = owner.get("spec") or {}
        template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        mrs = int(spec.get("minReadySeconds") or 0)
        now = self.clock.now()
        fully = sum(1 for p in pods
                    if all((meta(p).get("labels") or {}).get(k) == v for k, v in template_labels.items()))
        ready = sum(1 for p in pods if is_pod_ready(p))
        available = sum(1 for p in pods if is_pod_available(p, mrs, now))
        old = owner.get("status") or {}
        status: Obj = {"replicas": len(pods)}
        for k, v in (("fullyLabeledReplicas", fully), ("readyReplicas", ready),
                     ("availableReplicas", available),
                     ("observedGeneration", int(meta(owner).get("generation") or 0))):
            if v:
                status[k] = v
        if terminating is not None:
            status["terminatingReplicas"] = terminating
        conds = [c for c in old.get("conditions") or [] if c.get("type") != "ReplicaFailure"]
        old_failure = next((c for c in old.get("conditions") or [] if c.get("type") == "ReplicaFailure"), None)
        if err is not None and isinstance(err, ApiError) and not err.conflict:
            conds.append(old_failure or {
                "type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                "message": str(err.body.get("message", err)),
                "lastTransitionTime": rfc3339(now)})
        if conds:
            status["conditions"] = conds
        return status

    async def update_status(self, owner: Obj, pods: list[Obj], err: BaseException | None,
                            terminating: int | None = None) -> None:
        status = self.calculate_status(owner, pods, err, terminating)
        if status != _normalized_status(owner.get("status") or {}):
            current = owner

            async def write() -> Obj:
                nonlocal current
                o = copy.deepcopy(current)
                o["status"] = status
                try:
                    return await self.client.update_status(self.resource, o)
                except ApiError as e:
                    if e.conflict:
                        ns = meta(current).get("namespace")
                        fresh = await self.client.get(self.resource, meta(current)["name"], ns)
                        if meta(fresh).get("uid") != meta(owner).get("uid"):
                            return fresh
                        current = fresh
                    raise

            try:
                await retry_on_conflict(write, attempts=3)
            except ApiError as e:
                if not e.not_found:
                    raise
        spec = owner.get("spec") or {}
        mrs = int(spec.get("minReadySeconds") or 0)
        want = int(spec.get("replicas", 1) or 0)
        if mrs > 0 and status.get("readyReplicas", 0) == want and status.get("availableReplicas", 0) != want:
            self.enqueue_after(owner, mrs)


def _normalized_status(s: Obj) -> Obj:
    out = {k: v for k, v in s.items() if v not in (0, None, [], {}) or k in ("replicas", "terminatingReplicas")}
    out.setdefault("replicas", 0)
    return out


class ReplicationControllerController(ReplicaSetController):
    """The same logic for core/v1 ReplicationControllers (map selectors)."""

    name = "replicationcontroller-controller"
    resource = "replicationcontrollers"
    kind = "ReplicationController"
    api_version = "v1"

    def selector(self, owner: Obj) -> LabelSelector:
        spec = owner.get("spec") or {}
        sel = spec.get("selector") or ((spec.get("template") or {}).get("metadata") or {}).get("labels")
        if not sel:
            return label_selector_from_dict(None)
        return label_selector_from_dict({"matchLabels": sel})
