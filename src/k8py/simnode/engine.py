"""The Engine drives a set of simulated nodes: registration, leases, status, and their pods.

One pod informer and one node informer (shared with other components through a
SharedInformerFactory, or filtered to the node when it drives a single one), one work
queue of pod keys with a few workers, and one lease loop that renews every node's Lease
in up to 10 slices spread over the renew interval, so 1,000 nodes stay cheap. A pod
bound to a node gets an IP from the node's podCIDR and a Running status (podstatus.py);
a terminating pod is deleted at once (its "containers" stop immediately). A paused
node is left alone until it resumes; its pods are then synced again.
Invariant: all waiting is on the injected Clock; the engine touches only pods bound to
its nodes. What it uses of a node is `DrivenNode` (node.SimulatedNode is one).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterable
from typing import Any, Protocol

from k8py.api.types import Obj
from k8py.api.wellknown import ANNOTATION_SIMULATED_HEARTBEAT
from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.client.informer import Informer, SharedInformerFactory, object_key
from k8py.client.nodelease import NodeLease
from k8py.client.workqueue import WorkQueue, run_workers
from k8py.clock import Clock, rfc3339
from k8py.simnode.addresses import PodIPs
from k8py.simnode.names import HEARTBEAT_PAUSED, HEARTBEAT_RUNNING
from k8py.simnode.podstatus import running_status

log = logging.getLogger(__name__)


class DrivenNode(Protocol):
    """What the Engine uses of a simulated node."""

    name: str
    paused: bool
    ips: PodIPs | None
    internal_ip: str | None
    lease: NodeLease
    renew_interval: float
    status_report_interval: float
    last_status_post: float

    def bind(self, engine: Engine) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def set_pod_cidr(self, cidr: str) -> None: ...
    async def register(self) -> None: ...
    async def post_status(self, current: Obj | None) -> None: ...


class Engine:
    def __init__(self, client: Client, clock: Clock, nodes: Iterable[DrivenNode], *,
                 single: bool = False, workers: int = 4, max_in_flight: int = 64,
                 factory: SharedInformerFactory | None = None) -> None:
        self.client = client
        self.clock = clock
        self.nodes = {n.name: n for n in nodes}
        for n in self.nodes.values():
            n.bind(self)
        self.single = single
        self.workers = workers
        self._sem = asyncio.Semaphore(max_in_flight)
        only = next(iter(self.nodes)) if single else None
        self.factory = factory
        if factory is not None and not single:
            self.pods = factory.informer("pods")
            self.node_informer = factory.informer("nodes")
        else:
            self.pods = Informer(client, "pods", clock=clock,
                                 field_selector=f"spec.nodeName={only}" if only else None)
            self.node_informer = Informer(client, "nodes", clock=clock,
                                          field_selector=f"metadata.name={only}" if only else None)
        self.queue: WorkQueue[str] = WorkQueue(clock, name="simulated-pods")
        self._tasks: set[asyncio.Task[None]] = set()
        self._flags: dict[str, str | None] = {}  # node -> heartbeat annotation last seen
        self._closed = False  # after run() ends, shared informers may still call in

    def set_annotation(self, sim: DrivenNode, value: str) -> None:
        if self._flags.get(sim.name) == value:
            return
        self._flags[sim.name] = value
        self._spawn(self._annotate(sim, value))

    async def _annotate(self, sim: DrivenNode, value: str) -> None:
        try:
            await self.client.patch("nodes", sim.name,
                                    {"metadata": {"annotations": {ANNOTATION_SIMULATED_HEARTBEAT: value}}})
        except ApiError as e:
            log.info("node %s: heartbeat annotation not written: %s", sim.name, e)

    # -- handlers ---------------------------------------------------------------
    def _pod_event(self, pod: Obj) -> None:
        if not self._closed and (pod.get("spec") or {}).get("nodeName") in self.nodes:
            self.queue.add(object_key(pod))

    def _pod_deleted(self, pod: Obj) -> None:
        node = self.nodes.get((pod.get("spec") or {}).get("nodeName") or "")
        if node is not None and node.ips is not None:
            node.ips.release(str(pod["metadata"].get("uid")))

    def _node_event(self, node_obj: Obj) -> None:
        sim = self.nodes.get(node_obj["metadata"]["name"])
        if sim is None or self._closed:
            return
        md = node_obj["metadata"]
        flag = (md.get("annotations") or {}).get(ANNOTATION_SIMULATED_HEARTBEAT)
        if flag != self._flags.get(sim.name):  # act on changes of the annotation only
            self._flags[sim.name] = flag
            if flag == HEARTBEAT_PAUSED and not sim.paused:
                sim.pause()
            elif flag == HEARTBEAT_RUNNING and sim.paused:
                sim.resume()
        cidr = (node_obj.get("spec") or {}).get("podCIDR")
        if cidr and (sim.ips is None or str(sim.ips.network) != cidr):
            sim.set_pod_cidr(cidr)
            self._resync(sim)
        if not sim.paused:
            ready = next((c for c in (node_obj.get("status") or {}).get("conditions") or []
                          if c.get("type") == "Ready"), None)
            if ready is not None and ready.get("status") != "True":
                # someone (the node lifecycle controller) thinks we are gone: say we are back
                self._spawn(self._post_status(sim))

    def on_resume(self, sim: DrivenNode) -> None:
        self._spawn(self._heartbeat(sim, status=True))
        self._resync(sim)

    def _resync(self, sim: DrivenNode) -> None:
        for pod in self.pods.list():
            if (pod.get("spec") or {}).get("nodeName") == sim.name:
                self.queue.add(object_key(pod))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        if self._closed:
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- heartbeats -------------------------------------------------------------
    async def _post_status(self, sim: DrivenNode) -> None:
        async with self._sem:
            try:
                await sim.post_status(self.node_informer.get(None, sim.name))
            except ApiError as e:
                log.info("node %s: status not posted: %s", sim.name, e)

    async def _heartbeat(self, sim: DrivenNode, status: bool = False) -> None:
        if sim.paused:
            return
        async with self._sem:
            try:
                await sim.lease.renew()
                if status or self.clock.monotonic() - sim.last_status_post >= sim.status_report_interval:
                    await sim.post_status(self.node_informer.get(None, sim.name))
            except ApiError as e:
                log.info("node %s: heartbeat failed: %s", sim.name, e)

    async def _lease_loop(self) -> None:
        """Renew every node's lease once per interval, in up to 10 slices spread over
        the interval (no burst of 1,000 writes every 10 s)."""
        interval = min(n.renew_interval for n in self.nodes.values())
        nodes = list(self.nodes.values())
        k = min(10, len(nodes))
        slices = [nodes[i::k] for i in range(k)]
        # every lease exists from the start, as each kubelet creates its own at once
        await asyncio.gather(*(self._heartbeat(n) for n in nodes if not n.paused))
        await self.clock.sleep(interval / k)
        while True:
            for part in slices:
                await asyncio.gather(*(self._heartbeat(n) for n in part if not n.paused))
                await self.clock.sleep(interval / k)

    # -- pods -------------------------------------------------------------------
    async def _sync_pod(self, key: str) -> None:
        pod = self.pods.get_by_key(key)
        if pod is None:
            return
        sim = self.nodes.get((pod.get("spec") or {}).get("nodeName") or "")
        if sim is None or sim.paused:
            return  # a paused node's pods are picked up again on resume
        if pod["metadata"].get("deletionTimestamp"):
            await self._finish_deletion(pod, sim)
            return
        uid = str(pod["metadata"].get("uid"))
        status = pod.get("status") or {}
        if status.get("phase") in ("Running", "Succeeded", "Failed"):
            if sim.ips is not None and status.get("podIP"):
                sim.ips.reserve(uid, status["podIP"])
            return
        if sim.ips is None:
            return  # no podCIDR yet (node IPAM assigns one); retried when it arrives
        ip = sim.ips.allocate(uid)
        if ip is None:
            raise RuntimeError(f"node {sim.name}: pod CIDR {sim.ips.network} is full")
        await self._mark_running(pod, sim, ip)

    async def _finish_deletion(self, pod: Obj, sim: DrivenNode) -> None:
        """The containers "stop" at once: delete the pod for good."""
        md = pod["metadata"]
        uid = str(md.get("uid"))
        try:
            await self.client.delete("pods", md["name"], md.get("namespace"), grace_period_seconds=0,
                                     preconditions={"uid": uid})
        except ApiError as e:
            if not (e.not_found or e.conflict or e.status == 409):
                raise
        if sim.ips is not None:
            sim.ips.release(uid)

    async def _mark_running(self, pod: Obj, sim: DrivenNode, ip: str) -> None:
        # a PUT of the status (compare-and-swap on the cached resourceVersion) costs the
        # API server much less than a patch; a conflict means a newer pod: retried
        body = dict(pod)
        body["status"] = {**(pod.get("status") or {}),
                          **running_status(pod, rfc3339(self.clock.now()), ip, sim.internal_ip)}
        try:
            await self.client.update_status("pods", body)
        except ApiError as e:
            if e.not_found:
                if sim.ips is not None:
                    sim.ips.release(str(pod["metadata"].get("uid")))
                return
            if e.conflict:
                return  # our copy is stale: the informer brings the newer pod, which re-queues it
            raise

    # -- run --------------------------------------------------------------------
    async def run(self) -> None:
        sem = asyncio.Semaphore(32)

        async def register(n: DrivenNode) -> None:
            async with sem:
                await n.register()

        await asyncio.gather(*(register(n) for n in self.nodes.values()))
        self.pods.add_event_handler(self._pod_event, lambda old, new: self._pod_event(new), self._pod_deleted)
        self.node_informer.add_event_handler(self._node_event, lambda old, new: self._node_event(new), None)
        loop = asyncio.get_running_loop()
        if self.factory is not None:
            self.factory.start()
            tasks = [loop.create_task(self._lease_loop())]
        else:
            tasks = [loop.create_task(self.pods.run()), loop.create_task(self.node_informer.run()),
                     loop.create_task(self._lease_loop())]
        tasks.append(loop.create_task(run_workers(self.queue, self._sync_pod, self.workers)))
        try:
            await asyncio.gather(*tasks)
        finally:
            self._closed = True
            self.queue.shutdown()
            owned = tasks + list(self._tasks)
            for t in owned:
                t.cancel()
            await asyncio.gather(*owned, return_exceptions=True)
