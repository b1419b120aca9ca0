"""Endpoints controller: one core/v1 Endpoints object per Service with a selector,
listing the IPs of the pods the selector matches.

Ready pods go to `addresses`, others to `notReadyAddresses` (all to `addresses`
when the service has publishNotReadyAddresses). Each address carries nodeName and
a targetRef to its pod; ports are resolved per pod (a numeric targetPort as is, a
named one through the pod's container ports; a pod without the named port is left
out of that port's subset). Subsets are packed as Kubernetes' RepackSubsets does
(one subset per distinct port set, addresses sorted by IP). Services without a
selector (such as `kubernetes`, whose endpoints the API server writes) are left
alone. Invariants: the Endpoints object is written only when it would change, with
a compare-and-swap PUT; pods without an IP, terminal pods and terminating pods
(unless publishNotReadyAddresses) are not listed.
"""

from __future__ import annotations

import copy
import ipaddress
import logging
from typing import Any

from k8py.api.types import Obj
from k8py.api.wellknown import LABEL_HEADLESS_SERVICE
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
)
from k8py.controllers.indexes import BY_NAMESPACE, ensure_indexes

log = logging.getLogger(__name__)


# ------------------------------------------------------------------ shared helpers


def service_selects(svc: Obj, pod: Obj) -> bool:
    sel = (svc.get("spec") or {}).get("selector")
    if not sel:
        return False
    labels = meta(pod).get("labels") or {}
    return all(labels.get(k) == v for k, v in sel.items())


def pod_ips(pod: Obj) -> list[str]:
    st = pod.get("status") or {}
    ips = [p.get("ip") for p in st.get("podIPs") or [] if p.get("ip")]
    if not ips and st.get("podIP"):
        ips = [st["podIP"]]
    return ips


def should_be_in_endpoints(pod: Obj, include_terminating: bool) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        return False
    if not pod_ips(pod):
        return False
    if not include_terminating and is_deleting(pod):
        return False
    return True


def find_port(pod: Obj, svc_port: Obj) -> int | None:
    """The pod port a service port targets (podutil.FindPort)."""
    target = svc_port.get("targetPort")
    if target is None or target == "":
        return int(svc_port["port"])
    if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
        return int(target)
    proto = svc_port.get("protocol") or "TCP"
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name") == target and (p.get("protocol") or "TCP") == proto:
                return int(p["containerPort"])
    return None


def endpoint_port(svc_port: Obj, port: int) -> Obj:
    ep: Obj = {"port": port, "protocol": svc_port.get("protocol") or "TCP"}
    if svc_port.get("name"):
        ep["name"] = svc_port["name"]
    if svc_port.get("appProtocol"):
        ep["appProtocol"] = svc_port["appProtocol"]
    return ep


def is_headless(svc: Obj) -> bool:
    return (svc.get("spec") or {}).get("clusterIP") == "None"


def _ip_key(ip: str) -> tuple[int, Any]:
    try:
        a = ipaddress.ip_address(ip)
        return (a.version, int(a))
    except ValueError:
        return (9, ip)


def repack_subsets(entries: list[tuple[Obj, bool, list[Obj]]]) -> list[Obj]:
    """(address, ready, ports) triples -> subsets grouped by port set, sorted."""
    groups: dict[str, tuple[list[Obj], dict[str, Obj], dict[str, Obj]]] = {}
    for addr, ready, ports in entries:
        ports_sorted = sorted(ports, key=lambda p: (p.get("name", ""), p["port"], p["protocol"]))
        gk = repr([(p.get("name", ""), p["port"], p["protocol"], p.get("appProtocol", "")) for p in ports_sorted])
        g = groups.setdefault(gk, (ports_sorted, {}, {}))
        (g[1] if ready else g[2])[addr["ip"]] = addr
    subsets = []
    for ports_sorted, ready_addrs, not_ready in groups.values():
        s: Obj = {}
        if ready_addrs:
            s["addresses"] = [ready_addrs[k] for k in sorted(ready_addrs, key=_ip_key)]
        if not_ready:
            s["notReadyAddresses"] = [not_ready[k] for k in sorted(not_ready, key=_ip_key)]
        if ports_sorted:
            s["ports"] = ports_sorted
        subsets.append(s)
    subsets.sort(key=lambda s: repr(s.get("ports", [])))
    return subsets


# ------------------------------------------------------------------ controller


