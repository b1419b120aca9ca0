"""Pods and pod templates (core/v1): PodSpec, containers, volumes, affinity, tolerations.

`validate_pod` is the Pod kind's validator (with the few fields an update may change);
`validate_pod_template` serves every workload that embeds a PodTemplateSpec, with the
restart policies its kind allows. Invariants: as in `meta`; container and volume names
are unique DNS-1123 labels; a volume mount names a volume of the pod.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from k8py.api import names, schema
from k8py.api.taints import TAINT_EFFECTS
from k8py.api.validation.field import (
    Raw,
    duplicate,
    forbidden,
    invalid,
    not_found,
    not_supported,
    required,
)
from k8py.api.validation.meta import (
    PROTOCOLS,
    ErrorList,
    dict_of,
    list_of,
    quantity,
    validate_annotations,
    validate_enum,
    validate_label_selector,
    validate_labels,
    validate_nonnegative,
    validate_port_or_name,
    validate_set_operator,
    validate_unique_label,
)
from k8py.api.validation.topology import validate_topology_spread

_RESTART_POLICIES = ("Always", "OnFailure", "Never")
_DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_TERMINATION_MSG_POLICIES = ("File", "FallbackToLogsOnError")
_STANDARD_RESOURCES = ("cpu", "memory", "ephemeral-storage")
_INIT_ONLY_SIDECARS = "may not be set for init containers without restartPolicy=Always"


def _volume_sources() -> list[str]:
    props = schema.definitions()["io.k8s.api.core.v1.Volume"]["properties"]
    return [k for k in props if k != "name"]


def _pod_spec(v: ErrorList, spec: dict[str, Any], path: str,
              restart_allowed: Iterable[str] = _RESTART_POLICIES) -> None:
    containers = list_of(spec.get("containers"))
    init = list_of(spec.get("initContainers"))
    if not containers:
        v.add(required(f"{path}.containers"))
    volumes = _volumes(v, list_of(spec.get("volumes")), f"{path}.volumes")
    seen: set[str] = set()
    for kind, lst in (("initContainers", init), ("containers", containers)):
        for i, c in enumerate(lst):
            _container(v, dict_of(c), f"{path}.{kind}[{i}]", volumes, seen, init=kind == "initContainers")
    allowed = list(restart_allowed)
    rp = spec.get("restartPolicy")
    if allowed == list(_RESTART_POLICIES):
        validate_enum(v, rp, f"{path}.restartPolicy", allowed)
    elif rp not in allowed and (rp or "Always" not in allowed):  # unset means Always (defaulting)
        v.add(not_supported(f"{path}.restartPolicy", rp or "", allowed))
    validate_enum(v, spec.get("dnsPolicy"), f"{path}.dnsPolicy", _DNS_POLICIES)
    if spec.get("dnsPolicy") == "None" and not dict_of(spec.get("dnsConfig")).get("nameservers"):
        v.add(required(f"{path}.dnsConfig.nameservers",
                       "must provide at least one DNS nameserver when `dnsPolicy` is None"))
    validate_labels(v, spec.get("nodeSelector"), f"{path}.nodeSelector")
    ads = spec.get("activeDeadlineSeconds")
    if isinstance(ads, int) and not isinstance(ads, bool) and not 1 <= ads <= 2**31 - 1:
        v.add(invalid(f"{path}.activeDeadlineSeconds", ads, "must be between 1 and 2147483647, inclusive"))
    validate_nonnegative(v, spec.get("terminationGracePeriodSeconds"), f"{path}.terminationGracePeriodSeconds")
    for f in ("hostname", "subdomain"):
        if spec.get(f):
            v.msgs(f"{path}.{f}", spec[f], names.dns1123_label_errors(spec[f]))
    for f in ("serviceAccountName", "nodeName"):
        if spec.get(f):
            v.msgs(f"{path}.{f}", spec[f], names.dns1123_subdomain_errors(spec[f]))
    _affinity(v, dict_of(spec.get("affinity")), f"{path}.affinity")
    validate_topology_spread(v, spec.get("topologySpreadConstraints"), f"{path}.topologySpreadConstraints")
    for i, t in enumerate(list_of(spec.get("tolerations"))):
        _toleration(v, dict_of(t), f"{path}.tolerations[{i}]")
    if spec.get("hostNetwork"):
        for kind, lst in (("initContainers", init), ("containers", containers)):
            for i, c in enumerate(lst):
                for j, p in enumerate(list_of(dict_of(c).get("ports"))):
                    p = dict_of(p)
                    if p.get("hostPort") and p.get("hostPort") != p.get("containerPort"):
                        v.add(invalid(f"{path}.{kind}[{i}].ports[{j}].containerPort", p.get("containerPort"),
                                      "must match `hostPort` when `hostNetwork` is true"))


def _volumes(v: ErrorList, vols: list[Any], path: str) -> set[str]:
    seen: set[str] = set()
    sources = _volume_sources()
    for i, vol in enumerate(vols):
        vol = dict_of(vol)
        p = f"{path}[{i}]"
        validate_unique_label(v, vol.get("name") or "", f"{p}.name", seen)
        present = [s for s in sources if vol.get(s) is not None]
        if not present:
            v.add(required(p, "must specify a volume type"))
        for extra in present[1:]:
            v.add(forbidden(f"{p}.{extra}", "may not specify more than 1 volume type"))
        if present:
            _volume_source(v, present[0], dict_of(vol.get(present[0])), f"{p}.{present[0]}")
    return seen


def _mode(v: ErrorList, m: Any, path: str) -> None:
    if isinstance(m, int) and not isinstance(m, bool) and not 0 <= m <= 0o777:
        v.add(invalid(path, m, "must be a number between 0 and 0777 (octal), both inclusive"))


def _volume_source(v: ErrorList, kind: str, src: dict[str, Any], path: str) -> None:
    if kind == "hostPath":
        if not src.get("path"):
            v.add(required(f"{path}.path"))
        validate_enum(v, src.get("type"), f"{path}.type",
              ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice"))
    elif kind == "persistentVolumeClaim":
        if not src.get("claimName"):
            v.add(required(f"{path}.claimName"))
    elif kind == "emptyDir":
        validate_enum(v, src.get("medium"), f"{path}.medium", ("", "Memory", "HugePages"))
        if src.get("sizeLimit") is not None:
            q = quantity(src["sizeLimit"])
            if q is not None and q < 0:
                v.add(invalid(f"{path}.sizeLimit", str(src["sizeLimit"]), "must be greater than or equal to 0"))
    elif kind in ("secret", "configMap"):
        if kind == "secret" and not src.get("secretName"):
            v.add(required(f"{path}.secretName"))
        _mode(v, src.get("defaultMode"), f"{path}.defaultMode")
        _key_to_paths(v, src.get("items"), f"{path}.items")
    elif kind == "downwardAPI":
        _mode(v, src.get("defaultMode"), f"{path}.defaultMode")
        _downward_files(v, src.get("items"), f"{path}.items")
    elif kind == "projected":
        _mode(v, src.get("defaultMode"), f"{path}.defaultMode")
        _projection_sources(v, list_of(src.get("sources")), f"{path}.sources")
    elif kind == "nfs":
        if not src.get("server"):
            v.add(required(f"{path}.server"))
        if not src.get("path"):
            v.add(required(f"{path}.path"))


def _key_to_paths(v: ErrorList, items: Any, path: str) -> None:
    """Kubernetes' validateKeyToPath for each item of a secret/configMap source."""
    for j, item in enumerate(list_of(items)):
        item = dict_of(item)
        ip = f"{path}[{j}]"
        if not item.get("key"):
            v.add(required(f"{ip}.key"))
        _non_reserved_path(v, item.get("path"), f"{ip}.path")
        _mode(v, item.get("mode"), f"{ip}.mode")


