"""DaemonSet controller: one pod of the set on every eligible node.

A node is eligible (shouldRun) when the pod template's nodeSelector and required
node affinity match it and the pod (with the DaemonSet's automatic tolerations)
tolerates its NoSchedule and NoExecute taints; a running pod may stay
(shouldContinueRunning) as long as its NoExecute taints are tolerated. Pods are
created pinned to their node by a required node affinity term `matchFields
metadata.name In [node]` (the scheduler binds them), labelled with
`controller-revision-hash`; pods on nodes that vanished or became ineligible, failed
pods and duplicates are deleted. RollingUpdate replaces old-hash pods while at most
maxUnavailable nodes lack an available up-to-date pod; OnDelete waits for the user.
A ControllerRevision `<ds>-<hash>` records each template. Invariants: expectations
hold the set until the informer has seen its creations/deletions; only pods whose
controllerRef carries the set's uid are counted; status is written via the status
subresource only when it changes.
"""

from __future__ import annotations

import copy
import logging

from k8py.api.selectors import label_selector_from_dict, node_selector_matches
from k8py.api.taints import (
    TAINT_EFFECT_NO_EXECUTE,
    TAINT_EFFECT_NO_SCHEDULE,
    TAINT_NODE_DISK_PRESSURE,
    TAINT_NODE_MEMORY_PRESSURE,
    TAINT_NODE_NETWORK_UNAVAILABLE,
    TAINT_NODE_NOT_READY,
    TAINT_NODE_PID_PRESSURE,
    TAINT_NODE_UNREACHABLE,
    TAINT_NODE_UNSCHEDULABLE,
    untolerated_taints,
)
from k8py.api.types import Obj
from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.client.events import WARNING, EventRecorder
from k8py.client.informer import SharedInformerFactory, split_key
from k8py.clock import Clock
from k8py.controllers.base import Controller
from k8py.controllers.controllerutil import (
    CONTROLLER_REVISION_HASH_LABEL,
    compute_hash,
    controller_ref,
    creation_time,
    is_deleting,
    is_pod_available,
    is_pod_ready,
    key_of,
    meta,
    new_controller_ref,
    scaled_value,
)
from k8py.controllers.expectations import Expectations
from k8py.controllers.history import ensure_revision
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
)
from k8py.controllers.status import non_empty, write_status

log = logging.getLogger(__name__)

DAEMON_TOLERATIONS: tuple[Obj, ...] = (
    {"key": TAINT_NODE_NOT_READY, "operator": "Exists", "effect": TAINT_EFFECT_NO_EXECUTE},
    {"key": TAINT_NODE_UNREACHABLE, "operator": "Exists", "effect": TAINT_EFFECT_NO_EXECUTE},
    {"key": TAINT_NODE_DISK_PRESSURE, "operator": "Exists", "effect": TAINT_EFFECT_NO_SCHEDULE},
    {"key": TAINT_NODE_MEMORY_PRESSURE, "operator": "Exists", "effect": TAINT_EFFECT_NO_SCHEDULE},
    {"key": TAINT_NODE_PID_PRESSURE, "operator": "Exists", "effect": TAINT_EFFECT_NO_SCHEDULE},
    {"key": TAINT_NODE_UNSCHEDULABLE, "operator": "Exists", "effect": TAINT_EFFECT_NO_SCHEDULE},
)
NETWORK_UNAVAILABLE = {"key": TAINT_NODE_NETWORK_UNAVAILABLE, "operator": "Exists",
                       "effect": TAINT_EFFECT_NO_SCHEDULE}


def add_daemon_tolerations(pod_spec: Obj) -> None:
    tols = pod_spec.setdefault("tolerations", [])
    extra = list(DAEMON_TOLERATIONS) + ([NETWORK_UNAVAILABLE] if pod_spec.get("hostNetwork") else [])
    for t in extra:
        if not any(x.get("key") == t["key"] and x.get("effect") == t["effect"]
                   and (x.get("operator") or "Equal") == "Exists" for x in tols):
            tols.append(dict(t))


