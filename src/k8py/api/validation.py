"""Validation of API objects, as Kubernetes' apiserver validates them.

`validate(obj, resource, old)` returns a list of `FieldError`s (empty = valid) in two
layers: structural (schema-driven: JSON types, required fields, quantity syntax, base64
of `format: byte`) and, when the structure is sound, semantic per kind (names, labels,
pod specs, workload selectors, services, ...), plus update-time immutability when `old`
is given. `unknown_fields(obj, resource)` lists fields the schema does not know, for
`fieldValidation=Strict|Warn`. Invariants: never raises on any JSON-decoded input;
messages use Kubernetes' wording (`field.Error.ErrorBody()`), paths its notation
(`spec.containers[0].image`, `metadata.labels`, `data[key]`). Semantic checks assume
the object was defaulted first (the API server calls `apply_defaults` before).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Iterable

from k8py.api import names, schema
from k8py.api.errors import QuantityError, SelectorError
from k8py.api.quantity import parse_quantity
from k8py.api.resources import Resource
from k8py.api.selectors import label_selector_from_dict

# Error types, as Kubernetes reports them in Status details.causes[].reason.
REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
DUPLICATE = "FieldValueDuplicate"
TOO_LONG = "FieldValueTooLong"
FORBIDDEN = "FieldValueForbidden"
TYPE_INVALID = "FieldValueTypeInvalid"
NOT_FOUND = "FieldValueNotFound"
TOO_MANY = "FieldValueTooMany"

_TYPE_WORDS = {
    REQUIRED: "Required value", INVALID: "Invalid value", NOT_SUPPORTED: "Unsupported value",
    DUPLICATE: "Duplicate value", TOO_LONG: "Too long", FORBIDDEN: "Forbidden",
    TYPE_INVALID: "Invalid value", NOT_FOUND: "Not found", TOO_MANY: "Too many",
}

IMMUTABLE = "field is immutable"


@dataclass(frozen=True)
class FieldError:
    """One field error. `message` is Kubernetes' ErrorBody (without the field)."""

    type: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def go_repr(v: Any) -> str:
    """A value as Go's %#v / %q print it in Kubernetes' field errors."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (int, float)):
        return str(v)
    if v is None:
        return "null"
    if isinstance(v, dict) and all(isinstance(x, str) for x in v.values()):
        return "map[string]string{" + ", ".join(
            f"{json.dumps(k)}:{json.dumps(v[k])}" for k in sorted(v)) + "}"
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return "[]string{" + ", ".join(json.dumps(x) for x in v) + "}"
    return json.dumps(v, sort_keys=True, separators=(",", ":"))


def go_map(v: dict[str, str] | None) -> str:
    return "map[string]string(nil)" if v is None else go_repr(v)


def go_label_selector(sel: dict[str, Any] | None) -> str:
    """A LabelSelector as Go prints `v1.LabelSelector{...}` (the familiar immutability message)."""
    sel = sel or {}
    ml = sel.get("matchLabels")
    exprs = sel.get("matchExpressions")
    if exprs is None:
        es = "[]v1.LabelSelectorRequirement(nil)"
    else:
        es = "[]v1.LabelSelectorRequirement{" + ", ".join(
            f'v1.LabelSelectorRequirement{{Key:{json.dumps(e.get("key", ""))}, '
            f'Operator:{json.dumps(e.get("operator", ""))}, '
            f'Values:{go_repr(e["values"]) if e.get("values") is not None else "[]string(nil)"}}}'
            for e in exprs) + "}"
    return f"v1.LabelSelector{{MatchLabels:{go_map(ml)}, MatchExpressions:{es}}}"


class _Raw:
    """A pre-formatted bad value (printed as is)."""

    def __init__(self, text: str) -> None:
        self.text = text


def _err(type_: str, path: str, value: Any = None, detail: str = "", omit_value: bool = False) -> FieldError:
    s = _TYPE_WORDS[type_]
    if type_ not in (REQUIRED, FORBIDDEN, TOO_LONG, TOO_MANY) and not omit_value:
        s += ": " + (value.text if isinstance(value, _Raw) else go_repr(value))
    if detail:
        s += ": " + detail
    return FieldError(type_, path, s)


def required(path: str, detail: str = "") -> FieldError:
    return _err(REQUIRED, path, detail=detail)


def invalid(path: str, value: Any, detail: str) -> FieldError:
    return _err(INVALID, path, value, detail)


def not_supported(path: str, value: Any, supported: Iterable[str]) -> FieldError:
    return _err(NOT_SUPPORTED, path, value, "supported values: " + ", ".join(json.dumps(s) for s in supported))


def duplicate(path: str, value: Any) -> FieldError:
    return _err(DUPLICATE, path, value)


def forbidden(path: str, detail: str) -> FieldError:
    return _err(FORBIDDEN, path, detail=detail)


def too_long(path: str, max_len: int) -> FieldError:
    return _err(TOO_LONG, path, detail=f"may not be more than {max_len} bytes")


def not_found(path: str, value: Any) -> FieldError:
    return _err(NOT_FOUND, path, value)


def type_invalid(path: str, actual: str, expected: str) -> FieldError:
    return _err(TYPE_INVALID, path, actual, f"{path} in body must be of type {expected}: {json.dumps(actual)}")


# ---------------------------------------------------------------------------------------
# Entry points


def validate(obj: dict[str, Any], resource: Resource, old: dict[str, Any] | None = None) -> list[FieldError]:
    """All field errors of `obj` (a create when `old` is None, else an update of `old`)."""
    if not isinstance(obj, dict):
        return [type_invalid("<root>", _json_type(obj), "object")]
    errs = _structural(obj, resource)
    if any(e.type == TYPE_INVALID for e in errs):
        return errs  # Kubernetes fails to decode such a body; semantic checks would be noise
    v = _V(errs)
    try:
        _semantic(v, obj, resource, old)
    except (TypeError, AttributeError, KeyError, ValueError) as exc:  # defensive: never raise
        v.add(invalid("<root>", _Raw("object"), f"cannot validate: {exc}"))
    return _dedupe(v.errs)


def unknown_fields(obj: dict[str, Any], resource: Resource) -> list[str]:
    """Paths (like `.spec.foo`, `.spec.containers[0].bar`) of fields the schema does not define."""
    root = schema.for_gvk(resource.group, resource.version, resource.kind)
    out: list[str] = []
    if root is not None and isinstance(obj, dict):
        _walk(obj, root, "", [], out)
    return out


def _dedupe(errs: list[FieldError]) -> list[FieldError]:
    """Drop repeats; of several Required errors for one field keep the most detailed."""
    seen: dict[tuple[str, str], int] = {}
    out: list[FieldError] = []
    for e in errs:
        key = (e.field, e.type) if e.type == REQUIRED else (e.field, e.message)
        if key not in seen:
            seen[key] = len(out)
            out.append(e)
        elif len(e.message) > len(out[seen[key]].message):
            out[seen[key]] = e
    return out


# ---------------------------------------------------------------------------------------
# Structural layer


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def _type_ok(v: Any, t: str) -> bool:
    if t == "null":
        return v is None
    if t == "boolean":
        return isinstance(v, bool)
    if t == "integer":
        return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if t == "string":
        return isinstance(v, str)
    if t == "array":
        return isinstance(v, list)
    if t == "object":
        return isinstance(v, dict)
    return True


def _types(s: dict[str, Any]) -> list[str]:
    t = s.get("type")
    if t is None:
        return []
    return [t] if isinstance(t, str) else list(t)


def _ref_name(s: dict[str, Any]) -> str:
    ref = s.get("$ref")
    if ref is None and len(s.get("allOf", [])) == 1:
        ref = s["allOf"][0].get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else ""


def _structural(obj: dict[str, Any], resource: Resource) -> list[FieldError]:
    root = schema.for_gvk(resource.group, resource.version, resource.kind)
    if root is None:
        return []
    errs: list[FieldError] = []
    _walk(obj, root, "", errs, None)
    return errs


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _walk(v: Any, s: dict[str, Any], path: str, errs: list[FieldError], unknown: list[str] | None) -> None:
    """Check `v` against schema `s`. With `unknown` set, only collect unknown field paths."""
    ref = _ref_name(s)
    s = schema.resolve(s)
    if v is None:
        return  # null means unset for Kubernetes' decoders
    if ref.endswith("resource.Quantity"):
        if unknown is None:
            _check_quantity_value(v, path, errs)
        return
    if "oneOf" in s:
        opts = [t for o in s["oneOf"] for t in _types(schema.resolve(o)) if t != "null"]
        if unknown is None and not any(_type_ok(v, t) for t in opts):
            errs.append(type_invalid(path, _json_type(v), ",".join(sorted(opts))))
        return
    types = [t for t in _types(s) if t != "null"]
    if types and not any(_type_ok(v, t) for t in types):
        if unknown is None:
            errs.append(type_invalid(path, _json_type(v), types[0]))
        return
    if isinstance(v, dict):
        props = s.get("properties")
        addl = s.get("additionalProperties")
        # Required fields as the schema lists them, except where Kubernetes' own validation
        # does not insist: in status (written by controllers) and on lists (semantic checks
        # require the lists that matter, e.g. spec.containers).
        if unknown is None and not (path == "status" or path.startswith("status.")):
            for r in s.get("required", []):
                if "array" in _types(schema.resolve(props.get(r, {}) if props else {})):
                    continue
                if v.get(r) is None:
                    errs.append(required(_join(path, r)))
        for k, sub in v.items():
            if props is not None and k in props:
                _walk(sub, props[k], _join(path, k), errs, unknown)
            elif isinstance(addl, dict):
                keyed = schema.resolve(addl).get("format") == "byte"
                _walk(sub, addl, f"{path}[{k}]" if keyed else _join(path, k), errs, unknown)
            elif props is not None and addl is None:
                if unknown is not None:
                    unknown.append("." + _join(path, k))
    elif isinstance(v, list):
        items = s.get("items")
        if isinstance(items, dict):
            for i, sub in enumerate(v):
                _walk(sub, items, f"{path}[{i}]", errs, unknown)
    elif isinstance(v, str) and s.get("format") == "byte" and unknown is None:
        msg = base64_error(v)
        if msg:
            errs.append(invalid(path, v, msg))


def _check_quantity_value(v: Any, path: str, errs: list[FieldError]) -> None:
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        errs.append(type_invalid(path, _json_type(v), "string"))
        return
    msg = quantity_error(str(v) if not isinstance(v, float) else repr(v))
    if msg:
        errs.append(invalid(path, str(v), msg))


def base64_error(s: str) -> str:
    """Go's encoding/base64 StdEncoding error for `s`, or "" if it decodes."""
    try:
        base64.b64decode(s.replace("\r", "").replace("\n", ""), validate=True)
        return ""
    except (binascii.Error, ValueError):
        pass
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    for i, c in enumerate(s):
        if c not in alphabet:
            if c == "=" and i >= len(s) - 2 and len(s) % 4 == 0:
                continue
            return f"illegal base64 data at input byte {i}"
    return f"illegal base64 data at input byte {len(s) - len(s) % 4}"


