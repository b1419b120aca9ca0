"""Simulated nodes (as KWOK does): Nodes that register, heartbeat and "run" pods
without processes, so k8py can be taught and load-tested with many nodes.

A SimulatedNode registers a Node that says it is simulated (label
`k8py.io/simulated=true` and annotation `k8py.io/simulated`), reports capacity,
conditions and nodeInfo, renews its Lease in kube-node-lease every 10 s, marks pods
bound to it Running (pod IP from the node's podCIDR, the usual conditions and
container statuses) and finishes the deletion of pods that are terminating.

Heartbeats can be stopped and restarted from the API, which is how students and
tests make a node go NotReady:

    kubectl annotate node sim-1 k8py.io/simulated-heartbeat=paused --overwrite
    kubectl annotate node sim-1 k8py.io/simulated-heartbeat=running --overwrite

(or `pause()` / `resume()` in Python). A paused node neither renews its Lease nor
posts status nor touches its pods, like a kubelet that lost the network.

Addresses: a Hostname address always; an InternalIP only from the documentation
ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24: TEST-NET, never routed) when
the cluster hands one out. Nothing ever sends traffic to them.

SimulatedCluster runs N nodes on one shared pod informer, one node informer, one
work queue with a few workers and one lease loop, so 1,000 nodes stay cheap.
Invariant: all waiting is on the injected Clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
from typing import Any, Iterable

from k8py.api.types import Obj
from k8py.api.wellknown import (
    ANNOTATION_NODE_TTL,
    ANNOTATION_SIMULATED,
    ANNOTATION_SIMULATED_HEARTBEAT,
    LABEL_ARCH_BETA,
    LABEL_ARCH_STABLE,
    LABEL_HOSTNAME,
    LABEL_OS_BETA,
    LABEL_OS_STABLE,
    LABEL_SIMULATED,
)
from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.client.informer import Informer, SharedInformerFactory, object_key
from k8py.client.workqueue import QueueShutDown, WorkQueue
from k8py.clock import Clock, RealClock, rfc3339
from k8py.component import ClusterContext
from k8py.kubelet.lease import LEASE_DURATION_SECONDS, RENEW_INTERVAL_SECONDS, NodeLease

log = logging.getLogger(__name__)

SIMULATED_NOTE = ("This node is simulated by k8py: it runs no containers; its pods are marked "
                  "Running without processes and their IPs route nowhere.")
HEARTBEAT_PAUSED = "paused"
HEARTBEAT_RUNNING = "running"
KUBELET_VERSION = "v1.32.0-k8py-sim"
RUNTIME_VERSION = "k8py-sim://0.1.0"
STATUS_REPORT_INTERVAL = 300.0  # Kubernetes' nodeStatusReportFrequency when leases are on
DEFAULT_CAPACITY = {"cpu": "4", "memory": "8Gi", "pods": "110", "ephemeral-storage": "100Gi"}
DOC_NETWORKS = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")


def documentation_address(index: int) -> str | None:
    """The index-th host address of the TEST-NET ranges (762 of them), else None."""
    for net in DOC_NETWORKS:
        n = ipaddress.ip_network(net)
        if index < 254:
            return str(n.network_address + 1 + index)
        index -= 254
    return None


def _condition(type_: str, status: str, reason: str, message: str, now: str, transition: str) -> Obj:
    return {"type": type_, "status": status, "lastHeartbeatTime": now, "lastTransitionTime": transition,
            "reason": reason, "message": message}


class PodIPs:
    """Host addresses of a podCIDR handed out to pods (.1 is left for a gateway)."""

    def __init__(self, cidr: str) -> None:
        self.network = ipaddress.ip_network(cidr, strict=False)
        self._by_uid: dict[str, str] = {}
        self._used: set[str] = set()
        self._next = 2

    def reserve(self, uid: str, ip: str) -> None:
        self._by_uid[uid] = ip
        self._used.add(ip)

    def allocate(self, uid: str) -> str | None:
        if uid in self._by_uid:
            return self._by_uid[uid]
        size = self.network.num_addresses
        for _ in range(size):
            if self._next >= size - 1:
                self._next = 2
            ip = str(self.network.network_address + self._next)
            self._next += 1
            if ip not in self._used:
                self.reserve(uid, ip)
                return ip
        return None

    def release(self, uid: str) -> None:
        ip = self._by_uid.pop(uid, None)
        if ip is not None:
            self._used.discard(ip)


class SimulatedNode:
    def __init__(self, client: Client, name: str, capacity: dict[str, str] | None = None,
                 clock: Clock | None = None, pod_cidr: str | None = None, *,
                 internal_ip: str | None = None, labels: dict[str, str] | None = None,
                 taints: list[Obj] | None = None, arch: str = "amd64",
                 lease_duration: int = LEASE_DURATION_SECONDS,
                 renew_interval: float = RENEW_INTERVAL_SECONDS,
                 status_report_interval: float = STATUS_REPORT_INTERVAL) -> None:
        self.client = client
        self.name = name
        self.capacity = {**DEFAULT_CAPACITY, **(capacity or {})}
        self.clock: Clock = clock or RealClock()
        self.pod_cidr = pod_cidr
        self.internal_ip = internal_ip
        self.extra_labels = labels or {}
        self.taints = taints or []
        self.arch = arch
        self.renew_interval = renew_interval
        self.status_report_interval = status_report_interval
        self.lease = NodeLease(client, name, self.clock, lease_duration)
        self.paused = False
        self.ips: PodIPs | None = PodIPs(pod_cidr) if pod_cidr else None
        self.uid: str | None = None
        self._last_status_post = 0.0
        self._ready_since: str | None = None
        self._engine: _Engine | None = None

    # -- control ----------------------------------------------------------------
    def pause(self) -> None:
        """Stop heartbeats (lease, status) and pod handling, as a kubelet cut off.
        The node's heartbeat annotation is set to "paused" so the API shows it."""
        if self.paused:
            return
        self.paused = True
        if self._engine is not None:
            self._engine.set_annotation(self, HEARTBEAT_PAUSED)

    def resume(self) -> None:
        if not self.paused:
            return
        self.paused = False
        if self._engine is not None:
            self._engine.set_annotation(self, HEARTBEAT_RUNNING)
            self._engine.on_resume(self)

    # -- the Node object ----------------------------------------------------------
    def node_object(self) -> Obj:
        now = rfc3339(self.clock.now())
        labels = {LABEL_HOSTNAME: self.name, LABEL_OS_STABLE: "linux",
                  LABEL_ARCH_STABLE: self.arch, LABEL_OS_BETA: "linux",
                  LABEL_ARCH_BETA: self.arch, LABEL_SIMULATED: "true", **self.extra_labels}
        spec: Obj = {}
        if self.pod_cidr:
            spec["podCIDR"] = self.pod_cidr
            spec["podCIDRs"] = [self.pod_cidr]
        if self.taints:
            spec["taints"] = self.taints
        return {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": self.name, "labels": labels,
                         "annotations": {ANNOTATION_SIMULATED: SIMULATED_NOTE,
                                         ANNOTATION_SIMULATED_HEARTBEAT: HEARTBEAT_RUNNING,
                                         ANNOTATION_NODE_TTL: "0"}},
            "spec": spec,
            "status": self.status(now, None),
        }

    def status(self, now: str, current: Obj | None) -> Obj:
        """The node status to post; keeps transition times of unchanged conditions."""
        old = {c.get("type"): c for c in ((current or {}).get("status") or {}).get("conditions") or []}

        def cond(type_: str, status: str, reason: str, message: str) -> Obj:
            prev = old.get(type_)
            trans = prev.get("lastTransitionTime", now) if prev and prev.get("status") == status else now
            return _condition(type_, status, reason, message, now, trans)

        h = hashlib.sha256(self.name.encode()).hexdigest()
        addresses = []
        if self.internal_ip:
            addresses.append({"type": "InternalIP", "address": self.internal_ip})
        addresses.append({"type": "Hostname", "address": self.name})
        return {
            "capacity": dict(self.capacity),
            "allocatable": dict(self.capacity),
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": addresses,
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": h[:32], "systemUUID": f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}",
                "bootID": h[32:64], "kernelVersion": "k8py-simulated", "osImage": "k8py simulated node",
                "containerRuntimeVersion": RUNTIME_VERSION, "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION, "operatingSystem": "linux", "architecture": self.arch,
            },
        }

    async def register(self) -> None:
        try:
            created = await self.client.create("nodes", self.node_object())
            self.uid = created["metadata"].get("uid")
            if not (created.get("status") or {}).get("allocatable"):
                await self.post_status(created)  # the server dropped status on create
        except ApiError as e:
            if not e.already_exists:
                raise
            current = await self.client.get("nodes", self.name)
            self.uid = current["metadata"].get("uid")
            md = current["metadata"]
            want = self.node_object()["metadata"]
            await self.client.patch("nodes", self.name, {"metadata": {
                "labels": want["labels"],
                "annotations": {ANNOTATION_SIMULATED: SIMULATED_NOTE}}})
            if (md.get("annotations") or {}).get(ANNOTATION_SIMULATED_HEARTBEAT) == HEARTBEAT_PAUSED:
                self.paused = True
            if (current.get("spec") or {}).get("podCIDR"):  # a node's podCIDR never changes
                self.set_pod_cidr(current["spec"]["podCIDR"])
            await self.post_status(current)
        self.lease.node_uid = self.uid
        self._last_status_post = self.clock.monotonic()

    def set_pod_cidr(self, cidr: str) -> None:
        if self.ips is None or str(self.ips.network) != str(ipaddress.ip_network(cidr, strict=False)):
            self.pod_cidr = cidr
            self.ips = PodIPs(cidr)

    async def post_status(self, current: Obj | None) -> None:
        st = self.status(rfc3339(self.clock.now()), current)
        if current is not None and current.get("metadata", {}).get("resourceVersion"):
            body = dict(current)
            body["status"] = {**(current.get("status") or {}), **st}
            try:  # a PUT is cheaper for the API server than a patch
                await self.client.update_status("nodes", body)
                self._last_status_post = self.clock.monotonic()
                return
            except ApiError as e:
                if not e.conflict:
                    raise
        await self.client.patch("nodes", self.name, {"status": st}, subresource="status")
        self._last_status_post = self.clock.monotonic()

    async def run(self) -> None:
        """Run this one node until cancelled (its own informers, filtered to it)."""
        await _Engine(self.client, self.clock, [self], single=True).run()


