"""ResourceQuota controller: keeps `status.hard` and `status.used` of each quota
(what `kubectl describe quota` shows), as Kubernetes' resourcequota controller.

Used amounts are counted in the quota's namespace: pods (not terminal), their
requests/limits of cpu, memory and ephemeral-storage (a pod asks for the larger of
its containers' sum and any one init container, plus overhead), services (and their
node ports and load balancers), configmaps, secrets, replicationcontrollers,
resourcequotas, persistentvolumeclaims and requests.storage (also per storage class),
and `count/<resource>[.<group>]` (for resources not listed here, a live count at each
sync: on changes of the quota or the counted objects, and every `resync` seconds).
Quota scopes Terminating/NotTerminating and BestEffort/NotBestEffort narrow which
pods count.
Invariants: status is written only when it changes; quantities are written in
Kubernetes' canonical form of the hard limit's format. Enforcement at admission is
the API server's (k8py does not enforce quotas yet).
"""

from __future__ import annotations

import logging
from fractions import Fraction

from k8py.api import resources
from k8py.api.podresources import effective_spec
from k8py.api.quantity import format_quantity, parse_quantity, quantity_format
from k8py.api.types import Obj
from k8py.client.client import Client
from k8py.client.events import EventRecorder
from k8py.client.informer import SharedInformerFactory, split_key
from k8py.clock import Clock
from k8py.controllers.base import Controller
from k8py.controllers.controllerutil import (
    is_deleting,
    meta,
)
from k8py.controllers.indexes import BY_NAMESPACE, ensure_indexes
from k8py.controllers.status import write_status

log = logging.getLogger(__name__)

RESYNC = 300.0
_COUNTED = {"services": "services", "configmaps": "configmaps", "secrets": "secrets",
            "replicationcontrollers": "replicationcontrollers", "resourcequotas": "resourcequotas",
            "persistentvolumeclaims": "persistentvolumeclaims"}
_POD_RESOURCES = ("cpu", "memory", "ephemeral-storage")


def pod_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def pod_amounts(pod: Obj, kind: str) -> dict[str, Fraction]:
    """A pod's requests or limits (kind "requests" or "limits") per resource, as Kubernetes'
    PodRequests/PodLimits: containers and sidecars summed, init containers as a maximum;
    during a resize, the larger of the spec and what the node allocated."""
    spec = effective_spec(pod)
    total: dict[str, Fraction] = {}
    for c in spec.get("containers") or []:
        for r, v in ((c.get("resources") or {}).get(kind) or {}).items():
            total[r] = total.get(r, Fraction(0)) + parse_quantity(v)
    sidecars: dict[str, Fraction] = {}  # restartable init containers run beside the others: summed
    init_max: dict[str, Fraction] = {}  # an init container runs beside the sidecars started before it
    for c in spec.get("initContainers") or []:
        amounts = {r: parse_quantity(v) for r, v in ((c.get("resources") or {}).get(kind) or {}).items()}
        if c.get("restartPolicy") == "Always":
            for r, q in amounts.items():
                sidecars[r] = sidecars.get(r, Fraction(0)) + q
                total[r] = total.get(r, Fraction(0)) + q
            amounts = {}
        for r in set(amounts) | set(sidecars):
            need = sidecars.get(r, Fraction(0)) + amounts.get(r, Fraction(0))
            init_max[r] = max(init_max.get(r, Fraction(0)), need)
    for r, q in init_max.items():
        total[r] = max(total.get(r, Fraction(0)), q)
    for r, v in (spec.get("overhead") or {}).items():
        total[r] = total.get(r, Fraction(0)) + parse_quantity(v)
    return total


def best_effort(pod: Obj) -> bool:
    return not pod_amounts(pod, "requests") and not pod_amounts(pod, "limits")


def scoped_pod(pod: Obj, scopes: list[str]) -> bool:
    spec = pod.get("spec") or {}
    for s in scopes:
        terminating = spec.get("activeDeadlineSeconds") is not None
        if (s == "Terminating" and not terminating) or (s == "NotTerminating" and terminating):
            return False
        if (s == "BestEffort" and not best_effort(pod)) or (s == "NotBestEffort" and best_effort(pod)):
            return False
    return True


