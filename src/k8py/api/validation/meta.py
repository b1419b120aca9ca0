"""ObjectMeta, names, labels, selectors and the field checks every API group shares.

The semantic validators of every group (`core`, `pod`, `apps`, ...) add their errors to an
`ErrorList` and build on the helpers here: `validate_object_meta` (names as the kind
wants them, namespace, labels, annotations, owner references, finalizers),
`validate_label_selector`, and one-field checks (`validate_enum`,
`validate_nonnegative`, ...). Invariants: helpers never raise on odd input (`dict_of`,
`list_of` and `quantity` turn the wrong JSON type into "unset"); paths use Kubernetes'
notation.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import Any

from k8py.api import names
from k8py.api.errors import QuantityError, SelectorError
from k8py.api.quantity import parse_quantity
from k8py.api.resources import Resource
from k8py.api.selectors import label_selector_from_dict
from k8py.api.validation.field import (
    IMMUTABLE,
    FieldError,
    Raw,
    duplicate,
    forbidden,
    invalid,
    not_supported,
    required,
    too_long,
)

PROTOCOLS = ("SCTP", "TCP", "UDP")


class ErrorList:
    """The field errors found so far (Kubernetes' field.ErrorList)."""

    def __init__(self, errs: list[FieldError]) -> None:
        self.errs = list(errs)

    def add(self, *es: FieldError) -> None:
        self.errs.extend(es)

    def msgs(self, path: str, value: Any, msgs: list[str]) -> None:
        """One Invalid error of `value` at `path` per message (of a `names.*_errors` check)."""
        for m in msgs:
            self.errs.append(invalid(path, value, m))


KindValidator = Callable[[ErrorList, dict[str, Any], dict[str, Any] | None], None]
"""Validates one kind's object (a create when the old object is None, else an update)."""


def dict_of(x: Any) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}


def list_of(x: Any) -> list[Any]:
    return x if isinstance(x, list) else []


def quantity(v: Any) -> Fraction | None:
    """The value of a quantity, None when it does not parse (the structural layer says why)."""
    try:
        return parse_quantity(v)
    except (QuantityError, TypeError, ValueError):
        return None


def is_ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False


# --- object metadata -------------------------------------------------------------------

NameFn = Callable[[str], list[str]]

_DNS_LABEL_NAMED = {("", "Namespace")}
_DNS1035_NAMED = {("", "Service")}
_UNCHECKED_NAMES = {("", "Event"), ("events.k8s.io", "Event")}
_PATH_SEGMENT_NAMED = {("rbac.authorization.k8s.io", k) for k in ("Role", "ClusterRole", "RoleBinding",
                                                                  "ClusterRoleBinding")}


def _name_fn(resource: Resource) -> NameFn | None:
    key = (resource.group, resource.kind)
    if key in _UNCHECKED_NAMES:
        return None
    if key in _DNS_LABEL_NAMED:
        return names.dns1123_label_errors
    if key in _DNS1035_NAMED:
        return names.dns1035_label_errors
    if key in _PATH_SEGMENT_NAMED:
        return names.path_segment_errors
    return names.dns1123_subdomain_errors


def validate_object_meta(v: ErrorList, meta: dict[str, Any], resource: Resource, path: str) -> None:
    _names(v, meta, resource, path)
    ns = meta.get("namespace")
    if resource.namespaced:
        if ns:
            v.msgs(f"{path}.namespace", ns, names.dns1123_label_errors(ns))
    elif ns:
        v.add(forbidden(f"{path}.namespace", "not allowed on this type"))
    validate_labels(v, meta.get("labels"), f"{path}.labels")
    validate_annotations(v, meta.get("annotations"), f"{path}.annotations")
    _owner_refs(v, meta.get("ownerReferences"), f"{path}.ownerReferences")
    for i, f in enumerate(list_of(meta.get("finalizers"))):
        if isinstance(f, str):
            v.msgs(f"{path}.finalizers[{i}]", f, names.qualified_name_errors(f))


def _names(v: ErrorList, meta: dict[str, Any], resource: Resource, path: str) -> None:
    """name or generateName, in the syntax the kind's names follow."""
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


def validate_labels(v: ErrorList, labels: Any, path: str) -> None:
    for k, val in dict_of(labels).items():
        v.msgs(path, k, names.qualified_name_errors(k))
        if isinstance(val, str):
            v.msgs(path, val, names.label_value_errors(val))


_ANNOTATIONS_MAX = 256 * 1024


def validate_annotations(v: ErrorList, ann: Any, path: str) -> None:
    total = 0
    for k, val in dict_of(ann).items():
        v.msgs(path, k, names.qualified_name_errors(k.lower()))
        total += len(k) + len(val if isinstance(val, str) else "")
    if total > _ANNOTATIONS_MAX:
        v.add(too_long(path, _ANNOTATIONS_MAX))