class SimulatedCluster:
    """N simulated nodes `<prefix><i>` sharing informers, a work queue and a lease loop."""

    def __init__(self, client: Client, n: int, capacity: dict[str, str] | None = None,
                 clock: Clock | None = None, *, name_prefix: str = "sim-", start_index: int = 1,
                 workers: int = 32, factory: SharedInformerFactory | None = None,
                 **node_kwargs: Any) -> None:
        self.client = client
        self.clock: Clock = clock or RealClock()
        self.nodes = [SimulatedNode(client, f"{name_prefix}{i}", capacity, self.clock,
                                    internal_ip=documentation_address(i - start_index), **node_kwargs)
                      for i in range(start_index, start_index + n)]
        self.workers = workers
        self.factory = factory  # share pod and node informers with other components
        self.engine: _Engine | None = None

    def node(self, name: str) -> SimulatedNode:
        return next(n for n in self.nodes if n.name == name)

    async def run(self) -> None:
        self.engine = _Engine(self.client, self.clock, self.nodes, workers=self.workers, factory=self.factory)
        await self.engine.run()


class _Engine:
    """Drives a set of SimulatedNodes: registration, leases, status, pods."""

    def __init__(self, client: Client, clock: Clock, nodes: Iterable[SimulatedNode], *,
                 single: bool = False, workers: int = 4, max_in_flight: int = 64,
                 factory: SharedInformerFactory | None = None) -> None:
        self.client = client
        self.clock = clock
        self.nodes = {n.name: n for n in nodes}
        for n in self.nodes.values():
            n._engine = self
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

    def set_annotation(self, sim: SimulatedNode, value: str) -> None:
        if self._flags.get(sim.name) == value:
            return
        self._flags[sim.name] = value
        self._spawn(self._annotate(sim, value))

    async def _annotate(self, sim: SimulatedNode, value: str) -> None:
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

    def on_resume(self, sim: SimulatedNode) -> None:
        self._spawn(self._heartbeat(sim, status=True))
        self._resync(sim)

    def _resync(self, sim: SimulatedNode) -> None:
        for pod in self.pods.list():
            if (pod.get("spec") or {}).get("nodeName") == sim.name:
                self.queue.add(object_key(pod))

    def _spawn(self, coro: Any) -> None:
        if self._closed:
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- heartbeats -------------------------------------------------------------
    async def _post_status(self, sim: SimulatedNode) -> None:
        async with self._sem:
            try:
                await sim.post_status(self.node_informer.get(None, sim.name))
            except ApiError as e:
                log.info("node %s: status not posted: %s", sim.name, e)

    async def _heartbeat(self, sim: SimulatedNode, status: bool = False) -> None:
        if sim.paused:
            return
        async with self._sem:
            try:
                await sim.lease.renew()
                if status or self.clock.monotonic() - sim._last_status_post >= sim.status_report_interval:
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
    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except QueueShutDown:
                return
            try:
                await self._sync_pod(key)
                self.queue.forget(key)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.info("simulated pod %s: %s; retrying", key, e)
                self.queue.add_rate_limited(key)
            finally:
                self.queue.done(key)

    async def _sync_pod(self, key: str) -> None:
        pod = self.pods.get_by_key(key)
        if pod is None:
            return
        spec = pod.get("spec") or {}
        sim = self.nodes.get(spec.get("nodeName") or "")
        if sim is None or sim.paused:
            return  # a paused node's pods are picked up again on resume
        md = pod["metadata"]
        uid = str(md.get("uid"))
        if md.get("deletionTimestamp"):
            # the containers "stop" at once; finish the deletion
            try:
                await self.client.delete("pods", md["name"], md.get("namespace"), grace_period_seconds=0,
                                         preconditions={"uid": uid})
            except ApiError as e:
                if not (e.not_found or e.conflict or e.status == 409):
                    raise
            if sim.ips is not None:
                sim.ips.release(uid)
            return
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
        # a PUT of the status (compare-and-swap on the cached resourceVersion) costs the
        # API server much less than a patch; a conflict means a newer pod: retried
        body = dict(pod)
        body["status"] = {**status, **self._running_status(pod, sim, ip)}
        try:
            await self.client.update_status("pods", body)
        except ApiError as e:
            if e.not_found:
                sim.ips.release(uid)
                return
            if e.conflict:
                return  # our copy is stale: the informer brings the newer pod, which re-queues it
            raise

    def _running_status(self, pod: Obj, sim: SimulatedNode, ip: str) -> Obj:
        now = rfc3339(self.clock.now())
        spec = pod.get("spec") or {}
        old = {c.get("type"): c for c in (pod.get("status") or {}).get("conditions") or []}
        scheduled = old.get("PodScheduled") or {}
        conds = [
            {"type": "PodReadyToStartContainers", "status": "True", "lastProbeTime": None, "lastTransitionTime": now},
            {"type": "Initialized", "status": "True", "lastProbeTime": None, "lastTransitionTime": now},
            {"type": "Ready", "status": "True", "lastProbeTime": None, "lastTransitionTime": now},
            {"type": "ContainersReady", "status": "True", "lastProbeTime": None, "lastTransitionTime": now},
            {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
             "lastTransitionTime": scheduled.get("lastTransitionTime", now) if scheduled.get("status") == "True" else now},
        ]

        def cid(name: str) -> str:
            return "k8py-sim://" + hashlib.sha256(f"{pod['metadata'].get('uid')}/{name}".encode()).hexdigest()[:32]

        containers = [{
            "name": c["name"], "image": c.get("image", ""), "imageID": "", "containerID": cid(c["name"]),
            "ready": True, "started": True, "restartCount": 0,
            "state": {"running": {"startedAt": now}}, "lastState": {},
        } for c in spec.get("containers") or []]
        inits = [{
            "name": c["name"], "image": c.get("image", ""), "imageID": "", "containerID": cid(c["name"]),
            "ready": True, "restartCount": 0, "lastState": {},
            "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now,
                                     "containerID": cid(c["name"])}},
        } for c in spec.get("initContainers") or []]
        st: Obj = {"phase": "Running", "conditions": conds, "podIP": ip, "podIPs": [{"ip": ip}],
                   "startTime": (pod.get("status") or {}).get("startTime") or now,
                   "containerStatuses": containers}
        if inits:
            st["initContainerStatuses"] = inits
        if sim.internal_ip:
            st["hostIP"] = sim.internal_ip
            st["hostIPs"] = [{"ip": sim.internal_ip}]
        return st

    # -- run --------------------------------------------------------------------
    async def run(self) -> None:
        sem = asyncio.Semaphore(32)

        async def register(n: SimulatedNode) -> None:
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
        tasks += [loop.create_task(self._worker()) for _ in range(self.workers)]
        try:
            await asyncio.gather(*tasks)
        finally:
            self._closed = True
            self.queue.shutdown()
            owned = tasks + list(self._tasks)
            for t in owned:
                t.cancel()
            await asyncio.gather(*owned, return_exceptions=True)


