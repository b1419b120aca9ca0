"""One simulated node: a Node that says it is simulated (label `k8py.io/simulated=true` and
annotation `k8py.io/simulated`), reports capacity, conditions and nodeInfo, and renews
its Lease in kube-node-lease every 10 s; the Engine (engine.py) marks the pods bound to
it Running (pod IP from the node's podCIDR, the usual conditions and container
statuses) and finishes the deletion of those that are terminating.

Heartbeats can be stopped and restarted from the API, which is how students and
tests make a node go NotReady:

    kubectl annotate node sim-1 k8py.io/simulated-heartbeat=paused --overwrite
    kubectl annotate node sim-1 k8py.io/simulated-heartbeat=running --overwrite

(or `pause()` / `resume()` in Python). A paused node neither renews its Lease nor
posts status nor touches its pods, like a kubelet that lost the network.

Addresses: a Hostname address always; an InternalIP only from the documentation
ranges (addresses.py) when the cluster hands one out.
Invariant: all waiting is on the injected Clock.
"""

from __future__ import annotations

import hashlib
import ipaddress

from k8py.api.types import Obj
from k8py.api.wellknown import (
    ANNOTATION_SIMULATED,
    ANNOTATION_SIMULATED_HEARTBEAT,
    LABEL_SIMULATED,
)
from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.client.nodelease import (
    LEASE_DURATION_SECONDS,
    RENEW_INTERVAL_SECONDS,
    NodeLease,
)
from k8py.clock import Clock, RealClock, rfc3339
from k8py.simnode.addresses import PodIPs
from k8py.simnode.engine import Engine
from k8py.simnode.names import (
    HEARTBEAT_PAUSED,
    HEARTBEAT_RUNNING,
    KUBELET_VERSION,
    RUNTIME_VERSION,
    SIMULATED_NOTE,
)

STATUS_REPORT_INTERVAL = 300.0  # Kubernetes' nodeStatusReportFrequency when leases are on
DEFAULT_CAPACITY = {"cpu": "4", "memory": "8Gi", "pods": "110", "ephemeral-storage": "100Gi"}


def _condition(type_: str, status: str, reason: str, message: str, now: str, transition: str) -> Obj:
    return {"type": type_, "status": status, "lastHeartbeatTime": now, "lastTransitionTime": transition,
            "reason": reason, "message": message}


def _node_info(name: str, arch: str) -> Obj:
    h = hashlib.sha256(name.encode()).hexdigest()
    return {
        "machineID": h[:32], "systemUUID": f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}",
        "bootID": h[32:64], "kernelVersion": "k8py-simulated", "osImage": "k8py simulated node",
        "containerRuntimeVersion": RUNTIME_VERSION, "kubeletVersion": KUBELET_VERSION,
        "kubeProxyVersion": KUBELET_VERSION, "operatingSystem": "linux", "architecture": arch,
    }


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
        self.last_status_post = 0.0  # Clock monotonic time of the last status posted
        self._engine: Engine | None = None

    def bind(self, engine: Engine) -> None:
        """`engine` drives this node from now on (pause and resume go through it)."""
        self._engine = engine

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
        labels = {"kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux",
                  "kubernetes.io/arch": self.arch, "beta.kubernetes.io/os": "linux",
                  "beta.kubernetes.io/arch": self.arch, LABEL_SIMULATED: "true", **self.extra_labels}
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
                                         "node.alpha.kubernetes.io/ttl": "0"}},
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

        addresses = []
        if self.internal_ip:
            addresses.append({"type": "InternalIP", "address": self.internal_ip})
        addresses.append({"type": "Hostname", "address": self.name})
        return {
            "capacity": dict(self.capacity),
            "allocatable": dict(self.capacity),
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory",
                     "kubelet has sufficient memory available"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": addresses,
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": _node_info(self.name, self.arch),
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
            await self._adopt(await self.client.get("nodes", self.name))
        self.lease.node_uid = self.uid
        self.last_status_post = self.clock.monotonic()

    async def _adopt(self, current: Obj) -> None:
        """The Node exists (a restart): take it over, keeping its pause state and podCIDR."""
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
                self.last_status_post = self.clock.monotonic()
                return
            except ApiError as e:
                if not e.conflict:
                    raise
        await self.client.patch("nodes", self.name, {"status": st}, subresource="status")
        self.last_status_post = self.clock.monotonic()

    async def run(self) -> None:
        """Run this one node until cancelled (its own informers, filtered to it)."""
        await Engine(self.client, self.clock, [self], single=True).run()