def _owner_refs(v: ErrorList, refs: Any, path: str) -> None:
    controllers = []
    for i, r in enumerate(list_of(refs)):
        r = dict_of(r)
        p = f"{path}[{i}]"
        for f in ("apiVersion", "kind", "name", "uid"):
            if not r.get(f):
                v.add(invalid(f"{p}.{f}", r.get(f) or "", f"{f} must not be empty"))
        if r.get("controller"):
            controllers.append(r.get("name", ""))
    if len(controllers) > 1:
        v.add(invalid(path, Raw("[]v1.OwnerReference{...}"),
                      "Only one reference can have Controller set to true. Found \"true\" in references for "
                      + " and ".join(controllers)))


def validate_object_meta_update(v: ErrorList, new: dict[str, Any], old: dict[str, Any]) -> None:
    for f in ("name", "namespace", "uid", "creationTimestamp"):
        if old.get(f) and new.get(f) and new.get(f) != old.get(f):
            v.add(invalid(f"metadata.{f}", new.get(f), IMMUTABLE))


# --- one field -------------------------------------------------------------------------


def validate_immutable(v: ErrorList, new: Any, old: Any, path: str, shown: Any = None) -> None:
    if new != old:
        v.add(invalid(path, shown if shown is not None else new, IMMUTABLE))


def validate_nonnegative(v: ErrorList, x: Any, path: str) -> None:
    if isinstance(x, (int, float)) and not isinstance(x, bool) and x < 0:
        v.add(invalid(path, x, "must be greater than or equal to 0"))


def validate_positive(v: ErrorList, x: Any, path: str) -> None:
    if isinstance(x, (int, float)) and not isinstance(x, bool) and x <= 0:
        v.add(invalid(path, x, "must be greater than 0"))


def validate_enum(v: ErrorList, x: Any, path: str, allowed: Iterable[str], required_: bool = False) -> None:
    allowed = list(allowed)
    if x is None or x == "":
        if required_:
            v.add(required(path))
        return
    if x not in allowed:
        v.add(not_supported(path, x, allowed))


def validate_port_or_name(v: ErrorList, x: Any, path: str) -> None:
    if isinstance(x, bool):
        return
    if isinstance(x, int):
        v.msgs(path, x, names.port_number_errors(x))
    elif isinstance(x, str):
        if x.isdigit():
            v.msgs(path, x, names.port_number_errors(int(x)))
        else:
            v.msgs(path, x, names.port_name_errors(x))


def validate_unique_label(v: ErrorList, name: str, path: str, seen: set[str]) -> None:
    """A required DNS-1123 label name, unique among `seen` (which it joins)."""
    if not name:
        v.add(required(path))
        return
    v.msgs(path, name, names.dns1123_label_errors(name))
    if name in seen:
        v.add(duplicate(path, name))
    seen.add(name)


# --- label selectors -------------------------------------------------------------------


def validate_label_selector(v: ErrorList, sel: dict[str, Any], path: str) -> None:
    validate_labels(v, sel.get("matchLabels"), f"{path}.matchLabels")
    for i, e in enumerate(list_of(sel.get("matchExpressions"))):
        e = dict_of(e)
        p = f"{path}.matchExpressions[{i}]"
        op = e.get("operator")
        vals = e.get("values") or []
        if not validate_set_operator(v, op, vals, p):
            v.add(invalid(f"{p}.operator", op, "not a valid selector operator"))
        key = e.get("key")
        if isinstance(key, str):
            v.msgs(f"{p}.key", key, names.qualified_name_errors(key))
        for j, val in enumerate(vals):
            if isinstance(val, str):
                v.msgs(f"{p}.values[{j}]", val, names.label_value_errors(val))


def validate_set_operator(v: ErrorList, op: Any, vals: Any, path: str) -> bool:
    """The values of a requirement at `path` whose operator is In or NotIn (some values) or
    Exists or DoesNotExist (none); False, and no check, for any other operator."""
    if op in ("In", "NotIn"):
        if not vals:
            v.add(required(f"{path}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
    elif op in ("Exists", "DoesNotExist"):
        if vals:
            v.add(forbidden(f"{path}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
    else:
        return False
    return True


def selector_matches(sel: dict[str, Any], labels: dict[str, str]) -> bool | None:
    """Whether a LabelSelector dict selects `labels`; None when the selector is unusable."""
    try:
        return bool(label_selector_from_dict(sel).matches(labels))
    except (SelectorError, TypeError, ValueError):
        return None


def selector_empty(sel: dict[str, Any] | None) -> bool:
    sel = sel or {}
    return not sel.get("matchLabels") and not sel.get("matchExpressions")
