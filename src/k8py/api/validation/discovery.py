"""discovery.k8s.io/v1: EndpointSlices (address type, 1 to 100 addresses per endpoint, ports).

Invariants: as in `meta`; the address type is immutable.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from k8py.api import names
from k8py.api.validation.field import invalid, required, too_many
from k8py.api.validation.meta import (
    PROTOCOLS,
    ErrorList,
    dict_of,
    is_ip,
    list_of,
    validate_enum,
    validate_immutable,
)


def validate_endpointslice(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    at = obj.get("addressType")
    validate_enum(v, at, "addressType", ("IPv4", "IPv6", "FQDN"), required_=True)
    for i, ep in enumerate(list_of(obj.get("endpoints"))):
        addrs = list_of(dict_of(ep).get("addresses"))
        if not 1 <= len(addrs) <= 100:
            v.add(required(f"endpoints[{i}].addresses", "must contain at least 1 address") if not addrs
                  else too_many(f"endpoints[{i}].addresses", 100))
        for j, a in enumerate(addrs):
            if at in ("IPv4", "IPv6") and isinstance(a, str):
                ok = is_ip(a) and (ipaddress.ip_address(a).version == (4 if at == "IPv4" else 6))
                if not ok:
                    v.add(invalid(f"endpoints[{i}].addresses[{j}]", a, f"must be a valid {at} address"))
    for i, p in enumerate(list_of(obj.get("ports"))):
        p = dict_of(p)
        if isinstance(p.get("port"), int):
            v.msgs(f"ports[{i}].port", p["port"], names.port_number_errors(p["port"]))
        validate_enum(v, p.get("protocol"), f"ports[{i}].protocol", PROTOCOLS)
    if old is not None:
        validate_immutable(v, obj.get("addressType"), old.get("addressType"), "addressType")
