"""Disruption controller: the status of every PodDisruptionBudget, as Kubernetes'
disruption controller computes it from the pods it selects and their controllers' scale.

- expectedPods / desiredHealthy: `maxUnavailable` (int or percent of the controllers'
  scale, rounded up): expected = the summed `spec.replicas` of the selected pods'
  controllers (a Deployment for pods of its ReplicaSets), desired = expected -
  maxUnavailable (>= 0); an integer `minAvailable`: expected = the selected pods,
  desired = minAvailable; a percent `minAvailable`: expected = the controllers' scale,
  desired = that percent of it, rounded up. Pods without a controller are not counted
  in the scale. A pod whose controller cannot be found fails the sync safely
  (disruptionsAllowed 0, DisruptionAllowed False / SyncFailed), as Kubernetes does.
- currentHealthy: selected pods that are Ready, not being deleted and not in
  `status.disruptedPods` (an eviction the API server just granted); an entry of that map
  is dropped when its pod is gone or being deleted, or DELETION_TIMEOUT after it was
  written (and the PDB is synced again then).
- disruptionsAllowed = max(0, currentHealthy - desiredHealthy), 0 when nothing is expected.
Invariants: level-triggered; the status is written (CAS) only when it changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from k8py.api import disruption
from k8py.api.types import Obj
from k8py.client.client import Client
from k8py.client.events import WARNING, EventRecorder
from k8py.client.informer import SharedInformerFactory, split_key
from k8py.clock import Clock, parse_rfc3339, rfc3339
from k8py.controllers.base import Controller
from k8py.controllers.controllerutil import controller_ref, is_pod_ready, meta, scaled_value
from k8py.controllers.indexes import BY_NAMESPACE, ensure_indexes
from k8py.controllers.status import write_status

log = logging.getLogger(__name__)

DELETION_TIMEOUT = 120.0  # seconds an evicted pod may take to be deleted before it counts again
ScaleOf = Callable[[Obj], tuple[str, int]]  # a pod -> (its controller's uid, that controller's replicas)


class NoController(Exception):
    pass


def _is_percent(v: Any) -> bool:
    return isinstance(v, str) and v.endswith("%")


def _scale(pods: list[Obj], scale_of: ScaleOf) -> tuple[int, list[str]]:
    """(summed replicas of the pods' distinct controllers, names of pods without one)."""
    seen: dict[str, int] = {}
    unmanaged: list[str] = []
    for p in pods:
        if controller_ref(p) is None:
            unmanaged.append(str(meta(p).get("name")))
            continue
        uid, replicas = scale_of(p)
        seen[uid] = replicas
    return sum(seen.values()), unmanaged


def expected_and_desired(spec: Obj, pods: list[Obj], scale_of: ScaleOf) -> tuple[int, int, list[str]]:
    """(expectedPods, desiredHealthy, unmanaged pod names) of a PDB spec over its pods."""
    mx, mn = spec.get("maxUnavailable"), spec.get("minAvailable")
    if mx is not None:
        expected, unmanaged = _scale(pods, scale_of)
        return expected, max(0, expected - scaled_value(mx, expected, True)), unmanaged
    if mn is not None and not _is_percent(mn):
        return len(pods), int(mn), []
    if mn is not None:
        expected, unmanaged = _scale(pods, scale_of)
        return expected, scaled_value(mn, expected, True), unmanaged
    return 0, 0, []


def _time(v: Any) -> float | None:
    try:
        return parse_rfc3339(str(v))
    except ValueError:
        return None


def disrupted_map(pods: list[Obj], disrupted: dict[str, Any], now: float) -> tuple[dict[str, Any], float | None]:
    """The entries of status.disruptedPods still awaited (pod present, not being deleted,
    not expired), and when the first of them expires."""
    out: dict[str, Any] = {}
    recheck: float | None = None
    for p in pods:
        name = meta(p).get("name")
        if meta(p).get("deletionTimestamp") or name not in disrupted:
            continue
        t = _time(disrupted[name])
        if t is None or t + DELETION_TIMEOUT < now:
            continue
        out[str(name)] = disrupted[name]
        recheck = t + DELETION_TIMEOUT if recheck is None else min(recheck, t + DELETION_TIMEOUT)
    return out, recheck


def count_healthy(pods: list[Obj], disrupted: dict[str, Any], now: float) -> int:
    n = 0
    for p in pods:
        name = meta(p).get("name")
        if meta(p).get("deletionTimestamp"):
            continue
        if name in disrupted:
            t = _time(disrupted[name])
            if t is not None and t + DELETION_TIMEOUT > now:
                continue
        if is_pod_ready(p):
            n += 1
    return n


def new_status(pdb: Obj, current: int, desired: int, expected: int, disrupted: dict[str, Any], now: str) -> Obj:
    allowed = current - desired
    if expected <= 0 or allowed <= 0:
        allowed = 0
    old = pdb.get("status") or {}
    st: Obj = {"observedGeneration": meta(pdb).get("generation", 0), "disruptionsAllowed": allowed,
               "currentHealthy": current, "desiredHealthy": desired, "expectedPods": expected,
               "conditions": [dict(c) for c in old.get("conditions") or []]}
    if disrupted:
        st["disruptedPods"] = disrupted
    disruption.set_condition(st, now)
    return st


def failsafe_status(pdb: Obj, message: str, now: str) -> Obj:
    old = pdb.get("status") or {}
    st: Obj = {k: v for k, v in old.items() if k != "conditions"}
    st["disruptionsAllowed"] = 0
    st["observedGeneration"] = meta(pdb).get("generation", 0)
    st["conditions"] = [dict(c) for c in old.get("conditions") or []]
    disruption.set_condition(st, now, disruption.SYNC_FAILED, message)
    return st


class DisruptionController(Controller):
    name = "disruption"

    def __init__(self, client: Client, factory: SharedInformerFactory, clock: Clock,
                 recorder: EventRecorder | None = None, workers: int = 1) -> None:
        super().__init__(client, factory, clock, recorder, workers)
        self.pdbs = self.informer("poddisruptionbudgets")
        self.pods = self.informer("pods")
        ensure_indexes(self.pods)
        self.pdbs.add_index(BY_NAMESPACE, lambda o: [meta(o).get("namespace") or ""])
        self.owners = {kind: self.informer(plural) for kind, plural in (
            ("ReplicaSet", "replicasets"), ("Deployment", "deployments"), ("StatefulSet", "statefulsets"),
            ("ReplicationController", "replicationcontrollers"))}
        self.watch(self.pdbs, self.enqueue)
        self.pods.add_event_handler(self._pod_changed, self._pod_updated, self._pod_changed)

    def _pod_changed(self, pod: Obj) -> None:
        ns = meta(pod).get("namespace") or ""
        for pdb in self.pdbs.by_index(BY_NAMESPACE, ns):
            if disruption.selects(pdb, meta(pod).get("labels")):
                self.enqueue(pdb)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        self._pod_changed(new)
        if meta(old).get("labels") != meta(new).get("labels"):
            self._pod_changed(old)

    def _scale_of(self, pod: Obj) -> tuple[str, int]:
        ref = controller_ref(pod)
        assert ref is not None
        ns = meta(pod).get("namespace")
        kind = ref.get("kind")
        inf = self.owners.get(str(kind))
        owner = inf.get(ns, str(ref.get("name"))) if inf is not None else None
        if owner is None or meta(owner).get("uid") != ref.get("uid"):
            raise NoController(f'found no controllers for pod "{meta(pod).get("name")}"')
        up = controller_ref(owner) if kind == "ReplicaSet" else None
        if up is not None and up.get("kind") == "Deployment":
            dep = self.owners["Deployment"].get(ns, str(up.get("name")))
            if dep is not None and meta(dep).get("uid") == up.get("uid"):
                owner = dep
        return str(meta(owner).get("uid")), int((owner.get("spec") or {}).get("replicas", 1) or 0)

    async def sync(self, key: str) -> None:
        ns, name = split_key(key)
        pdb = self.pdbs.get(ns, name)
        if pdb is None or meta(pdb).get("deletionTimestamp"):
            return
        pods = [p for p in self.pods.by_index(BY_NAMESPACE, ns or "")
                if disruption.selects(pdb, meta(p).get("labels"))]
        now = self.clock.now()
        recheck: float | None = None
        try:
            expected, desired, unmanaged = expected_and_desired(pdb.get("spec") or {}, pods, self._scale_of)
        except NoController as e:
            self.recorder.event(pdb, WARNING, "CalculateExpectedPodCountFailed",
                                f"Failed to calculate the number of expected pods: {e}")
            status = failsafe_status(pdb, str(e), rfc3339(now))
        else:
            if not pods:
                self.recorder.event(pdb, "Normal", "NoPods", "No matching pods found")
            disrupted, recheck = disrupted_map(pods, (pdb.get("status") or {}).get("disruptedPods") or {}, now)
            status = new_status(pdb, count_healthy(pods, disrupted, now), desired, expected, disrupted, rfc3339(now))
        if status != (pdb.get("status") or {}):
            await write_status(self.client, "poddisruptionbudgets", pdb, status)
        if recheck is not None:
            self.enqueue_after(key, max(0.0, recheck - now) + 0.5)
