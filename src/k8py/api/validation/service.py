"""Services and Endpoints (core/v1).

`validate_service` checks type, ports (unique names and port/protocol pairs, node ports in
`NODE_PORT_RANGE` and only where the type allows them), cluster and external IPs, the
traffic and IP-family policies, and that an update keeps the cluster IP.
`validate_endpoints` checks addresses and ports of each subset. Invariants: as in `meta`.
"""

from __future__ import annotations

import json
from typing import Any

from k8py.api import names
from k8py.api.validation.field import (
    Raw,
    duplicate,
    forbidden,
    go_repr,
    invalid,
    required,
)
from k8py.api.validation.meta import (
    PROTOCOLS,
    ErrorList,
    dict_of,
    is_ip,
    list_of,
    validate_enum,
    validate_labels,
    validate_port_or_name,
    validate_unique_label,
)

_SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
NODE_PORT_RANGE = (30000, 32767)


def validate_service(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = dict_of(obj.get("spec"))
    stype = spec.get("type") or "ClusterIP"
    validate_enum(v, spec.get("type"), "spec.type", _SERVICE_TYPES)
    cip = spec.get("clusterIP")
    ports = list_of(spec.get("ports"))
    if not ports and cip != "None" and stype != "ExternalName":  # a headless service may have no ports
        v.add(required("spec.ports"))
    if stype == "ExternalName":
        _external_name(v, spec)
    _service_ports(v, ports, stype)
    _service_ips(v, spec)
    _service_policies(v, spec)
    if spec.get("selector") is not None:
        validate_labels(v, spec.get("selector"), "spec.selector")
    if old is not None:
        ocip = dict_of(old.get("spec")).get("clusterIP")
        otype = dict_of(old.get("spec")).get("type") or "ClusterIP"
        if ocip and cip and cip != ocip and otype != "ExternalName" and stype != "ExternalName":
            v.add(invalid("spec.clusterIPs[0]", Raw(go_repr([cip])), "may not change once set"))


def _external_name(v: ErrorList, spec: dict[str, Any]) -> None:
    """An ExternalName service: a DNS name to alias, and no cluster IP."""
    en = spec.get("externalName") or ""
    if not en:
        v.add(required("spec.externalName"))
    else:
        v.msgs("spec.externalName", en, names.dns1123_subdomain_errors(en.rstrip(".")))
    cip = spec.get("clusterIP")
    if cip and cip != "None":
        v.add(forbidden("spec.clusterIPs", "may not be set for ExternalName services"))


def _service_ports(v: ErrorList, ports: list[Any], stype: str) -> None:
    """Names unique (and required when there are several), port/protocol and nodePort/protocol pairs unique."""
    port_names: set[str] = set()
    seen_ports: set[tuple[Any, Any]] = set()
    seen_node_ports: set[tuple[Any, Any]] = set()
    for i, p in enumerate(ports):
        p = dict_of(p)
        pp = f"spec.ports[{i}]"
        name = p.get("name") or ""
        if name or len(ports) > 1:
            validate_unique_label(v, name, f"{pp}.name", port_names)
        port = p.get("port")
        if isinstance(port, int):
            v.msgs(f"{pp}.port", port, names.port_number_errors(port))
        elif port is None:
            v.add(required(f"{pp}.port"))
        validate_enum(v, p.get("protocol"), f"{pp}.protocol", PROTOCOLS, required_=False)
        if p.get("targetPort") is not None:
            validate_port_or_name(v, p["targetPort"], f"{pp}.targetPort")
        key = (port, p.get("protocol") or "TCP")
        if key in seen_ports:
            v.add(duplicate(pp, Raw(f"core.ServicePort{{Name:{json.dumps(name)}, Protocol:{json.dumps(key[1])}, "
                                    f"Port:{port}}}")))
        seen_ports.add(key)
        if p.get("nodePort"):
            _node_port(v, p, f"{pp}.nodePort", stype, seen_node_ports)


def _node_port(v: ErrorList, p: dict[str, Any], path: str, stype: str, seen: set[tuple[Any, Any]]) -> None:
    """A set nodePort: only for NodePort and LoadBalancer services, in range, unique per protocol."""
    np_ = p["nodePort"]
    if stype in ("ClusterIP", "ExternalName"):
        v.add(forbidden(path, f"may not be used when `type` is '{stype}'"))
    elif isinstance(np_, int) and not NODE_PORT_RANGE[0] <= np_ <= NODE_PORT_RANGE[1]:
        v.add(invalid(path, np_, "provided port is not in the valid range. The range of valid "
                                 f"ports is {NODE_PORT_RANGE[0]}-{NODE_PORT_RANGE[1]}"))
    nk = (np_, p.get("protocol") or "TCP")
    if nk in seen:
        v.add(duplicate(path, np_))
    seen.add(nk)


def _service_ips(v: ErrorList, spec: dict[str, Any]) -> None:
    cip = spec.get("clusterIP")
    if cip and cip != "None" and not is_ip(cip):
        v.add(invalid("spec.clusterIPs[0]", cip, "must be empty, 'None', or a valid IP address"))
    for i, ip in enumerate(list_of(spec.get("externalIPs"))):
        if isinstance(ip, str) and not is_ip(ip):
            v.add(invalid(f"spec.externalIPs[{i}]", ip,
                          "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))


def _service_policies(v: ErrorList, spec: dict[str, Any]) -> None:
    validate_enum(v, spec.get("sessionAffinity"), "spec.sessionAffinity", ("ClientIP", "None"))
    validate_enum(v, spec.get("externalTrafficPolicy"), "spec.externalTrafficPolicy", ("Cluster", "Local"))
    validate_enum(v, spec.get("internalTrafficPolicy"), "spec.internalTrafficPolicy", ("Cluster", "Local"))
    # PreferSameZone and PreferSameNode: GA in 1.35 (PreferClose is PreferSameZone's old name).
    validate_enum(v, spec.get("trafficDistribution"), "spec.trafficDistribution",
                  ("PreferClose", "PreferSameZone", "PreferSameNode"))
    validate_enum(v, spec.get("ipFamilyPolicy"), "spec.ipFamilyPolicy",
                  ("SingleStack", "PreferDualStack", "RequireDualStack"))
    for i, fam in enumerate(list_of(spec.get("ipFamilies"))):
        validate_enum(v, fam, f"spec.ipFamilies[{i}]", ("IPv4", "IPv6"))


def validate_endpoints(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    for i, sub in enumerate(list_of(obj.get("subsets"))):
        sub = dict_of(sub)
        sp = f"subsets[{i}]"
        for kind in ("addresses", "notReadyAddresses"):
            for j, a in enumerate(list_of(sub.get(kind))):
                ip = dict_of(a).get("ip") or ""
                if not is_ip(ip):
                    v.add(invalid(f"{sp}.{kind}[{j}].ip", ip, "must be a valid IP address"))
        ports = list_of(sub.get("ports"))
        for j, p in enumerate(ports):
            p = dict_of(p)
            pp = f"{sp}.ports[{j}]"
            if len(ports) > 1 and not p.get("name"):
                v.add(required(f"{pp}.name"))
            elif p.get("name"):
                v.msgs(f"{pp}.name", p["name"], names.dns1123_label_errors(p["name"]))
            if isinstance(p.get("port"), int):
                v.msgs(f"{pp}.port", p["port"], names.port_number_errors(p["port"]))
            validate_enum(v, p.get("protocol"), f"{pp}.protocol", PROTOCOLS, required_=True)
