"""StatefulSet controller: pods with stable names `<set>-<ordinal>`, stable storage and
ordered rollout.

sync(key): for ordinals 0..replicas-1 make sure a pod exists (creating its claims
`<template>-<set>-<ordinal>` from volumeClaimTemplates first), delete failed ones so
they come back, and delete ordinals >= replicas from the highest down. With
podManagementPolicy OrderedReady (the default) it does one step at a time and only
while every lower ordinal is Running and Ready; Parallel does all steps at once.
RollingUpdate replaces pods of an older revision from the highest ordinal down to
`partition`, one at a time, once all pods are ready; OnDelete waits for the user.
Each template is recorded as a ControllerRevision `<set>-<hash>`; pods carry its name
in `controller-revision-hash`, plus `statefulset.kubernetes.io/pod-name` and
`apps.kubernetes.io/pod-index`, hostname = pod name and subdomain = serviceName.
Status (replicas, ready/available/current/updated replicas, current/update
revision, observedGeneration) goes through the status subresource.
persistentVolumeClaimRetentionPolicy: claims are kept (Retain, the default), or owned
by the set (whenDeleted: Delete) or by the condemned pod on scale-down (whenScaled:
Delete) so that the garbage collector removes them.
Invariants: pod names are derived from ordinals, so a repeated create answers
AlreadyExists rather than making a second pod; this controller never deletes a claim
itself; deletes carry uid preconditions.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from k8py.api.selectors import label_selector_from_dict
from k8py.api.types import Obj
from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.client.events import NORMAL, WARNING, EventRecorder
from k8py.client.informer import SharedInformerFactory, split_key
from k8py.clock import Clock
from k8py.controllers.base import Controller
from k8py.controllers.controllerutil import (
    CONTROLLER_REVISION_HASH_LABEL,
    compute_hash,
    controller_ref,
    is_deleting,
    is_pod_available,
    is_pod_ready,
    meta,
    new_controller_ref,
)
from k8py.controllers.history import ensure_revision
from k8py.controllers.indexes import claim_candidates, ensure_indexes
from k8py.controllers.refmanager import (
    claim,
    matching_owners,
    resolve_controller_ref,
    selector_match,
)
from k8py.controllers.status import EMPTY, non_empty, write_status

log = logging.getLogger(__name__)

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


def ordinal_of(set_name: str, pod_name: str) -> int | None:
    m = re.fullmatch(re.escape(set_name) + r"-(\d+)", pod_name)
    return int(m.group(1)) if m else None


def running_and_ready(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and is_pod_ready(pod) and not is_deleting(pod)


def retention(sts: Obj, when: str) -> str:
    """persistentVolumeClaimRetentionPolicy.whenDeleted/whenScaled: Retain (default) or Delete."""
    return str((((sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}).get(when))
               or "Retain")


def claim_name(template: Obj, pod_name: str) -> str:
    return f"{meta(template)['name']}-{pod_name}"


class StatefulSetController(Controller):
    name = "statefulset-controller"

    def __init__(self, client: Client, factory: SharedInformerFactory, clock: Clock,
                 recorder: EventRecorder | None = None, workers: int = 2) -> None:
        super().__init__(client, factory, clock, recorder, workers)
        self.sets = self.informer("statefulsets")
        self.pods = self.informer("pods")
        self.revisions = self.informer("controllerrevisions")
        self.claims = self.informer("persistentvolumeclaims")
        ensure_indexes(self.sets)
        ensure_indexes(self.pods)
        ensure_indexes(self.revisions)
        self.watch(self.sets, self.enqueue)
        self.pods.add_event_handler(self._pod_changed, self._pod_updated, self._pod_changed)

    def _pod_changed(self, pod: Obj) -> None:
        s = resolve_controller_ref(self.sets, "StatefulSet", pod)
        if s is not None:
            self.enqueue(s)
        elif controller_ref(pod) is None:
            for s in matching_owners(self.sets, pod):
                self.enqueue(s)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        self._pod_changed(new)
        s = resolve_controller_ref(self.sets, "StatefulSet", new)
        if s is not None:
            self.enqueue_when_available(s, old, new)

    # -- revisions ------------------------------------------------------------
    def revision_name(self, sts: Obj) -> str:
        h = compute_hash((sts.get("spec") or {}).get("template") or {},
                         (sts.get("status") or {}).get("collisionCount"))
        return f"{meta(sts)['name']}-{h}"

    async def ensure_revision(self, sts: Obj, name: str) -> None:
        await ensure_revision(self.client, self.revisions, sts, "StatefulSet", name, name.rsplit("-", 1)[1])

    # -- pods -----------------------------------------------------------------
    def new_pod(self, sts: Obj, ordinal: int, revision: str) -> Obj:
        spec = sts.get("spec") or {}
        name = f"{meta(sts)['name']}-{ordinal}"
        template = copy.deepcopy(spec.get("template") or {})
        tmd = template.get("metadata") or {}
        pspec = template.get("spec") or {}
        pspec["hostname"] = name
        if spec.get("serviceName"):
            pspec["subdomain"] = spec["serviceName"]
        vols = [v for v in pspec.get("volumes") or []
                if v.get("name") not in {meta(t)["name"] for t in spec.get("volumeClaimTemplates") or []}]
        for t in spec.get("volumeClaimTemplates") or []:
            vols.append({"name": meta(t)["name"], "persistentVolumeClaim": {"claimName": claim_name(t, name)}})
        if vols:
            pspec["volumes"] = vols
        md: Obj = {"name": name, "namespace": meta(sts).get("namespace"),
                   "labels": {**(tmd.get("labels") or {}), CONTROLLER_REVISION_HASH_LABEL: revision,
                              POD_NAME_LABEL: name, POD_INDEX_LABEL: str(ordinal)},
                   "ownerReferences": [new_controller_ref(sts, "apps/v1", "StatefulSet")]}
        if tmd.get("annotations"):
            md["annotations"] = tmd["annotations"]
        return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": pspec}

    async def ensure_claims(self, sts: Obj, pod_name: str) -> None:
        spec = sts.get("spec") or {}
        ns = meta(sts).get("namespace")
        labels = dict(((spec.get("selector") or {}).get("matchLabels")) or {})
        for t in spec.get("volumeClaimTemplates") or []:
            name = claim_name(t, pod_name)
            if self.claims.get(ns, name) is not None:
                continue
            claim: Obj = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                          "metadata": {"name": name, "namespace": ns,
                                       "labels": {**(meta(t).get("labels") or {}), **labels},
                                       **({"annotations": meta(t)["annotations"]}
                                          if meta(t).get("annotations") else {})},
                          "spec": copy.deepcopy(t.get("spec") or {})}
            if retention(sts, "whenDeleted") == "Delete":  # the claims go with the set
                ref = new_controller_ref(sts, "apps/v1", "StatefulSet")
                ref["controller"] = False
                claim["metadata"]["ownerReferences"] = [ref]
            try:
                await self.client.create("persistentvolumeclaims", claim, ns)
                self.recorder.event(sts, NORMAL, "SuccessfulCreate",
                                          f"create Claim {name} Pod {pod_name} in StatefulSet "
                                          f"{meta(sts)['name']} success")
            except ApiError as e:
                if not e.already_exists:
                    self.recorder.event(sts, WARNING, "FailedCreate",
                                              f"create Claim {name} for Pod {pod_name} in StatefulSet "
                                              f"{meta(sts)['name']} failed error: {e.body.get('message', e)}")
                    raise

    async def claims_follow_pod(self, sts: Obj, pod: Obj) -> None:
        """whenScaled: Delete — the condemned pod's claims get it as their only owner, so
        the garbage collector removes them once the pod is gone."""
        ns = meta(sts).get("namespace")
        for t in (sts.get("spec") or {}).get("volumeClaimTemplates") or []:
            claim = self.claims.get(ns, claim_name(t, meta(pod)["name"]))
            if claim is None or any(r.get("uid") == meta(pod).get("uid")
                                    for r in meta(claim).get("ownerReferences") or []):
                continue
            c = copy.deepcopy(claim)
            # the set lets go (else the garbage collector would keep the claim for it)
            c["metadata"]["ownerReferences"] = [r for r in meta(claim).get("ownerReferences") or []
                                                if r.get("uid") != meta(sts).get("uid")] + [{
                "apiVersion": "v1", "kind": "Pod", "name": meta(pod)["name"], "uid": meta(pod)["uid"],
                "controller": False, "blockOwnerDeletion": True}]
            try:
                await self.client.update("persistentvolumeclaims", c)
            except ApiError as e:
                if not e.not_found:
                    raise

    async def create_pod(self, sts: Obj, ordinal: int, revision: str) -> None:
        pod = self.new_pod(sts, ordinal, revision)
        name = pod["metadata"]["name"]
        await self.ensure_claims(sts, name)
        try:
            await self.client.create("pods", pod)
        except ApiError as e:
            if e.already_exists:
                return
            self.recorder.event(sts, WARNING, "FailedCreate",
                                      f"create Pod {name} in StatefulSet {meta(sts)['name']} failed error: "
                                      f"{e.body.get('message', e)}")
            raise
        self.recorder.event(sts, NORMAL, "SuccessfulCreate",
                                  f"create Pod {name} in StatefulSet {meta(sts)['name']} successful")

    async def delete_pod(self, sts: Obj, pod: Obj) -> None:
        md = meta(pod)
        try:
            await self.client.delete("pods", md["name"], md.get("namespace"), preconditions={"uid": md["uid"]})
        except ApiError as e:
            if e.not_found or e.conflict:
                return
            raise
        self.recorder.event(sts, NORMAL, "SuccessfulDelete",
                                  f"delete Pod {md['name']} in StatefulSet {meta(sts)['name']} successful")

    async def claim_pods(self, sts: Obj) -> dict[int, Obj]:
        """The set's pods by ordinal: members (named <set>-<ordinal>) its selector matches."""
        name = meta(sts)["name"]
        matches = selector_match(label_selector_from_dict((sts.get("spec") or {}).get("selector")))
        pods = await claim(self.client, "pods", sts, claim_candidates(self.pods, sts),
                           lambda p: ordinal_of(name, meta(p)["name"]) is not None and matches(p),
                           new_controller_ref(sts, "apps/v1", "StatefulSet"))
        out: dict[int, Obj] = {}
        for p in pods:
            ordinal = ordinal_of(name, meta(p)["name"])
            if ordinal is not None:  # always, by `match`
                out[ordinal] = p
        return out

    # -- sync -----------------------------------------------------------------
    async def sync(self, key: str) -> None:
        ns, name = split_key(key)
        sts = self.sets.get(ns, name)
        if sts is None or is_deleting(sts):
            return
        spec = sts.get("spec") or {}
        replicas = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
        parallel = spec.get("podManagementPolicy") == "Parallel"
        strategy = spec.get("updateStrategy") or {}
        update_rev = self.revision_name(sts)
        await self.ensure_revision(sts, update_rev)
        status = sts.get("status") or {}
        current_rev = status.get("currentRevision") or update_rev
        pods = await self.claim_pods(sts)

        def rev(p: Obj) -> str:
            return str((meta(p).get("labels") or {}).get(CONTROLLER_REVISION_HASH_LABEL, ""))

        blocked = False
        # 1. the ordinals that should exist, lowest first
        for i in range(replicas):
            pod = pods.get(i)
            if pod is None:
                if blocked:
                    break
                # a pod scaled in under the old revision comes back as it was
                revision = update_rev if strategy.get("type") != "OnDelete" and \
                    i >= int((strategy.get("rollingUpdate") or {}).get("partition") or 0) else current_rev
                await self.create_pod(sts, i, revision)
                if not parallel:
                    blocked = True
                continue
            phase = (pod.get("status") or {}).get("phase")
            if phase in ("Failed", "Succeeded") and not is_deleting(pod):
                await self.delete_pod(sts, pod)
                if not parallel:
                    blocked = True
                continue
            if not parallel and not running_and_ready(pod):
                blocked = True
        # 2. ordinals beyond replicas, highest first
        condemned = sorted((i for i in pods if i >= replicas), reverse=True)
        for i in condemned:
            if not parallel and (blocked or any(not running_and_ready(pods[j]) for j in pods if j < i)):
                break
            pod = pods[i]
            if is_deleting(pod):
                if not parallel:
                    blocked = True
                    break
                continue
            if retention(sts, "whenScaled") == "Delete":
                await self.claims_follow_pod(sts, pod)
            await self.delete_pod(sts, pod)
            if not parallel:
                blocked = True
                break
        # 3. rolling update, highest ordinal first, down to the partition
        if strategy.get("type", "RollingUpdate") == "RollingUpdate" and not blocked:
            partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
            live = [pods[i] for i in range(replicas) if i in pods]
            if len(live) == replicas and all(running_and_ready(p) for p in live):
                for i in range(replicas - 1, partition - 1, -1):
                    pod = pods.get(i)
                    if pod is not None and rev(pod) != update_rev and not is_deleting(pod):
                        await self.delete_pod(sts, pod)
                        break
        await self.update_status(sts, pods, replicas, current_rev, update_rev, rev)

    async def update_status(self, sts: Obj, pods: dict[int, Obj], replicas: int, current_rev: str,
                            update_rev: str, rev: Any) -> None:
        mrs = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
        now = self.clock.now()
        live = [p for p in pods.values() if not is_deleting(p)]
        ready = sum(1 for p in live if running_and_ready(p))
        available = sum(1 for p in live if running_and_ready(p) and is_pod_available(p, mrs, now))
        updated = sum(1 for p in live if rev(p) == update_rev)
        current = sum(1 for p in live if rev(p) == current_rev)
        if updated == replicas and ready == replicas and len(live) == replicas:
            current_rev, current = update_rev, updated  # the update is complete
        old = sts.get("status") or {}
        status: Obj = {"observedGeneration": int(meta(sts).get("generation") or 0),
                       "replicas": len(live), "readyReplicas": ready, "availableReplicas": available,
                       "currentReplicas": current, "updatedReplicas": updated,
                       "currentRevision": current_rev, "updateRevision": update_rev,
                       "collisionCount": int(old.get("collisionCount") or 0)}
        if old.get("conditions"):
            status["conditions"] = old["conditions"]
        if non_empty(status, (*EMPTY, "")) != non_empty(old, (*EMPTY, "")):
            await write_status(self.client, "statefulsets", sts, status)
        if mrs > 0 and ready != available:
            self.enqueue_after(sts, mrs)

