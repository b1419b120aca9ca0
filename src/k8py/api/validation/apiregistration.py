"""apiregistration.k8s.io/v1: APIService validation, as kube-aggregator's.

The name is `<version>.<group>`; group a DNS subdomain (only `v1` may have none), version a
DNS-1035 label, groupPriorityMinimum in 1..20000, versionPriority in 1..1000. A local
APIService (`service: null`) has neither caBundle nor insecureSkipTLSVerify; a remote one
names its Service (namespace, name, a valid port) and does not set insecureSkipTLSVerify
together with a caBundle.
"""

from __future__ import annotations

from typing import Any

from k8py.api import names
from k8py.api.validation.field import invalid, required
from k8py.api.validation.meta import ErrorList, dict_of


def validate_apiservice(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = dict_of(obj.get("spec"))
    group, version = str(spec.get("group") or ""), str(spec.get("version") or "")
    name = dict_of(obj.get("metadata")).get("name")
    want = f"{version}.{group}"
    if isinstance(name, str) and name and name != want:
        v.add(invalid("metadata.name", name, f'must be `spec.version+"."+spec.group`: "{want}"'))
    if not group and version != "v1":
        v.add(required("spec.group", "only v1 may have an empty group and it better be legacy kube"))
    if group:
        v.msgs("spec.group", group, names.dns1123_subdomain_errors(group))
    v.msgs("spec.version", version, names.dns1035_label_errors(version))
    for f, top in (("groupPriorityMinimum", 20000), ("versionPriority", 1000)):
        x = spec.get(f)
        if not isinstance(x, int) or not 0 < x <= top:
            v.add(invalid(f"spec.{f}", x if x is not None else 0, f"must be positive and less than {top}"))
    _service(v, spec)


def _service(v: ErrorList, spec: dict[str, Any]) -> None:
    svc, bundle, insecure = spec.get("service"), spec.get("caBundle"), spec.get("insecureSkipTLSVerify")
    if not isinstance(svc, dict):
        if bundle:
            size = f"{len(str(bundle)) * 3 // 4} bytes"
            v.add(invalid("spec.caBundle", size, "local APIServices may not have a caBundle"))
        if insecure:
            v.add(invalid("spec.insecureSkipTLSVerify", True, "local APIServices may not have insecureSkipTLSVerify"))
        return
    if not svc.get("namespace"):
        v.add(required("spec.service.namespace"))
    if not svc.get("name"):
        v.add(required("spec.service.name"))
    port = svc.get("port", 443)
    if not isinstance(port, int) or not 1 <= port <= 65535:
        v.add(invalid("spec.service.port", port, "port is not valid: must be between 1 and 65535, inclusive"))
    if insecure and bundle:
        v.add(invalid("spec.insecureSkipTLSVerify", True, "may not be true if caBundle is present"))
