"""Node lifecycle controller: notices nodes whose kubelet went silent and evicts
their pods, as Kubernetes' node lifecycle controller and its NoExecute taint manager.

Every `node_monitor_period` it looks at each Node:
- A node is heard from when its Lease (kube-node-lease) renewTime or its Ready
  condition's lastHeartbeatTime changes; the time is the controller's own clock
  when it saw the change (no trust in the kubelet's clock).
- Not heard from for `node_monitor_grace_period` (40 s): its conditions become
  Unknown (reason NodeStatusUnknown, "Kubelet stopped posting node status."), its
  pods' Ready condition becomes False.
- Taints follow the Ready condition: Unknown -> node.kubernetes.io/unreachable
  NoSchedule + NoExecute; False -> node.kubernetes.io/not-ready NoSchedule + NoExecute;
  True -> neither (so a node whose kubelet comes back is untainted).
- NoExecute taints evict pods that do not tolerate them at once, and pods that
  tolerate them for tolerationSeconds when that time (from the taint's timeAdded)
  has passed. Pods without a toleration for not-ready/unreachable get the default
  one (DefaultTolerationSeconds admission); the default toleration's 300 s is
  replaced by `pod_eviction_timeout` (the server's --pod-eviction-timeout). Pods of
  DaemonSets tolerate both taints forever (their controller adds those tolerations;
  they are assumed here too) and stay.

The server's --node-monitor-grace-period sets the grace (Kubernetes' 40 s stays the
default); a lab grace shorter than 25 s also shortens the pass period (grace / 5, at
least 1 s) so that a silent node is noticed within about a fifth of the grace.

Level-triggered: each pass recomputes from the informers' state; safe to repeat.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from k8py.api.taints import (
    DEFAULT_TOLERATION_SECONDS,
    TAINT_EFFECT_NO_EXECUTE,
    TAINT_EFFECT_NO_SCHEDULE,
    TAINT_NODE_NOT_READY,
    TAINT_NODE_UNREACHABLE,
    tolerated,
    tolerates,
)
from k8py.api.types import Obj
from k8py.api.wellknown import NAMESPACE_NODE_LEASE
from k8py.client.client import Client, retry_on_conflict
from k8py.client.errors import ApiError
from k8py.client.events import NORMAL, EventRecorder
from k8py.client.informer import Informer, SharedInformerFactory
from k8py.clock import Clock, RealClock, parse_rfc3339, rfc3339

log = logging.getLogger(__name__)

COMPONENT = "node-controller"
NODE_MONITOR_GRACE_PERIOD = 40.0
NODE_MONITOR_PERIOD = 5.0
UNKNOWN_REASON = "NodeStatusUnknown"
UNKNOWN_MESSAGE = "Kubelet stopped posting node status."
CONDITIONS_MARKED_UNKNOWN = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
MAX_IN_FLIGHT = 32


def monitor_period(grace: float) -> float:
    """The pass period for a grace period: Kubernetes' 5 s, shorter for a lab grace."""
    return max(1.0, min(NODE_MONITOR_PERIOD, grace / 5))


