"""networking.k8s.io/v1: Ingresses (rules, paths and pathTypes, backends, TLS hosts) and
IngressClasses (controller, fixed after creation).

Invariants: as in `meta`; messages use Kubernetes' wording (pkg/apis/networking/validation).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from k8py.api import names
from k8py.api.validation.field import invalid, not_supported, required
from k8py.api.validation.meta import ErrorList, dict_of, list_of, validate_immutable

PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")


def validate_ingress(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = dict_of(obj.get("spec"))
    if not spec.get("defaultBackend") and not list_of(spec.get("rules")):
        v.add(invalid("spec", "{}", "either `defaultBackend` or `rules` must be specified"))
    if spec.get("defaultBackend") is not None:
        _backend(v, dict_of(spec.get("defaultBackend")), "spec.defaultBackend")
    cls = spec.get("ingressClassName")
    if cls:
        v.msgs("spec.ingressClassName", cls, names.dns1123_subdomain_errors(str(cls)))
    for i, rule in enumerate(list_of(spec.get("rules"))):
        _rule(v, dict_of(rule), f"spec.rules[{i}]")
    for i, tls in enumerate(list_of(spec.get("tls"))):
        for j, host in enumerate(list_of(dict_of(tls).get("hosts"))):
            _host(v, str(host), f"spec.tls[{i}].hosts[{j}]")
        secret = dict_of(tls).get("secretName")
        if secret:
            v.msgs(f"spec.tls[{i}].secretName", secret, names.dns1123_subdomain_errors(str(secret)))


def _rule(v: ErrorList, rule: dict[str, Any], path: str) -> None:
    if rule.get("host"):
        _host(v, str(rule["host"]), f"{path}.host")
    http = rule.get("http")
    if http is None:
        return
    paths = list_of(dict_of(http).get("paths"))
    if not paths:
        v.add(required(f"{path}.http.paths"))
    for i, p in enumerate(paths):
        _path(v, dict_of(p), f"{path}.http.paths[{i}]")


def _host(v: ErrorList, host: str, path: str) -> None:
    try:
        ipaddress.ip_address(host)
        v.add(invalid(path, host, "must be a DNS name, not an IP address"))
        return
    except ValueError:
        pass
    if host.startswith("*."):
        v.msgs(path, host, names.dns1123_subdomain_errors(host[2:]))
    else:
        v.msgs(path, host, names.dns1123_subdomain_errors(host))


def _path(v: ErrorList, p: dict[str, Any], path: str) -> None:
    ptype = p.get("pathType")
    if not ptype:
        v.add(required(f"{path}.pathType", "pathType must be specified"))
    elif ptype not in PATH_TYPES:
        v.add(not_supported(f"{path}.pathType", ptype, PATH_TYPES))
    value = p.get("path")
    if ptype in ("Exact", "Prefix") or value:
        value = str(value or "")
        if not value.startswith("/"):
            v.add(invalid(f"{path}.path", value, "must be an absolute path"))
        elif ptype in ("Exact", "Prefix") and "//" in value:
            v.add(invalid(f"{path}.path", value, "must not contain '//'"))
    _backend(v, dict_of(p.get("backend")), f"{path}.backend")


def _backend(v: ErrorList, b: dict[str, Any], path: str) -> None:
    svc, res = b.get("service"), b.get("resource")
    if svc is not None and res is not None:
        v.add(invalid(path, "", "cannot set both resource and service backends"))
        return
    if svc is None and res is None:
        v.add(invalid(path, "", "one backend type must be specified"))
        return
    if res is not None:
        if not dict_of(res).get("kind"):
            v.add(required(f"{path}.resource.kind"))
        return
    svc = dict_of(svc)
    name = str(svc.get("name") or "")
    if not name:
        v.add(required(f"{path}.service.name"))
    else:
        v.msgs(f"{path}.service.name", name, names.dns1035_label_errors(name))
    port = dict_of(svc.get("port"))
    pname, pnum = port.get("name"), port.get("number")
    if pname and pnum:
        v.add(invalid(f"{path}.service.port", port, "cannot set both port name & port number"))
    elif pname:
        v.msgs(f"{path}.service.port.name", pname, names.port_name_errors(str(pname)))
    elif pnum:
        v.msgs(f"{path}.service.port.number", pnum, names.port_number_errors(int(pnum)))
    else:
        v.add(required(f"{path}.service.port", "port name or number is required"))


def validate_ingressclass(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = dict_of(obj.get("spec"))
    ctl = str(spec.get("controller") or "")
    if not ctl:
        v.add(required("spec.controller"))
    elif len(ctl) > 250:
        v.add(invalid("spec.controller", ctl, "must be no more than 250 characters"))
    if old is not None:
        validate_immutable(v, spec.get("controller"), dict_of(old.get("spec")).get("controller"), "spec.controller")
