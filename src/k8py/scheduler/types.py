"""The scheduler's precomputed views of pods and nodes (PodInfo, NodeInfo).

A PodInfo is computed once per pod version so filters and scores never parse
quantities or walk specs in the per-node loop. A NodeInfo aggregates what the pods
on a node (bound or assumed) request. Invariants: `NodeInfo.requested` is the sum of
`PodInfo.requests` over `NodeInfo.pods`; `used_ports`, `owner_counts` and
`priority_counts` likewise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from k8py.api.podresources import effective_spec
from k8py.api.quantity import to_int, to_milli
from k8py.api.selectors import LabelSelector, label_selector_from_dict
from k8py.api.taints import (
    TAINT_EFFECT_NO_EXECUTE,
    TAINT_EFFECT_NO_SCHEDULE,
    TAINT_EFFECT_PREFER_NO_SCHEDULE,
)
from k8py.api.types import Obj
from k8py.api.wellknown import LABEL_METADATA_NAME, NAMESPACE_DEFAULT

# Scheduler-internal defaults for containers without requests (scoring only).
DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024

CPU = "cpu"
MEMORY = "memory"
EPHEMERAL_STORAGE = "ephemeral-storage"
PODS = "pods"


@dataclass(slots=True)
class Resources:
    milli_cpu: int = 0
    memory: int = 0
    ephemeral_storage: int = 0
    pods: int = 0
    scalars: dict[str, int] = field(default_factory=dict)

    def add(self, other: Resources, sign: int = 1) -> None:
        self.milli_cpu += sign * other.milli_cpu
        self.memory += sign * other.memory
        self.ephemeral_storage += sign * other.ephemeral_storage
        for k, v in other.scalars.items():
            self.scalars[k] = self.scalars.get(k, 0) + sign * v

    def set_max(self, other: Resources) -> None:
        self.milli_cpu = max(self.milli_cpu, other.milli_cpu)
        self.memory = max(self.memory, other.memory)
        self.ephemeral_storage = max(self.ephemeral_storage, other.ephemeral_storage)
        for k, v in other.scalars.items():
            self.scalars[k] = max(self.scalars.get(k, 0), v)


def is_scalar_resource(name: str) -> bool:
    """Extended resources (vendor.com/gpu), hugepages-*: counted as integers."""
    return "/" in name or name.startswith("hugepages-")


def resources_from_list(rl: dict[str, Any] | None) -> Resources:
    r = Resources()
    for name, q in (rl or {}).items():
        if name == CPU:
            r.milli_cpu += to_milli(q)
        elif name == MEMORY:
            r.memory += to_int(q)
        elif name == EPHEMERAL_STORAGE:
            r.ephemeral_storage += to_int(q)
        elif name == PODS:
            r.pods += to_int(q)
        elif is_scalar_resource(name):
            r.scalars[name] = r.scalars.get(name, 0) + to_int(q)
    return r


def _container_requests(c: Obj) -> dict[str, Any]:
    res = c.get("resources") or {}
    req = dict(res.get("limits") or {})  # a limit without a request is the request
    req.update(res.get("requests") or {})
    return req


def _aggregate(spec: Obj, non_zero: bool) -> Resources:
    """Kubernetes' AggregateContainerRequests (KEP-753, "Resource sharing within containers"):
    the containers' requests summed, each sidecar (restartable init container) added to them;
    the i-th regular init container counts with the sidecars started before it, and the pod
    needs the larger of the two. With `non_zero`, a container without a cpu / memory request
    counts 100m / 200Mi (sidecars and init containers too)."""
    def requests(c: Obj) -> Resources:
        req = _container_requests(c)
        r = resources_from_list(req)
        if non_zero:
            r.milli_cpu = r.milli_cpu if CPU in req else DEFAULT_MILLI_CPU_REQUEST
            r.memory = r.memory if MEMORY in req else DEFAULT_MEMORY_REQUEST
        return r

    total = Resources()
    for c in spec.get("containers") or []:
        total.add(requests(c))
    sidecars = Resources()
    init_max = Resources()
    for c in spec.get("initContainers") or []:
        r = requests(c)
        if c.get("restartPolicy") == "Always":
            total.add(r)
            sidecars.add(r)
            init_max.set_max(sidecars)
        else:
            r.add(sidecars)
            init_max.set_max(r)
    total.set_max(init_max)
    return total


def pod_requests(spec: Obj) -> tuple[Resources, int, int]:
    """(requests, non-zero cpu, non-zero memory) of a pod spec, as Kubernetes computes
    them (`_aggregate`), plus spec.overhead. The non-zero values count 100m / 200Mi
    for a container without a cpu / memory request (used by scores only)."""
    total = _aggregate(spec, non_zero=False)
    nz = _aggregate(spec, non_zero=True)
    overhead = resources_from_list(spec.get("overhead"))
    total.add(overhead)
    return total, nz.milli_cpu + overhead.milli_cpu, nz.memory + overhead.memory


@dataclass(slots=True)
class AffinityTerm:
    selector: LabelSelector
    namespaces: frozenset[str]
    namespace_selector: LabelSelector | None
    topology_key: str
    weight: int = 0

    def matches(self, pod: PodInfo) -> bool:
        if pod.namespace not in self.namespaces and not (
                # without a namespace informer only the label every namespace carries is known
                self.namespace_selector is not None and self.namespace_selector.matches(
                    {LABEL_METADATA_NAME: pod.namespace})):
            return False
        return self.selector.matches(pod.labels)


def _affinity_terms(pod_ns: str, terms: list[Obj] | None, weighted: bool = False) -> list[AffinityTerm]:
    out: list[AffinityTerm] = []
    for t in terms or []:
        weight = 0
        if weighted:
            weight = int(t.get("weight", 0))
            t = t.get("podAffinityTerm") or {}
        nss = t.get("namespaces") or []
        ns_sel_d = t.get("namespaceSelector")
        namespaces = frozenset(nss) if (nss or ns_sel_d is not None) else frozenset([pod_ns])
        ns_sel = label_selector_from_dict(ns_sel_d) if ns_sel_d is not None else None
        out.append(AffinityTerm(label_selector_from_dict(t.get("labelSelector")), namespaces,
                                ns_sel, str(t.get("topologyKey", "")), weight))
    return out


@dataclass(slots=True, eq=False)
class PodInfo:
    pod: Obj
    key: str
    uid: str
    namespace: str
    name: str
    labels: dict[str, str]
    node_name: str
    priority: int
    requests: Resources
    nonzero_cpu: int
    nonzero_memory: int
    host_ports: list[tuple[str, str, int]]
    tolerations: list[Obj]
    node_selector: dict[str, str]
    node_affinity: Obj | None
    required_affinity: list[AffinityTerm]
    required_anti_affinity: list[AffinityTerm]
    preferred_affinity: list[AffinityTerm]
    preferred_anti_affinity: list[AffinityTerm]
    owner_uid: str
    pvcs: list[str]

    @classmethod
    def from_pod(cls, pod: Obj) -> PodInfo:
        md = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        ns = md.get("namespace") or NAMESPACE_DEFAULT
        req, nz_cpu, nz_mem = pod_requests(effective_spec(pod))  # a resize in progress counts at its max
        ports: list[tuple[str, str, int]] = []
        for c in spec.get("containers") or []:
            for p in c.get("ports") or []:
                hp = p.get("hostPort")
                if hp:
                    ports.append((p.get("hostIP") or "0.0.0.0", p.get("protocol") or "TCP", int(hp)))
        aff = spec.get("affinity") or {}
        pa = aff.get("podAffinity") or {}
        paa = aff.get("podAntiAffinity") or {}
        owner = ""
        for ref in md.get("ownerReferences") or []:
            if ref.get("controller"):
                owner = str(ref.get("uid") or ref.get("name"))
                break
        pvcs = [v["persistentVolumeClaim"]["claimName"] for v in spec.get("volumes") or []
                if isinstance(v.get("persistentVolumeClaim"), dict)]
        return cls(
            pod=pod, key=f"{ns}/{md.get('name')}", uid=str(md.get("uid") or ""), namespace=ns,
            name=str(md.get("name")), labels=md.get("labels") or {},
            node_name=spec.get("nodeName") or "", priority=int(spec.get("priority") or 0),
            requests=req, nonzero_cpu=nz_cpu, nonzero_memory=nz_mem, host_ports=ports,
            tolerations=spec.get("tolerations") or [], node_selector=spec.get("nodeSelector") or {},
            node_affinity=(aff.get("nodeAffinity") or None),
            required_affinity=_affinity_terms(ns, pa.get("requiredDuringSchedulingIgnoredDuringExecution")),
            required_anti_affinity=_affinity_terms(ns, paa.get("requiredDuringSchedulingIgnoredDuringExecution")),
            preferred_affinity=_affinity_terms(ns, pa.get("preferredDuringSchedulingIgnoredDuringExecution"), True),
            preferred_anti_affinity=_affinity_terms(ns, paa.get("preferredDuringSchedulingIgnoredDuringExecution"),
                                                    True),
            owner_uid=owner, pvcs=pvcs,
        )


@dataclass(slots=True, eq=False)
class NodeInfo:
    name: str
    node: Obj
    labels: dict[str, str]
    allocatable: Resources
    unschedulable: bool
    taints: list[Obj]  # NoSchedule and NoExecute taints (the ones filters look at)
    prefer_no_schedule: list[Obj]
    requested: Resources = field(default_factory=Resources)
    nonzero_cpu: int = 0
    nonzero_memory: int = 0
    pods: dict[str, PodInfo] = field(default_factory=dict)
    used_ports: dict[tuple[str, int], set[str]] = field(default_factory=dict)  # (proto, port) -> ips
    owner_counts: dict[str, int] = field(default_factory=dict)
    plain: bool = True  # schedulable and untainted: node-only filters pass at once
    anti_affinity_pods: int = 0  # pods here with required anti-affinity terms
    affinity_pods: int = 0  # pods here with any (anti-)affinity terms
    priority_counts: dict[int, int] = field(default_factory=dict)  # priority -> pods here (preemption)

    @classmethod
    def from_node(cls, node: Obj) -> NodeInfo:
        ni = cls(name="", node={}, labels={}, allocatable=Resources(), unschedulable=False,
                 taints=[], prefer_no_schedule=[])
        ni.set_node(node)
        return ni

    def set_node(self, node: Obj) -> None:
        md = node.get("metadata") or {}
        spec = node.get("spec") or {}
        self.name = str(md.get("name"))
        self.node = node
        self.labels = md.get("labels") or {}
        self.allocatable = resources_from_list((node.get("status") or {}).get("allocatable"))
        self.unschedulable = bool(spec.get("unschedulable"))
        taints = spec.get("taints") or []
        self.taints = [t for t in taints if t.get("effect") in (TAINT_EFFECT_NO_SCHEDULE, TAINT_EFFECT_NO_EXECUTE)]
        self.prefer_no_schedule = [t for t in taints if t.get("effect") == TAINT_EFFECT_PREFER_NO_SCHEDULE]
        self.plain = not self.unschedulable and not self.taints

    def add_pod(self, p: PodInfo) -> None:
        self.pods[p.key] = p
        self.requested.add(p.requests)
        self.requested.pods += 1
        self.nonzero_cpu += p.nonzero_cpu
        self.nonzero_memory += p.nonzero_memory
        for ip, proto, port in p.host_ports:
            self.used_ports.setdefault((proto, port), set()).add(ip)
        if p.owner_uid:
            self.owner_counts[p.owner_uid] = self.owner_counts.get(p.owner_uid, 0) + 1
        self.priority_counts[p.priority] = self.priority_counts.get(p.priority, 0) + 1
        if p.required_anti_affinity:
            self.anti_affinity_pods += 1
        if p.required_affinity or p.required_anti_affinity or p.preferred_affinity or p.preferred_anti_affinity:
            self.affinity_pods += 1

    def remove_pod(self, key: str) -> PodInfo | None:
        p = self.pods.pop(key, None)
        if p is None:
            return None
        self.requested.add(p.requests, -1)
        self.requested.pods -= 1
        self.nonzero_cpu -= p.nonzero_cpu
        self.nonzero_memory -= p.nonzero_memory
        for ip, proto, port in p.host_ports:
            ips = self.used_ports.get((proto, port))
            if ips is not None:
                ips.discard(ip)
                if not ips:
                    del self.used_ports[(proto, port)]
        if p.owner_uid:
            n = self.owner_counts.get(p.owner_uid, 0) - 1
            if n > 0:
                self.owner_counts[p.owner_uid] = n
            else:
                self.owner_counts.pop(p.owner_uid, None)
        left = self.priority_counts.get(p.priority, 0) - 1
        if left > 0:
            self.priority_counts[p.priority] = left
        else:
            self.priority_counts.pop(p.priority, None)
        if p.required_anti_affinity:
            self.anti_affinity_pods -= 1
        if p.required_affinity or p.required_anti_affinity or p.preferred_affinity or p.preferred_anti_affinity:
            self.affinity_pods -= 1
        return p
