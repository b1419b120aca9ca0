"""Deployment controller: rolls a Deployment's pod template out through ReplicaSets.

Each distinct template gets one ReplicaSet named `<deployment>-<pod-template-hash>`
(the hash also labels its pods and joins its selector). sync(key) claims the
ReplicaSets the selector matches, then: paused or scaling -> proportional scaling
only; Recreate -> scale old sets to 0, wait for their pods to go, scale the new one
up; RollingUpdate -> scale the new set up within maxSurge and old sets down within
maxUnavailable. The revision annotation `deployment.kubernetes.io/revision` numbers
templates (a rollback makes an old set the newest revision), old sets beyond
revisionHistoryLimit are deleted, and the status (replicas, updated/ready/available/
unavailable, observedGeneration, Available and Progressing conditions) is written.
Invariants: writes are compare-and-swap PUTs (a stale cache yields 409 and a retry);
never more than replicas+maxSurge pods are asked for, and old sets are scaled down
only while at least replicas-maxUnavailable pods stay available.
"""

from __future__ import annotations

import copy
import logging
import math
from typing import Any

from k8py.api.selectors import label_selector_from_dict
from k8py.api.types import Obj
from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.client.events import NORMAL, EventRecorder
from k8py.client.informer import SharedInformerFactory, split_key
from k8py.clock import Clock, parse_rfc3339, rfc3339
from k8py.controllers.base import Controller
from k8py.controllers.controllerutil import (
    POD_TEMPLATE_HASH_LABEL,
    compute_hash,
    controller_ref,
    creation_time,
    equal_ignore_hash,
    get_condition,
    is_deleting,
    meta,
    new_controller_ref,
    remove_condition,
    scaled_value,
)
from k8py.controllers.indexes import (
    BY_CONTROLLER,
    claim_candidates,
    ensure_indexes,
)
from k8py.controllers.refmanager import (
    claim,
    matching_owners,
    resolve_controller_ref,
    selector_match,
)
from k8py.controllers.status import non_empty

log = logging.getLogger(__name__)

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_NOT_COPIED = {REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, LAST_APPLIED}

# condition reasons (k8s.io/kubernetes/pkg/controller/deployment/util)
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"
MAX_INT32 = 2**31 - 1


# ------------------------------------------------------------------ pure helpers


def replicas_of(obj: Obj) -> int:
    v = (obj.get("spec") or {}).get("replicas")
    return 1 if v is None else int(v)