async def run_simulated(ctx: ClusterContext) -> None:
    """`k8py server --simulated-nodes N --node-capacity ...`: run N simulated nodes
    (sim-1..sim-N) on the in-process client. Their podCIDRs come from node IPAM."""
    n = ctx.options.simulated_nodes
    if n <= 0:
        return
    cluster = SimulatedCluster(ctx.client(), n, dict(ctx.options.node_capacity), ctx.clock)
    if n > SELF_ASSIGN_ABOVE:
        for node, cidr in zip(cluster.nodes, top_down_cidrs(CLUSTER_CIDR, n)):
            node.set_pod_cidr(cidr)
    await cluster.run()


CLUSTER_CIDR = "10.42.0.0/16"
SELF_ASSIGN_ABOVE = 200  # node IPAM hands out /24s: 256 of them fit in the cluster CIDR


def top_down_cidrs(cluster_cidr: str, n: int) -> list[str]:
    """Pod CIDRs for n simulated nodes, carved from the top of the cluster CIDR down
    with the smallest mask that fits (node IPAM allocates /24s from the bottom up and
    skips every block a node already uses). 1,000 nodes in a /16 get /26s (61 pods)."""
    net = ipaddress.ip_network(cluster_cidr)
    mask = 24
    while 2 ** (mask - net.prefixlen) < n + 16 and mask < 28:  # leave some for node IPAM
        mask += 1
    step = 2 ** (net.max_prefixlen - mask)
    top = int(net.broadcast_address) + 1
    return [f"{ipaddress.ip_address(top - (i + 1) * step)}/{mask}" for i in range(n)]
