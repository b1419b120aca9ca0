"""What the service dataplane must do, computed from Services and EndpointSlices.

One `ServicePort` per (service, port): its virtual addresses (ClusterIP, the
LoadBalancer ingress IPs, the NodePort) and the endpoints it balances over. Pure
data: no kernel state here. Invariants: only IPv4 services with an allocated
ClusterIP (or a LoadBalancer/NodePort) are included; headless and ExternalName
services are DNS-only and never appear; endpoints are sorted and de-duplicated so
the same inputs always give the same model.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from k8py.api.types import Obj


@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: int
    node: str
    ready: bool = True
    serving: bool = True
    terminating: bool = False


@dataclass(frozen=True)
class ServicePort:
    namespace: str
    name: str
    port_name: str
    protocol: str  # tcp | udp | sctp (nft spelling)
    port: int
    cluster_ip: str
    node_port: int = 0
    load_balancer_ips: tuple[str, ...] = ()
    external_ips: tuple[str, ...] = ()
    endpoints: tuple[Endpoint, ...] = ()
    affinity_timeout: int = 0  # seconds; 0 = no session affinity
    external_local: bool = False  # externalTrafficPolicy: Local
    internal_local: bool = False  # internalTrafficPolicy: Local

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}:{self.port_name}/{self.protocol}"


def _is_ipv4(ip: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(ip), ipaddress.IPv4Address)
    except ValueError:
        return False


def endpoints_for(port_name: str, protocol: str, slices: Iterable[Obj]) -> tuple[Endpoint, ...]:
    """Endpoints of the slices for one service port (matched by port name, as
    kube-proxy does). Terminating endpoints are kept so that callers can fall back
    to serving-but-terminating ones when no endpoint is ready."""
    out: set[Endpoint] = set()
    for s in slices:
        if s.get("addressType", "IPv4") != "IPv4":
            continue
        port = None
        for p in s.get("ports") or []:
            if (p.get("name") or "") == port_name and (p.get("protocol") or "TCP").lower() == protocol:
                port = p.get("port")
        if port is None:
            continue
        for e in s.get("endpoints") or []:
            cond = e.get("conditions") or {}
            ready = cond.get("ready") is not False
            serving = cond.get("serving", ready) is not False
            for ip in e.get("addresses") or []:
                if _is_ipv4(ip):
                    out.add(Endpoint(ip, int(port), e.get("nodeName") or "", ready, serving,
                                     bool(cond.get("terminating"))))
    return tuple(sorted(out, key=lambda e: (ipaddress.ip_address(e.ip), e.port)))


def service_ports(service: Obj, slices: Iterable[Obj]) -> list[ServicePort]:
    spec = service.get("spec") or {}
    stype = spec.get("type") or "ClusterIP"
    cluster_ip = spec.get("clusterIP") or ""
    if stype == "ExternalName" or cluster_ip in ("", "None") or not _is_ipv4(cluster_ip):
        return []
    md = service["metadata"]
    slices = list(slices)
    lb_ips: tuple[str, ...] = ()
    if stype == "LoadBalancer":
        ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        lb_ips = tuple(sorted(i["ip"] for i in ingress if _is_ipv4(i.get("ip") or "")))
    affinity = 0
    if spec.get("sessionAffinity") == "ClientIP":
        cfg = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {})
        affinity = int(cfg.get("timeoutSeconds") or 10800)
    out = []
    for p in spec.get("ports") or []:
        proto = (p.get("protocol") or "TCP").lower()
        name = p.get("name") or ""
        out.append(ServicePort(
            namespace=md["namespace"], name=md["name"], port_name=name, protocol=proto,
            port=int(p["port"]), cluster_ip=cluster_ip,
            node_port=int(p.get("nodePort") or 0) if stype in ("NodePort", "LoadBalancer") else 0,
            load_balancer_ips=lb_ips,
            external_ips=tuple(sorted(ip for ip in spec.get("externalIPs") or [] if _is_ipv4(ip))),
            endpoints=endpoints_for(name, proto, slices),
            affinity_timeout=affinity,
            external_local=spec.get("externalTrafficPolicy") == "Local",
            internal_local=spec.get("internalTrafficPolicy") == "Local",
        ))
    return out


def usable(endpoints: Iterable[Endpoint], node: str, local_only: bool) -> list[Endpoint]:
    """The endpoints traffic may go to: ready ones, else serving-but-terminating ones
    (as kube-proxy falls back), restricted to this node when the policy is Local."""
    eps = [e for e in endpoints if not local_only or e.node == node]
    ready = [e for e in eps if e.ready]
    return ready or [e for e in eps if e.serving and e.terminating]
