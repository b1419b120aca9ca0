"""A custom resource against its CRD's openAPIV3Schema: validation, pruning, defaulting.

The structural schema of apiextensions.k8s.io/v1 (a `type` on every node, or
`x-kubernetes-int-or-string` / `x-kubernetes-preserve-unknown-fields`). `validate`
checks types, required, enum, minimum/maximum (and exclusive), multipleOf, length,
pattern, items and properties counts, uniqueItems, list types (set, map), nullable,
allOf/anyOf/oneOf/not, with kube-openapi's messages and Kubernetes' field paths
(`spec.items[0].name`, `spec.labels[key]`). `prune` drops (and lists) the fields the
schema does not declare, unless preserved; `default` fills `default`s, after pruning,
as the API server does. Invariants: never raises on any JSON value; the root's
apiVersion, kind and metadata are always known (ObjectMeta is validated elsewhere).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any, TypeGuard

from k8py.api.validation.field import (
    FieldError,
    Raw,
    duplicate,
    invalid,
    not_supported,
    required,
    too_long,
    too_many,
    type_invalid,
)
from k8py.api.validation.structural import json_type

Schema = dict[str, Any]
_ROOT_KNOWN = ("apiVersion", "kind", "metadata")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _num(v: Any) -> TypeGuard[int | float]:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _type_ok(v: Any, s: Schema) -> str | None:
    """The expected type when `v` is not of the schema's type, else None."""
    if s.get("x-kubernetes-int-or-string"):
        return None if isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)) else "integer-or-string"
    t = s.get("type")
    if not isinstance(t, str) or t == "":
        return None
    actual = json_type(v)
    if t == "integer":
        ok = actual == "integer" or (actual == "number" and float(v).is_integer())
    elif t == "number":
        ok = actual in ("integer", "number")
    else:
        ok = actual == t
    return None if ok else t


def validate(obj: Any, s: Schema | None, path: str = "", root: bool = True) -> list[FieldError]:
    """Field errors of `obj` against schema `s` (None: anything goes)."""
    errs: list[FieldError] = []
    if s is not None:
        _validate(obj, s, path, errs, root)
    return errs


def _validate(v: Any, s: Schema, path: str, errs: list[FieldError], root: bool = False) -> None:
    where = path or "<root>"
    if v is None:
        if not s.get("nullable") and isinstance(s.get("type"), str) and s.get("type"):
            errs.append(type_invalid(where, "null", s["type"]))
        return
    want = _type_ok(v, s)
    if want is not None:
        errs.append(type_invalid(where, json_type(v), want))
        return
    _enum(v, s, where, errs)
    if _num(v):
        _number(v, s, where, errs)
    elif isinstance(v, str):
        _string(v, s, where, errs)
    elif isinstance(v, list):
        _array(v, s, path, errs)
    elif isinstance(v, dict):
        _object(v, s, path, errs, root)
    _combinators(v, s, path, errs)


def _enum(v: Any, s: Schema, where: str, errs: list[FieldError]) -> None:
    enum = s.get("enum")
    if isinstance(enum, list) and v not in enum:
        errs.append(not_supported(where, v, [e if isinstance(e, str) else json.dumps(e) for e in enum]))


def _fmt(n: Any) -> str:
    return str(int(n)) if isinstance(n, float) and n.is_integer() else str(n)


def _number(v: float, s: Schema, where: str, errs: list[FieldError]) -> None:
    lo, hi = s.get("minimum"), s.get("maximum")
    if _num(lo):
        if s.get("exclusiveMinimum") and v <= lo:
            errs.append(invalid(where, v, f"{where} in body should be greater than {_fmt(lo)}"))
        elif v < lo:
            errs.append(invalid(where, v, f"{where} in body should be greater than or equal to {_fmt(lo)}"))
    if _num(hi):
        if s.get("exclusiveMaximum") and v >= hi:
            errs.append(invalid(where, v, f"{where} in body should be less than {_fmt(hi)}"))
        elif v > hi:
            errs.append(invalid(where, v, f"{where} in body should be less than or equal to {_fmt(hi)}"))
    mult = s.get("multipleOf")
    if _num(mult) and mult > 0 and (v / mult) != int(v / mult):
        errs.append(invalid(where, v, f"{where} in body should be a multiple of {_fmt(mult)}"))


def _string(v: str, s: Schema, where: str, errs: list[FieldError]) -> None:
    lo, hi = s.get("minLength"), s.get("maxLength")
    if isinstance(lo, int) and len(v) < lo:
        errs.append(invalid(where, v, f"{where} in body should be at least {lo} chars long"))
    if isinstance(hi, int) and len(v) > hi:
        errs.append(too_long(where, hi))
    pattern = s.get("pattern")
    if isinstance(pattern, str):
        try:
            ok = re.search(pattern, v) is not None
        except re.error:
            ok = True
        if not ok:
            errs.append(invalid(where, v, f"{where} in body should match '{pattern}'"))


def _array(v: list[Any], s: Schema, path: str, errs: list[FieldError]) -> None:
    where = path or "<root>"
    lo, hi = s.get("minItems"), s.get("maxItems")
    if isinstance(lo, int) and len(v) < lo:
        errs.append(invalid(where, Raw(f"{len(v)}"), f"{where} in body should have at least {lo} items"))
    if isinstance(hi, int) and len(v) > hi:
        errs.append(FieldError(too_many(where, hi).type, where, f"Too many: {len(v)}: must have at most {hi} items"))
    items = s.get("items")
    if isinstance(items, dict):
        for i, x in enumerate(v):
            _validate(x, items, f"{path}[{i}]", errs)
    list_type = s.get("x-kubernetes-list-type")
    if s.get("uniqueItems") or list_type == "set":
        _unique(v, path, errs, lambda x: x)
    elif list_type == "map":
        keys = [k for k in s.get("x-kubernetes-list-map-keys") or [] if isinstance(k, str)]
        _unique(v, path, errs, lambda x: {k: x.get(k) for k in keys} if isinstance(x, dict) else x)