class ResourceQuotaController(Controller):
    name = "resourcequota-controller"

    def __init__(self, client: Client, factory: SharedInformerFactory, clock: Clock,
                 recorder: EventRecorder | None = None, workers: int = 1, resync: float = RESYNC) -> None:
        super().__init__(client, factory, clock, recorder, workers)
        self.resync = resync
        self.quotas = self.informer("resourcequotas")
        ensure_indexes(self.quotas)
        self.watch(self.quotas, self.enqueue)
        self.watched = {name: self.informer(name) for name in ("pods", *sorted(_COUNTED))}
        for inf in self.watched.values():
            ensure_indexes(inf)
            self.watch(inf, self._changed, self._changed)

    def _changed(self, obj: Obj) -> None:
        for q in self.quotas.by_index(BY_NAMESPACE, meta(obj).get("namespace") or ""):
            self.enqueue(q)

    async def usage(self, ns: str, name: str, scopes: list[str]) -> Fraction | None:
        """The amount of one quota resource used in a namespace (None: not tracked)."""
        pods = [p for p in self.watched["pods"].by_index(BY_NAMESPACE, ns)
                if not pod_terminal(p) and scoped_pod(p, scopes)]
        if name in ("pods", "count/pods"):
            return Fraction(len(pods))
        for kind in ("requests", "limits"):
            for r in _POD_RESOURCES:
                if name == f"{kind}.{r}" or (kind == "requests" and name == r):
                    return sum((pod_amounts(p, kind).get(r, Fraction(0)) for p in pods), Fraction(0))
        plural = name[len("count/"):] if name.startswith("count/") else name
        if plural in _COUNTED:
            items = self.watched[plural].by_index(BY_NAMESPACE, ns)
            return Fraction(sum(1 for o in items if not is_deleting(o) or plural != "persistentvolumeclaims"))
        svcs = self.watched["services"].by_index(BY_NAMESPACE, ns)
        if name == "services.nodeports":
            return Fraction(sum(1 for s in svcs if (s.get("spec") or {}).get("type") in ("NodePort", "LoadBalancer")
                                for p in (s.get("spec") or {}).get("ports") or [] if p.get("nodePort")))
        if name == "services.loadbalancers":
            return Fraction(sum(1 for s in svcs if (s.get("spec") or {}).get("type") == "LoadBalancer"))
        claims = self.watched["persistentvolumeclaims"].by_index(BY_NAMESPACE, ns)
        if name.endswith("requests.storage") or name.endswith("persistentvolumeclaims"):
            cls = name.split(".storageclass.storage.k8s.io/")[0] if ".storageclass.storage.k8s.io/" in name else None
            mine = [c for c in claims if cls is None or (c.get("spec") or {}).get("storageClassName") == cls]
            if name.endswith("persistentvolumeclaims"):
                return Fraction(len(mine))
            return sum((parse_quantity(((c.get("spec") or {}).get("resources") or {}).get("requests", {})
                                       .get("storage", "0")) for c in mine), Fraction(0))
        if name.startswith("count/"):
            try:
                counted = resources.get(plural)
            except KeyError:
                return None
            listed = await self.client.list(counted, ns)
            return Fraction(len(listed.get("items") or []))
        return None

    async def sync(self, key: str) -> None:
        ns, name = split_key(key)
        quota = self.quotas.get(ns, name)
        if quota is None:
            return
        self.enqueue_after(key, self.resync)
        spec = quota.get("spec") or {}
        hard = dict(spec.get("hard") or {})
        scopes = list(spec.get("scopes") or [])
        used: dict[str, str] = {}
        for res, limit in hard.items():
            amount = await self.usage(ns or "", res, scopes)
            if amount is None:
                continue
            fmt = quantity_format(limit) if isinstance(limit, str) else None
            used[res] = format_quantity(amount, fmt)
        status = {"hard": hard, "used": used}
        if status != (quota.get("status") or {}):
            await write_status(self.client, "resourcequotas", quota, status, ignore_conflict=True)
