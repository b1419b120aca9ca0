"""EndpointSlice controller: discovery.k8s.io/v1 EndpointSlices for each Service
with a selector.

Endpoints are grouped by their resolved port set and address family; each group
fills slices of at most `max_endpoints` endpoints. Slices carry the labels
`kubernetes.io/service-name` and `endpointslice.kubernetes.io/managed-by:
endpointslice-controller.k8s.io`, a controller ownerReference to the Service, and
per-endpoint conditions (ready: ready and not terminating, or any pod when
publishNotReadyAddresses; serving: ready regardless of termination; terminating).
Terminating pods are listed (not ready), as Kubernetes does. A selector service with
no endpoints keeps one empty slice with its ports. Invariants: only slices with our
managed-by label for the service are touched; a slice is written only when it
changes (compare-and-swap PUT); surplus slices are deleted.
"""

from __future__ import annotations

import copy
import ipaddress
import logging

from k8py.api.types import Obj
from k8py.api.wellknown import (
    LABEL_HEADLESS_SERVICE,
    LABEL_MANAGED_BY,
    LABEL_SERVICE_NAME,
)
from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.client.events import EventRecorder
from k8py.client.informer import SharedInformerFactory, split_key
from k8py.clock import Clock
from k8py.controllers.base import Controller
from k8py.controllers.controllerutil import (
    is_deleting,
    is_pod_ready,
    key_of,
    meta,
    new_controller_ref,
    semantic_equal,
)
from k8py.controllers.endpoints import (
    endpoint_port,
    find_port,
    is_headless,
    pod_ips,
    service_selects,
    should_be_in_endpoints,
)
from k8py.controllers.indexes import BY_NAMESPACE, ensure_indexes

log = logging.getLogger(__name__)

MANAGED_BY = "endpointslice-controller.k8s.io"
MAX_ENDPOINTS_PER_SLICE = 100
PENDING_TTL = 30.0  # how long a created slice may stay unseen before we stop waiting for it
ZONE_LABEL = "topology.kubernetes.io/zone"


def _family(ip: str) -> str:
    try:
        return "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"
    except ValueError:
        return "FQDN"


def _service_index(obj: Obj) -> list[str]:
    labels = meta(obj).get("labels") or {}
    if labels.get(LABEL_MANAGED_BY) != MANAGED_BY or not labels.get(LABEL_SERVICE_NAME):
        return []
    return [f"{meta(obj).get('namespace')}/{labels[LABEL_SERVICE_NAME]}"]