def _ready(node: Obj) -> Obj | None:
    return next((c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)


def desired_condition_taints(ready_status: str | None) -> list[tuple[str, str]]:
    """(key, effect) of the taints a node should carry for its Ready status."""
    if ready_status == "Unknown":
        return [(TAINT_NODE_UNREACHABLE, TAINT_EFFECT_NO_SCHEDULE), (TAINT_NODE_UNREACHABLE, TAINT_EFFECT_NO_EXECUTE)]
    if ready_status == "False":
        return [(TAINT_NODE_NOT_READY, TAINT_EFFECT_NO_SCHEDULE), (TAINT_NODE_NOT_READY, TAINT_EFFECT_NO_EXECUTE)]
    return []


def is_daemonset_pod(pod: Obj) -> bool:
    return any(r.get("kind") == "DaemonSet" and r.get("controller")
               for r in (pod.get("metadata") or {}).get("ownerReferences") or [])


def effective_tolerations(pod: Obj, pod_eviction_timeout: float) -> list[Obj]:
    """The pod's tolerations as the taint manager weighs them (see module docstring)."""
    tols = [dict(t) for t in (pod.get("spec") or {}).get("tolerations") or []]
    for t in tols:
        if (t.get("key") in (TAINT_NODE_UNREACHABLE, TAINT_NODE_NOT_READY) and t.get("operator") == "Exists"
                and t.get("effect") == TAINT_EFFECT_NO_EXECUTE
                and t.get("tolerationSeconds") == DEFAULT_TOLERATION_SECONDS):
            t["tolerationSeconds"] = pod_eviction_timeout
    for key in (TAINT_NODE_UNREACHABLE, TAINT_NODE_NOT_READY):
        taint = {"key": key, "effect": TAINT_EFFECT_NO_EXECUTE}
        if is_daemonset_pod(pod):
            tols.append({"key": key, "operator": "Exists", "effect": TAINT_EFFECT_NO_EXECUTE})
        elif not tolerated(tols, taint):
            tols.append({"key": key, "operator": "Exists", "effect": TAINT_EFFECT_NO_EXECUTE,
                         "tolerationSeconds": pod_eviction_timeout})
    return tols


def eviction_time(pod: Obj, no_execute_taints: list[Obj], pod_eviction_timeout: float,
                  now: float) -> float | None:
    """When the pod must go (now for an untolerated taint), or None: it may stay."""
    if not no_execute_taints:
        return None
    tols = effective_tolerations(pod, pod_eviction_timeout)
    deadline: float | None = None
    for taint in no_execute_taints:
        matching = [t for t in tols if tolerates(t, taint)]
        if not matching:
            return now
        added = taint.get("timeAdded")
        start = parse_rfc3339(added) if added else now
        for t in matching:
            secs = t.get("tolerationSeconds")
            if secs is None:
                continue
            d = start + max(0.0, float(secs))
            deadline = d if deadline is None else min(deadline, d)
    return deadline


class NodeLifecycleController:
    def __init__(self, client: Client, clock: Clock | None = None, *,
                 node_monitor_grace_period: float = NODE_MONITOR_GRACE_PERIOD,
                 node_monitor_period: float = NODE_MONITOR_PERIOD,
                 pod_eviction_timeout: float = DEFAULT_TOLERATION_SECONDS,
                 factory: SharedInformerFactory | None = None) -> None:
        self.client = client
        self.clock: Clock = clock or RealClock()
        self.grace = node_monitor_grace_period
        self.period = node_monitor_period
        self.pod_eviction_timeout = pod_eviction_timeout
        self.factory = factory or SharedInformerFactory(client, self.clock)
        self.nodes: Informer = self.factory.informer("nodes")
        self.leases: Informer = self.factory.informer("leases", NAMESPACE_NODE_LEASE)
        self.pods: Informer = self.factory.informer("pods")
        self.pods.add_index("nodeName", lambda p: [(p.get("spec") or {}).get("nodeName") or ""])
        self.recorder = EventRecorder(client, COMPONENT, self.clock)
        self._heard: dict[str, tuple[Any, Any, float]] = {}  # node -> (renewTime, heartbeat, seen at)
        self._evicted: set[str] = set()  # pod uids we deleted
        self.evictions = 0

    async def run(self) -> None:
        self.factory.start()
        for inf in (self.nodes, self.leases, self.pods):
            await inf.wait_synced()
        while True:
            try:
                await self.monitor_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("node lifecycle pass failed")
            await self.clock.sleep(self.period)

    # -- one pass -----------------------------------------------------------------
    async def monitor_once(self) -> None:
        now = self.clock.now()
        nodes = self.nodes.list()
        names = {n["metadata"]["name"] for n in nodes}
        await self._bounded(self._check_node(node, now) for node in nodes)
        for gone in set(self._heard) - names:
            del self._heard[gone]
        await self._evict(now)

    async def _bounded(self, coros: Any) -> None:
        """Run API-bound steps concurrently, at most MAX_IN_FLIGHT at once (a pass over
        100 lost nodes must not take 100 sequential round trips per step)."""
        sem = asyncio.Semaphore(MAX_IN_FLIGHT)

        async def one(c: Any) -> None:
            async with sem:
                try:
                    await c
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("node lifecycle step failed")

        await asyncio.gather(*(one(c) for c in coros))

    def _last_heard(self, node: Obj, now: float) -> float:
        name = node["metadata"]["name"]
        lease = self.leases.get(NAMESPACE_NODE_LEASE, name)
        renew = (lease or {}).get("spec", {}).get("renewTime")
        ready = _ready(node)
        beat = (ready or {}).get("lastHeartbeatTime")
        prev = self._heard.get(name)
        if prev is None or prev[0] != renew or prev[1] != beat:
            self._heard[name] = (renew, beat, now)
            return now
        return prev[2]

    async def _check_node(self, node: Obj, now: float) -> None:
        name = node["metadata"]["name"]
        ready = _ready(node)
        status = (ready or {}).get("status")
        if now - self._last_heard(node, now) > self.grace and status != "Unknown":
            node = await self._mark_unknown(node, now)
            status = "Unknown"
            self.recorder.event(node, NORMAL, "NodeNotReady", f"Node {name} status is now: NodeNotReady")
            await self._mark_pods_not_ready(name)
        await self._reconcile_taints(node, status, now)

    async def _mark_unknown(self, node: Obj, now: float) -> Obj:
        ts = rfc3339(now)
        conds = []
        for c in (node.get("status") or {}).get("conditions") or []:
            c = dict(c)
            if c.get("type") in CONDITIONS_MARKED_UNKNOWN and c.get("status") != "Unknown":
                c.update(status="Unknown", reason=UNKNOWN_REASON, message=UNKNOWN_MESSAGE, lastTransitionTime=ts)
            conds.append(c)
        if not any(c.get("type") == "Ready" for c in conds):
            conds.append({"type": "Ready", "status": "Unknown", "reason": UNKNOWN_REASON,
                          "message": UNKNOWN_MESSAGE, "lastHeartbeatTime": ts, "lastTransitionTime": ts})
        try:
            return await self.client.patch("nodes", node["metadata"]["name"], {"status": {"conditions": conds}},
                                           subresource="status")
        except ApiError as e:
            if e.not_found:
                return node
            raise

    async def _mark_pods_not_ready(self, node_name: str) -> None:
        async def mark(pod: Obj) -> None:
            conds = (pod.get("status") or {}).get("conditions") or []
            if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds):
                return
            new = [dict(c, status="False", lastTransitionTime=rfc3339(self.clock.now()))
                   if c.get("type") == "Ready" else c for c in conds]
            md = pod["metadata"]
            try:
                await self.client.patch("pods", md["name"], {"status": {"conditions": new}}, md.get("namespace"),
                                        subresource="status")
            except ApiError as e:
                if not e.not_found:
                    log.info("pod %s/%s: not marked NotReady: %s", md.get("namespace"), md["name"], e)

        await asyncio.gather(*(mark(p) for p in self.pods.by_index("nodeName", node_name)))

    async def _reconcile_taints(self, node: Obj, ready_status: str | None, now: float) -> None:
        want = desired_condition_taints(ready_status)
        managed = {(key, effect) for key in (TAINT_NODE_UNREACHABLE, TAINT_NODE_NOT_READY)
                   for effect in (TAINT_EFFECT_NO_SCHEDULE, TAINT_EFFECT_NO_EXECUTE)}
        have = {(t.get("key"), t.get("effect")) for t in (node.get("spec") or {}).get("taints") or []
                if (t.get("key"), t.get("effect")) in managed}
        if have == set(want):
            return
        name = node["metadata"]["name"]

        async def write() -> None:
            current = await self.client.get("nodes", name)
            taints = [t for t in (current.get("spec") or {}).get("taints") or []
                      if (t.get("key"), t.get("effect")) not in managed or (t.get("key"), t.get("effect")) in want]
            present = {(t.get("key"), t.get("effect")) for t in taints}
            for key, effect in want:
                if (key, effect) not in present:
                    t: Obj = {"key": key, "effect": effect}
                    if effect == TAINT_EFFECT_NO_EXECUTE:
                        t["timeAdded"] = rfc3339(now)
                    taints.append(t)
            current.setdefault("spec", {})["taints"] = taints
            await self.client.update("nodes", current)

        try:
            await retry_on_conflict(write)
        except ApiError as e:
            if not e.not_found:
                raise

    async def _evict(self, now: float) -> None:
        due: list[Obj] = []
        for node in self.nodes.list():
            taints = [t for t in (node.get("spec") or {}).get("taints") or []
                      if t.get("effect") == TAINT_EFFECT_NO_EXECUTE]
            if not taints:
                continue
            for pod in self.pods.by_index("nodeName", node["metadata"]["name"]):
                md = pod["metadata"]
                if md.get("deletionTimestamp") or str(md.get("uid")) in self._evicted:
                    continue
                when = eviction_time(pod, taints, self.pod_eviction_timeout, now)
                if when is None or when > now:
                    continue
                due.append(pod)
        await self._bounded(self._delete(p) for p in due)

    async def _delete(self, pod: Obj) -> None:
        md = pod["metadata"]
        self._evicted.add(str(md.get("uid")))
        if len(self._evicted) > 100_000:
            self._evicted.clear()
        self.recorder.event(pod, NORMAL, "TaintManagerEviction",
                            f"Marking for deletion Pod {md.get('namespace')}/{md['name']}")
        try:
            await self.client.delete("pods", md["name"], md.get("namespace"),
                                     preconditions={"uid": str(md.get("uid"))})
            self.evictions += 1
        except ApiError as e:
            if not (e.not_found or e.status == 409):
                self._evicted.discard(str(md.get("uid")))
                raise


__all__ = ["NodeLifecycleController", "monitor_period", "effective_tolerations", "eviction_time"]