def revision_of(rs: Obj) -> int:
    try:
        return int((meta(rs).get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def status_int(obj: Obj, field: str) -> int:
    return int((obj.get("status") or {}).get(field) or 0)


def is_rolling(d: Obj) -> bool:
    return ((d.get("spec") or {}).get("strategy") or {}).get("type", "RollingUpdate") != "Recreate"


def resolve_fenceposts(d: Obj) -> tuple[int, int]:
    """(maxSurge, maxUnavailable): surge rounds up, unavailable down; both 0 -> 1 unavailable."""
    if not is_rolling(d):
        return 0, 0
    ru = ((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    desired = replicas_of(d)
    surge = scaled_value(ru.get("maxSurge", "25%"), desired, True)
    unavailable = scaled_value(ru.get("maxUnavailable", "25%"), desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_unavailable(d: Obj) -> int:
    if not is_rolling(d) or replicas_of(d) == 0:
        return 0
    return min(resolve_fenceposts(d)[1], replicas_of(d))


def max_surge(d: Obj) -> int:
    return resolve_fenceposts(d)[0] if is_rolling(d) else 0


def new_rs_new_replicas(d: Obj, all_rss: list[Obj], new_rs: Obj | None) -> int:
    """How many replicas the new set may have now (NewRSNewReplicas)."""
    desired = replicas_of(d)
    if not is_rolling(d):
        return desired
    current = sum(replicas_of(rs) for rs in all_rss)
    new_replicas = replicas_of(new_rs) if new_rs is not None else 0
    max_total = desired + max_surge(d)
    if current >= max_total:
        return new_replicas
    scale_up = max_total - current
    return new_replicas + min(scale_up, max(0, desired - new_replicas))


def deployment_complete(d: Obj, status: Obj) -> bool:
    want = replicas_of(d)
    return (int(status.get("updatedReplicas") or 0) == want and int(status.get("replicas") or 0) == want
            and int(status.get("availableReplicas") or 0) == want
            and int(status.get("observedGeneration") or 0) >= int(meta(d).get("generation") or 0))


def deployment_progressing(d: Obj, new: Obj) -> bool:
    old = d.get("status") or {}
    old_old = int(old.get("replicas") or 0) - int(old.get("updatedReplicas") or 0)
    new_old = int(new.get("replicas") or 0) - int(new.get("updatedReplicas") or 0)
    return (int(new.get("updatedReplicas") or 0) > int(old.get("updatedReplicas") or 0)
            or new_old < old_old
            or int(new.get("readyReplicas") or 0) > int(old.get("readyReplicas") or 0)
            or int(new.get("availableReplicas") or 0) > int(old.get("availableReplicas") or 0))


def progress_deadline(d: Obj) -> int | None:
    v = (d.get("spec") or {}).get("progressDeadlineSeconds", 600)
    if v is None or int(v) == MAX_INT32:
        return None
    return int(v)


def set_condition(status: Obj, cond: Obj) -> None:
    """SetDeploymentCondition: no change when status and reason are the same; keeps the
    transition time when only the reason changes."""
    cur = get_condition(status, cond["type"])
    if cur is not None and cur.get("status") == cond["status"] and cur.get("reason") == cond.get("reason"):
        return
    if cur is not None and cur.get("status") == cond["status"]:
        cond["lastTransitionTime"] = cur.get("lastTransitionTime", cond["lastTransitionTime"])
    remove_condition(status, cond["type"])
    status.setdefault("conditions", []).append(cond)


# ------------------------------------------------------------------ controller


class DeploymentController(Controller):
    name = "deployment-controller"

    def __init__(self, client: Client, factory: SharedInformerFactory, clock: Clock,
                 recorder: EventRecorder | None = None, workers: int = 2) -> None:
        super().__init__(client, factory, clock, recorder, workers)
        self.deployments = self.informer("deployments")
        self.rss = self.informer("replicasets")
        self.pods = self.informer("pods")
        ensure_indexes(self.deployments)
        ensure_indexes(self.rss)
        ensure_indexes(self.pods)
        self.watch(self.deployments, self.enqueue, self.enqueue)
        self.rss.add_event_handler(self._rs_changed, self._rs_updated, self._rs_changed)
        self.pods.add_event_handler(None, None, self._pod_deleted)

    def condition(self, ctype: str, status: str, reason: str, message: str) -> Obj:
        now = rfc3339(self.clock.now())
        return {"type": ctype, "status": status, "lastUpdateTime": now, "lastTransitionTime": now,
                "reason": reason, "message": message}

    # -- handlers -------------------------------------------------------------
    def _rs_changed(self, rs: Obj) -> None:
        d = resolve_controller_ref(self.deployments, "Deployment", rs)
        if d is not None:
            self.enqueue(d)
            return
        if controller_ref(rs) is None:  # an orphan: a deployment may adopt it
            for d in matching_owners(self.deployments, rs):
                self.enqueue(d)

    def _rs_updated(self, old: Obj, new: Obj) -> None:
        if controller_ref(old) != controller_ref(new):
            self._rs_changed(old)
        self._rs_changed(new)

    def _pod_deleted(self, pod: Obj) -> None:
        rs = resolve_controller_ref(self.rss, "ReplicaSet", pod)
        if rs is None:
            return
        d = resolve_controller_ref(self.deployments, "Deployment", rs)
        if d is not None and not is_rolling(d):
            self.enqueue(d)

    # -- sync -----------------------------------------------------------------
    async def sync(self, key: str) -> None:
        ns, name = split_key(key)
        cached = self.deployments.get(ns, name)
        if cached is None:
            return
        d = copy.deepcopy(cached)
        spec = d.get("spec") or {}
        selector = label_selector_from_dict(spec.get("selector"))
        if selector.empty:
            self.recorder.event(d, "Warning", "SelectingAll",
                                      "This deployment is selecting all pods. A non-empty selector is required.")
            if int((d.get("status") or {}).get("observedGeneration") or 0) < int(meta(d).get("generation") or 0):
                d.setdefault("status", {})["observedGeneration"] = meta(d).get("generation")
                await self.client.update_status("deployments", d)
            return
        rss = await self.claim_replica_sets(d, selector)
        if is_deleting(d):
            await self.sync_status_only(d, rss)
            return
        await self.check_paused_conditions(d)
        if spec.get("paused"):
            await self.sync_scale(d, rss)
            return
        if self.is_scaling_event(d, rss):
            await self.sync_scale(d, rss)
            return
        if is_rolling(d):
            await self.rollout_rolling(d, rss)
        else:
            await self.rollout_recreate(d, rss)

    async def claim_replica_sets(self, d: Obj, selector: Any) -> list[Obj]:
        return await claim(self.client, "replicasets", d, claim_candidates(self.rss, d), selector_match(selector),
                           new_controller_ref(d, "apps/v1", "Deployment"))

    def pods_by_rs(self, rss: list[Obj]) -> dict[str, list[Obj]]:
        return {meta(rs)["uid"]: self.pods.by_index(BY_CONTROLLER, meta(rs)["uid"]) for rs in rss}

    # -- revisions and the new replica set ------------------------------------
    def find_new_rs(self, d: Obj, rss: list[Obj]) -> Obj | None:
        template = (d.get("spec") or {}).get("template") or {}
        for rs in sorted(rss, key=lambda r: (creation_time(r), meta(r).get("name", ""))):
            if equal_ignore_hash((rs.get("spec") or {}).get("template") or {}, template):
                return rs
        return None

    def _replicas_annotations(self, rs: Obj, d: Obj) -> bool:
        """Set desired-replicas and max-replicas annotations on rs; True if changed."""
        ann = rs.setdefault("metadata", {}).setdefault("annotations", {})
        desired = str(replicas_of(d))
        mx = str(replicas_of(d) + max_surge(d))
        changed = ann.get(DESIRED_REPLICAS) != desired or ann.get(MAX_REPLICAS) != mx
        ann[DESIRED_REPLICAS] = desired
        ann[MAX_REPLICAS] = mx
        return changed

    def _copy_deployment_annotations(self, d: Obj, rs: Obj) -> bool:
        ann = rs.setdefault("metadata", {}).setdefault("annotations", {})
        changed = False
        for k, v in (meta(d).get("annotations") or {}).items():
            if k in _NOT_COPIED:
                continue
            if ann.get(k) != v:
                ann[k] = v
                changed = True
        return changed

    async def get_all_rss_and_sync_revision(self, d: Obj, rss: list[Obj],
                                            create: bool) -> tuple[Obj | None, list[Obj]]:
        new_rs = self.find_new_rs(d, rss)
        old_rss = [rs for rs in rss if new_rs is None or meta(rs)["uid"] != meta(new_rs)["uid"]]
        max_old = max((revision_of(rs) for rs in old_rss), default=0)
        new_revision = str(max_old + 1)
        if new_rs is not None:
            updated = copy.deepcopy(new_rs)
            changed = self._copy_deployment_annotations(d, updated)
            ann = updated["metadata"]["annotations"]
            if revision_of(updated) < max_old + 1:
                ann[REVISION] = new_revision
                changed = True
            mrs = (d.get("spec") or {}).get("minReadySeconds") or 0
            if ((updated.get("spec") or {}).get("minReadySeconds") or 0) != mrs:
                updated["spec"]["minReadySeconds"] = mrs
                changed = True
            if changed:
                new_rs = await self.client.update("replicasets", updated)
            await self._sync_deployment_revision(d, (meta(new_rs).get("annotations") or {}).get(REVISION, ""))
            if get_condition(d.get("status") or {}, "Progressing") is None and progress_deadline(d) is not None:
                status = copy.deepcopy(d.get("status") or {})
                set_condition(status, self.condition(
                    "Progressing", "True", FOUND_NEW_RS, f'Found new replica set "{meta(new_rs)["name"]}"'))
                await self._write_status(d, status)
            return new_rs, old_rss
        if not create:
            return None, old_rss
        return await self._create_new_rs(d, old_rss, new_revision), old_rss

    async def _sync_deployment_revision(self, d: Obj, revision: str) -> None:
        if not revision or (meta(d).get("annotations") or {}).get(REVISION) == revision:
            return
        md = meta(d)
        updated = await self.client.patch(
            "deployments", md["name"],
            {"metadata": {"annotations": {REVISION: revision}}},
            md.get("namespace"))
        d["metadata"] = updated.get("metadata", d["metadata"])

    async def _create_new_rs(self, d: Obj, old_rss: list[Obj], revision: str) -> Obj:
        md = meta(d)
        spec = d.get("spec") or {}
        collision = int((d.get("status") or {}).get("collisionCount") or 0)
        template = copy.deepcopy(spec.get("template") or {})
        h = compute_hash(template, collision)
        template.setdefault("metadata", {}).setdefault("labels", {})[POD_TEMPLATE_HASH_LABEL] = h
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[POD_TEMPLATE_HASH_LABEL] = h
        replicas = new_rs_new_replicas(d, old_rss, None)
        rs: Obj = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {
                "name": f"{md['name']}-{h}", "namespace": md.get("namespace"),
                "labels": dict(template["metadata"]["labels"]),
                "annotations": {REVISION: revision},
                "ownerReferences": [new_controller_ref(d, "apps/v1", "Deployment")],
            },
            "spec": {"replicas": replicas, "minReadySeconds": spec.get("minReadySeconds") or 0,
                     "selector": selector, "template": template},
        }
        self._copy_deployment_annotations(d, rs)
        self._replicas_annotations(rs, d)
        try:
            created = await self.client.create("replicasets", rs)
        except ApiError as e:
            if not e.already_exists:
                raise
            existing = await self.client.get("replicasets", rs["metadata"]["name"], md.get("namespace"))
            ref = controller_ref(existing)
            if (ref is not None and ref.get("uid") == md.get("uid")
                    and equal_ignore_hash((existing.get("spec") or {}).get("template") or {},
                                          spec.get("template") or {})):
                return existing
            # a hash collision: bump collisionCount so the next sync picks another name
            status = copy.deepcopy(d.get("status") or {})
            status["collisionCount"] = collision + 1
            await self._write_status(d, status)
            raise
        if replicas > 0:
            self.recorder.event(d, NORMAL, "ScalingReplicaSet",
                                      f"Scaled up replica set {rs['metadata']['name']} from 0 to {replicas}")
        await self._sync_deployment_revision(d, revision)
        status = copy.deepcopy(d.get("status") or {})
        if progress_deadline(d) is not None:
            set_condition(status, self.condition(
                "Progressing", "True", NEW_RS_CREATED, f'Created new replica set "{rs["metadata"]["name"]}"'))
            d["status"] = await self._write_status(d, status)
        return created

    async def _write_status(self, d: Obj, status: Obj) -> Obj:
        o = copy.deepcopy(d)
        o["status"] = status
        updated = await self.client.update_status("deployments", o)
        d["metadata"]["resourceVersion"] = meta(updated).get("resourceVersion")
        written: Obj = updated.get("status") or status
        d["status"] = written
        return written

    # -- scaling --------------------------------------------------------------
    async def scale_rs(self, rs: Obj, new_scale: int, d: Obj) -> tuple[bool, Obj]:
        """Scale a replica set (and stamp the replicas annotations); record the event."""
        old_scale = replicas_of(rs)
        if old_scale == new_scale:
            return False, rs
        updated = copy.deepcopy(rs)
        updated["spec"]["replicas"] = new_scale
        self._replicas_annotations(updated, d)
        result = await self.client.update("replicasets", updated)
        op = "up" if new_scale > old_scale else "down"
        self.recorder.event(d, NORMAL, "ScalingReplicaSet",
                                  f"Scaled {op} replica set {meta(rs)['name']} from {old_scale} to {new_scale}")
        return True, result

    def is_scaling_event(self, d: Obj, rss: list[Obj]) -> bool:
        """Whether an active replica set was sized for another spec.replicas (the
        desired-replicas annotation differs): then only scale, do not roll."""
        for rs in rss:
            if replicas_of(rs) <= 0:
                continue
            desired = (meta(rs).get("annotations") or {}).get(DESIRED_REPLICAS)
            if desired is None:
                continue
            try:
                if int(desired) != replicas_of(d):
                    return True
            except ValueError:
                continue
        return False

    async def scale(self, d: Obj, new_rs: Obj | None, old_rss: list[Obj]) -> None:
        want = replicas_of(d)
        active = [rs for rs in ([new_rs] if new_rs else []) + old_rss if replicas_of(rs) > 0]
        target: Obj | None = None
        if len(active) == 1:
            target = active[0]
        elif not active:
            cands = ([new_rs] if new_rs else []) + old_rss
            if cands:
                target = max(cands, key=creation_time) if new_rs is None else new_rs
        if target is not None and len(active) <= 1:
            await self.scale_rs(target, want, d)
            return
        if new_rs is not None and self._saturated(d, new_rs):
            for rs in old_rss:
                if replicas_of(rs) > 0:
                    await self.scale_rs(rs, 0, d)
            return
        if not is_rolling(d):
            return
        all_rss = [rs for rs in ([new_rs] if new_rs else []) + old_rss if replicas_of(rs) > 0]
        allowed = want + max_surge(d) if want > 0 else 0
        current = sum(replicas_of(rs) for rs in all_rss)
        to_add = allowed - current
        if to_add > 0:  # largest first; newer first among equals
            all_rss.sort(key=lambda r: (-replicas_of(r), -creation_time(r)))
        elif to_add < 0:  # largest first; older first among equals
            all_rss.sort(key=lambda r: (-replicas_of(r), creation_time(r)))
        sizes: dict[str, int] = {}
        added = 0
        for rs in all_rss:
            name = meta(rs)["name"]
            if to_add == 0:
                sizes[name] = replicas_of(rs)
                continue
            fraction = self._rs_fraction(rs, d)
            allowed_left = to_add - added
            prop = min(fraction, allowed_left) if to_add > 0 else max(fraction, allowed_left)
            sizes[name] = replicas_of(rs) + prop
            added += prop
        for i, rs in enumerate(all_rss):
            name = meta(rs)["name"]
            if i == 0 and to_add != 0:
                sizes[name] = max(0, sizes[name] + (to_add - added))
            await self.scale_rs(rs, sizes[name], d)

    def _rs_fraction(self, rs: Obj, d: Obj) -> int:
        want = replicas_of(d)
        if want == 0:
            return -replicas_of(rs)
        deployment_replicas = want + max_surge(d)
        try:
            annotated = int((meta(rs).get("annotations") or {}).get(MAX_REPLICAS, ""))
        except ValueError:
            annotated = status_int(d, "replicas")
        if annotated <= 0:
            annotated = max(1, status_int(d, "replicas"))
        new_size = replicas_of(rs) * deployment_replicas / annotated
        return int(math.floor(new_size + 0.5)) - replicas_of(rs)  # Go's math.Round, not banker's

    def _saturated(self, d: Obj, rs: Obj) -> bool:
        try:
            desired = int((meta(rs).get("annotations") or {}).get(DESIRED_REPLICAS, "-1"))
        except ValueError:
            return False
        want = replicas_of(d)
        return replicas_of(rs) == want and desired == want and status_int(rs, "availableReplicas") == want

    async def sync_scale(self, d: Obj, rss: list[Obj]) -> None:
        new_rs, old_rss = await self.get_all_rss_and_sync_revision(d, rss, create=False)
        await self.scale(d, new_rs, old_rss)
        if (d.get("spec") or {}).get("paused"):
            await self.cleanup(d, old_rss)
        rss2 = self._fresh(rss)
        new_rs = self._fresh_one(new_rs)
        await self.sync_status(d, rss2, new_rs)

    async def sync_status_only(self, d: Obj, rss: list[Obj]) -> None:
        new_rs, _ = await self.get_all_rss_and_sync_revision(d, rss, create=False)
        await self.sync_status(d, rss, new_rs)

    def _fresh(self, rss: list[Obj]) -> list[Obj]:
        out = []
        for rs in rss:
            f = self._fresh_one(rs)
            if f is not None:
                out.append(f)
        return out

    def _fresh_one(self, rs: Obj | None) -> Obj | None:
        """The newer of rs and the cache's copy (by resourceVersion)."""
        if rs is None:
            return None
        c = self.rss.get(meta(rs).get("namespace"), meta(rs)["name"])
        if c is None or meta(c).get("uid") != meta(rs).get("uid"):
            return rs
        try:
            return c if int(meta(c).get("resourceVersion") or 0) > int(meta(rs).get("resourceVersion") or 0) else rs
        except ValueError:
            return c

    # -- strategies -----------------------------------------------------------
    async def rollout_rolling(self, d: Obj, rss: list[Obj]) -> None:
        new_rs, old_rss = await self.get_all_rss_and_sync_revision(d, rss, create=True)
        assert new_rs is not None
        all_rss = old_rss + [new_rs]
        scaled, new_rs = await self.reconcile_new_rs(all_rss, new_rs, d)
        if scaled:
            await self.sync_rollout_status(d, old_rss + [new_rs], new_rs)
            return
        scaled_down, old_rss = await self.reconcile_old_rss(old_rss, new_rs, d)
        all_rss = old_rss + [new_rs]
        if scaled_down:
            await self.sync_rollout_status(d, all_rss, new_rs)
            return
        if deployment_complete(d, d.get("status") or {}):
            await self.cleanup(d, old_rss)
        await self.sync_rollout_status(d, all_rss, new_rs)

    async def reconcile_new_rs(self, all_rss: list[Obj], new_rs: Obj, d: Obj) -> tuple[bool, Obj]:
        want = replicas_of(d)
        if replicas_of(new_rs) == want:
            return False, new_rs
        if replicas_of(new_rs) > want:
            return await self.scale_rs(new_rs, want, d)
        count = new_rs_new_replicas(d, all_rss, new_rs)
        return await self.scale_rs(new_rs, count, d)

    async def reconcile_old_rss(self, old_rss: list[Obj], new_rs: Obj, d: Obj) -> tuple[bool, list[Obj]]:
        old_pods = sum(replicas_of(rs) for rs in old_rss)
        if old_pods == 0:
            return False, old_rss
        all_pods = old_pods + replicas_of(new_rs)
        want = replicas_of(d)
        min_available = want - max_unavailable(d)
        new_unavailable = replicas_of(new_rs) - status_int(new_rs, "availableReplicas")
        max_scaled_down = all_pods - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False, old_rss
        olds = sorted(old_rss, key=lambda r: (creation_time(r), meta(r).get("name", "")))
        # 1. scale down old sets' unhealthy replicas first
        total = 0
        for i, rs in enumerate(olds):
            if total >= max_scaled_down:
                break
            if replicas_of(rs) == 0:
                continue
            unhealthy = replicas_of(rs) - status_int(rs, "availableReplicas")
            if unhealthy <= 0:
                continue
            down = min(max_scaled_down - total, unhealthy)
            _, olds[i] = await self.scale_rs(rs, replicas_of(rs) - down, d)
            total += down
        # 2. then available ones while enough pods stay available. A set just scaled down still
        # reports the pods it is deleting as available until its controller catches up: count
        # no more than its replicas, or the next step would scale below minAvailable.
        available = sum(min(replicas_of(rs), status_int(rs, "availableReplicas")) for rs in olds + [new_rs])
        can_down = available - min_available
        scaled = 0
        if can_down > 0:
            for i, rs in enumerate(olds):
                if scaled >= can_down:
                    break
                if replicas_of(rs) == 0:
                    continue
                down = min(replicas_of(rs), can_down - scaled)
                _, olds[i] = await self.scale_rs(rs, replicas_of(rs) - down, d)
                scaled += down
        return total + scaled > 0, olds

    async def rollout_recreate(self, d: Obj, rss: list[Obj]) -> None:
        new_rs, old_rss = await self.get_all_rss_and_sync_revision(d, rss, create=False)
        scaled = False
        olds = []
        for rs in old_rss:
            if replicas_of(rs) > 0:
                did, rs = await self.scale_rs(rs, 0, d)
                scaled = scaled or did
            olds.append(rs)
        old_rss = olds
        all_rss = old_rss + ([new_rs] if new_rs else [])
        if scaled:
            await self.sync_rollout_status(d, all_rss, new_rs)
            return
        if self._old_pods_running(new_rs, old_rss):
            await self.sync_rollout_status(d, all_rss, new_rs)
            return
        if new_rs is None:
            new_rs, old_rss = await self.get_all_rss_and_sync_revision(d, rss, create=True)
            all_rss = old_rss + ([new_rs] if new_rs else [])
        assert new_rs is not None
        _, new_rs = await self.scale_rs(new_rs, replicas_of(d), d)
        all_rss = old_rss + [new_rs]
        if deployment_complete(d, d.get("status") or {}):
            await self.cleanup(d, old_rss)
        await self.sync_rollout_status(d, all_rss, new_rs)

    def _old_pods_running(self, new_rs: Obj | None, old_rss: list[Obj]) -> bool:
        if sum(status_int(rs, "replicas") for rs in old_rss) > 0:
            return True
        new_uid = meta(new_rs)["uid"] if new_rs else None
        for uid, pods in self.pods_by_rs(old_rss).items():
            if uid == new_uid:
                continue
            for p in pods:
                if (p.get("status") or {}).get("phase") not in ("Failed", "Succeeded"):
                    return True
        return False

    # -- history --------------------------------------------------------------
    async def cleanup(self, d: Obj, old_rss: list[Obj]) -> None:
        limit = (d.get("spec") or {}).get("revisionHistoryLimit", 10)
        if limit is None:
            return
        cleanable = [rs for rs in old_rss if not is_deleting(rs)]
        diff = len(cleanable) - int(limit)
        if diff <= 0:
            return
        for rs in sorted(cleanable, key=lambda r: (revision_of(r), creation_time(r)))[:diff]:
            if (status_int(rs, "replicas") != 0 or replicas_of(rs) != 0
                    or int(meta(rs).get("generation") or 0) > status_int(rs, "observedGeneration")):
                continue
            try:
                await self.client.delete("replicasets", meta(rs)["name"], meta(rs).get("namespace"),
                                         preconditions={"uid": meta(rs)["uid"]})
            except ApiError as e:
                if not e.not_found:
                    raise

    # -- status ---------------------------------------------------------------
    def calculate_status(self, all_rss: list[Obj], new_rs: Obj | None, d: Obj) -> Obj:
        available = sum(status_int(rs, "availableReplicas") for rs in all_rss)
        total_spec = sum(replicas_of(rs) for rs in all_rss)
        old = d.get("status") or {}
        status: Obj = {
            "observedGeneration": int(meta(d).get("generation") or 0),
            "replicas": sum(status_int(rs, "replicas") for rs in all_rss),
            "updatedReplicas": status_int(new_rs, "replicas") if new_rs else 0,
            "readyReplicas": sum(status_int(rs, "readyReplicas") for rs in all_rss),
            "availableReplicas": available,
            "unavailableReplicas": max(0, total_spec - available),
        }
        # 1.33+: the ReplicaSets' terminating pods, when every one of them reports them.
        terminating = [(rs.get("status") or {}).get("terminatingReplicas") for rs in all_rss]
        if all(isinstance(t, int) for t in terminating):
            status["terminatingReplicas"] = sum(t for t in terminating if isinstance(t, int))
        if old.get("collisionCount") is not None:
            status["collisionCount"] = old["collisionCount"]
        if old.get("conditions"):
            status["conditions"] = copy.deepcopy(old["conditions"])
        if available >= replicas_of(d) - max_unavailable(d):
            set_condition(status, self.condition("Available", "True", MIN_AVAILABLE,
                                                 "Deployment has minimum availability."))
        else:
            set_condition(status, self.condition("Available", "False", MIN_UNAVAILABLE,
                                                 "Deployment does not have minimum availability."))
        return status

    async def sync_status(self, d: Obj, all_rss: list[Obj], new_rs: Obj | None) -> None:
        status = self.calculate_status(all_rss, new_rs, d)
        if non_empty(d.get("status") or {}) != non_empty(status):
            await self._write_status(d, status)

    async def sync_rollout_status(self, d: Obj, all_rss: list[Obj], new_rs: Obj | None) -> None:
        all_rss = self._fresh(all_rss)
        new_rs = self._fresh_one(new_rs)
        status = self.calculate_status(all_rss, new_rs, d)
        deadline = progress_deadline(d)
        if deadline is None:
            if get_condition(status, "Progressing") is not None:
                remove_condition(status, "Progressing")
        cur = get_condition(status, "Progressing")
        complete_already = (int(status.get("replicas") or 0) == int(status.get("updatedReplicas") or 0)
                            and cur is not None and cur.get("reason") == NEW_RS_AVAILABLE)
        rs_name = meta(new_rs)["name"] if new_rs else ""
        if deadline is not None and not complete_already:
            if deployment_complete(d, status):
                msg = f'ReplicaSet "{rs_name}" has successfully progressed.' if new_rs else \
                    "Deployment has successfully progressed."
                set_condition(status, self.condition("Progressing", "True", NEW_RS_AVAILABLE, msg))
            elif deployment_progressing(d, status):
                msg = f'ReplicaSet "{rs_name}" is progressing.' if new_rs else "Deployment is progressing."
                cond = self.condition("Progressing", "True", RS_UPDATED, msg)
                if cur is not None:
                    if cur.get("status") == "True":
                        cond["lastTransitionTime"] = cur.get("lastTransitionTime", cond["lastTransitionTime"])
                    remove_condition(status, "Progressing")
                set_condition(status, cond)
            elif self._timed_out(d, status):
                msg = f'ReplicaSet "{rs_name}" has timed out progressing.' if new_rs else \
                    "Deployment has timed out progressing."
                set_condition(status, self.condition("Progressing", "False", TIMED_OUT, msg))
        failure = next((c for rs in ([new_rs] if new_rs else []) + [r for r in all_rss if r is not new_rs]
                        for c in (rs.get("status") or {}).get("conditions") or []
                        if c.get("type") == "ReplicaFailure"), None)
        if failure is not None:
            set_condition(status, self.condition("ReplicaFailure", failure.get("status", "True"),
                                                 failure.get("reason", ""), failure.get("message", "")))
        elif get_condition(status, "ReplicaFailure") is not None:
            remove_condition(status, "ReplicaFailure")
        if non_empty(d.get("status") or {}) == non_empty(status):
            self._requeue_stuck(d, status)
            return
        await self._write_status(d, status)
        self._requeue_stuck(d, status)

    def _timed_out(self, d: Obj, status: Obj) -> bool:
        deadline = progress_deadline(d)
        cond = get_condition(status, "Progressing")
        if deadline is None or cond is None:
            return False
        if cond.get("reason") == NEW_RS_AVAILABLE:
            return False
        if cond.get("reason") == TIMED_OUT:
            return True
        try:
            since = parse_rfc3339(cond.get("lastUpdateTime") or "")
        except ValueError:
            return False
        return since + deadline < self.clock.now()

    def _requeue_stuck(self, d: Obj, status: Obj) -> None:
        deadline = progress_deadline(d)
        cond = get_condition(status, "Progressing")
        if deadline is None or cond is None or deployment_complete(d, status):
            return
        if cond.get("reason") == TIMED_OUT:
            return
        try:
            since = parse_rfc3339(cond.get("lastUpdateTime") or "")
        except ValueError:
            return
        after = since + deadline - self.clock.now()
        self.enqueue_after(d, max(after, 0) + 1)

    async def check_paused_conditions(self, d: Obj) -> None:
        if progress_deadline(d) is None:
            return
        status = copy.deepcopy(d.get("status") or {})
        cond = get_condition(status, "Progressing")
        if cond is not None and cond.get("reason") == TIMED_OUT:
            return
        paused = bool((d.get("spec") or {}).get("paused"))
        paused_set = cond is not None and cond.get("reason") == PAUSED
        if paused and not paused_set:
            set_condition(status, self.condition("Progressing", "Unknown", PAUSED, "Deployment is paused"))
        elif not paused and paused_set:
            set_condition(status, self.condition("Progressing", "Unknown", RESUMED, "Deployment is resumed"))
        else:
            return
        await self._write_status(d, status)

