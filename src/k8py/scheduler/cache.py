"""The scheduler cache: NodeInfos with the pods bound to them and the pods the
scheduler has assumed (decided, binding in flight), so the next pod is scheduled
against current usage without waiting for the watch round trip.

Invariants:
- A pod key is accounted on at most one node at a time.
- An assumed pod stays accounted until the watch confirms it (its nodeName is set: it
  is then bound, no longer assumed), `forget` drops it (binding failed), the pod is
  deleted, or it expires: once its binding finished (`finish_binding`), an assumption
  the watch has not confirmed by the deadline is dropped by `expire_assumed`.
- Terminal pods (Succeeded/Failed) use no resources.
The cache also answers the Snapshot questions plugins ask (PVCs, PVs, classes, disruption
budgets) from informers given to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from k8py.api.types import Obj
from k8py.scheduler.types import NodeInfo, PodInfo

Lookup = Callable[[str], Obj | None]


def is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


class SchedulerCache:
    def __init__(self) -> None:
        self._nodes: dict[str, NodeInfo] = {}
        self._node_list: list[NodeInfo] = []
        self._pod_node: dict[str, str] = {}  # pod key -> node name it is accounted on
        self._assumed: set[str] = set()
        self._deadlines: dict[str, float] = {}  # assumed pods whose binding finished -> expiry (monotonic)
        self._pending_pods: dict[str, dict[str, PodInfo]] = {}  # pods bound to unknown nodes
        self._with_affinity = 0
        self.pvc_lookup: Lookup = lambda key: None
        self.pv_lookup: Lookup = lambda name: None
        self.sc_lookup: Lookup = lambda name: None
        self.pdb_list: Callable[[], Sequence[Obj]] = lambda: ()

    # -- nodes ----------------------------------------------------------------
    def add_or_update_node(self, node: Obj) -> NodeInfo:
        name = node["metadata"]["name"]
        ni = self._nodes.get(name)
        if ni is None:
            ni = NodeInfo.from_node(node)
            self._nodes[name] = ni
            self._node_list.append(ni)
            for p in self._pending_pods.pop(name, {}).values():
                self._account(ni, p)
        else:
            ni.set_node(node)
        return ni

    def remove_node(self, name: str) -> None:
        ni = self._nodes.pop(name, None)
        if ni is None:
            return
        self._node_list = [n for n in self._node_list if n.name != name]
        if ni.pods:  # keep the pods accounted, in case the node comes back
            self._pending_pods[name] = dict(ni.pods)
        for p in ni.pods.values():
            if _has_affinity(p):
                self._with_affinity -= 1

    # -- pods -----------------------------------------------------------------
    def _account(self, ni: NodeInfo, p: PodInfo) -> None:
        ni.add_pod(p)
        if _has_affinity(p):
            self._with_affinity += 1

    def _unaccount(self, key: str) -> PodInfo | None:
        node = self._pod_node.pop(key, None)
        if node is None:
            return None
        ni = self._nodes.get(node)
        if ni is not None:
            p = ni.remove_pod(key)
            if p is not None and _has_affinity(p):
                self._with_affinity -= 1
            return p
        pend = self._pending_pods.get(node)
        return pend.pop(key, None) if pend else None

    def _place(self, p: PodInfo, node: str) -> None:
        self._pod_node[p.key] = node
        ni = self._nodes.get(node)
        if ni is not None:
            self._account(ni, p)
        else:
            self._pending_pods.setdefault(node, {})[p.key] = p

    def assume(self, p: PodInfo, node: str) -> None:
        self._unaccount(p.key)
        self._place(p, node)
        self._assumed.add(p.key)

    def forget(self, key: str) -> None:
        if key in self._assumed:
            self._assumed.discard(key)
            self._deadlines.pop(key, None)
            self._unaccount(key)

    def finish_binding(self, key: str, deadline: float) -> None:
        """The pod's binding was accepted: expire the assumption at `deadline` unless the
        watch confirms it first."""
        if key in self._assumed:
            self._deadlines[key] = deadline

    def expire_assumed(self, now: float) -> list[str]:
        """Drop the assumptions whose deadline passed (their resources are free again);
        returns their keys."""
        expired = [k for k, d in self._deadlines.items() if d <= now or k not in self._assumed]
        out = []
        for key in expired:
            del self._deadlines[key]
            if key in self._assumed:
                self.forget(key)
                out.append(key)
        return out

    def is_assumed(self, key: str) -> bool:
        return key in self._assumed

    def add_or_update_pod(self, pod: Obj) -> None:
        """A pod seen by the informer with spec.nodeName set."""
        spec = pod.get("spec") or {}
        node = spec.get("nodeName")
        md = pod["metadata"]
        key = f"{md.get('namespace') or 'default'}/{md['name']}"
        if not node or is_terminal(pod):
            self._assumed.discard(key)
            self._unaccount(key)
            return
        current = self._pod_node.get(key)
        if current == node:
            ni = self._nodes.get(node)
            existing = ni.pods.get(key) if ni is not None else None
            self._assumed.discard(key)
            if existing is not None and existing.pod.get("spec") is spec \
                    and existing.labels == (md.get("labels") or {}):
                return
            if existing is not None and existing.labels == (md.get("labels") or {}) \
                    and existing.uid == md.get("uid") and existing.pod.get("spec") == spec:
                existing.pod = pod  # status-only change: keep the accounting
                return
        self._assumed.discard(key)
        self._unaccount(key)
        self._place(PodInfo.from_pod(pod), node)

    def remove_pod(self, key: str) -> PodInfo | None:
        self._assumed.discard(key)
        return self._unaccount(key)

    def node_of(self, key: str) -> str | None:
        return self._pod_node.get(key)

    # -- Snapshot -------------------------------------------------------------
    def node_infos(self) -> Sequence[NodeInfo]:
        return self._node_list

    def node_info(self, name: str) -> NodeInfo | None:
        return self._nodes.get(name)

    def pods_with_affinity(self) -> int:
        return self._with_affinity

    def pvc(self, namespace: str, name: str) -> Obj | None:
        return self.pvc_lookup(f"{namespace}/{name}")

    def pv(self, name: str) -> Obj | None:
        return self.pv_lookup(name)

    def storage_class(self, name: str) -> Obj | None:
        return self.sc_lookup(name)

    def pdbs(self) -> Sequence[Obj]:
        return self.pdb_list()

    def __len__(self) -> int:
        return len(self._node_list)


def _has_affinity(p: PodInfo) -> bool:
    return bool(p.required_affinity or p.required_anti_affinity
                or p.preferred_affinity or p.preferred_anti_affinity)
