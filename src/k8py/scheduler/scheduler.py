"""The scheduler: places pending pods on nodes through pods/binding.

Flow: informers on pods, nodes, PVCs, PVs and StorageClasses feed the SchedulerCache
and the SchedulingQueue. `run()` pops pods one at a time, runs the framework's filters
and scores synchronously over the cache, assumes the pod on the chosen node (so the
next pod sees the usage at once) and binds in a background task (at most
`max_binds_in_flight`), as kube-scheduler does. A failed bind forgets the assumption
(the node's resources are free at once), sends the other parked pods back to be tried
and puts the pod back in the queue with back-off; a pod gone meanwhile is dropped. An
assumption confirmed by the pod informer (nodeName set) becomes a bound pod of the
cache; one never confirmed expires `assumed_pod_ttl` seconds after its bind returned
(checked every second) and, if the informer still shows the pod unassigned, the pod is
queued again (the API server refuses a second binding of a bound pod). A pod that fits
nowhere gets a Warning FailedScheduling Event and a PodScheduled=False/Unschedulable
condition with Kubernetes' message, and waits in the queue until a node or pod changes
(and at least its back-off). Before that,
preemption (the framework's post-filter) may nominate a node: the pod's
status.nominatedNodeName is set and the victims deleted; their deletion requeues it.

Invariants: only pods with spec.schedulerName == `scheduler_name`, no nodeName and no
deletionTimestamp are scheduled; a binding failure forgets the assumption and retries
after back-off; a pod is never bound twice by this scheduler (the queue hands a key
out once, and an assigned pod is dropped from the queue).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from typing import Any

from k8py.api.types import Obj
from k8py.api.wellknown import ANNOTATION_SELECTED_NODE, DEFAULT_SCHEDULER_NAME
from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.client.events import NORMAL, WARNING, EventRecorder
from k8py.client.informer import Informer, SharedInformerFactory, object_key
from k8py.clock import Clock, RealClock, rfc3339
from k8py.scheduler.cache import SchedulerCache, is_terminal
from k8py.scheduler.framework import CycleState, FitError, Framework, PostFilterResult
from k8py.scheduler.plugins import default_plugins
from k8py.scheduler.plugins.defaultpreemption import NOMINATED_NODE
from k8py.scheduler.plugins.volumebinding import claims_to_annotate
from k8py.scheduler.queue import SchedulingQueue
from k8py.scheduler.types import PodInfo

log = logging.getLogger(__name__)

REASON_FAILED_SCHEDULING = "FailedScheduling"
REASON_SCHEDULED = "Scheduled"
REASON_PREEMPTED = "Preempted"
BATCH_SECONDS = 0.005
ASSUMED_POD_TTL = 900.0  # Kubernetes' durationToExpireAssumedPod before 1.23 (15 min); it no longer expires them
EXPIRE_PERIOD = 1.0  # kube-scheduler's cache cleanup period


def _assigned(pod: Obj) -> bool:
    return bool((pod.get("spec") or {}).get("nodeName"))


def _node_sched_view(node: Obj) -> tuple[Any, ...]:
    """The parts of a Node that scheduling depends on (heartbeats are not among them)."""
    md = node.get("metadata") or {}
    spec = node.get("spec") or {}
    return (md.get("labels"), spec.get("taints"), spec.get("unschedulable"),
            (node.get("status") or {}).get("allocatable"))


class Scheduler:
    def __init__(self, client: Client, clock: Clock | None = None, plugins: Sequence[Any] | None = None,
                 *, scheduler_name: str = DEFAULT_SCHEDULER_NAME,
                 percentage_of_nodes_to_score: int | None = None,
                 factory: SharedInformerFactory | None = None, max_binds_in_flight: int = 128,
                 record_scheduled_events: bool = True, rng: random.Random | None = None,
                 assumed_pod_ttl: float = ASSUMED_POD_TTL, event_client: Client | None = None) -> None:
        self.client = client
        self.clock: Clock = clock or RealClock()
        self.scheduler_name = scheduler_name
        self.framework = Framework(plugins if plugins is not None else default_plugins(),
                                   percentage_of_nodes_to_score, rng)
        self.factory = factory or SharedInformerFactory(client, self.clock)
        self._owns_factory = factory is None
        self.cache = SchedulerCache()
        self.queue = SchedulingQueue(self.clock)
        # Events on a client of their own (kube-scheduler's event client: its own rate limit)
        self.recorder = EventRecorder(event_client or client, DEFAULT_SCHEDULER_NAME, self.clock)
        self.max_binds_in_flight = max_binds_in_flight
        self.assumed_pod_ttl = assumed_pod_ttl
        self.record_scheduled_events = record_scheduled_events
        self.scheduled = 0  # pods bound (metrics)
        self.failed_attempts = 0
        self._sem: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[None]] = set()

        self.pods: Informer = self.factory.informer("pods")
        self.nodes: Informer = self.factory.informer("nodes")
        self.pvcs: Informer = self.factory.informer("persistentvolumeclaims")
        self.pvs: Informer = self.factory.informer("persistentvolumes")
        self.classes: Informer = self.factory.informer("storageclasses")
        self.pdbs: Informer = self.factory.informer("poddisruptionbudgets")
        self._nominated: dict[str, str] = {}  # pod key -> node preemption nominated for it
        self.cache.pvc_lookup = self.pvcs.get_by_key
        self.cache.pv_lookup = self.pvs.get_by_key
        self.cache.sc_lookup = self.classes.get_by_key
        self.cache.pdb_list = self.pdbs.list
        self.pods.add_event_handler(self._on_pod_add, self._on_pod_update, self._on_pod_delete)
        self.nodes.add_event_handler(self._on_node_add, self._on_node_update, self._on_node_delete)
        self.pvcs.add_event_handler(self._on_volume_change, lambda o, n: self._on_volume_change(n),
                                    None)
        self.pvs.add_event_handler(self._on_volume_change, lambda o, n: self._on_volume_change(n),
                                   None)

    # -- informer handlers (only bookkeeping; no API calls) ---------------------
    def _responsible(self, pod: Obj) -> bool:
        spec = pod.get("spec") or {}
        return (spec.get("schedulerName") or DEFAULT_SCHEDULER_NAME) == self.scheduler_name

    def _on_pod_add(self, pod: Obj) -> None:
        key = object_key(pod)
        if _assigned(pod):
            self.cache.add_or_update_pod(pod)
            self.queue.delete(key)
        elif self._responsible(pod) and not (pod.get("metadata") or {}).get("deletionTimestamp") \
                and not is_terminal(pod):
            self.queue.add(key, int((pod.get("spec") or {}).get("priority") or 0))

    def _on_pod_update(self, old: Obj, new: Obj) -> None:
        key = object_key(new)
        if _assigned(new):
            was = _assigned(old)
            self.cache.add_or_update_pod(new)
            if not was:
                self.queue.delete(key)
            elif is_terminal(new) and not is_terminal(old):
                self.queue.move_all_to_active()  # its resources are free now
            elif self.cache.pods_with_affinity() and \
                    (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels"):
                self.queue.move_all_to_active()
            return
        if not self._responsible(new):
            return
        if (new.get("metadata") or {}).get("deletionTimestamp") or is_terminal(new):
            self.queue.delete(key)
            return
        if old.get("spec") != new.get("spec") or \
                (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels"):
            self.queue.add(key, int((new.get("spec") or {}).get("priority") or 0))

    def _on_pod_delete(self, pod: Obj) -> None:
        key = object_key(pod)
        self.queue.delete(key)
        self._nominated.pop(key, None)
        if self.cache.remove_pod(key) is not None:
            self.queue.move_all_to_active()

    def _on_node_add(self, node: Obj) -> None:
        self.cache.add_or_update_node(node)
        self.queue.move_all_to_active()

    def _on_node_update(self, old: Obj, new: Obj) -> None:
        if _node_sched_view(old) == _node_sched_view(new):
            ni = self.cache.node_info(new["metadata"]["name"])
            if ni is not None:
                ni.node = new
                return
        self.cache.add_or_update_node(new)
        self.queue.move_all_to_active()

    def _on_node_delete(self, node: Obj) -> None:
        self.cache.remove_node(node["metadata"]["name"])

    def _on_volume_change(self, obj: Obj) -> None:
        self.queue.move_all_to_active()

    # -- scheduling -------------------------------------------------------------
    async def run(self) -> None:
        self._sem = asyncio.Semaphore(self.max_binds_in_flight)
        self.factory.start()
        for inf in (self.pods, self.nodes, self.pvcs, self.pvs, self.classes, self.pdbs):
            await inf.wait_synced()
        flusher = asyncio.get_running_loop().create_task(self._housekeeping())
        try:
            while True:
                key = await self.queue.pop()
                # schedule a run of pods back to back (bounded to ~5 ms of work), then let
                # informers and binds run: a yield per pod starves the scheduler on a busy loop
                deadline = time.perf_counter() + BATCH_SECONDS
                while True:
                    await self._sem.acquire()
                    try:
                        bound = self.schedule_one(key)
                    except Exception:
                        log.exception("scheduling %s failed", key)
                        bound = False
                        self.queue.add_backoff(key)
                    if not bound:
                        self._sem.release()
                    if time.perf_counter() >= deadline or self._sem.locked():
                        break
                    nxt = self.queue.pop_nowait()
                    if nxt is None:
                        break
                    key = nxt
                await asyncio.sleep(0)
        finally:
            await self._stop(flusher)

    async def _housekeeping(self) -> None:
        """The queue's periodic flush and the expiry of assumptions never confirmed."""
        async def expire() -> None:
            while True:
                await self.clock.sleep(EXPIRE_PERIOD)
                self.expire_assumed()
        await asyncio.gather(self.queue.run(), expire())

    def expire_assumed(self) -> None:
        expired = self.cache.expire_assumed(self.clock.monotonic())
        for key in expired:
            pod = self.pods.get_by_key(key)
            log.warning("assumed pod %s expired: its binding was never seen", key)
            if pod is not None and not _assigned(pod) and self._responsible(pod):
                self.queue.add_backoff(key)
        if expired:
            self.queue.move_all_to_active()

    async def _stop(self, flusher: asyncio.Task[None]) -> None:
        """Cancel and await what run() started: the queue flusher, binds in flight, the
        informers (when this scheduler made their factory) and pending events."""
        flusher.cancel()
        self.queue.close()
        binds = list(self._tasks)
        for t in binds:
            t.cancel()
        await asyncio.gather(flusher, *binds, return_exceptions=True)
        if self._owns_factory:
            await self.factory.shutdown()
        await self.recorder.close()

    def schedule_one(self, key: str) -> bool:
        """One scheduling cycle for a queued pod. True when a bind task was started
        (it releases the bind semaphore)."""
        pod = self.pods.get_by_key(key)
        if pod is None or _assigned(pod) or not self._responsible(pod) \
                or (pod.get("metadata") or {}).get("deletionTimestamp") or is_terminal(pod):
            self.queue.delete(key)
            return False
        if self.cache.node_of(key) is not None:
            return False  # assumed already; its binding is in flight
        pi = PodInfo.from_pod(pod)
        state = CycleState(self.cache)
        if key in self._nominated:
            state.data[NOMINATED_NODE] = self._nominated[key]
        try:
            ni = self.framework.select_host(state, pi, self.cache.node_infos())
        except FitError as e:
            self.failed_attempts += 1
            result = self.framework.run_post_filter(state, pi, e)
            self._unschedulable(pod, e.message())
            if result is not None:
                self._nominated[key] = result.node
                self._spawn(self._preempt(pod, result))
            self.queue.add_unschedulable(key)
            return False
        self._nominated.pop(key, None)
        self.cache.assume(pi, ni.name)
        self._spawn(self._bind(pod, pi, ni.name, claims_to_annotate(state)))
        return True

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _bind(self, pod: Obj, pi: PodInfo, node: str, claims: list[str]) -> None:
        try:
            for claim in claims:
                await self.client.patch("persistentvolumeclaims", claim,
                                        {"metadata": {"annotations": {ANNOTATION_SELECTED_NODE: node}}},
                                        pi.namespace)
            await self.client.bind(pod, node)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.cache.forget(pi.key)
            self.queue.move_all_to_active()  # the node's resources are free again
            if isinstance(e, ApiError) and e.not_found:
                self.queue.delete(pi.key)
            else:
                log.info("binding %s to %s failed: %s", pi.key, node, e)
                self.recorder.event(pod, WARNING, REASON_FAILED_SCHEDULING, f"Binding rejected: {e}")
                self.queue.add_backoff(pi.key)
        else:
            self.scheduled += 1
            self.cache.finish_binding(pi.key, self.clock.monotonic() + self.assumed_pod_ttl)
            self.queue.done(pi.key)
            if self.record_scheduled_events:
                self.recorder.event(pod, NORMAL, REASON_SCHEDULED,
                                    f"Successfully assigned {pi.namespace}/{pi.name} to {node}")
        finally:
            assert self._sem is not None
            self._sem.release()

    async def _preempt(self, pod: Obj, result: PostFilterResult) -> None:
        """Nominate the node in the pod's status, then delete the victims (each marked
        DisruptionTarget first, with a Preempted event), as Kubernetes' preemption does."""
        md = pod["metadata"]
        try:
            await self.client.patch("pods", md["name"], {"status": {"nominatedNodeName": result.node}},
                                    md.get("namespace"), patch_type="merge", subresource="status")
        except ApiError as e:
            log.info("pod %s: nominatedNodeName not written: %s", md.get("name"), e)
        for v in result.victims:
            cond = {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
                    "message": f"{self.scheduler_name}: preempting to accommodate a higher priority pod",
                    "lastTransitionTime": rfc3339(self.clock.now())}
            try:
                await self.client.patch("pods", v.name, {"status": {"conditions": [cond]}}, v.namespace,
                                        patch_type="strategic", subresource="status")
                await self.client.delete("pods", v.name, v.namespace)
            except ApiError as e:
                if not e.not_found:
                    log.info("preempting %s failed: %s", v.key, e)
                continue
            self.recorder.event(v.pod, NORMAL, REASON_PREEMPTED,
                                f"Preempted by pod {md.get('uid')} on node {result.node}")

    def _unschedulable(self, pod: Obj, message: str) -> None:
        self.recorder.event(pod, WARNING, REASON_FAILED_SCHEDULING, message)
        for c in (pod.get("status") or {}).get("conditions") or []:
            if c.get("type") == "PodScheduled" and c.get("status") == "False" \
                    and c.get("reason") == "Unschedulable" and c.get("message") == message:
                return  # already says so
        self._spawn(self._set_unschedulable_condition(pod, message))

    async def _set_unschedulable_condition(self, pod: Obj, message: str) -> None:
        md = pod["metadata"]
        cond = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": message, "lastProbeTime": None,
                "lastTransitionTime": rfc3339(self.clock.now())}
        try:
            await self.client.patch("pods", md["name"], {"status": {"conditions": [cond]}},
                                    md.get("namespace"), patch_type="strategic", subresource="status")
        except ApiError as e:
            if e.status != 415 and e.status != 400:
                if not e.not_found:
                    log.info("pod %s: condition not written: %s", md.get("name"), e)
                return
            # no strategic merge patch: read-modify-write
            current = await self.client.get_or_none("pods", md["name"], md.get("namespace"))
            if current is None or _assigned(current):
                return
            conds = [c for c in (current.get("status") or {}).get("conditions") or []
                     if c.get("type") != "PodScheduled"]
            current.setdefault("status", {})["conditions"] = conds + [cond]
            try:
                await self.client.update_status("pods", current)
            except ApiError as e2:
                log.info("pod %s: condition not written: %s", md.get("name"), e2)

    async def wait_idle(self) -> None:
        """Wait until every bind, status write and event started so far finished (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.recorder.flush()