def quantity_error(v: Any) -> str:
    """Kubernetes' parse error message for a quantity, or "" when it parses."""
    try:
        parse_quantity(v)
        return ""
    except QuantityError as exc:  # carries Kubernetes' message
        return str(exc)


def _q(v: Any) -> Fraction | None:
    try:
        return parse_quantity(v)
    except (QuantityError, TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------------------
# Semantic layer


class _V:
    def __init__(self, errs: list[FieldError]) -> None:
        self.errs = list(errs)

    def add(self, *es: FieldError) -> None:
        self.errs.extend(es)

    def msgs(self, path: str, value: Any, msgs: list[str]) -> None:
        for m in msgs:
            self.errs.append(invalid(path, value, m))


def _d(x: Any) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}


def _l(x: Any) -> list[Any]:
    return x if isinstance(x, list) else []


NameFn = Callable[[str], list[str]]

_DNS_LABEL_NAMED = {("", "Namespace")}
_DNS1035_NAMED = {("", "Service")}
_UNCHECKED_NAMES = {("", "Event"), ("events.k8s.io", "Event")}


def _name_fn(resource: Resource) -> NameFn | None:
    key = (resource.group, resource.kind)
    if key in _UNCHECKED_NAMES:
        return None
    if key in _DNS_LABEL_NAMED:
        return names.dns1123_label_errors
    if key in _DNS1035_NAMED:
        return names.dns1035_label_errors
    return names.dns1123_subdomain_errors


def _semantic(v: _V, obj: dict[str, Any], resource: Resource, old: dict[str, Any] | None) -> None:
    meta = _d(obj.get("metadata"))
    _object_meta(v, meta, resource, "metadata")
    if old is not None:
        _object_meta_update(v, meta, _d(old.get("metadata")))
    fn = _KIND_VALIDATORS.get((resource.group, resource.kind))
    if fn is not None:
        fn(v, obj, old)


def _object_meta(v: _V, meta: dict[str, Any], resource: Resource, path: str) -> None:
    name = meta.get("name") or ""
    gen = meta.get("generateName") or ""
    name_fn = _name_fn(resource)
    if not name and not gen:
        v.add(required(f"{path}.name", "name or generateName is required"))
    if name and name_fn:
        v.msgs(f"{path}.name", name, name_fn(name))
    if gen and name_fn:
        prefix = gen[:-1] if gen.endswith("-") else gen
        v.msgs(f"{path}.generateName", gen, name_fn(prefix) if prefix else [])
    ns = meta.get("namespace")
    if resource.namespaced:
        if ns:
            v.msgs(f"{path}.namespace", ns, names.dns1123_label_errors(ns))
    elif ns:
        v.add(forbidden(f"{path}.namespace", "not allowed on this type"))
    _labels(v, meta.get("labels"), f"{path}.labels")
    _annotations(v, meta.get("annotations"), f"{path}.annotations")
    _owner_refs(v, meta.get("ownerReferences"), f"{path}.ownerReferences")
    for i, f in enumerate(_l(meta.get("finalizers"))):
        if isinstance(f, str):
            v.msgs(f"{path}.finalizers[{i}]", f, names.qualified_name_errors(f))


def _labels(v: _V, labels: Any, path: str) -> None:
    for k, val in _d(labels).items():
        v.msgs(path, k, names.qualified_name_errors(k))
        if isinstance(val, str):
            v.msgs(path, val, names.label_value_errors(val))


_ANNOTATIONS_MAX = 256 * 1024


def _annotations(v: _V, ann: Any, path: str) -> None:
    total = 0
    for k, val in _d(ann).items():
        v.msgs(path, k, names.qualified_name_errors(k.lower()))
        total += len(k) + len(val if isinstance(val, str) else "")
    if total > _ANNOTATIONS_MAX:
        v.add(too_long(path, _ANNOTATIONS_MAX))


def _owner_refs(v: _V, refs: Any, path: str) -> None:
    controllers = []
    for i, r in enumerate(_l(refs)):
        r = _d(r)
        p = f"{path}[{i}]"
        for f in ("apiVersion", "kind", "name", "uid"):
            if not r.get(f):
                v.add(invalid(f"{p}.{f}", r.get(f) or "", f"{f} must not be empty"))
        if r.get("controller"):
            controllers.append(r.get("name", ""))
    if len(controllers) > 1:
        v.add(invalid(path, _Raw("[]v1.OwnerReference{...}"),
                      "Only one reference can have Controller set to true. Found \"true\" in references for "
                      + " and ".join(controllers)))


def _object_meta_update(v: _V, new: dict[str, Any], old: dict[str, Any]) -> None:
    for f in ("name", "namespace", "uid", "creationTimestamp"):
        if old.get(f) and new.get(f) and new.get(f) != old.get(f):
            v.add(invalid(f"metadata.{f}", new.get(f), IMMUTABLE))


def _immutable(v: _V, new: Any, old: Any, path: str, shown: Any = None) -> None:
    if new != old:
        v.add(invalid(path, shown if shown is not None else new, IMMUTABLE))


def _nonneg(v: _V, x: Any, path: str) -> None:
    if isinstance(x, (int, float)) and not isinstance(x, bool) and x < 0:
        v.add(invalid(path, x, "must be greater than or equal to 0"))


def _positive(v: _V, x: Any, path: str) -> None:
    if isinstance(x, (int, float)) and not isinstance(x, bool) and x <= 0:
        v.add(invalid(path, x, "must be greater than 0"))


def _enum(v: _V, x: Any, path: str, allowed: Iterable[str], required_: bool = False) -> None:
    allowed = list(allowed)
    if x is None or x == "":
        if required_:
            v.add(required(path))
        return
    if x not in allowed:
        v.add(not_supported(path, x, allowed))


def _port_or_name(v: _V, x: Any, path: str) -> None:
    if isinstance(x, bool):
        return
    if isinstance(x, int):
        v.msgs(path, x, names.port_number_errors(x))
    elif isinstance(x, str):
        if x.isdigit():
            v.msgs(path, x, names.port_number_errors(int(x)))
        else:
            v.msgs(path, x, names.port_name_errors(x))


# --- label selectors -------------------------------------------------------------------

_SELECTOR_OPS = ("In", "NotIn", "Exists", "DoesNotExist")


