"""Cluster DNS records, as Kubernetes' DNS specification defines them.

Answers come from the Services and EndpointSlices in two lookup functions
(`services(ns, name)`, `slices(ns, name)`), so this module is pure and testable:

  <svc>.<ns>.svc.<zone>            A: the ClusterIP; headless: the ready endpoints;
                                   ExternalName: CNAME to spec.externalName
  <host>.<svc>.<ns>.svc.<zone>     A: a headless endpoint with that hostname
  _<port>._<proto>.<svc>.<ns>.svc.<zone>   SRV for each named port
  <a-b-c-d>.<ns>.pod.<zone>        A: a.b.c.d
  d.c.b.a.in-addr.arpa             PTR of a ClusterIP or headless endpoint
Names inside the zone that match nothing are NXDOMAIN with the zone's SOA;
names outside it return None (the server forwards them).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from k8py.api.types import Obj

TTL = 5


@dataclass
class Record:
    name: str  # fully qualified, with the trailing dot
    type: str  # A, AAAA, CNAME, SRV, PTR
    value: str | tuple[int, int, int, str]  # SRV: (priority, weight, port, target)
    ttl: int = TTL


@dataclass
class Answer:
    rcode: str  # NOERROR | NXDOMAIN
    records: list[Record] = field(default_factory=list)


ServiceLookup = Callable[[str, str], Obj | None]
SliceLookup = Callable[[str, str], list[Obj]]
ReverseLookup = Callable[[str], str | None]


class ClusterZone:
    def __init__(self, services: ServiceLookup, slices: SliceLookup,
                 reverse: ReverseLookup | None = None, zone: str = "cluster.local") -> None:
        self.services = services
        self.slices = slices
        self.reverse = reverse or (lambda ip: None)
        self.zone = zone.strip(".")

    def owns(self, qname: str) -> bool:
        n = qname.lower().rstrip(".")
        return n == self.zone or n.endswith("." + self.zone) or self._is_cluster_ptr(n)

    def _is_cluster_ptr(self, n: str) -> bool:
        return n.endswith(".in-addr.arpa") and self.reverse(_ptr_to_ip(n) or "") is not None

    def answer(self, qname: str, qtype: str) -> Answer | None:
        n = qname.lower().rstrip(".")
        fq = n + "."
        if n.endswith(".in-addr.arpa"):
            ip = _ptr_to_ip(n)
            target = self.reverse(ip) if ip else None
            if target is None:
                return None
            return Answer("NOERROR", [Record(fq, "PTR", target)] if qtype in ("PTR", "ANY") else [])
        if not (n == self.zone or n.endswith("." + self.zone)):
            return None
        labels = n[: -len(self.zone)].rstrip(".").split(".") if n != self.zone else []
        records = self._lookup(labels, fq)
        if records is None:
            return Answer("NXDOMAIN")
        return Answer("NOERROR", [r for r in records if qtype == "ANY" or r.type == qtype
                                  or (r.type == "CNAME" and qtype in ("A", "AAAA"))])

    def _lookup(self, labels: list[str], fq: str) -> list[Record] | None:
        if len(labels) == 3 and labels[2] == "pod":
            ip = labels[0].replace("-", ".")
            try:
                ipaddress.IPv4Address(ip)
            except ValueError:
                return None
            return [Record(fq, "A", ip)]
        if len(labels) >= 3 and labels[-1] == "svc":
            ns, svc_name = labels[-2], labels[-3]
            svc = self.services(ns, svc_name)
            if svc is None:
                return None
            rest = labels[:-3]
            if not rest:
                return self._service(svc, fq)
            if len(rest) == 2 and rest[0].startswith("_") and rest[1].startswith("_"):
                return self._srv(svc, rest[0][1:], rest[1][1:], fq)
            if len(rest) == 1:
                return self._endpoint_host(svc, rest[0], fq)
            return None
        if labels in ([], ["svc"], ["pod"]):
            return []  # the zone apex and its two subtrees exist, with no data
        return None

    def _service(self, svc: Obj, fq: str) -> list[Record]:
        spec = svc.get("spec") or {}
        if spec.get("type") == "ExternalName":
            return [Record(fq, "CNAME", spec.get("externalName", "").rstrip(".") + ".")]
        ip = spec.get("clusterIP")
        if ip and ip != "None":
            return [Record(fq, _family(ip), ip)]
        return [Record(fq, _family(a), a) for a in self._ready_addresses(svc)]

    def _ready_addresses(self, svc: Obj) -> list[str]:
        md = svc["metadata"]
        publish = (svc.get("spec") or {}).get("publishNotReadyAddresses", False)
        out: list[str] = []
        for _host, addr in self._endpoints(md["namespace"], md["name"], publish):
            if addr not in out:
                out.append(addr)
        return out

    def _endpoints(self, ns: str, name: str, publish_not_ready: bool) -> Iterable[tuple[str, str]]:
        for s in self.slices(ns, name):
            for e in s.get("endpoints") or []:
                if publish_not_ready or (e.get("conditions") or {}).get("ready") is not False:
                    for a in e.get("addresses") or []:
                        yield e.get("hostname") or "", a

    def _endpoint_host(self, svc: Obj, host: str, fq: str) -> list[Record] | None:
        md = svc["metadata"]
        if (svc.get("spec") or {}).get("clusterIP") not in (None, "None"):
            return None
        recs = [Record(fq, _family(a), a) for h, a in self._endpoints(md["namespace"], md["name"], False)
                if h == host or a.replace(".", "-") == host]
        return recs or None

    def _srv(self, svc: Obj, port_name: str, proto: str, fq: str) -> list[Record] | None:
        md = svc["metadata"]
        target = f"{md['name']}.{md['namespace']}.svc.{self.zone}."
        for p in (svc.get("spec") or {}).get("ports") or []:
            if (p.get("name") or "") == port_name and (p.get("protocol") or "TCP").lower() == proto:
                return [Record(fq, "SRV", (0, 100, int(p["port"]), target))]
        return None


def _family(ip: str) -> str:
    return "AAAA" if ":" in ip else "A"


def _ptr_to_ip(name: str) -> str | None:
    parts = name[: -len(".in-addr.arpa")].split(".")
    if len(parts) != 4:
        return None
    try:
        return str(ipaddress.IPv4Address(".".join(reversed(parts))))
    except ValueError:
        return None