class EndpointSliceController(Controller):
    name = "endpointslice-controller"

    def __init__(self, client: Client, factory: SharedInformerFactory, clock: Clock,
                 recorder: EventRecorder | None = None, workers: int = 2,
                 max_endpoints: int = MAX_ENDPOINTS_PER_SLICE) -> None:
        super().__init__(client, factory, clock, recorder, workers)
        self.max_endpoints = max_endpoints
        # service key -> (slices created but not yet seen in the cache, when)
        self._created: dict[str, tuple[set[str], float]] = {}
        self.services = self.informer("services")
        self.pods = self.informer("pods")
        self.slices = self.informer("endpointslices")
        self.nodes = self.informer("nodes")
        ensure_indexes(self.services)
        ensure_indexes(self.pods)
        self.slices.add_index("controllers.service", _service_index)
        self.watch(self.services, self.enqueue, self.enqueue)
        self.pods.add_event_handler(self._pod_changed, self._pod_updated, self._pod_changed)
        self.watch(self.slices, self._slice_changed, self._slice_changed)

    def _pod_changed(self, pod: Obj) -> None:
        for s in self.services.by_index(BY_NAMESPACE, meta(pod).get("namespace") or ""):
            if service_selects(s, pod):
                self.enqueue(s)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        keys = set()
        for s in self.services.by_index(BY_NAMESPACE, meta(new).get("namespace") or ""):
            if service_selects(s, old) or service_selects(s, new):
                keys.add(key_of(s))
        for k in keys:
            self.enqueue(k)

    def _slice_changed(self, sl: Obj) -> None:
        for k in _service_index(sl):
            self.enqueue(k)

    def desired_groups(self, svc: Obj) -> dict[str, tuple[str, list[Obj], list[Obj]]]:
        """group key -> (addressType, ports, endpoints)."""
        spec = svc.get("spec") or {}
        publish = bool(spec.get("publishNotReadyAddresses"))
        groups: dict[str, tuple[str, list[Obj], list[Obj]]] = {}
        for pod in self.pods.by_index(BY_NAMESPACE, meta(svc).get("namespace") or ""):
            if not service_selects(svc, pod) or not should_be_in_endpoints(pod, True):
                continue
            ips = pod_ips(pod)
            ports = []
            for sp in spec.get("ports") or []:
                port = find_port(pod, sp)
                if port is not None:
                    ports.append(endpoint_port(sp, port))
            if spec.get("ports") and not ports:
                continue
            ports.sort(key=lambda p: (p.get("name", ""), p["port"]))
            terminating = is_deleting(pod)
            ready = is_pod_ready(pod)
            pmd = meta(pod)
            pspec = pod.get("spec") or {}
            for ip in ips:
                fam = _family(ip)
                ep: Obj = {
                    "addresses": [ip],
                    "conditions": {"ready": publish or (ready and not terminating),
                                   "serving": publish or ready, "terminating": terminating},
                    "targetRef": {"kind": "Pod", "namespace": pmd.get("namespace"), "name": pmd.get("name"),
                                  "uid": pmd.get("uid")},
                }
                if pspec.get("nodeName"):
                    ep["nodeName"] = pspec["nodeName"]
                    node = self.nodes.get(None, pspec["nodeName"])
                    zone = (meta(node).get("labels") or {}).get(ZONE_LABEL) if node else None
                    if zone:
                        ep["zone"] = zone
                if pspec.get("hostname") and pspec.get("subdomain") == meta(svc).get("name"):
                    ep["hostname"] = pspec["hostname"]
                gk = fam + repr(ports)
                groups.setdefault(gk, (fam, ports, []))[2].append(ep)
        for _, _, eps in groups.values():
            eps.sort(key=lambda e: (e["targetRef"]["name"], e["addresses"][0]))
        if not groups:  # a placeholder slice, as Kubernetes keeps: no endpoints, no ports
            fam = "IPv6" if ":" in (spec.get("clusterIP") or "") else "IPv4"
            groups[fam] = (fam, [], [])
        return groups

    async def sync(self, key: str) -> None:
        ns, name = split_key(key)
        svc = self.services.get(ns, name)
        existing: list[Obj] = sorted(self.slices.by_index("controllers.service", key), key=lambda s: meta(s)["name"])
        pending = self._created.get(key)
        if pending:
            names, since = pending
            names -= {meta(s)["name"] for s in existing}
            if names and self.clock.monotonic() - since < PENDING_TTL:
                self.enqueue_after(key, PENDING_TTL)
                return  # the informer has not seen our creations yet; its add event requeues us
            del self._created[key]
        if svc is None or not (svc.get("spec") or {}).get("selector") or \
                (svc.get("spec") or {}).get("type") == "ExternalName":  # those get no endpoints
            for sl in existing:
                await self._delete(sl)
            return
        labels = {k: v for k, v in (meta(svc).get("labels") or {}).items()
                  if k not in (LABEL_SERVICE_NAME, LABEL_MANAGED_BY)}
        labels[LABEL_SERVICE_NAME] = name
        labels[LABEL_MANAGED_BY] = MANAGED_BY
        if is_headless(svc):
            labels[LABEL_HEADLESS_SERVICE] = ""
        desired: list[tuple[str, list[Obj], list[Obj]]] = []
        for fam, ports, eps in self.desired_groups(svc).values():
            if not eps:
                desired.append((fam, ports, []))
            for i in range(0, len(eps), self.max_endpoints):
                desired.append((fam, ports, eps[i:i + self.max_endpoints]))
        unused = [s for s in existing if meta(s).get("uid")]
        owner_ref = new_controller_ref(svc, "v1", "Service")
        for fam, ports, eps in desired:
            # reuse a slice with the same address type and ports if there is one
            match = next((s for s in unused if s.get("addressType") == fam
                          and semantic_equal(s.get("ports") or [], ports)), None)
            if match is None:
                match = next((s for s in unused if s.get("addressType") == fam), None)
            body: Obj = {"addressType": fam, "endpoints": eps, "ports": ports}
            if match is not None:
                unused.remove(match)
                if (semantic_equal(match.get("endpoints") or [], eps)
                        and semantic_equal(match.get("ports") or [], ports)
                        and (meta(match).get("labels") or {}) == labels):
                    continue
                sl = copy.deepcopy(match)
                sl.update(body)
                sl["metadata"]["labels"] = labels
                sl["metadata"]["ownerReferences"] = [owner_ref]
                await self.client.update("endpointslices", sl)
                continue
            sl = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                  "metadata": {"generateName": f"{name}-", "namespace": ns, "labels": labels,
                               "ownerReferences": [owner_ref]},
                  **body}
            created = await self.client.create("endpointslices", sl, ns)
            self._created.setdefault(key, (set(), self.clock.monotonic()))[0].add(meta(created)["name"])
        for sl in unused:
            await self._delete(sl)

    async def _delete(self, sl: Obj) -> None:
        try:
            await self.client.delete("endpointslices", meta(sl)["name"], meta(sl).get("namespace"))
        except ApiError as e:
            if not e.not_found:
                raise