def _downward_files(v: ErrorList, items: Any, path: str) -> None:
    """Kubernetes' validateDownwardAPIVolumeFile: a non-reserved relative path and one reference."""
    for j, item in enumerate(list_of(items)):
        item = dict_of(item)
        ip = f"{path}[{j}]"
        _non_reserved_path(v, item.get("path"), f"{ip}.path")
        if item.get("fieldRef") is not None and item.get("resourceFieldRef") is not None:
            v.add(invalid(ip, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously"))
        elif item.get("fieldRef") is None and item.get("resourceFieldRef") is None:
            v.add(required(ip, "one of fieldRef and resourceFieldRef is required"))
        _mode(v, item.get("mode"), f"{ip}.mode")


def _projection_sources(v: ErrorList, sources: list[Any], path: str) -> None:
    """Each projected source's item paths (and a serviceAccountToken's path) stay inside the volume."""
    for i, source in enumerate(sources):
        source = dict_of(source)
        sp = f"{path}[{i}]"
        for kind in ("secret", "configMap"):
            if source.get(kind) is not None:
                _key_to_paths(v, dict_of(source[kind]).get("items"), f"{sp}.{kind}.items")
        if source.get("downwardAPI") is not None:
            _downward_files(v, dict_of(source["downwardAPI"]).get("items"), f"{sp}.downwardAPI.items")
        if source.get("serviceAccountToken") is not None:
            _non_reserved_path(v, dict_of(source["serviceAccountToken"]).get("path"), f"{sp}.serviceAccountToken.path")


def _descending_path(v: ErrorList, p: Any, path: str) -> None:
    """Kubernetes' validateLocalDescendingPath: relative, with no '..' element."""
    if not isinstance(p, str):
        return
    if p.startswith("/"):
        v.add(invalid(path, p, "must be a relative path"))
    if ".." in p.split("/"):
        v.add(invalid(path, p, "must not contain '..'"))


def _non_reserved_path(v: ErrorList, p: Any, path: str) -> None:
    """Kubernetes' validateLocalNonReservedPath: required, descending, and not `..`-prefixed (reserved
    for the atomic writer's `..data` and timestamped directories)."""
    if not p:
        v.add(required(path))
        return
    _descending_path(v, p, path)
    if isinstance(p, str) and p.startswith("..") and not p.startswith("../"):
        v.add(invalid(path, p, "must not start with '..'"))


def _container(v: ErrorList, c: dict[str, Any], path: str, volumes: set[str], seen: set[str], init: bool) -> None:
    """One container (or init container) of a pod spec; `seen` holds the names of the ones before it."""
    validate_unique_label(v, c.get("name") or "", f"{path}.name", seen)
    _image(v, c.get("image"), f"{path}.image")
    validate_enum(v, c.get("imagePullPolicy"), f"{path}.imagePullPolicy", _PULL_POLICIES)
    validate_enum(v, c.get("terminationMessagePolicy"), f"{path}.terminationMessagePolicy", _TERMINATION_MSG_POLICIES)
    _container_ports(v, list_of(c.get("ports")), f"{path}.ports")
    for i, e in enumerate(list_of(c.get("env"))):
        _env_var(v, dict_of(e), f"{path}.env[{i}]")
    for i, e in enumerate(list_of(c.get("envFrom"))):
        _env_from(v, dict_of(e), f"{path}.envFrom[{i}]")
    _resources(v, dict_of(c.get("resources")), f"{path}.resources")
    _volume_mounts(v, list_of(c.get("volumeMounts")), f"{path}.volumeMounts", volumes)
    _container_restart_policy(v, c.get("restartPolicy"), f"{path}.restartPolicy", init)
    _probes(v, c, path, init)
    if c.get("lifecycle") is not None and init and c.get("restartPolicy") != "Always":
        v.add(forbidden(f"{path}.lifecycle", _INIT_ONLY_SIDECARS))
        return
    lifecycle = dict_of(c.get("lifecycle"))
    for hook in ("postStart", "preStop"):
        if lifecycle.get(hook) is not None:
            _handler(v, dict_of(lifecycle[hook]), f"{path}.lifecycle.{hook}", ("exec", "httpGet", "tcpSocket", "sleep"))


def _container_restart_policy(v: ErrorList, rp: Any, path: str, init: bool) -> None:
    """A container's own restartPolicy: only `Always`, and only on an init container (a sidecar)."""
    if not isinstance(rp, str):  # absent, or the schema's type error says it
        return
    if not init:
        v.add(forbidden(path, "may not be set for non-init containers"))
    elif rp != "Always":
        v.add(not_supported(path, rp, ("Always",)))


def _image(v: ErrorList, image: Any, path: str) -> None:
    if not image:
        v.add(required(path))
    elif image != image.strip():
        v.add(invalid(path, image, "must not have leading or trailing whitespace"))


def _container_ports(v: ErrorList, ports: list[Any], path: str) -> None:
    port_names: set[str] = set()
    for i, p in enumerate(ports):
        p = dict_of(p)
        pp = f"{path}[{i}]"
        if p.get("name"):
            v.msgs(f"{pp}.name", p["name"], names.port_name_errors(p["name"]))
            if p["name"] in port_names:
                v.add(duplicate(f"{pp}.name", p["name"]))
            port_names.add(p["name"])
        cp = p.get("containerPort")
        if not cp:
            v.add(required(f"{pp}.containerPort"))
        elif isinstance(cp, int):
            v.msgs(f"{pp}.containerPort", cp, names.port_number_errors(cp))
        hp = p.get("hostPort")
        if isinstance(hp, int) and hp != 0:
            v.msgs(f"{pp}.hostPort", hp, names.port_number_errors(hp))
        validate_enum(v, p.get("protocol"), f"{pp}.protocol", PROTOCOLS)


def _env_from(v: ErrorList, e: dict[str, Any], path: str) -> None:
    if e.get("prefix"):
        v.msgs(f"{path}.prefix", e["prefix"], names.env_var_name_errors(e["prefix"]))
    refs = [k for k in ("configMapRef", "secretRef") if e.get(k) is not None]
    if not refs:
        v.add(invalid(path, Raw('""'), "must specify one of: `configMapRef` or `secretRef`"))
    elif len(refs) > 1:
        v.add(invalid(path, Raw('""'), "may not have more than one field specified at a time"))


def _volume_mounts(v: ErrorList, mounts: list[Any], path: str, volumes: set[str]) -> None:
    """Each mount names a volume of the pod, at a unique mount path, with a relative subPath."""
    mount_paths: set[str] = set()
    for i, m in enumerate(mounts):
        m = dict_of(m)
        mp = f"{path}[{i}]"
        mname = m.get("name") or ""
        if not mname:
            v.add(required(f"{mp}.name"))
        elif mname not in volumes:
            v.add(not_found(f"{mp}.name", mname))
        mpath = m.get("mountPath") or ""
        if not mpath:
            v.add(required(f"{mp}.mountPath"))
        elif mpath in mount_paths:
            v.add(invalid(f"{mp}.mountPath", mpath, "must be unique"))
        mount_paths.add(mpath)
        # Kubernetes names these errors on the list (volumeMounts.subPath), not on the item.
        if m.get("subPath"):
            _descending_path(v, m["subPath"], f"{path}.subPath")
        if m.get("subPathExpr"):
            if m.get("subPath"):
                v.add(invalid(f"{mp}.subPathExpr", m["subPathExpr"], "subPathExpr and subPath are mutually exclusive"))
            _descending_path(v, m["subPathExpr"], f"{path}.subPathExpr")


def _probes(v: ErrorList, c: dict[str, Any], path: str, init: bool) -> None:
    """Init containers may only have probes when they are sidecars (restartPolicy Always)."""
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if c.get(probe) is not None:
            if init and c.get("restartPolicy") != "Always":
                v.add(forbidden(f"{path}.{probe}", _INIT_ONLY_SIDECARS))
                continue
            _probe(v, dict_of(c[probe]), f"{path}.{probe}", must_succeed_once=probe != "readinessProbe")


def _env_var(v: ErrorList, e: dict[str, Any], path: str) -> None:
    name = e.get("name") or ""
    if not name:
        v.add(required(f"{path}.name"))
    else:
        v.msgs(f"{path}.name", name, names.env_var_name_errors(name))
    vf = e.get("valueFrom")
    if vf is None:
        return
    vf = dict_of(vf)
    srcs = [k for k in ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef") if vf.get(k) is not None]
    if e.get("value"):
        v.add(invalid(f"{path}.valueFrom", Raw('""'), "may not be specified when `value` is not empty"))
    if not srcs:
        v.add(invalid(f"{path}.valueFrom", Raw('""'),
                      "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"))
    elif len(srcs) > 1:
        v.add(invalid(f"{path}.valueFrom", Raw('""'), "may not have more than one field specified at a time"))
    for k in ("configMapKeyRef", "secretKeyRef"):
        ref = vf.get(k)
        if ref is not None:
            ref = dict_of(ref)
            if not ref.get("key"):
                v.add(required(f"{path}.valueFrom.{k}.key"))
            else:
                v.msgs(f"{path}.valueFrom.{k}.key", ref["key"], names.config_key_errors(ref["key"]))


def _resource_name_ok(name: str) -> bool:
    if name in _STANDARD_RESOURCES or name.startswith("hugepages-"):
        return True
    return "/" in name and not names.qualified_name_errors(name)


def _resources(v: ErrorList, r: dict[str, Any], path: str) -> None:
    limits = dict_of(r.get("limits"))
    requests = dict_of(r.get("requests"))
    for which, m in (("limits", limits), ("requests", requests)):
        for name, val in m.items():
            kp = f"{path}.{which}[{name}]"
            if not _resource_name_ok(name):
                v.add(invalid(kp, name, "must be a standard resource type or fully qualified"))
            q = quantity(val)
            if q is not None and q < 0:
                v.add(invalid(kp, str(val), "must be greater than or equal to 0"))
            if q is not None and name.startswith("hugepages-") and which == "requests" and name not in limits:
                v.add(forbidden(f"{path}.limits", "HugePages require cpu or memory"))
    for name, val in requests.items():
        if name not in limits:
            continue
        rq, lq = quantity(val), quantity(limits[name])
        if rq is None or lq is None:
            continue
        overcommit = name in _STANDARD_RESOURCES
        if not overcommit and rq != lq:
            v.add(invalid(f"{path}.requests", str(val), f"must be equal to {name} limit of {limits[name]}"))
        elif rq > lq:
            v.add(invalid(f"{path}.requests", str(val),
                          f"must be less than or equal to {name} limit of {limits[name]}"))


def _handler(v: ErrorList, h: dict[str, Any], path: str, kinds: tuple[str, ...]) -> None:
    present = [k for k in kinds if h.get(k) is not None]
    if not present:
        v.add(required(path, "must specify a handler type"))
        return
    for extra in present[1:]:
        v.add(forbidden(f"{path}.{extra}", "may not specify more than 1 handler type"))
    k = present[0]
    src = dict_of(h[k])
    if k == "exec":
        if not src.get("command"):
            v.add(required(f"{path}.exec.command"))
    elif k in ("httpGet", "tcpSocket"):
        if src.get("port") is None:
            v.add(required(f"{path}.{k}.port"))
        else:
            validate_port_or_name(v, src.get("port"), f"{path}.{k}.port")
        if k == "httpGet":
            validate_enum(v, src.get("scheme"), f"{path}.httpGet.scheme", ("HTTP", "HTTPS"))
    elif k == "grpc":
        if isinstance(src.get("port"), int):
            v.msgs(f"{path}.grpc.port", src["port"], names.port_number_errors(src["port"]))


def _probe(v: ErrorList, p: dict[str, Any], path: str, must_succeed_once: bool) -> None:
    _handler(v, p, path, ("exec", "httpGet", "tcpSocket", "grpc"))
    for f in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold",
              "terminationGracePeriodSeconds"):
        validate_nonnegative(v, p.get(f), f"{path}.{f}")
    if must_succeed_once and p.get("successThreshold") not in (None, 1):
        v.add(invalid(f"{path}.successThreshold", p["successThreshold"], "must be 1"))


def validate_node_selector_term(v: ErrorList, term: dict[str, Any], path: str) -> None:
    for i, e in enumerate(list_of(term.get("matchExpressions"))):
        _node_selector_requirement(v, dict_of(e), f"{path}.matchExpressions[{i}]")
    for i, e in enumerate(list_of(term.get("matchFields"))):
        e = dict_of(e)
        p = f"{path}.matchFields[{i}]"
        if e.get("key") != "metadata.name":
            v.add(invalid(f"{p}.key", e.get("key"), "not a valid field selector key"))
        if e.get("operator") not in ("In", "NotIn"):
            v.add(invalid(f"{p}.operator", e.get("operator"), "not a valid selector operator"))
        elif len(list_of(e.get("values"))) != 1:
            v.add(required(f"{p}.values",
                           "must be only one value when `operator` is 'In' or 'NotIn' for node field selector"))


def _node_selector_requirement(v: ErrorList, e: dict[str, Any], path: str) -> None:
    """A label requirement of a node selector: the label selector's operators, plus Gt and Lt."""
    op = e.get("operator")
    vals = list_of(e.get("values"))
    if validate_set_operator(v, op, vals, path):
        pass  # In, NotIn, Exists, DoesNotExist
    elif op in ("Gt", "Lt"):
        if len(vals) != 1:
            v.add(required(f"{path}.values", "must be specified single value when `operator` is 'Lt' or 'Gt'"))
        elif not re.fullmatch(r"-?\d+", str(vals[0])):
            v.add(invalid(f"{path}.values[0]", vals[0], "must be an integer"))
    else:
        v.add(invalid(f"{path}.operator", op, "not a valid selector operator"))
    if isinstance(e.get("key"), str):
        v.msgs(f"{path}.key", e["key"], names.qualified_name_errors(e["key"]))
    if op in ("In", "NotIn"):
        for j, val in enumerate(vals):
            if isinstance(val, str):
                v.msgs(f"{path}.values[{j}]", val, names.label_value_errors(val))


def _weight(v: ErrorList, w: Any, path: str) -> None:
    if not isinstance(w, int) or isinstance(w, bool) or not 1 <= w <= 100:
        v.add(invalid(path, w, "must be in the range 1-100"))


def _affinity(v: ErrorList, aff: dict[str, Any], path: str) -> None:
    na = aff.get("nodeAffinity")
    if na is not None:
        na = dict_of(na)
        np = f"{path}.nodeAffinity"
        req = na.get("requiredDuringSchedulingIgnoredDuringExecution")
        if req is not None:
            rp = f"{np}.requiredDuringSchedulingIgnoredDuringExecution"
            terms = list_of(dict_of(req).get("nodeSelectorTerms"))
            if not terms:
                v.add(required(f"{rp}.nodeSelectorTerms", "must have at least one node selector term"))
            for i, t in enumerate(terms):
                validate_node_selector_term(v, dict_of(t), f"{rp}.nodeSelectorTerms[{i}]")
        for i, pref in enumerate(list_of(na.get("preferredDuringSchedulingIgnoredDuringExecution"))):
            pref = dict_of(pref)
            pp = f"{np}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
            _weight(v, pref.get("weight"), f"{pp}.weight")
            if pref.get("preference") is None:
                v.add(required(f"{pp}.preference"))
            else:
                validate_node_selector_term(v, dict_of(pref["preference"]), f"{pp}.preference")
    for kind in ("podAffinity", "podAntiAffinity"):
        pa = aff.get(kind)
        if pa is None:
            continue
        pa = dict_of(pa)
        kp = f"{path}.{kind}"
        for i, t in enumerate(list_of(pa.get("requiredDuringSchedulingIgnoredDuringExecution"))):
            _pod_affinity_term(v, dict_of(t), f"{kp}.requiredDuringSchedulingIgnoredDuringExecution[{i}]")
        for i, w in enumerate(list_of(pa.get("preferredDuringSchedulingIgnoredDuringExecution"))):
            w = dict_of(w)
            wp = f"{kp}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
            _weight(v, w.get("weight"), f"{wp}.weight")
            _pod_affinity_term(v, dict_of(w.get("podAffinityTerm")), f"{wp}.podAffinityTerm")


def _pod_affinity_term(v: ErrorList, t: dict[str, Any], path: str) -> None:
    if not t.get("topologyKey"):
        v.add(required(f"{path}.topologyKey", "can not be empty"))
    else:
        v.msgs(f"{path}.topologyKey", t["topologyKey"], names.qualified_name_errors(t["topologyKey"]))
    if t.get("labelSelector") is not None:
        validate_label_selector(v, dict_of(t["labelSelector"]), f"{path}.labelSelector")
    for i, ns in enumerate(list_of(t.get("namespaces"))):
        if isinstance(ns, str):
            v.msgs(f"{path}.namespaces[{i}]", ns, names.dns1123_label_errors(ns))


def _toleration(v: ErrorList, t: dict[str, Any], path: str) -> None:
    key = t.get("key") or ""
    op = t.get("operator") or ""
    if key:
        v.msgs(f"{path}.key", key, names.qualified_name_errors(key))
    elif op != "Exists":
        v.add(invalid(f"{path}.operator", op,
                      'operator must be Exists when `key` is empty, which means "match all values and all keys"'))
    if t.get("tolerationSeconds") is not None and t.get("effect") != "NoExecute":
        v.add(invalid(f"{path}.effect", t.get("effect") or "",
                      "effect must be 'NoExecute' when `tolerationSeconds` is set"))
    if op in ("", "Equal"):
        if isinstance(t.get("value"), str):
            v.msgs(f"{path}.operator", t["value"], names.label_value_errors(t["value"]))
    elif op == "Exists":
        if t.get("value"):
            v.add(invalid(f"{path}.operator", t.get("value"), "value must be empty when `operator` is 'Exists'"))
    else:
        v.add(not_supported(f"{path}.operator", op, ("Equal", "Exists")))
    validate_enum(v, t.get("effect"), f"{path}.effect", TAINT_EFFECTS)


def validate_pod_template(v: ErrorList, tmpl: Any, path: str, restart_allowed: Iterable[str]) -> None:
    if tmpl is None:
        v.add(required(path))
        return
    tmpl = dict_of(tmpl)
    meta = dict_of(tmpl.get("metadata"))
    validate_labels(v, meta.get("labels"), f"{path}.metadata.labels")
    validate_annotations(v, meta.get("annotations"), f"{path}.metadata.annotations")
    _pod_spec(v, dict_of(tmpl.get("spec")), f"{path}.spec", restart_allowed)


_POD_MUTABLE_MSG = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)"
)


