"""Pod garbage collector (Kubernetes' podgc controller).

Every `period` seconds (and when a node goes away) it force-deletes (grace 0):
- orphaned pods: bound to a node that no longer exists (confirmed by a live GET,
  after the node has been missing for `quarantine` seconds), after marking them
  Failed with a DisruptionTarget condition (reason DeletionByPodGC);
- terminating pods that were never scheduled;
- terminating pods on a NotReady node tainted `node.kubernetes.io/out-of-service`;
- the oldest terminated (Succeeded/Failed) pods beyond `terminated_threshold`.
Invariants: a pod is only force-deleted for one of these reasons; deletes carry a uid
precondition so a recreated pod of the same name is never hit.
"""

from __future__ import annotations

import copy
import logging

from k8py.api.taints import TAINT_NODE_OUT_OF_SERVICE
from k8py.api.types import Obj
from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.client.events import EventRecorder
from k8py.client.informer import SharedInformerFactory
from k8py.clock import Clock, rfc3339
from k8py.controllers.base import Controller
from k8py.controllers.controllerutil import creation_time, is_deleting, meta
from k8py.controllers.status import write_status

log = logging.getLogger(__name__)

GC_KEY = "podgc"


class PodGC(Controller):
    name = "pod-garbage-collector"

    def __init__(self, client: Client, factory: SharedInformerFactory, clock: Clock,
                 recorder: EventRecorder | None = None, workers: int = 1, *,
                 period: float = 20.0, quarantine: float = 40.0, terminated_threshold: int = 12500) -> None:
        super().__init__(client, factory, clock, recorder, workers)
        self.period = period
        self.quarantine = quarantine
        self.terminated_threshold = terminated_threshold
        self.pods = self.informer("pods")
        self.nodes = self.informer("nodes")
        self._missing_since: dict[str, float] = {}
        self.nodes.add_event_handler(None, None, lambda n: self.queue.add(GC_KEY))

    async def on_start(self) -> None:
        self.queue.add(GC_KEY)

    async def sync(self, key: str) -> None:
        try:
            await self.collect()
        finally:
            self.enqueue_after(GC_KEY, self.period)

    async def collect(self) -> None:
        now = self.clock.monotonic()
        pods = self.pods.list()
        # terminated pods beyond the threshold, oldest first
        terminated = [p for p in pods if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed")
                      and not is_deleting(p)]
        excess = len(terminated) - self.terminated_threshold
        if excess > 0:
            for p in sorted(terminated, key=creation_time)[:excess]:
                await self._force_delete(p)
        # orphaned pods: their node is gone
        nodes = {meta(n)["name"]: n for n in self.nodes.list()}
        missing: set[str] = set()
        for p in pods:
            node = (p.get("spec") or {}).get("nodeName")
            if node and node not in nodes:
                missing.add(node)
        for name in list(self._missing_since):
            if name not in missing:
                del self._missing_since[name]
        gone: set[str] = set()
        for name in missing:
            since = self._missing_since.setdefault(name, now)
            if now - since < self.quarantine:
                self.enqueue_after(GC_KEY, self.quarantine - (now - since) + 0.001)
                continue
            if await self.client.get_or_none("nodes", name) is None:
                gone.add(name)
        for p in pods:
            spec = p.get("spec") or {}
            node = spec.get("nodeName")
            if node in gone:
                await self._mark_failed(p)
                await self._force_delete(p)
            elif is_deleting(p) and not node:
                await self._force_delete(p)
            elif is_deleting(p) and node in nodes and self._out_of_service(nodes[node]):
                await self._force_delete(p)

    @staticmethod
    def _out_of_service(node: Obj) -> bool:
        tainted = any(t.get("key") == TAINT_NODE_OUT_OF_SERVICE
                      for t in (node.get("spec") or {}).get("taints") or [])
        ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (node.get("status") or {}).get("conditions") or [])
        return tainted and not ready

    async def _mark_failed(self, pod: Obj) -> None:
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return
        st = copy.deepcopy(pod.get("status") or {})
        st["phase"] = "Failed"
        conds = [c for c in st.get("conditions") or [] if c.get("type") != "DisruptionTarget"]
        conds.append({"type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
                      "message": "PodGC: node no longer exists", "lastTransitionTime": rfc3339(self.clock.now())})
        st["conditions"] = conds
        await write_status(self.client, "pods", pod, st, ignore_conflict=True)

    async def _force_delete(self, pod: Obj) -> None:
        md = meta(pod)
        log.info("pod gc: force-deleting %s/%s", md.get("namespace"), md.get("name"))
        try:
            await self.client.delete("pods", md["name"], md.get("namespace"), grace_period_seconds=0,
                                     preconditions={"uid": md["uid"]})
        except ApiError as e:
            if not (e.not_found or e.conflict):
                raise
