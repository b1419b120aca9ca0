"""Builders of pods and nodes for scheduler tests, and a Snapshot over plain lists."""

from __future__ import annotations

from typing import Any

from k8py.scheduler.cache import SchedulerCache
from k8py.scheduler.framework import CycleState
from k8py.scheduler.types import NodeInfo, PodInfo

Obj = dict[str, Any]


def node(name: str, cpu: str = "4", memory: str = "8Gi", pods: str = "110", labels: dict[str, str] | None = None,
         taints: list[Obj] | None = None, unschedulable: bool = False, **extra: str) -> Obj:
    alloc = {"cpu": cpu, "memory": memory, "pods": pods, **extra}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "spec": {"taints": taints or [], **({"unschedulable": True} if unschedulable else {})},
            "status": {"capacity": dict(alloc), "allocatable": alloc}}


def pod(name: str, cpu: str | None = None, memory: str | None = None, ns: str = "default",
        labels: dict[str, str] | None = None, node_name: str | None = None, **spec: Any) -> Obj:
    req: dict[str, str] = {}
    if cpu:
        req["cpu"] = cpu
    if memory:
        req["memory"] = memory
    containers = spec.pop("containers", None) or [{"name": "c", "image": "busybox",
                                                   "resources": {"requests": req} if req else {}}]
    s: Obj = {"containers": containers, **spec}
    if node_name:
        s["nodeName"] = node_name
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}", "labels": labels or {}},
            "spec": s, "status": {"phase": "Pending"}}


def cache_with(nodes: list[Obj], pods: list[Obj] = ()) -> SchedulerCache:  # type: ignore[assignment]
    c = SchedulerCache()
    for n in nodes:
        c.add_or_update_node(n)
    for p in pods:
        c.add_or_update_pod(p)
    return c


def state(c: SchedulerCache) -> CycleState:
    return CycleState(c)


def run_filter(plugin: Any, p: Obj, c: SchedulerCache, node_name: str) -> str | None:
    """The plugin's verdict for pod p on one node: None (fits) or the joined reasons."""
    st = state(c)
    pi = PodInfo.from_pod(p)
    pre = getattr(plugin, "pre_filter", None)
    if pre is not None:
        r = pre(st, pi)
        if r is False:
            return None
        if r is not True:
            return "; ".join(r.reasons)
    ni: NodeInfo | None = c.node_info(node_name)
    assert ni is not None
    res = plugin.filter(st, pi, ni)
    return None if res is None else ", ".join(res.reasons)


def run_scores(plugin: Any, p: Obj, c: SchedulerCache) -> dict[str, int]:
    st = state(c)
    pi = PodInfo.from_pod(p)
    nodes = list(c.node_infos())
    pre = getattr(plugin, "pre_score", None)
    if pre is not None and pre(st, pi, nodes) is False:
        return {}
    scores = [plugin.score(st, pi, n) for n in nodes]
    norm = getattr(plugin, "normalize", None)
    if norm is not None:
        norm(st, pi, scores)
    return {n.name: s for n, s in zip(nodes, scores)}