def _label_selector(v: _V, sel: dict[str, Any], path: str) -> None:
    _labels(v, sel.get("matchLabels"), f"{path}.matchLabels")
    for i, e in enumerate(_l(sel.get("matchExpressions"))):
        e = _d(e)
        p = f"{path}.matchExpressions[{i}]"
        op = e.get("operator")
        vals = e.get("values") or []
        if op in ("In", "NotIn"):
            if not vals:
                v.add(required(f"{p}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if vals:
                v.add(forbidden(f"{p}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            v.add(invalid(f"{p}.operator", op, "not a valid selector operator"))
        key = e.get("key")
        if isinstance(key, str):
            v.msgs(f"{p}.key", key, names.qualified_name_errors(key))
        for j, val in enumerate(vals):
            if isinstance(val, str):
                v.msgs(f"{p}.values[{j}]", val, names.label_value_errors(val))


def _selector_matches(sel: dict[str, Any], labels: dict[str, str]) -> bool | None:
    """Whether a LabelSelector dict selects `labels`; None when the selector is unusable."""
    try:
        return bool(label_selector_from_dict(sel).matches(labels))
    except (SelectorError, TypeError, ValueError):
        return None


def _selector_empty(sel: dict[str, Any] | None) -> bool:
    sel = sel or {}
    return not sel.get("matchLabels") and not sel.get("matchExpressions")


# --- pods ------------------------------------------------------------------------------

_RESTART_POLICIES = ("Always", "OnFailure", "Never")
_DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
_PROTOCOLS = ("SCTP", "TCP", "UDP")
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_TERMINATION_MSG_POLICIES = ("File", "FallbackToLogsOnError")
_STANDARD_RESOURCES = ("cpu", "memory", "ephemeral-storage")
_NODE_SELECTOR_OPS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def _volume_sources() -> list[str]:
    props = schema.definitions()["io.k8s.api.core.v1.Volume"]["properties"]
    return [k for k in props if k != "name"]


def _pv_sources() -> list[str]:
    props = schema.definitions()["io.k8s.api.core.v1.PersistentVolumeSpec"]["properties"]
    skip = {"accessModes", "capacity", "claimRef", "mountOptions", "nodeAffinity", "persistentVolumeReclaimPolicy",
            "storageClassName", "volumeAttributesClassName", "volumeMode"}
    return [k for k in props if k not in skip]


def _pod_spec(v: _V, spec: dict[str, Any], path: str, restart_allowed: Iterable[str] = _RESTART_POLICIES) -> None:
    containers = _l(spec.get("containers"))
    init = _l(spec.get("initContainers"))
    if not containers:
        v.add(required(f"{path}.containers"))
    volumes = _volumes(v, _l(spec.get("volumes")), f"{path}.volumes")
    seen: set[str] = set()
    for kind, lst in (("initContainers", init), ("containers", containers)):
        for i, c in enumerate(lst):
            _container(v, _d(c), f"{path}.{kind}[{i}]", volumes, seen, init=kind == "initContainers")
    allowed = list(restart_allowed)
    rp = spec.get("restartPolicy")
    if allowed == list(_RESTART_POLICIES):
        _enum(v, rp, f"{path}.restartPolicy", allowed)
    elif rp not in allowed and (rp or "Always" not in allowed):  # unset means Always (defaulting)
        v.add(not_supported(f"{path}.restartPolicy", rp or "", allowed))
    _enum(v, spec.get("dnsPolicy"), f"{path}.dnsPolicy", _DNS_POLICIES)
    if spec.get("dnsPolicy") == "None" and not _d(spec.get("dnsConfig")).get("nameservers"):
        v.add(required(f"{path}.dnsConfig.nameservers",
                       "must provide at least one DNS nameserver when `dnsPolicy` is None"))
    _labels(v, spec.get("nodeSelector"), f"{path}.nodeSelector")
    ads = spec.get("activeDeadlineSeconds")
    if isinstance(ads, int) and not isinstance(ads, bool) and not 1 <= ads <= 2**31 - 1:
        v.add(invalid(f"{path}.activeDeadlineSeconds", ads, "must be between 1 and 2147483647, inclusive"))
    _nonneg(v, spec.get("terminationGracePeriodSeconds"), f"{path}.terminationGracePeriodSeconds")
    for f in ("hostname", "subdomain"):
        if spec.get(f):
            v.msgs(f"{path}.{f}", spec[f], names.dns1123_label_errors(spec[f]))
    for f in ("serviceAccountName", "nodeName"):
        if spec.get(f):
            v.msgs(f"{path}.{f}", spec[f], names.dns1123_subdomain_errors(spec[f]))
    _affinity(v, _d(spec.get("affinity")), f"{path}.affinity")
    for i, t in enumerate(_l(spec.get("tolerations"))):
        _toleration(v, _d(t), f"{path}.tolerations[{i}]")
    if spec.get("hostNetwork"):
        for kind, lst in (("initContainers", init), ("containers", containers)):
            for i, c in enumerate(lst):
                for j, p in enumerate(_l(_d(c).get("ports"))):
                    p = _d(p)
                    if p.get("hostPort") and p.get("hostPort") != p.get("containerPort"):
                        v.add(invalid(f"{path}.{kind}[{i}].ports[{j}].containerPort", p.get("containerPort"),
                                      "must match `hostPort` when `hostNetwork` is true"))


def _volumes(v: _V, vols: list[Any], path: str) -> set[str]:
    seen: set[str] = set()
    sources = _volume_sources()
    for i, vol in enumerate(vols):
        vol = _d(vol)
        p = f"{path}[{i}]"
        _unique_label(v, vol.get("name") or "", f"{p}.name", seen)
        present = [s for s in sources if vol.get(s) is not None]
        if not present:
            v.add(required(p, "must specify a volume type"))
        for extra in present[1:]:
            v.add(forbidden(f"{p}.{extra}", "may not specify more than 1 volume type"))
        if present:
            _volume_source(v, present[0], _d(vol.get(present[0])), f"{p}.{present[0]}")
    return seen


def _unique_label(v: _V, name: str, path: str, seen: set[str]) -> None:
    """A required DNS-1123 label name, unique among `seen` (which it joins)."""
    if not name:
        v.add(required(path))
        return
    v.msgs(path, name, names.dns1123_label_errors(name))
    if name in seen:
        v.add(duplicate(path, name))
    seen.add(name)


def _mode(v: _V, m: Any, path: str) -> None:
    if isinstance(m, int) and not isinstance(m, bool) and not 0 <= m <= 0o777:
        v.add(invalid(path, m, "must be a number between 0 and 0777 (octal), both inclusive"))


def _volume_source(v: _V, kind: str, src: dict[str, Any], path: str) -> None:
    if kind == "hostPath":
        if not src.get("path"):
            v.add(required(f"{path}.path"))
        _enum(v, src.get("type"), f"{path}.type",
              ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice"))
    elif kind == "persistentVolumeClaim":
        if not src.get("claimName"):
            v.add(required(f"{path}.claimName"))
    elif kind == "emptyDir":
        _enum(v, src.get("medium"), f"{path}.medium", ("", "Memory", "HugePages"))
        if src.get("sizeLimit") is not None:
            q = _q(src["sizeLimit"])
            if q is not None and q < 0:
                v.add(invalid(f"{path}.sizeLimit", str(src["sizeLimit"]), "must be greater than or equal to 0"))
    elif kind in ("secret", "configMap"):
        if kind == "secret" and not src.get("secretName"):
            v.add(required(f"{path}.secretName"))
        _mode(v, src.get("defaultMode"), f"{path}.defaultMode")
        for j, item in enumerate(_l(src.get("items"))):
            item = _d(item)
            ip = f"{path}.items[{j}]"
            if not item.get("key"):
                v.add(required(f"{ip}.key"))
            _relative_path(v, item.get("path"), f"{ip}.path")
            _mode(v, item.get("mode"), f"{ip}.mode")
    elif kind == "nfs":
        if not src.get("server"):
            v.add(required(f"{path}.server"))
        if not src.get("path"):
            v.add(required(f"{path}.path"))


def _relative_path(v: _V, p: Any, path: str) -> None:
    if not p:
        v.add(required(path))
        return
    if p.startswith("/"):
        v.add(invalid(path, p, "must be a relative path"))
    if ".." in p.split("/"):
        v.add(invalid(path, p, "must not contain '..'"))


def _container(v: _V, c: dict[str, Any], path: str, volumes: set[str], seen: set[str], init: bool) -> None:
    _unique_label(v, c.get("name") or "", f"{path}.name", seen)
    image = c.get("image")
    if not image:
        v.add(required(f"{path}.image"))
    elif image != image.strip():
        v.add(invalid(f"{path}.image", image, "must not have leading or trailing whitespace"))
    _enum(v, c.get("imagePullPolicy"), f"{path}.imagePullPolicy", _PULL_POLICIES)
    _enum(v, c.get("terminationMessagePolicy"), f"{path}.terminationMessagePolicy", _TERMINATION_MSG_POLICIES)
    port_names: set[str] = set()
    for i, p in enumerate(_l(c.get("ports"))):
        p = _d(p)
        pp = f"{path}.ports[{i}]"
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
        _enum(v, p.get("protocol"), f"{pp}.protocol", _PROTOCOLS)
    for i, e in enumerate(_l(c.get("env"))):
        _env_var(v, _d(e), f"{path}.env[{i}]")
    for i, e in enumerate(_l(c.get("envFrom"))):
        e = _d(e)
        ep = f"{path}.envFrom[{i}]"
        if e.get("prefix"):
            v.msgs(f"{ep}.prefix", e["prefix"], names.env_var_name_errors(e["prefix"]))
        refs = [k for k in ("configMapRef", "secretRef") if e.get(k) is not None]
        if not refs:
            v.add(invalid(ep, _Raw('""'), "must specify one of: `configMapRef` or `secretRef`"))
        elif len(refs) > 1:
            v.add(invalid(ep, _Raw('""'), "may not have more than one field specified at a time"))
    _resources(v, _d(c.get("resources")), f"{path}.resources")
    mounts: set[str] = set()
    for i, m in enumerate(_l(c.get("volumeMounts"))):
        m = _d(m)
        mp = f"{path}.volumeMounts[{i}]"
        mname = m.get("name") or ""
        if not mname:
            v.add(required(f"{mp}.name"))
        elif mname not in volumes:
            v.add(not_found(f"{mp}.name", mname))
        mpath = m.get("mountPath") or ""
        if not mpath:
            v.add(required(f"{mp}.mountPath"))
        elif mpath in mounts:
            v.add(invalid(f"{mp}.mountPath", mpath, "must be unique"))
        mounts.add(mpath)
        if m.get("subPath"):
            sp = m["subPath"]
            if sp.startswith("/"):
                v.add(invalid(f"{mp}.subPath", sp, "must be a relative path"))
            elif ".." in sp.split("/"):
                v.add(invalid(f"{mp}.subPath", sp, "must not contain '..'"))
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if c.get(probe) is not None:
            if init and c.get("restartPolicy") != "Always":
                v.add(forbidden(f"{path}.{probe}", "may not be set for init containers without restartPolicy=Always"))
                continue
            _probe(v, _d(c[probe]), f"{path}.{probe}", must_succeed_once=probe != "readinessProbe")
    lifecycle = _d(c.get("lifecycle"))
    for hook in ("postStart", "preStop"):
        if lifecycle.get(hook) is not None:
            _handler(v, _d(lifecycle[hook]), f"{path}.lifecycle.{hook}", ("exec", "httpGet", "tcpSocket", "sleep"))


def _env_var(v: _V, e: dict[str, Any], path: str) -> None:
    name = e.get("name") or ""
    if not name:
        v.add(required(f"{path}.name"))
    else:
        v.msgs(f"{path}.name", name, names.env_var_name_errors(name))
    vf = e.get("valueFrom")
    if vf is None:
        return
    vf = _d(vf)
    srcs = [k for k in ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef") if vf.get(k) is not None]
    if e.get("value"):
        v.add(invalid(f"{path}.valueFrom", _Raw('""'), "may not be specified when `value` is not empty"))
    if not srcs:
        v.add(invalid(f"{path}.valueFrom", _Raw('""'),
                      "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"))
    elif len(srcs) > 1:
        v.add(invalid(f"{path}.valueFrom", _Raw('""'), "may not have more than one field specified at a time"))
    for k in ("configMapKeyRef", "secretKeyRef"):
        ref = vf.get(k)
        if ref is not None:
            ref = _d(ref)
            if not ref.get("key"):
                v.add(required(f"{path}.valueFrom.{k}.key"))
            else:
                v.msgs(f"{path}.valueFrom.{k}.key", ref["key"], names.config_key_errors(ref["key"]))


def _resource_name_ok(name: str) -> bool:
    if name in _STANDARD_RESOURCES or name.startswith("hugepages-"):
        return True
    return "/" in name and not names.qualified_name_errors(name)


def _resources(v: _V, r: dict[str, Any], path: str) -> None:
    limits = _d(r.get("limits"))
    requests = _d(r.get("requests"))
    for which, m in (("limits", limits), ("requests", requests)):
        for name, val in m.items():
            kp = f"{path}.{which}[{name}]"
            if not _resource_name_ok(name):
                v.add(invalid(kp, name, "must be a standard resource type or fully qualified"))
            q = _q(val)
            if q is not None and q < 0:
                v.add(invalid(kp, str(val), "must be greater than or equal to 0"))
            if q is not None and name.startswith("hugepages-") and which == "requests" and name not in limits:
                v.add(forbidden(f"{path}.limits", "HugePages require cpu or memory"))
    for name, val in requests.items():
        if name not in limits:
            continue
        rq, lq = _q(val), _q(limits[name])
        if rq is None or lq is None:
            continue
        overcommit = name in _STANDARD_RESOURCES
        if not overcommit and rq != lq:
            v.add(invalid(f"{path}.requests", str(val), f"must be equal to {name} limit of {limits[name]}"))
        elif rq > lq:
            v.add(invalid(f"{path}.requests", str(val), f"must be less than or equal to {name} limit of {limits[name]}"))


def _handler(v: _V, h: dict[str, Any], path: str, kinds: tuple[str, ...]) -> None:
    present = [k for k in kinds if h.get(k) is not None]
    if not present:
        v.add(required(path, "must specify a handler type"))
        return
    for extra in present[1:]:
        v.add(forbidden(f"{path}.{extra}", "may not specify more than 1 handler type"))
    k = present[0]
    src = _d(h[k])
    if k == "exec":
        if not src.get("command"):
            v.add(required(f"{path}.exec.command"))
    elif k in ("httpGet", "tcpSocket"):
        if src.get("port") is None:
            v.add(required(f"{path}.{k}.port"))
        else:
            _port_or_name(v, src.get("port"), f"{path}.{k}.port")
        if k == "httpGet":
            _enum(v, src.get("scheme"), f"{path}.httpGet.scheme", ("HTTP", "HTTPS"))
    elif k == "grpc":
        if isinstance(src.get("port"), int):
            v.msgs(f"{path}.grpc.port", src["port"], names.port_number_errors(src["port"]))


def _probe(v: _V, p: dict[str, Any], path: str, must_succeed_once: bool) -> None:
    _handler(v, p, path, ("exec", "httpGet", "tcpSocket", "grpc"))
    for f in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold",
              "terminationGracePeriodSeconds"):
        _nonneg(v, p.get(f), f"{path}.{f}")
    if must_succeed_once and p.get("successThreshold") not in (None, 1):
        v.add(invalid(f"{path}.successThreshold", p["successThreshold"], "must be 1"))


def _node_selector_term(v: _V, term: dict[str, Any], path: str) -> None:
    for i, e in enumerate(_l(term.get("matchExpressions"))):
        e = _d(e)
        p = f"{path}.matchExpressions[{i}]"
        op = e.get("operator")
        vals = _l(e.get("values"))
        if op in ("In", "NotIn"):
            if not vals:
                v.add(required(f"{p}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if vals:
                v.add(forbidden(f"{p}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        elif op in ("Gt", "Lt"):
            if len(vals) != 1:
                v.add(required(f"{p}.values", "must be specified single value when `operator` is 'Lt' or 'Gt'"))
            elif not re.fullmatch(r"-?\d+", str(vals[0])):
                v.add(invalid(f"{p}.values[0]", vals[0], "must be an integer"))
        else:
            v.add(invalid(f"{p}.operator", op, "not a valid selector operator"))
        if isinstance(e.get("key"), str):
            v.msgs(f"{p}.key", e["key"], names.qualified_name_errors(e["key"]))
        if op in ("In", "NotIn"):
            for j, val in enumerate(vals):
                if isinstance(val, str):
                    v.msgs(f"{p}.values[{j}]", val, names.label_value_errors(val))
    for i, e in enumerate(_l(term.get("matchFields"))):
        e = _d(e)
        p = f"{path}.matchFields[{i}]"
        if e.get("key") != "metadata.name":
            v.add(invalid(f"{p}.key", e.get("key"), "not a valid field selector key"))
        if e.get("operator") not in ("In", "NotIn"):
            v.add(invalid(f"{p}.operator", e.get("operator"), "not a valid selector operator"))
        elif len(_l(e.get("values"))) != 1:
            v.add(required(f"{p}.values", "must be only one value when `operator` is 'In' or 'NotIn' for node field selector"))


def _weight(v: _V, w: Any, path: str) -> None:
    if not isinstance(w, int) or isinstance(w, bool) or not 1 <= w <= 100:
        v.add(invalid(path, w, "must be in the range 1-100"))


def _affinity(v: _V, aff: dict[str, Any], path: str) -> None:
    na = aff.get("nodeAffinity")
    if na is not None:
        na = _d(na)
        np = f"{path}.nodeAffinity"
        req = na.get("requiredDuringSchedulingIgnoredDuringExecution")
        if req is not None:
            rp = f"{np}.requiredDuringSchedulingIgnoredDuringExecution"
            terms = _l(_d(req).get("nodeSelectorTerms"))
            if not terms:
                v.add(required(f"{rp}.nodeSelectorTerms", "must have at least one node selector term"))
            for i, t in enumerate(terms):
                _node_selector_term(v, _d(t), f"{rp}.nodeSelectorTerms[{i}]")
        for i, pref in enumerate(_l(na.get("preferredDuringSchedulingIgnoredDuringExecution"))):
            pref = _d(pref)
            pp = f"{np}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
            _weight(v, pref.get("weight"), f"{pp}.weight")
            if pref.get("preference") is None:
                v.add(required(f"{pp}.preference"))
            else:
                _node_selector_term(v, _d(pref["preference"]), f"{pp}.preference")
    for kind in ("podAffinity", "podAntiAffinity"):
        pa = aff.get(kind)
        if pa is None:
            continue
        pa = _d(pa)
        kp = f"{path}.{kind}"
        for i, t in enumerate(_l(pa.get("requiredDuringSchedulingIgnoredDuringExecution"))):
            _pod_affinity_term(v, _d(t), f"{kp}.requiredDuringSchedulingIgnoredDuringExecution[{i}]")
        for i, w in enumerate(_l(pa.get("preferredDuringSchedulingIgnoredDuringExecution"))):
            w = _d(w)
            wp = f"{kp}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
            _weight(v, w.get("weight"), f"{wp}.weight")
            _pod_affinity_term(v, _d(w.get("podAffinityTerm")), f"{wp}.podAffinityTerm")


def _pod_affinity_term(v: _V, t: dict[str, Any], path: str) -> None:
    if not t.get("topologyKey"):
        v.add(required(f"{path}.topologyKey", "can not be empty"))
    else:
        v.msgs(f"{path}.topologyKey", t["topologyKey"], names.qualified_name_errors(t["topologyKey"]))
    if t.get("labelSelector") is not None:
        _label_selector(v, _d(t["labelSelector"]), f"{path}.labelSelector")
    for i, ns in enumerate(_l(t.get("namespaces"))):
        if isinstance(ns, str):
            v.msgs(f"{path}.namespaces[{i}]", ns, names.dns1123_label_errors(ns))


def _toleration(v: _V, t: dict[str, Any], path: str) -> None:
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
    _enum(v, t.get("effect"), f"{path}.effect", _TAINT_EFFECTS)


def _pod_template(v: _V, tmpl: Any, path: str, restart_allowed: Iterable[str]) -> None:
    if tmpl is None:
        v.add(required(path))
        return
    tmpl = _d(tmpl)
    meta = _d(tmpl.get("metadata"))
    _labels(v, meta.get("labels"), f"{path}.metadata.labels")
    _annotations(v, meta.get("annotations"), f"{path}.metadata.annotations")
    _pod_spec(v, _d(tmpl.get("spec")), f"{path}.spec", restart_allowed)


_POD_MUTABLE_MSG = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)"
)


def _validate_pod(v: _V, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = _d(obj.get("spec"))
    _pod_spec(v, spec, "spec")
    if old is None:
        return
    ospec = _d(old.get("spec"))
    # Normalise the mutable fields of the new spec to the old values, then compare.
    mnew = json.loads(json.dumps(spec))
    for kind in ("containers", "initContainers"):
        olds = _l(ospec.get(kind))
        for i, c in enumerate(_l(mnew.get(kind))):
            if i < len(olds) and isinstance(c, dict) and isinstance(olds[i], dict):
                if c.get("image") and "image" in olds[i]:
                    c["image"] = olds[i]["image"]
    new_ads, old_ads = spec.get("activeDeadlineSeconds"), ospec.get("activeDeadlineSeconds")
    if new_ads is not None and (old_ads is None or new_ads <= old_ads):
        mnew["activeDeadlineSeconds"] = old_ads
        if old_ads is None:
            mnew.pop("activeDeadlineSeconds", None)
    old_tols = _l(ospec.get("tolerations"))
    new_tols = _l(spec.get("tolerations"))
    if all(t in new_tols for t in old_tols):
        if old_tols:
            mnew["tolerations"] = old_tols
        else:
            mnew.pop("tolerations", None)
    if ospec.get("terminationGracePeriodSeconds") is not None and ospec["terminationGracePeriodSeconds"] < 0 \
            and spec.get("terminationGracePeriodSeconds") == 1:
        mnew["terminationGracePeriodSeconds"] = ospec["terminationGracePeriodSeconds"]
    # Removing scheduling gates is allowed.
    if all(g in _l(ospec.get("schedulingGates")) for g in _l(spec.get("schedulingGates"))):
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


# --- workloads -------------------------------------------------------------------------


def _selector_and_template(v: _V, spec: dict[str, Any], kind_word: str) -> None:
    sel = spec.get("selector")
    tmpl = spec.get("template")
    if sel is None:
        v.add(required("spec.selector"))
    else:
        sel = _d(sel)
        if _selector_empty(sel):
            v.add(invalid("spec.selector", _Raw(go_label_selector(sel)), f"empty selector is invalid for {kind_word}"))
        else:
            before = len(v.errs)
            _label_selector(v, sel, "spec.selector")
            if len(v.errs) == before and tmpl is not None:
                labels = _d(_d(_d(tmpl).get("metadata")).get("labels"))
                if _selector_matches(sel, labels) is False:
                    v.add(invalid("spec.template.metadata.labels", _Raw(go_map(_d(tmpl).get("metadata", {}).get("labels"))),
                                  "`selector` does not match template `labels`"))


def _replicas(v: _V, spec: dict[str, Any]) -> None:
    _nonneg(v, spec.get("replicas"), "spec.replicas")
    _nonneg(v, spec.get("minReadySeconds"), "spec.minReadySeconds")
    _nonneg(v, spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit")


def _int_or_percent(v: _V, x: Any, path: str) -> tuple[bool, int | None]:
    """Validates a maxSurge/maxUnavailable value; returns (is_zero, percent_or_None)."""
    if x is None:
        return False, None
    if isinstance(x, int) and not isinstance(x, bool):
        _nonneg(v, x, path)
        return x == 0, None
    if isinstance(x, str):
        m = re.fullmatch(r"(\d+)%", x)
        if not m:
            v.add(invalid(path, x, "a valid percent string must be a numeric string followed by an ending '%' "
                                   "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"))
            return False, None
        pct = int(m.group(1))
        if pct > 100:
            v.add(invalid(path, x, "must not be greater than 100%"))
        return pct == 0, pct
    return False, None


def _rolling(v: _V, ru: dict[str, Any], path: str) -> None:
    unavail_zero, _ = _int_or_percent(v, ru.get("maxUnavailable"), f"{path}.maxUnavailable")
    surge_zero, _ = _int_or_percent(v, ru.get("maxSurge"), f"{path}.maxSurge")
    surge_unset = ru.get("maxSurge") is None
    if unavail_zero and (surge_zero or surge_unset) and "maxUnavailable" in ru:
        v.add(invalid(f"{path}.maxUnavailable", ru.get("maxUnavailable"), "may not be 0 when `maxSurge` is 0"))


def _validate_deployment(v: _V, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = _d(obj.get("spec"))
    _replicas(v, spec)
    _selector_and_template(v, spec, "deployment")
    _pod_template(v, spec.get("template"), "spec.template", ("Always",))
    strat = _d(spec.get("strategy"))
    st = strat.get("type")
    _enum(v, st, "spec.strategy.type", ("Recreate", "RollingUpdate"))
    if st == "Recreate" and strat.get("rollingUpdate") is not None:
        v.add(forbidden("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"))
    elif strat.get("rollingUpdate") is not None:
        _rolling(v, _d(strat["rollingUpdate"]), "spec.strategy.rollingUpdate")
    pds = spec.get("progressDeadlineSeconds")
    if isinstance(pds, int) and not isinstance(pds, bool):
        _nonneg(v, pds, "spec.progressDeadlineSeconds")
        mrs = spec.get("minReadySeconds") or 0
        if pds <= mrs:
            v.add(invalid("spec.progressDeadlineSeconds", pds, "must be greater than minReadySeconds"))
    if old is not None:
        _selector_immutable(v, spec, _d(old.get("spec")))


def _selector_immutable(v: _V, spec: dict[str, Any], ospec: dict[str, Any]) -> None:
    if spec.get("selector") != ospec.get("selector"):
        v.add(invalid("spec.selector", _Raw(go_label_selector(_d(spec.get("selector")))), IMMUTABLE))


def _validate_replicaset(v: _V, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = _d(obj.get("spec"))
    _replicas(v, spec)
    _selector_and_template(v, spec, "deployment")
    _pod_template(v, spec.get("template"), "spec.template", ("Always",))
    if old is not None:
        _selector_immutable(v, spec, _d(old.get("spec")))


def _validate_rc(v: _V, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = _d(obj.get("spec"))
    _replicas(v, spec)
    sel = _d(spec.get("selector"))
    if not sel:
        v.add(required("spec.selector"))
    else:
        _labels(v, sel, "spec.selector")
    tmpl = spec.get("template")
    if tmpl is None:
        v.add(required("spec.template"))
        return
    labels = _d(_d(_d(tmpl).get("metadata")).get("labels"))
    if sel and any(labels.get(k) != val for k, val in sel.items()):
        v.add(invalid("spec.template.metadata.labels", _Raw(go_map(labels)),
                      "`selector` does not match template `labels`"))
    _pod_template(v, tmpl, "spec.template", ("Always",))


def _validate_daemonset(v: _V, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = _d(obj.get("spec"))
    _nonneg(v, spec.get("minReadySeconds"), "spec.minReadySeconds")
    _nonneg(v, spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit")
    _selector_and_template(v, spec, "daemonset")
    _pod_template(v, spec.get("template"), "spec.template", ("Always",))
    us = _d(spec.get("updateStrategy"))
    _enum(v, us.get("type"), "spec.updateStrategy.type", ("OnDelete", "RollingUpdate"))
    if us.get("type") == "RollingUpdate" and us.get("rollingUpdate") is not None:
        ru = _d(us["rollingUpdate"])
        uz, _ = _int_or_percent(v, ru.get("maxUnavailable"), "spec.updateStrategy.rollingUpdate.maxUnavailable")
        sz, _ = _int_or_percent(v, ru.get("maxSurge"), "spec.updateStrategy.rollingUpdate.maxSurge")
        if uz and (sz or ru.get("maxSurge") is None):
            v.add(invalid("spec.updateStrategy.rollingUpdate.maxUnavailable", ru.get("maxUnavailable"),
                          "may not be 0 when `maxSurge` is 0"))
    if old is not None:
        _selector_immutable(v, spec, _d(old.get("spec")))


def _validate_statefulset(v: _V, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = _d(obj.get("spec"))
    _replicas(v, spec)
    _selector_and_template(v, spec, "statefulset")
    _pod_template(v, spec.get("template"), "spec.template", ("Always",))
    _enum(v, spec.get("podManagementPolicy"), "spec.podManagementPolicy", ("OrderedReady", "Parallel"))
    us = _d(spec.get("updateStrategy"))
    _enum(v, us.get("type"), "spec.updateStrategy.type", ("OnDelete", "RollingUpdate"))
    if old is not None:
        ospec = _d(old.get("spec"))
        mutable = ("replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
                   "minReadySeconds")
        if {k: x for k, x in spec.items() if k not in mutable} != {k: x for k, x in ospec.items() if k not in mutable}:
            v.add(forbidden("spec", "updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                                    "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
                                    "'minReadySeconds' are forbidden"))


def _job_spec(v: _V, spec: dict[str, Any], path: str) -> None:
    for f in ("parallelism", "completions", "backoffLimit", "ttlSecondsAfterFinished"):
        _nonneg(v, spec.get(f), f"{path}.{f}")
    ads = spec.get("activeDeadlineSeconds")
    if ads is not None:
        _positive(v, ads, f"{path}.activeDeadlineSeconds")
    _enum(v, spec.get("completionMode"), f"{path}.completionMode", ("NonIndexed", "Indexed"))
    if spec.get("completionMode") == "Indexed" and spec.get("completions") is None:
        v.add(required(f"{path}.completions", "when completion mode is Indexed"))
    sel = spec.get("selector")
    tmpl = spec.get("template")
    if sel is not None and tmpl is not None:
        labels = _d(_d(_d(tmpl).get("metadata")).get("labels"))
        before = len(v.errs)
        _label_selector(v, _d(sel), f"{path}.selector")
        if len(v.errs) == before and _selector_matches(_d(sel), labels) is False:
            v.add(invalid(f"{path}.template.metadata.labels", _Raw(go_map(labels)),
                          "`selector` does not match template `labels`"))
    if tmpl is None:
        v.add(required(f"{path}.template"))
        return
    _pod_template(v, tmpl, f"{path}.template", ("OnFailure", "Never"))


def _validate_job(v: _V, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = _d(obj.get("spec"))
    _job_spec(v, spec, "spec")
    if old is not None:
        ospec = _d(old.get("spec"))
        if ospec.get("selector") is not None:
            _immutable(v, spec.get("selector"), ospec.get("selector"), "spec.selector",
                       _Raw(go_label_selector(_d(spec.get("selector")))))
        if ospec.get("completions") is not None and spec.get("completionMode") != "Indexed":
            _immutable(v, spec.get("completions"), ospec.get("completions"), "spec.completions")
        if spec.get("template") != ospec.get("template"):
            v.add(invalid("spec.template", _Raw("core.PodTemplateSpec{...}"), IMMUTABLE))


_CRON_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


def cron_error(sched: str) -> str:
    """Why a cron schedule is invalid, or "" (five fields, macros or @every)."""
    s = sched.strip()
    if s.startswith(("TZ=", "CRON_TZ=")):
        return "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
    if s in _CRON_MACROS:
        return ""
    if s.startswith("@every "):
        return "" if re.fullmatch(r"@every (\d+(ns|us|µs|ms|s|m|h))+", s) else "unparseable duration"
    fields = s.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]"
    names_ = [r"jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec", r"sun|mon|tue|wed|thu|fri|sat"]
    atom = r"(\*|\?|\d+|[a-z]{3})(-(\d+|[a-z]{3}))?(/\d+)?"
    for f in fields:
        for part in f.lower().split(","):
            if not re.fullmatch(atom, part):
                return f"failed to parse int from {part}: strconv.Atoi: parsing {json.dumps(part)}: invalid syntax"
            for word in re.findall(r"[a-z]{3}", part):
                if not any(re.fullmatch(n, word) for n in names_):
                    return f"failed to parse int from {word}"
    return ""


def _validate_cronjob(v: _V, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = _d(obj.get("spec"))
    sched = spec.get("schedule")
    if not sched:
        v.add(required("spec.schedule"))
    else:
        msg = cron_error(sched)
        if msg:
            v.add(invalid("spec.schedule", sched, msg))
    _enum(v, spec.get("concurrencyPolicy"), "spec.concurrencyPolicy", ("Allow", "Forbid", "Replace"))
    for f in ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        _nonneg(v, spec.get(f), f"spec.{f}")
    name = _d(obj.get("metadata")).get("name") or ""
    if len(name) > 52:
        v.add(invalid("metadata.name", name, "must be no more than 52 characters"))
    jt = spec.get("jobTemplate")
    if jt is None:
        v.add(required("spec.jobTemplate"))
    else:
        _labels(v, _d(_d(jt).get("metadata")).get("labels"), "spec.jobTemplate.metadata.labels")
        _job_spec(v, _d(_d(jt).get("spec")), "spec.jobTemplate.spec")


def _validate_hpa(v: _V, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = _d(obj.get("spec"))
    mn = spec.get("minReplicas")
    mx = spec.get("maxReplicas")
    if isinstance(mn, int) and mn < 1:
        v.add(invalid("spec.minReplicas", mn, "must be greater than or equal to 1"))
    if isinstance(mx, int):
        if mx < 1:
            v.add(invalid("spec.maxReplicas", mx, "must be greater than 0"))
        elif isinstance(mn, int) and mx < mn:
            v.add(invalid("spec.maxReplicas", mx, "must be greater than or equal to `minReplicas`"))
    ref = _d(spec.get("scaleTargetRef"))
    for f in ("kind", "name"):
        if not ref.get(f):
            v.add(required(f"spec.scaleTargetRef.{f}"))
    for i, m in enumerate(_l(spec.get("metrics"))):
        m = _d(m)
        _enum(v, m.get("type"), f"spec.metrics[{i}].type",
              ("ContainerResource", "External", "Object", "Pods", "Resource"), required_=True)


# --- services, endpoints ---------------------------------------------------------------

_SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
NODE_PORT_RANGE = (30000, 32767)


def _is_ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False


def _validate_service(v: _V, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = _d(obj.get("spec"))
    stype = spec.get("type") or "ClusterIP"
    _enum(v, spec.get("type"), "spec.type", _SERVICE_TYPES)
    cip = spec.get("clusterIP")
    headless = cip == "None"
    ports = _l(spec.get("ports"))
    if not ports and not headless and stype != "ExternalName":
        v.add(required("spec.ports"))
    if stype == "ExternalName":
        en = spec.get("externalName") or ""
        if not en:
            v.add(required("spec.externalName"))
        else:
            v.msgs("spec.externalName", en, names.dns1123_subdomain_errors(en.rstrip(".")))
        if cip and cip != "None":
            v.add(forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
    port_names: set[str] = set()
    seen_ports: set[tuple[Any, Any]] = set()
    seen_node_ports: set[tuple[Any, Any]] = set()
    for i, p in enumerate(ports):
        p = _d(p)
        pp = f"spec.ports[{i}]"
        name = p.get("name") or ""
        if name or len(ports) > 1:
            _unique_label(v, name, f"{pp}.name", port_names)
        port = p.get("port")
        if isinstance(port, int):
            v.msgs(f"{pp}.port", port, names.port_number_errors(port))
        elif port is None:
            v.add(required(f"{pp}.port"))
        _enum(v, p.get("protocol"), f"{pp}.protocol", _PROTOCOLS, required_=False)
        if p.get("targetPort") is not None:
            _port_or_name(v, p["targetPort"], f"{pp}.targetPort")
        key = (port, p.get("protocol") or "TCP")
        if key in seen_ports:
            v.add(duplicate(pp, _Raw(f"core.ServicePort{{Name:{json.dumps(name)}, Protocol:{json.dumps(key[1])}, "
                                     f"Port:{port}}}")))
        seen_ports.add(key)
        np_ = p.get("nodePort")
        if np_:
            if stype in ("ClusterIP", "ExternalName"):
                v.add(forbidden(f"{pp}.nodePort", f"may not be used when `type` is '{stype}'"))
            elif isinstance(np_, int) and not NODE_PORT_RANGE[0] <= np_ <= NODE_PORT_RANGE[1]:
                v.add(invalid(f"{pp}.nodePort", np_, "provided port is not in the valid range. The range of valid "
                                                     f"ports is {NODE_PORT_RANGE[0]}-{NODE_PORT_RANGE[1]}"))
            nk = (np_, p.get("protocol") or "TCP")
            if nk in seen_node_ports:
                v.add(duplicate(f"{pp}.nodePort", np_))
            seen_node_ports.add(nk)
    if cip and cip != "None" and not _is_ip(cip):
        v.add(invalid("spec.clusterIPs[0]", cip, "must be empty, 'None', or a valid IP address"))
    for i, ip in enumerate(_l(spec.get("externalIPs"))):
        if isinstance(ip, str) and not _is_ip(ip):
            v.add(invalid(f"spec.externalIPs[{i}]", ip, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))
    _enum(v, spec.get("sessionAffinity"), "spec.sessionAffinity", ("ClientIP", "None"))
    _enum(v, spec.get("externalTrafficPolicy"), "spec.externalTrafficPolicy", ("Cluster", "Local"))
    _enum(v, spec.get("internalTrafficPolicy"), "spec.internalTrafficPolicy", ("Cluster", "Local"))
    _enum(v, spec.get("ipFamilyPolicy"), "spec.ipFamilyPolicy", ("SingleStack", "PreferDualStack", "RequireDualStack"))
    for i, fam in enumerate(_l(spec.get("ipFamilies"))):
        _enum(v, fam, f"spec.ipFamilies[{i}]", ("IPv4", "IPv6"))
    if spec.get("selector") is not None:
        _labels(v, spec.get("selector"), "spec.selector")
    if old is not None:
        ocip = _d(old.get("spec")).get("clusterIP")
        otype = _d(old.get("spec")).get("type") or "ClusterIP"
        if ocip and cip and cip != ocip and otype != "ExternalName" and stype != "ExternalName":
            v.add(invalid("spec.clusterIPs[0]", _Raw(go_repr([cip])), "may not change once set"))


def _validate_endpoints(v: _V, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    for i, sub in enumerate(_l(obj.get("subsets"))):
        sub = _d(sub)
        sp = f"subsets[{i}]"
        for kind in ("addresses", "notReadyAddresses"):
            for j, a in enumerate(_l(sub.get(kind))):
                ip = _d(a).get("ip") or ""
                if not _is_ip(ip):
                    v.add(invalid(f"{sp}.{kind}[{j}].ip", ip, "must be a valid IP address"))
        ports = _l(sub.get("ports"))
        for j, p in enumerate(ports):
            p = _d(p)
            pp = f"{sp}.ports[{j}]"
            if len(ports) > 1 and not p.get("name"):
                v.add(required(f"{pp}.name"))
            elif p.get("name"):
                v.msgs(f"{pp}.name", p["name"], names.dns1123_label_errors(p["name"]))
            if isinstance(p.get("port"), int):
                v.msgs(f"{pp}.port", p["port"], names.port_number_errors(p["port"]))
            _enum(v, p.get("protocol"), f"{pp}.protocol", _PROTOCOLS, required_=True)


def _validate_endpointslice(v: _V, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    at = obj.get("addressType")
    _enum(v, at, "addressType", ("IPv4", "IPv6", "FQDN"), required_=True)
    for i, ep in enumerate(_l(obj.get("endpoints"))):
        addrs = _l(_d(ep).get("addresses"))
        if not 1 <= len(addrs) <= 100:
            v.add(required(f"endpoints[{i}].addresses", "must contain at least 1 address") if not addrs
                  else _err(TOO_MANY, f"endpoints[{i}].addresses", detail="must have at most 100 items"))
        for j, a in enumerate(addrs):
            if at in ("IPv4", "IPv6") and isinstance(a, str):
                ok = _is_ip(a) and (ipaddress.ip_address(a).version == (4 if at == "IPv4" else 6))
                if not ok:
                    v.add(invalid(f"endpoints[{i}].addresses[{j}]", a, f"must be a valid {at} address"))
    for i, p in enumerate(_l(obj.get("ports"))):
        p = _d(p)
        if isinstance(p.get("port"), int):
            v.msgs(f"ports[{i}].port", p["port"], names.port_number_errors(p["port"]))
        _enum(v, p.get("protocol"), f"ports[{i}].protocol", _PROTOCOLS)
    if old is not None:
        _immutable(v, obj.get("addressType"), old.get("addressType"), "addressType")


# --- config and storage ----------------------------------------------------------------

_DATA_MAX = 1024 * 1024


def _validate_secret(v: _V, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    data = _d(obj.get("data"))
    total = 0
    for k, val in data.items():
        v.msgs(f"data[{k}]", k, names.config_key_errors(k))
        if isinstance(val, str):
            msg = base64_error(val)
            if msg:
                v.add(invalid(f"data[{k}]", val, msg))
            else:
                total += len(val) * 3 // 4
    for k in _d(obj.get("stringData")):
        v.msgs(f"stringData[{k}]", k, names.config_key_errors(k))
    if total > _DATA_MAX:
        v.add(too_long("data", _DATA_MAX))
    stype = obj.get("type") or "Opaque"
    if stype == "kubernetes.io/service-account-token":
        if not _d(_d(obj.get("metadata")).get("annotations")).get("kubernetes.io/service-account.name"):
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
        _immutable(v, obj.get("type") or "Opaque", old.get("type") or "Opaque", "type")
        _immutable_data(v, obj, old, ("data",))


def _secret_json_key(v: _V, data: dict[str, Any], key: str) -> None:
    if key not in data:
        v.add(required(f"data[{key}]"))
        return
    try:
        json.loads(base64.b64decode(data[key]))
    except (ValueError, binascii.Error) as exc:
        v.add(invalid(f"data[{key}]", _Raw("<secret contents redacted>"), str(exc)))


def _immutable_data(v: _V, obj: dict[str, Any], old: dict[str, Any], keys: tuple[str, ...]) -> None:
    if old.get("immutable"):
        if not obj.get("immutable"):
            v.add(forbidden("immutable", "field is immutable when `immutable` is set"))
        for k in keys:
            if obj.get(k) != old.get(k):
                v.add(forbidden(k, "field is immutable when `immutable` is set"))


def _validate_configmap(v: _V, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    data = _d(obj.get("data"))
    binary = _d(obj.get("binaryData"))
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


def _validate_namespace(v: _V, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    for i, f in enumerate(_l(_d(obj.get("spec")).get("finalizers"))):
        if isinstance(f, str):
            msgs = names.qualified_name_errors(f)
            if not msgs and "/" not in f and f != "kubernetes":
                msgs = ["name is neither a standard finalizer name nor is it fully qualified"]
            v.msgs(f"spec.finalizers[{i}]", f, msgs)
    _enum(v, _d(obj.get("status")).get("phase"), "status.phase", ("Active", "Terminating"))


def _validate_node(v: _V, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = _d(obj.get("spec"))
    seen: set[tuple[str, str]] = set()
    for i, t in enumerate(_l(spec.get("taints"))):
        t = _d(t)
        tp = f"spec.taints[{i}]"
        key = t.get("key") or ""
        if not key:
            v.add(required(f"{tp}.key"))
        else:
            v.msgs(f"{tp}.key", key, names.qualified_name_errors(key))
        if isinstance(t.get("value"), str):
            v.msgs(f"{tp}.value", t["value"], names.label_value_errors(t["value"]))
        _enum(v, t.get("effect"), f"{tp}.effect", _TAINT_EFFECTS, required_=True)
        k = (key, t.get("effect") or "")
        if k in seen:
            v.add(duplicate(tp, _Raw(f"core.Taint{{Key:{json.dumps(key)}, Effect:{json.dumps(k[1])}}}")))
        seen.add(k)
    for f in ("podCIDR",):
        if spec.get(f):
            try:
                ipaddress.ip_network(spec[f], strict=False)
            except ValueError:
                v.add(invalid(f"spec.{f}", spec[f], "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"))
    status = _d(obj.get("status"))
    for which in ("capacity", "allocatable"):
        for name, val in _d(status.get(which)).items():
            q = _q(val)
            if q is not None and q < 0:
                v.add(invalid(f"status.{which}[{name}]", str(val), "must be greater than or equal to 0"))
    if old is not None:
        ospec = _d(old.get("spec"))
        if ospec.get("podCIDR") and spec.get("podCIDR") != ospec.get("podCIDR"):
            v.add(forbidden("spec.podCIDR", "node updates may not change podCIDR except from \"\" to valid"))


_ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")


def _access_modes(v: _V, modes: list[Any], path: str, detail: str = "") -> None:
    if not modes:
        v.add(required(path, detail))
    for m in modes:
        if m not in _ACCESS_MODES:
            v.add(not_supported(path, m, _ACCESS_MODES))
    if "ReadWriteOncePod" in modes and len(modes) > 1:
        v.add(forbidden(path, "may not use ReadWriteOncePod with other access modes"))


def _validate_pv(v: _V, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = _d(obj.get("spec"))
    _access_modes(v, _l(spec.get("accessModes")), "spec.accessModes")
    cap = _d(spec.get("capacity"))
    if not cap:
        v.add(required("spec.capacity"))
    for k, val in cap.items():
        if k != "storage":
            v.add(not_supported("spec.capacity", k, ("storage",)))
        q = _q(val)
        if q is not None and q <= 0:
            v.add(invalid(f"spec.capacity[{k}]", str(val), "must be greater than zero"))
    _enum(v, spec.get("persistentVolumeReclaimPolicy"), "spec.persistentVolumeReclaimPolicy",
          ("Delete", "Recycle", "Retain"))
    _enum(v, spec.get("volumeMode"), "spec.volumeMode", ("Block", "Filesystem"))
    if spec.get("storageClassName"):
        v.msgs("spec.storageClassName", spec["storageClassName"],
               names.dns1123_subdomain_errors(spec["storageClassName"]))
    present = [s for s in _pv_sources() if spec.get(s) is not None]
    if not present:
        v.add(required("spec", "must specify a volume type"))
    for extra in present[1:]:
        v.add(forbidden(f"spec.{extra}", "may not specify more than 1 volume type"))
    if present and present[0] == "hostPath":
        hp = _d(spec["hostPath"])
        if not hp.get("path"):
            v.add(required("spec.hostPath.path"))
    if present and present[0] == "local" and spec.get("nodeAffinity") is None:
        v.add(required("spec.nodeAffinity", "Local volume requires node affinity"))
    na = _d(_d(spec.get("nodeAffinity")).get("required"))
    if spec.get("nodeAffinity") is not None and _d(spec.get("nodeAffinity")).get("required") is not None:
        terms = _l(na.get("nodeSelectorTerms"))
        if not terms:
            v.add(required("spec.nodeAffinity.required.nodeSelectorTerms", "must have at least one node selector term"))
        for i, t in enumerate(terms):
            _node_selector_term(v, _d(t), f"spec.nodeAffinity.required.nodeSelectorTerms[{i}]")
    if old is not None:
        ospec = _d(old.get("spec"))
        if ospec.get("volumeMode") and spec.get("volumeMode") != ospec.get("volumeMode"):
            v.add(invalid("spec.volumeMode", spec.get("volumeMode"), IMMUTABLE))
        for s in _pv_sources():
            if ospec.get(s) is not None and spec.get(s) != ospec.get(s):
                v.add(forbidden("spec.persistentvolumesource", "spec.persistentvolumesource is immutable after creation"))
                break


_PVC_MUTABLE = ("resources", "volumeAttributesClassName", "volumeName")


def _validate_pvc(v: _V, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = _d(obj.get("spec"))
    _access_modes(v, _l(spec.get("accessModes")), "spec.accessModes", "at least 1 access mode is required")
    requests = _d(_d(spec.get("resources")).get("requests"))
    if "storage" not in requests:
        v.add(required("spec.resources[storage]"))
    else:
        q = _q(requests["storage"])
        if q is not None and q <= 0:
            v.add(invalid("spec.resources[storage]", str(requests["storage"]), "must be greater than zero"))
    _enum(v, spec.get("volumeMode"), "spec.volumeMode", ("Block", "Filesystem"))
    if spec.get("selector") is not None:
        _label_selector(v, _d(spec["selector"]), "spec.selector")
    if spec.get("storageClassName"):
        v.msgs("spec.storageClassName", spec["storageClassName"],
               names.dns1123_subdomain_errors(spec["storageClassName"]))
    if old is not None:
        ospec = _d(old.get("spec"))
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
        old_req = _q(_d(_d(ospec.get("resources")).get("requests")).get("storage", "0"))
        new_req = _q(requests.get("storage", "0"))
        if old_req is not None and new_req is not None and new_req < old_req and ospec.get("volumeName"):
            v.add(forbidden("spec.resources.requests.storage", "field can not be less than previous value"))


def _validate_storageclass(v: _V, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    prov = obj.get("provisioner") or ""
    if not prov:
        v.add(required("provisioner"))
    else:
        v.msgs("provisioner", prov, names.qualified_name_errors(prov))
    _enum(v, obj.get("reclaimPolicy"), "reclaimPolicy", ("Delete", "Retain"))
    _enum(v, obj.get("volumeBindingMode"), "volumeBindingMode", ("Immediate", "WaitForFirstConsumer"))
    params = _d(obj.get("parameters"))
    if len(params) > 512:
        v.add(too_long("parameters", 512))
    if old is not None:
        if obj.get("parameters") != old.get("parameters"):
            v.add(forbidden("parameters", "updates to parameters are forbidden."))
        if obj.get("provisioner") != old.get("provisioner"):
            v.add(forbidden("provisioner", "updates to provisioner are forbidden."))
        if (obj.get("reclaimPolicy") or "Delete") != (old.get("reclaimPolicy") or "Delete"):
            v.add(forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden."))
        if (obj.get("volumeBindingMode") or "Immediate") != (old.get("volumeBindingMode") or "Immediate"):
            v.add(forbidden("volumeBindingMode", "updates to volumeBindingMode are forbidden."))


def _validate_lease(v: _V, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = _d(obj.get("spec"))
    if spec.get("leaseDurationSeconds") is not None:
        _positive(v, spec["leaseDurationSeconds"], "spec.leaseDurationSeconds")
    _nonneg(v, spec.get("leaseTransitions"), "spec.leaseTransitions")


def _validate_core_event(v: _V, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    ns = _d(obj.get("metadata")).get("namespace") or ""
    ions = _d(obj.get("involvedObject")).get("namespace") or ""
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
    _enum(v, obj.get("type"), "type", ("Normal", "Warning"))
    _nonneg(v, obj.get("count"), "count")


def _validate_events_event(v: _V, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    for f in ("reportingController", "reportingInstance", "action", "reason"):
        if not obj.get(f):
            v.add(required(f))
    _enum(v, obj.get("type"), "type", ("Normal", "Warning"), required_=True)
    if obj.get("reportingController"):
        v.msgs("reportingController", obj["reportingController"],
               names.qualified_name_errors(obj["reportingController"]))
    if len(obj.get("note") or "") > 1024:
        v.add(too_long("note", 1024))


def _validate_resource_quota(v: _V, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    for name, val in _d(_d(obj.get("spec")).get("hard")).items():
        q = _q(val)
        if q is not None and q < 0:
            v.add(invalid(f"spec.hard[{name}]", str(val), "must be greater than or equal to 0"))
    for i, s in enumerate(_l(_d(obj.get("spec")).get("scopes"))):
        _enum(v, s, f"spec.scopes[{i}]", ("Terminating", "NotTerminating", "BestEffort", "NotBestEffort",
                                           "PriorityClass", "CrossNamespacePodAffinity"))


def _validate_limit_range(v: _V, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    for i, lim in enumerate(_l(_d(obj.get("spec")).get("limits"))):
        lim = _d(lim)
        lp = f"spec.limits[{i}]"
        _enum(v, lim.get("type"), f"{lp}.type", ("Container", "Pod", "PersistentVolumeClaim"), required_=True)
        vals: dict[str, dict[str, Fraction]] = {}
        for which in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
            for name, val in _d(lim.get(which)).items():
                q = _q(val)
                if q is not None:
                    vals.setdefault(which, {})[name] = q
                    if q < 0:
                        v.add(invalid(f"{lp}.{which}[{name}]", str(val), "must be greater than or equal to 0"))
        for name, mn in vals.get("min", {}).items():
            mx = vals.get("max", {}).get(name)
            if mx is not None and mn > mx:
                v.add(invalid(f"{lp}.min[{name}]", str(_d(lim.get("min"))[name]),
                              f"min value {_d(lim.get('min'))[name]} is greater than max value "
                              f"{_d(lim.get('max'))[name]}"))


def _validate_service_account(v: _V, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    for i, s in enumerate(_l(obj.get("secrets"))):
        n = _d(s).get("name")
        if n:
            v.msgs(f"secrets[{i}].name", n, names.dns1123_subdomain_errors(n))


_KIND_VALIDATORS: dict[tuple[str, str], Callable[[_V, dict[str, Any], dict[str, Any] | None], None]] = {
    ("", "Pod"): _validate_pod,
    ("", "Service"): _validate_service,
    ("", "Endpoints"): _validate_endpoints,
    ("", "ConfigMap"): _validate_configmap,
    ("", "Secret"): _validate_secret,
    ("", "ServiceAccount"): _validate_service_account,
    ("", "Namespace"): _validate_namespace,
    ("", "Node"): _validate_node,
    ("", "Event"): _validate_core_event,
    ("", "PersistentVolume"): _validate_pv,
    ("", "PersistentVolumeClaim"): _validate_pvc,
    ("", "ReplicationController"): _validate_rc,
    ("", "ResourceQuota"): _validate_resource_quota,
    ("", "LimitRange"): _validate_limit_range,
    ("apps", "Deployment"): _validate_deployment,
    ("apps", "ReplicaSet"): _validate_replicaset,
    ("apps", "DaemonSet"): _validate_daemonset,
    ("apps", "StatefulSet"): _validate_statefulset,
    ("batch", "Job"): _validate_job,
    ("batch", "CronJob"): _validate_cronjob,
    ("autoscaling", "HorizontalPodAutoscaler"): _validate_hpa,
    ("coordination.k8s.io", "Lease"): _validate_lease,
    ("discovery.k8s.io", "EndpointSlice"): _validate_endpointslice,
    ("events.k8s.io", "Event"): _validate_events_event,
    ("storage.k8s.io", "StorageClass"): _validate_storageclass,
}
