"""networking.k8s.io/v1 NetworkPolicies: pod selector, ingress and egress rules (ports with
protocol, port or named port and endPort; peers with pod/namespace selectors or an ipBlock
whose excepts lie strictly inside its CIDR), policyTypes.

Invariants: as in `meta`; messages use Kubernetes' wording (ValidateNetworkPolicySpec and
friends in pkg/apis/networking/validation).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from k8py.api import names
from k8py.api.validation.field import forbidden, invalid, not_supported, required
from k8py.api.validation.meta import ErrorList, dict_of, list_of, validate_label_selector

PROTOCOLS = ("SCTP", "TCP", "UDP")
POLICY_TYPES = ("Egress", "Ingress")
CIDR_MSG = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"


def validate_networkpolicy(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = dict_of(obj.get("spec"))
    validate_label_selector(v, dict_of(spec.get("podSelector")), "spec.podSelector")
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(list_of(spec.get(direction))):
            rule = dict_of(rule)
            path = f"spec.{direction}[{i}]"
            for j, port in enumerate(list_of(rule.get("ports"))):
                _port(v, dict_of(port), f"{path}.ports[{j}]")
            for j, peer in enumerate(list_of(rule.get(peers_key))):
                _peer(v, dict_of(peer), f"{path}.{peers_key}[{j}]")
    types = list_of(spec.get("policyTypes"))
    if len(types) > len(POLICY_TYPES):
        v.add(invalid("spec.policyTypes", types, "may not specify more than two policyTypes"))
        return
    for i, t in enumerate(types):
        if t not in POLICY_TYPES:
            v.add(not_supported(f"spec.policyTypes[{i}]", t, ("Ingress", "Egress")))


def _port(v: ErrorList, port: dict[str, Any], path: str) -> None:
    proto = port.get("protocol")
    if proto is not None and proto not in PROTOCOLS:
        v.add(not_supported(f"{path}.protocol", proto, ("TCP", "UDP", "SCTP")))
    p, end = port.get("port"), port.get("endPort")
    if p is None:
        if end is not None:
            v.add(invalid(f"{path}.endPort", end, "may not be specified when `port` is not specified"))
        return
    if isinstance(p, int):
        v.msgs(f"{path}.port", p, names.port_number_errors(p))
        if end is not None:
            if isinstance(end, int) and end < p:
                v.add(invalid(f"{path}.endPort", p, "must be greater than or equal to `port`"))
            if isinstance(end, int):
                v.msgs(f"{path}.endPort", end, names.port_number_errors(end))
        return
    if end is not None:
        v.add(invalid(f"{path}.endPort", end, "may not be specified when `port` is non-numeric"))
    v.msgs(f"{path}.port", p, names.port_name_errors(str(p)))


def _peer(v: ErrorList, peer: dict[str, Any], path: str) -> None:
    count = 0
    for key in ("podSelector", "namespaceSelector"):
        if peer.get(key) is not None:
            count += 1
            validate_label_selector(v, dict_of(peer[key]), f"{path}.{key}")
    if peer.get("ipBlock") is not None:
        count += 1
        _ip_block(v, dict_of(peer["ipBlock"]), f"{path}.ipBlock")
    if count == 0:
        v.add(required(path, "must specify a peer"))
    elif count > 1 and peer.get("ipBlock") is not None:
        v.add(forbidden(path, "may not specify both ipBlock and another peer"))


def parse_cidr(text: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """A CIDR as Go's ParseCIDR reads it (host bits allowed, masked off); None if invalid."""
    if not isinstance(text, str) or "/" not in text:
        return None
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def _ip_block(v: ErrorList, block: dict[str, Any], path: str) -> None:
    cidr = block.get("cidr")
    if not cidr:
        v.add(required(f"{path}.cidr"))
        return
    net = parse_cidr(cidr)
    if net is None:
        v.add(invalid(f"{path}.cidr", cidr, CIDR_MSG))
        return
    for i, text in enumerate(list_of(block.get("except"))):
        ex = parse_cidr(text)
        if ex is None:
            v.add(invalid(f"{path}.except[{i}]", text, CIDR_MSG))
            continue
        inside = ex.version == net.version and ex.network_address in net
        if not inside or ex.prefixlen <= net.prefixlen:
            v.add(invalid(f"{path}.except[{i}]", text, "must be a strict subset of `cidr`"))