def pin_to_node(pod_spec: Obj, node_name: str) -> None:
    """ReplaceDaemonSetPodNodeNameNodeAffinity: one required term matching the node by name."""
    aff = pod_spec.setdefault("affinity", {}).setdefault("nodeAffinity", {})
    aff["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [{
        "matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}]}


def target_node(pod: Obj) -> str | None:
    """The node a daemon pod is for: spec.nodeName, or its matchFields affinity."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    req = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
           .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in req.get("nodeSelectorTerms") or []:
        for f in term.get("matchFields") or []:
            if f.get("key") == "metadata.name" and f.get("operator") == "In" and len(f.get("values") or []) == 1:
                return str(f["values"][0])
    return None


def node_should_run(ds: Obj, node: Obj) -> tuple[bool, bool]:
    """(shouldRun, shouldContinueRunning) of the set's pod on a node."""
    spec = ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}
    labels = meta(node).get("labels") or {}
    if spec.get("nodeName") and spec["nodeName"] != meta(node).get("name"):
        return False, False
    for k, v in (spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False, False
    req = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution")
    if req is not None and not node_selector_matches(req, node):
        return False, False
    pod_spec = copy.deepcopy(spec)
    add_daemon_tolerations(pod_spec)
    taints = (node.get("spec") or {}).get("taints") or []
    tols = pod_spec.get("tolerations") or []
    if untolerated_taints(taints, tols, (TAINT_EFFECT_NO_EXECUTE,)):
        return False, False
    if untolerated_taints(taints, tols, (TAINT_EFFECT_NO_SCHEDULE,)):
        return False, True
    return True, True


def _unique(pods: list[Obj]) -> list[Obj]:
    """The pods without repeats (by uid), in order."""
    seen: set[str] = set()
    out = []
    for p in pods:
        if meta(p)["uid"] not in seen:
            seen.add(meta(p)["uid"])
            out.append(p)
    return out


class DaemonSetController(Controller):
    name = "daemonset-controller"

    def __init__(self, client: Client, factory: SharedInformerFactory, clock: Clock,
                 recorder: EventRecorder | None = None, workers: int = 2,
                 burst_replicas: int = 250) -> None:
        super().__init__(client, factory, clock, recorder, workers)
        self.burst_replicas = burst_replicas
        self.expectations = Expectations(clock)
        self.dss = self.informer("daemonsets")
        self.nodes = self.informer("nodes")
        self.pods = self.informer("pods")
        self.revisions = self.informer("controllerrevisions")
        ensure_indexes(self.dss)
        ensure_indexes(self.pods)
        ensure_indexes(self.revisions)
        self.watch(self.dss, self.enqueue, self._ds_deleted)
        self.nodes.add_event_handler(self._node_changed, self._node_updated, self._node_changed)
        self.pods.add_event_handler(self._pod_added, self._pod_updated, self._pod_deleted)

    # -- handlers -------------------------------------------------------------
    def _ds_deleted(self, ds: Obj) -> None:
        self.expectations.delete(key_of(ds))
        self.enqueue(ds)

    def _node_changed(self, node: Obj) -> None:
        for ds in self.dss.list():
            self.enqueue(ds)

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if (meta(old).get("labels") != meta(new).get("labels")
                or (old.get("spec") or {}).get("taints") != (new.get("spec") or {}).get("taints")):
            self._node_changed(new)

    def _pod_added(self, pod: Obj) -> None:
        if is_deleting(pod):
            self._pod_deleted(pod)
            return
        ds = resolve_controller_ref(self.dss, "DaemonSet", pod)
        if ds is not None:
            self.expectations.creation_observed(key_of(ds), key_of(pod))
            self.enqueue(ds)
        elif controller_ref(pod) is None:
            self._enqueue_matching(pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if is_deleting(new):
            self._pod_deleted(new)
            return
        ds = resolve_controller_ref(self.dss, "DaemonSet", new)
        if ds is not None:
            self.enqueue(ds)
            self.enqueue_when_available(ds, old, new)
        old_ds = resolve_controller_ref(self.dss, "DaemonSet", old)
        if old_ds is not None and (ds is None or key_of(old_ds) != key_of(ds)):
            self.enqueue(old_ds)
        if controller_ref(new) is None and meta(old).get("labels") != meta(new).get("labels"):
            self._enqueue_matching(new)

    def _pod_deleted(self, pod: Obj) -> None:
        ds = resolve_controller_ref(self.dss, "DaemonSet", pod)
        if ds is not None:
            self.expectations.pod_deleted(key_of(ds), key_of(pod))
            self.enqueue(ds)

    def _enqueue_matching(self, pod: Obj) -> None:
        for ds in matching_owners(self.dss, pod):
            self.enqueue(ds)

    # -- sync -----------------------------------------------------------------
    def template_hash(self, ds: Obj) -> str:
        return compute_hash((ds.get("spec") or {}).get("template") or {},
                            (ds.get("status") or {}).get("collisionCount"))

    async def claim_pods(self, ds: Obj) -> list[Obj]:
        selector = label_selector_from_dict((ds.get("spec") or {}).get("selector"))
        return await claim(self.client, "pods", ds, claim_candidates(self.pods, ds), selector_match(selector),
                           new_controller_ref(ds, "apps/v1", "DaemonSet"))

    async def ensure_revision(self, ds: Obj, h: str) -> None:
        await ensure_revision(self.client, self.revisions, ds, "DaemonSet", f"{meta(ds)['name']}-{h}", h)

    async def sync(self, key: str) -> None:
        ns, name = split_key(key)
        ds = self.dss.get(ns, name)
        if ds is None:
            self.expectations.delete(key)
            return
        pods = await self.claim_pods(ds)
        h = self.template_hash(ds)
        err: BaseException | None = None
        if not is_deleting(ds):
            try:
                await self.ensure_revision(ds, h)
            except ApiError as e:
                log.debug("daemonset %s: controller revision: %s", key, e)
            if self.expectations.satisfied(key):
                err = await self.manage(ds, pods, h)
        await self.update_status(ds, pods, h)
        if err is not None:
            raise err

    def _node_pods(self, pods: list[Obj]) -> tuple[dict[str, list[Obj]], list[Obj]]:
        by_node: dict[str, list[Obj]] = {}
        orphans: list[Obj] = []
        for p in pods:
            n = target_node(p)
            if n is None:
                orphans.append(p)
            else:
                by_node.setdefault(n, []).append(p)
        return by_node, orphans

    async def manage(self, ds: Obj, pods: list[Obj], h: str) -> BaseException | None:
        """Create the missing daemon pods and delete the unwanted ones (at most
        burst_replicas of each); the first error is returned."""
        key = key_of(ds)
        by_node, orphans = self._node_pods(pods)
        to_create, to_delete = self._place(ds, by_node)
        to_delete = orphans + to_delete
        strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            to_delete.extend(self._rolling_update_victims(ds, by_node, h, to_delete))
        to_create = to_create[:self.burst_replicas]
        victims = _unique(to_delete)[:self.burst_replicas]
        if not to_create and not victims:
            return None
        self.expectations.expect(key, len(to_create), [key_of(p) for p in victims],
                                 {key_of(p) for p in self.pods.by_index(BY_CONTROLLER, meta(ds)["uid"])})
        nodes = iter(to_create)
        err = await create_pods(self.client, self.recorder, self.expectations, ds, len(to_create),
                                lambda: self.new_pod(ds, next(nodes), h))
        delete_err = await delete_pods(self.client, self.recorder, self.expectations, ds, victims)
        return err if err is not None else delete_err

    def _place(self, ds: Obj, by_node: dict[str, list[Obj]]) -> tuple[list[str], list[Obj]]:
        """The nodes that need a pod of the set, and the pods to delete: on nodes where
        it may not stay or that are gone, failed ones and duplicates."""
        to_create: list[str] = []
        to_delete: list[Obj] = []
        node_names = set()
        for node in self.nodes.list():
            nn = meta(node)["name"]
            node_names.add(nn)
            should_run, should_continue = node_should_run(ds, node)
            existing = [p for p in by_node.get(nn, []) if not is_deleting(p)]
            if should_run and not existing:
                if not any(is_deleting(p) for p in by_node.get(nn, [])):
                    to_create.append(nn)
            elif should_continue:
                to_delete.extend(self._surplus(ds, nn, existing))
            else:
                to_delete.extend(existing)
        for nn, ps in by_node.items():
            if nn not in node_names:
                to_delete.extend(p for p in ps if not is_deleting(p))
        return to_create, to_delete

    def _surplus(self, ds: Obj, node_name: str, existing: list[Obj]) -> list[Obj]:
        """Of the pods on a node where the set's pod may stay: the failed ones (with a
        Warning event) and all running ones but the oldest (scheduled first)."""
        failed = [p for p in existing if (p.get("status") or {}).get("phase") == "Failed"]
        if failed:
            self.recorder.event(ds, WARNING, "FailedDaemonPod",
                                f"Found failed daemon pod {meta(failed[0]).get('namespace')}/{meta(failed[0])['name']} "
                                f"on node {node_name}, "
                                "will try to kill it")
        surplus = list(failed)
        running = [p for p in existing if p not in failed]
        if len(running) > 1:
            running.sort(key=lambda p: (0 if p.get("spec", {}).get("nodeName") else 1,
                                        creation_time(p)))
            surplus.extend(running[1:])
        return surplus

    def _rolling_update_victims(self, ds: Obj, by_node: dict[str, list[Obj]], h: str,
                                already: list[Obj]) -> list[Obj]:
        now = self.clock.now()
        mrs = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        ru = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
        desired = 0
        unavailable = 0
        old_available: list[Obj] = []
        victims: list[Obj] = []
        gone = {meta(p)["uid"] for p in already}
        for node in self.nodes.list():
            nn = meta(node)["name"]
            should_run, _ = node_should_run(ds, node)
            if not should_run:
                continue
            desired += 1
            pods = [p for p in by_node.get(nn, []) if not is_deleting(p) and meta(p)["uid"] not in gone]
            if not pods:
                unavailable += 1
                continue
            new = [p for p in pods if (meta(p).get("labels") or {}).get(CONTROLLER_REVISION_HASH_LABEL) == h]
            old = [p for p in pods if p not in new]
            if new:
                if not any(is_pod_available(p, mrs, now) for p in new):
                    unavailable += 1
                continue
            for p in old:
                if is_pod_available(p, mrs, now):
                    old_available.append(p)
                else:
                    victims.append(p)  # an unavailable old pod may go at once
                    unavailable += 1
        max_unavail = scaled_value(ru.get("maxUnavailable", 1), desired, True)
        budget = max_unavail - unavailable
        old_available.sort(key=lambda p: meta(p).get("name", ""))
        victims.extend(old_available[:max(0, budget)])
        return victims

    def new_pod(self, ds: Obj, node_name: str, h: str) -> Obj:
        template = copy.deepcopy((ds.get("spec") or {}).get("template") or {})
        tmd = template.get("metadata") or {}
        spec = template.get("spec") or {}
        add_daemon_tolerations(spec)
        pin_to_node(spec, node_name)
        md: Obj = {"generateName": f"{meta(ds)['name']}-", "namespace": meta(ds).get("namespace"),
                   "labels": {**(tmd.get("labels") or {}), CONTROLLER_REVISION_HASH_LABEL: h,
                              "pod-template-generation": str(meta(ds).get("generation") or 1)},
                   "ownerReferences": [new_controller_ref(ds, "apps/v1", "DaemonSet")]}
        if tmd.get("annotations"):
            md["annotations"] = tmd["annotations"]
        return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec}

    async def update_status(self, ds: Obj, pods: list[Obj], h: str) -> None:
        now = self.clock.now()
        mrs = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        by_node, _ = self._node_pods([p for p in pods if not is_deleting(p)])
        desired = current = misscheduled = ready = available = updated = 0
        for node in self.nodes.list():
            nn = meta(node)["name"]
            should_run, _ = node_should_run(ds, node)
            on_node = by_node.get(nn, [])
            if should_run:
                desired += 1
                if on_node:
                    current += 1
                    p = sorted(on_node, key=creation_time)[0]
                    if is_pod_ready(p):
                        ready += 1
                        if is_pod_available(p, mrs, now):
                            available += 1
                    if any((meta(x).get("labels") or {}).get(CONTROLLER_REVISION_HASH_LABEL) == h for x in on_node):
                        updated += 1
            elif on_node:
                misscheduled += 1
        old = ds.get("status") or {}
        status: Obj = {"currentNumberScheduled": current, "numberMisscheduled": misscheduled,
                       "desiredNumberScheduled": desired, "numberReady": ready,
                       "observedGeneration": int(meta(ds).get("generation") or 0),
                       "updatedNumberScheduled": updated, "numberAvailable": available,
                       "numberUnavailable": desired - available}
        if old.get("collisionCount") is not None:
            status["collisionCount"] = old["collisionCount"]
        if old.get("conditions"):
            status["conditions"] = old["conditions"]
        if non_empty(old) != non_empty(status):
            await write_status(self.client, "daemonsets", ds, status)
        if mrs > 0 and ready != available:
            self.enqueue_after(ds, mrs)