class EndpointsController(Controller):
    name = "endpoint-controller"

    def __init__(self, client: Client, factory: SharedInformerFactory, clock: Clock,
                 recorder: EventRecorder | None = None, workers: int = 2) -> None:
        super().__init__(client, factory, clock, recorder, workers)
        self.services = self.informer("services")
        self.pods = self.informer("pods")
        self.endpoints = self.informer("endpoints")
        ensure_indexes(self.services)
        ensure_indexes(self.pods)
        self.watch(self.services, self.enqueue, self.enqueue)
        self.pods.add_event_handler(self._pod_changed, self._pod_updated, self._pod_changed)
        self.endpoints.add_event_handler(None, lambda o, n: self._endpoints_changed(n), self._endpoints_changed)

    def _services_for(self, pod: Obj) -> list[Obj]:
        return [s for s in self.services.by_index(BY_NAMESPACE, meta(pod).get("namespace") or "")
                if service_selects(s, pod)]

    def _pod_changed(self, pod: Obj) -> None:
        for s in self._services_for(pod):
            self.enqueue(s)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        keys = {key_of(s) for s in self._services_for(old)} | {key_of(s) for s in self._services_for(new)}
        for k in keys:
            self.enqueue(k)

    def _endpoints_changed(self, ep: Obj) -> None:
        svc = self.services.get(meta(ep).get("namespace"), meta(ep).get("name", ""))
        if svc is not None:
            self.enqueue(svc)

    def desired_subsets(self, svc: Obj) -> list[Obj]:
        spec = svc.get("spec") or {}
        publish = bool(spec.get("publishNotReadyAddresses"))
        entries: list[tuple[Obj, bool, list[Obj]]] = []
        ns = meta(svc).get("namespace") or ""
        for pod in self.pods.by_index(BY_NAMESPACE, ns):
            if not service_selects(svc, pod) or not should_be_in_endpoints(pod, publish):
                continue
            pmd = meta(pod)
            pspec = pod.get("spec") or {}
            ready = publish or is_pod_ready(pod)
            for ip in pod_ips(pod)[:1]:
                addr: Obj = {"ip": ip}
                if pspec.get("hostname") and pspec.get("subdomain") == meta(svc).get("name"):
                    addr["hostname"] = pspec["hostname"]
                if pspec.get("nodeName"):
                    addr["nodeName"] = pspec["nodeName"]
                addr["targetRef"] = {"kind": "Pod", "namespace": pmd.get("namespace"),
                                     "name": pmd.get("name"), "uid": pmd.get("uid")}
                ports = spec.get("ports") or []
                if not ports:
                    if is_headless(svc):
                        entries.append((addr, ready, []))
                    continue
                for sp in ports:
                    port = find_port(pod, sp)
                    if port is None:
                        continue
                    entries.append((addr, ready, [endpoint_port(sp, port)]))
        return repack_subsets(entries)

    async def sync(self, key: str) -> None:
        ns, name = split_key(key)
        svc = self.services.get(ns, name)
        if svc is None:
            ep = self.endpoints.get(ns, name)
            if ep is not None:
                try:
                    await self.client.delete("endpoints", name, ns)
                except ApiError as e:
                    if not e.not_found:
                        raise
            return
        if not (svc.get("spec") or {}).get("selector"):
            return
        subsets = self.desired_subsets(svc)
        labels = dict(meta(svc).get("labels") or {})
        if is_headless(svc):
            labels[LABEL_HEADLESS_SERVICE] = ""
        current = self.endpoints.get(ns, name)
        if current is None:
            new: Obj = {"apiVersion": "v1", "kind": "Endpoints",
                        "metadata": {"name": name, "namespace": ns, "labels": labels}}
            if subsets:
                new["subsets"] = subsets
            try:
                await self.client.create("endpoints", new, ns)
            except ApiError as e:
                if not e.already_exists:
                    raise
                # a stale cache: write over the live object
                live = await self.client.get("endpoints", name, ns)
                await self._update(live, labels, subsets)
            return
        if (current.get("subsets") or []) == subsets and (meta(current).get("labels") or {}) == labels:
            return
        await self._update(current, labels, subsets)

    async def _update(self, current: Obj, labels: dict[str, str], subsets: list[Obj]) -> None:
        ep = copy.deepcopy(current)
        ep["metadata"]["labels"] = labels
        if subsets:
            ep["subsets"] = subsets
        else:
            ep.pop("subsets", None)
        await self.client.update("endpoints", ep)