def _unique(v: list[Any], path: str, errs: list[FieldError], key: Callable[[Any], Any]) -> None:
    seen: list[str] = []
    for i, x in enumerate(v):
        k = json.dumps(key(x), sort_keys=True)
        if k in seen:
            errs.append(duplicate(f"{path}[{i}]", key(x)))
        seen.append(k)


def _object(v: dict[str, Any], s: Schema, path: str, errs: list[FieldError], root: bool) -> None:
    where = path or "<root>"
    for name in s.get("required") or []:
        if isinstance(name, str) and v.get(name) is None:
            errs.append(required(_join(path, name)))
    lo, hi = s.get("minProperties"), s.get("maxProperties")
    if isinstance(lo, int) and len(v) < lo:
        errs.append(invalid(where, Raw(f"{len(v)}"), f"{where} in body should have at least {lo} properties"))
    if isinstance(hi, int) and len(v) > hi:
        errs.append(FieldError(too_many(where, hi).type, where, f"Too many: {len(v)}: must have at most {hi} items"))
    props: dict[str, Any] = s["properties"] if isinstance(s.get("properties"), dict) else {}
    extra = s.get("additionalProperties")
    for k, x in v.items():
        if root and k in _ROOT_KNOWN:
            continue
        if k in props and isinstance(props[k], dict):
            _validate(x, props[k], _join(path, k), errs)
        elif isinstance(extra, dict):
            _validate(x, extra, f"{path}[{k}]" if path else k, errs)
    if s.get("x-kubernetes-embedded-resource"):
        for k in ("apiVersion", "kind"):
            if not v.get(k):
                errs.append(required(_join(path, k), "must not be empty"))


def _combinators(v: Any, s: Schema, path: str, errs: list[FieldError]) -> None:
    where = path or "<root>"
    for sub in s.get("allOf") or []:
        if isinstance(sub, dict):
            _validate(v, sub, path, errs)
    any_of = [x for x in s.get("anyOf") or [] if isinstance(x, dict)]
    if any_of and not any(not validate(v, x, path, False) for x in any_of):
        errs.append(invalid(where, v, f"{where} in body must validate at least one schema (anyOf)"))
    one_of = [x for x in s.get("oneOf") or [] if isinstance(x, dict)]
    if one_of and sum(1 for x in one_of if not validate(v, x, path, False)) != 1:
        errs.append(invalid(where, v, f"{where} in body must validate one and only one schema (oneOf)"))
    neg = s.get("not")
    if isinstance(neg, dict) and not validate(v, neg, path, False):
        errs.append(invalid(where, v, f"{where} in body must not validate the schema (not)"))


# -- pruning and defaulting ---------------------------------------------------------------
def _preserves(s: Schema) -> bool:
    return bool(s.get("x-kubernetes-preserve-unknown-fields"))


def prune(obj: Any, s: Schema | None, path: str = "", root: bool = True) -> list[str]:
    """Remove from `obj` (in place) the fields `s` does not declare; their paths."""
    out: list[str] = []
    if s is not None:
        _prune(obj, s, path, out, root)
    return out


def _sub_schemas(s: Schema) -> list[Schema]:
    return [x for k in ("allOf", "anyOf", "oneOf") for x in s.get(k) or [] if isinstance(x, dict)]


def _prune(v: Any, s: Schema, path: str, out: list[str], root: bool = False) -> None:
    if isinstance(v, list):
        items = s.get("items")
        if isinstance(items, dict):
            for i, x in enumerate(v):
                _prune(x, items, f"{path}[{i}]", out)
        return
    if not isinstance(v, dict):
        return
    props: dict[str, Any] = dict(s.get("properties") or {})
    for sub in _sub_schemas(s):
        props.update({k: x for k, x in (sub.get("properties") or {}).items() if k not in props})
    extra = s.get("additionalProperties")
    embedded = root or bool(s.get("x-kubernetes-embedded-resource"))
    for k in list(v):
        if embedded and k in _ROOT_KNOWN:
            continue
        if isinstance(props.get(k), dict):
            _prune(v[k], props[k], _join(path, k), out)
        elif isinstance(extra, dict):
            _prune(v[k], extra, f"{path}[{k}]" if path else k, out)
        elif not _preserves(s) and extra is not True:
            out.append(_join(path, k))
            del v[k]


def default(obj: Any, s: Schema | None) -> None:
    """Fill unset (or null, when not nullable) fields that have a `default`, in place."""
    if s is not None:
        _default(obj, s)


def _default(v: Any, s: Schema) -> None:
    if isinstance(v, list):
        items = s.get("items")
        if isinstance(items, dict):
            for x in v:
                _default(x, items)
        return
    if not isinstance(v, dict):
        return
    props: dict[str, Any] = s["properties"] if isinstance(s.get("properties"), dict) else {}
    for k, ps in props.items():
        if not isinstance(ps, dict):
            continue
        if "default" in ps and (k not in v or (v[k] is None and not ps.get("nullable"))):
            v[k] = copy.deepcopy(ps["default"])
        if k in v:
            _default(v[k], ps)
    extra = s.get("additionalProperties")
    if isinstance(extra, dict):
        for k, x in v.items():
            if k not in props:
                _default(x, extra)
