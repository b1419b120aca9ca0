"""The other core/v1 kinds: config, storage, cluster and policy objects.

ConfigMap, Secret (by type), ServiceAccount, Namespace, Node, Event (core/v1 shape),
PersistentVolume, PersistentVolumeClaim, ReplicationController, ResourceQuota and
LimitRange, with their update-time immutability rules. Pods live in `pod`, Services and
Endpoints in `service`. Invariants: as in `meta`.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
from fractions import Fraction
from typing import Any

from k8py.api import names, schema
from k8py.api.taints import TAINT_EFFECTS
from k8py.api.validation.apps import validate_replica_counts
from k8py.api.validation.field import (
    IMMUTABLE,
    Raw,
    duplicate,
    forbidden,
    go_map,
    invalid,
    not_supported,
    required,
    too_long,
)
from k8py.api.validation.meta import (
    ErrorList,
    dict_of,
    list_of,
    quantity,
    validate_enum,
    validate_immutable,
    validate_label_selector,
    validate_labels,
    validate_nonnegative,
)
from k8py.api.validation.pod import validate_node_selector_term, validate_pod_template
from k8py.api.validation.structural import base64_error

_DATA_MAX = 1024 * 1024


def validate_configmap(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    data = dict_of(obj.get("data"))
    binary = dict_of(obj.get("binaryData"))
    total = 0
    for k, val in data.items():
        v.msgs(f"data[{k}]", k, names.config_key_errors(k))
        if k in binary:
            v.add(invalid(f"data[{k}]", k, "duplicate of key present in binaryData"))
        total += len(val) if isinstance(val, str) else 0
    for k, val in binary.items():
        v.msgs(f"binaryData[{k}]", k, names.config_key_errors(k))
        total += len(val) * 3 // 4 if isinstance(val, str) else 0
    if total > _DATA_MAX:
        v.add(too_long("", _DATA_MAX))
    if old is not None:
        _immutable_data(v, obj, old, ("data", "binaryData"))


def validate_secret(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    data = dict_of(obj.get("data"))
    total = 0
    for k, val in data.items():
        v.msgs(f"data[{k}]", k, names.config_key_errors(k))
        if isinstance(val, str):
            msg = base64_error(val)
            if msg:
                v.add(invalid(f"data[{k}]", val, msg))
            else:
                total += len(val) * 3 // 4
    for k in dict_of(obj.get("stringData")):
        v.msgs(f"stringData[{k}]", k, names.config_key_errors(k))
    if total > _DATA_MAX:
        v.add(too_long("data", _DATA_MAX))
    stype = obj.get("type") or "Opaque"
    if stype == "kubernetes.io/service-account-token":
        if not dict_of(dict_of(obj.get("metadata")).get("annotations")).get("kubernetes.io/service-account.name"):
            v.add(required("metadata.annotations[kubernetes.io/service-account.name]"))
    elif stype == "kubernetes.io/dockercfg":
        _secret_json_key(v, data, ".dockercfg")
    elif stype == "kubernetes.io/dockerconfigjson":
        _secret_json_key(v, data, ".dockerconfigjson")
    elif stype == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            v.add(required("data[username]", "either username or password is required"))
    elif stype == "kubernetes.io/ssh-auth":
        if not data.get("ssh-privatekey"):
            v.add(required("data[ssh-privatekey]"))
    elif stype == "kubernetes.io/tls":
        for k in ("tls.crt", "tls.key"):
            if k not in data:
                v.add(required(f"data[{k}]"))
    if old is not None:
        validate_immutable(v, obj.get("type") or "Opaque", old.get("type") or "Opaque", "type")
        _immutable_data(v, obj, old, ("data",))


def _secret_json_key(v: ErrorList, data: dict[str, Any], key: str) -> None:
    if key not in data:
        v.add(required(f"data[{key}]"))
        return
    try:
        json.loads(base64.b64decode(data[key]))
    except (ValueError, binascii.Error) as exc:
        v.add(invalid(f"data[{key}]", Raw("<secret contents redacted>"), str(exc)))


def _immutable_data(v: ErrorList, obj: dict[str, Any], old: dict[str, Any], keys: tuple[str, ...]) -> None:
    if old.get("immutable"):
        if not obj.get("immutable"):
            v.add(forbidden("immutable", "field is immutable when `immutable` is set"))
        for k in keys:
            if obj.get(k) != old.get(k):
                v.add(forbidden(k, "field is immutable when `immutable` is set"))


def validate_service_account(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    for i, s in enumerate(list_of(obj.get("secrets"))):
        n = dict_of(s).get("name")
        if n:
            v.msgs(f"secrets[{i}].name", n, names.dns1123_subdomain_errors(n))


def validate_namespace(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    for i, f in enumerate(list_of(dict_of(obj.get("spec")).get("finalizers"))):
        if isinstance(f, str):
            msgs = names.qualified_name_errors(f)
            if not msgs and "/" not in f and f != "kubernetes":
                msgs = ["name is neither a standard finalizer name nor is it fully qualified"]
            v.msgs(f"spec.finalizers[{i}]", f, msgs)
    validate_enum(v, dict_of(obj.get("status")).get("phase"), "status.phase", ("Active", "Terminating"))


def validate_node(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = dict_of(obj.get("spec"))
    seen: set[tuple[str, str]] = set()
    for i, t in enumerate(list_of(spec.get("taints"))):
        t = dict_of(t)
        tp = f"spec.taints[{i}]"
        key = t.get("key") or ""
        if not key:
            v.add(required(f"{tp}.key"))
        else:
            v.msgs(f"{tp}.key", key, names.qualified_name_errors(key))
        if isinstance(t.get("value"), str):
            v.msgs(f"{tp}.value", t["value"], names.label_value_errors(t["value"]))
        validate_enum(v, t.get("effect"), f"{tp}.effect", TAINT_EFFECTS, required_=True)
        k = (key, t.get("effect") or "")
        if k in seen:
            v.add(duplicate(tp, Raw(f"core.Taint{{Key:{json.dumps(key)}, Effect:{json.dumps(k[1])}}}")))
        seen.add(k)
    for f in ("podCIDR",):
        if spec.get(f):
            try:
                ipaddress.ip_network(spec[f], strict=False)
            except ValueError:
                v.add(invalid(f"spec.{f}", spec[f], "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"))
    status = dict_of(obj.get("status"))
    for which in ("capacity", "allocatable"):
        for name, val in dict_of(status.get(which)).items():
            q = quantity(val)
            if q is not None and q < 0:
                v.add(invalid(f"status.{which}[{name}]", str(val), "must be greater than or equal to 0"))
    if old is not None:
        ospec = dict_of(old.get("spec"))
        if ospec.get("podCIDR") and spec.get("podCIDR") != ospec.get("podCIDR"):
            v.add(forbidden("spec.podCIDR", "node updates may not change podCIDR except from \"\" to valid"))


def validate_core_event(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    ns = dict_of(obj.get("metadata")).get("namespace") or ""
    ions = dict_of(obj.get("involvedObject")).get("namespace") or ""
    if not obj.get("eventTime"):
        # Old-style events: the namespaces agree (cluster-scoped objects' events live in default).
        if (ions and ns != ions) or (not ions and ns not in ("", "default")):
            v.add(invalid("involvedObject.namespace", ions, "does not match event.namespace"))
    else:
        if not ions and ns not in ("default", "kube-system"):
            v.add(invalid("involvedObject.namespace", ions, "does not match event.namespace"))
        if not obj.get("reportingComponent"):
            v.add(required("reportingComponent"))
        else:
            v.msgs("reportingComponent", obj["reportingComponent"],
                   names.qualified_name_errors(obj["reportingComponent"]))
        for f in ("reportingInstance", "action", "reason"):
            if not obj.get(f):
                v.add(required(f))
    validate_enum(v, obj.get("type"), "type", ("Normal", "Warning"))
    validate_nonnegative(v, obj.get("count"), "count")


_ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")


def _access_modes(v: ErrorList, modes: list[Any], path: str, detail: str = "") -> None:
    if not modes:
        v.add(required(path, detail))
    for m in modes:
        if m not in _ACCESS_MODES:
            v.add(not_supported(path, m, _ACCESS_MODES))
    if "ReadWriteOncePod" in modes and len(modes) > 1:
        v.add(forbidden(path, "may not use ReadWriteOncePod with other access modes"))


def _pv_sources() -> list[str]:
    props = schema.definitions()["io.k8s.api.core.v1.PersistentVolumeSpec"]["properties"]
    skip = {"accessModes", "capacity", "claimRef", "mountOptions", "nodeAffinity", "persistentVolumeReclaimPolicy",
            "storageClassName", "volumeAttributesClassName", "volumeMode"}
    return [k for k in props if k not in skip]


def validate_pv(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = dict_of(obj.get("spec"))
    _access_modes(v, list_of(spec.get("accessModes")), "spec.accessModes")
    cap = dict_of(spec.get("capacity"))
    if not cap:
        v.add(required("spec.capacity"))
    for k, val in cap.items():
        if k != "storage":
            v.add(not_supported("spec.capacity", k, ("storage",)))
        q = quantity(val)
        if q is not None and q <= 0:
            v.add(invalid(f"spec.capacity[{k}]", str(val), "must be greater than zero"))
    validate_enum(v, spec.get("persistentVolumeReclaimPolicy"), "spec.persistentVolumeReclaimPolicy",
          ("Delete", "Recycle", "Retain"))
    validate_enum(v, spec.get("volumeMode"), "spec.volumeMode", ("Block", "Filesystem"))
    if spec.get("storageClassName"):
        v.msgs("spec.storageClassName", spec["storageClassName"],
               names.dns1123_subdomain_errors(spec["storageClassName"]))
    present = [s for s in _pv_sources() if spec.get(s) is not None]
    if not present:
        v.add(required("spec", "must specify a volume type"))
    for extra in present[1:]:
        v.add(forbidden(f"spec.{extra}", "may not specify more than 1 volume type"))
    if present and present[0] == "hostPath":
        hp = dict_of(spec["hostPath"])
        if not hp.get("path"):
            v.add(required("spec.hostPath.path"))
    if present and present[0] == "local" and spec.get("nodeAffinity") is None:
        v.add(required("spec.nodeAffinity", "Local volume requires node affinity"))
    na = dict_of(dict_of(spec.get("nodeAffinity")).get("required"))
    if spec.get("nodeAffinity") is not None and dict_of(spec.get("nodeAffinity")).get("required") is not None:
        terms = list_of(na.get("nodeSelectorTerms"))
        if not terms:
            v.add(required("spec.nodeAffinity.required.nodeSelectorTerms", "must have at least one node selector term"))
        for i, t in enumerate(terms):
            validate_node_selector_term(v, dict_of(t), f"spec.nodeAffinity.required.nodeSelectorTerms[{i}]")
    if old is not None:
        ospec = dict_of(old.get("spec"))
        if ospec.get("volumeMode") and spec.get("volumeMode") != ospec.get("volumeMode"):
            v.add(invalid("spec.volumeMode", spec.get("volumeMode"), IMMUTABLE))
        for s in _pv_sources():
            if ospec.get(s) is not None and spec.get(s) != ospec.get(s):
                v.add(forbidden("spec.persistentvolumesource",
                                "spec.persistentvolumesource is immutable after creation"))
                break


_PVC_MUTABLE = ("resources", "volumeAttributesClassName", "volumeName")


def validate_pvc(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = dict_of(obj.get("spec"))
    _access_modes(v, list_of(spec.get("accessModes")), "spec.accessModes", "at least 1 access mode is required")
    requests = dict_of(dict_of(spec.get("resources")).get("requests"))
    if "storage" not in requests:
        v.add(required("spec.resources[storage]"))
    else:
        q = quantity(requests["storage"])
        if q is not None and q <= 0:
            v.add(invalid("spec.resources[storage]", str(requests["storage"]), "must be greater than zero"))
    validate_enum(v, spec.get("volumeMode"), "spec.volumeMode", ("Block", "Filesystem"))
    if spec.get("selector") is not None:
        validate_label_selector(v, dict_of(spec["selector"]), "spec.selector")
    if spec.get("storageClassName"):
        v.msgs("spec.storageClassName", spec["storageClassName"],
               names.dns1123_subdomain_errors(spec["storageClassName"]))
    if old is not None:
        ospec = dict_of(old.get("spec"))
        changed = {k for k in set(spec) | set(ospec) if spec.get(k) != ospec.get(k)}
        if ospec.get("volumeName"):
            changed -= {"resources", "volumeAttributesClassName"}
        else:
            changed -= set(_PVC_MUTABLE)
        # storageClassName may be set once from unset (beta annotation / default class)
        if "storageClassName" in changed and not ospec.get("storageClassName"):
            changed.discard("storageClassName")
        if "resources" in changed and ospec.get("volumeName"):
            pass
        if changed:
            v.add(forbidden("spec", "spec is immutable after creation except resources.requests and "
                                    "volumeAttributesClassName for bound claims"))
        old_req = quantity(dict_of(dict_of(ospec.get("resources")).get("requests")).get("storage", "0"))
        new_req = quantity(requests.get("storage", "0"))
        if old_req is not None and new_req is not None and new_req < old_req and ospec.get("volumeName"):
            v.add(forbidden("spec.resources.requests.storage", "field can not be less than previous value"))


def validate_rc(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = dict_of(obj.get("spec"))
    validate_replica_counts(v, spec)
    sel = dict_of(spec.get("selector"))
    if not sel:
        v.add(required("spec.selector"))
    else:
        validate_labels(v, sel, "spec.selector")
    tmpl = spec.get("template")
    if tmpl is None:
        v.add(required("spec.template"))
        return
    labels = dict_of(dict_of(dict_of(tmpl).get("metadata")).get("labels"))
    if sel and any(labels.get(k) != val for k, val in sel.items()):
        v.add(invalid("spec.template.metadata.labels", Raw(go_map(labels)),
                      "`selector` does not match template `labels`"))
    validate_pod_template(v, tmpl, "spec.template", ("Always",))


def validate_resource_quota(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    for name, val in dict_of(dict_of(obj.get("spec")).get("hard")).items():
        q = quantity(val)
        if q is not None and q < 0:
            v.add(invalid(f"spec.hard[{name}]", str(val), "must be greater than or equal to 0"))
    for i, s in enumerate(list_of(dict_of(obj.get("spec")).get("scopes"))):
        validate_enum(v, s, f"spec.scopes[{i}]", ("Terminating", "NotTerminating", "BestEffort", "NotBestEffort",
                                           "PriorityClass", "CrossNamespacePodAffinity"))


def validate_limit_range(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    for i, lim in enumerate(list_of(dict_of(obj.get("spec")).get("limits"))):
        lim = dict_of(lim)
        lp = f"spec.limits[{i}]"
        validate_enum(v, lim.get("type"), f"{lp}.type", ("Container", "Pod", "PersistentVolumeClaim"), required_=True)
        vals: dict[str, dict[str, Fraction]] = {}
        for which in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
            for name, val in dict_of(lim.get(which)).items():
                q = quantity(val)
                if q is not None:
                    vals.setdefault(which, {})[name] = q
                    if q < 0:
                        v.add(invalid(f"{lp}.{which}[{name}]", str(val), "must be greater than or equal to 0"))
        for name, mn in vals.get("min", {}).items():
            mx = vals.get("max", {}).get(name)
            if mx is not None and mn > mx:
                v.add(invalid(f"{lp}.min[{name}]", str(dict_of(lim.get("min"))[name]),
                              f"min value {dict_of(lim.get('min'))[name]} is greater than max value "
                              f"{dict_of(lim.get('max'))[name]}"))