def validate_pod(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = dict_of(obj.get("spec"))
    _pod_spec(v, spec, "spec")
    if old is None:
        return
    ospec = dict_of(old.get("spec"))
    # Normalise the mutable fields of the new spec to the old values, then compare.
    mnew = json.loads(json.dumps(spec))
    for kind in ("containers", "initContainers"):
        olds = list_of(ospec.get(kind))
        for i, c in enumerate(list_of(mnew.get(kind))):
            if i < len(olds) and isinstance(c, dict) and isinstance(olds[i], dict):
                if c.get("image") and "image" in olds[i]:
                    c["image"] = olds[i]["image"]
    new_ads, old_ads = spec.get("activeDeadlineSeconds"), ospec.get("activeDeadlineSeconds")
    if new_ads is not None and (old_ads is None or new_ads <= old_ads):
        mnew["activeDeadlineSeconds"] = old_ads
        if old_ads is None:
            mnew.pop("activeDeadlineSeconds", None)
    old_tols = list_of(ospec.get("tolerations"))
    new_tols = list_of(spec.get("tolerations"))
    if all(t in new_tols for t in old_tols):
        if old_tols:
            mnew["tolerations"] = old_tols
        else:
            mnew.pop("tolerations", None)
    if ospec.get("terminationGracePeriodSeconds") is not None and ospec["terminationGracePeriodSeconds"] < 0 \
            and spec.get("terminationGracePeriodSeconds") == 1:
        mnew["terminationGracePeriodSeconds"] = ospec["terminationGracePeriodSeconds"]
    # Removing scheduling gates is allowed.
    if all(g in list_of(ospec.get("schedulingGates")) for g in list_of(spec.get("schedulingGates"))):
        mnew["schedulingGates"] = ospec.get("schedulingGates")
        if "schedulingGates" not in ospec:
            mnew.pop("schedulingGates", None)
    # nodeName is set through pods/binding; accept an update that only carries the bound value.
    if not ospec.get("nodeName") and spec.get("nodeName"):
        pass
    elif spec.get("nodeName") != ospec.get("nodeName"):
        v.add(forbidden("spec", _POD_MUTABLE_MSG))
        return
    mnew["nodeName"] = ospec.get("nodeName")
    if "nodeName" not in ospec:
        mnew.pop("nodeName", None)
    if mnew != ospec:
        diff = sorted(k for k in set(mnew) | set(ospec) if mnew.get(k) != ospec.get(k))
        v.add(forbidden("spec", _POD_MUTABLE_MSG + "\n  changed: " + ", ".join(f"spec.{k}" for k in diff)))
