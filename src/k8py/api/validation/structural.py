"""The structural layer of validation: an object against its OpenAPI schema.

Checks JSON types, required fields (except in status and of lists, where Kubernetes'
own validation does not insist), quantity syntax and the base64 of `format: byte`
fields; the same walk also lists the fields the schema does not know (for
`fieldValidation=Strict|Warn`). Invariants: never raises on any JSON-decoded input;
null means unset (Kubernetes' decoders skip it); a kind without a schema has no
structural errors and no unknown fields.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from k8py.api import schema
from k8py.api.errors import QuantityError
from k8py.api.quantity import parse_quantity
from k8py.api.resources import Resource
from k8py.api.validation.field import FieldError, invalid, required, type_invalid

# JSON Schema types, in the order that tells them apart (a bool is also a Python int).
_JSON_TYPES: tuple[tuple[str, Callable[[Any], bool]], ...] = (
    ("null", lambda v: v is None),
    ("boolean", lambda v: isinstance(v, bool)),
    ("integer", lambda v: isinstance(v, int)),
    ("number", lambda v: isinstance(v, float)),
    ("string", lambda v: isinstance(v, str)),
    ("array", lambda v: isinstance(v, list)),
    ("object", lambda v: isinstance(v, dict)),
)
_JSON_TYPE_NAMES = frozenset(name for name, _ in _JSON_TYPES)


def json_type(v: Any) -> str:
    """The JSON Schema type of a decoded value (its Python type's name if none fits)."""
    return next((name for name, is_ in _JSON_TYPES if is_(v)), type(v).__name__)


def _type_ok(v: Any, t: str) -> bool:
    """Whether `v` is of JSON Schema type `t`: integral numbers are integers, integers numbers."""
    actual = json_type(v)
    if t == "integer":
        return actual == "integer" or (actual == "number" and v.is_integer())
    if t == "number":
        return actual in ("integer", "number")
    return t not in _JSON_TYPE_NAMES or actual == t


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


def structural_errors(obj: dict[str, Any], resource: Resource) -> list[FieldError]:
    """The schema errors of `obj` (JSON types, required fields, quantities, base64)."""
    root = schema.for_gvk(resource.group, resource.version, resource.kind)
    if root is None:
        return []
    errs: list[FieldError] = []
    _walk(obj, root, "", errs, None)
    return errs


def unknown_fields(obj: dict[str, Any], resource: Resource) -> list[str]:
    """Paths (like `.spec.foo`, `.spec.containers[0].bar`) of fields the schema does not define."""
    root = schema.for_gvk(resource.group, resource.version, resource.kind)
    d = _Decoding()
    if root is not None and isinstance(obj, dict):
        _walk(obj, root, "", [], d)
    return d.unknown


_INT_RANGES = {"int32": (-(2 ** 31), 2 ** 31 - 1), "int64": (-(2 ** 63), 2 ** 63 - 1)}


@dataclass
class IntOverflow:
    """An integer out of its field's range (`format: int32|int64`): Kubernetes' JSON
    decoder refuses the whole body (400), naming the Go field."""

    path: str  # as Go's decoder names it: JSON names from the root, without indices
    struct: str  # the Go type that holds the field
    value: int | float
    format: str

    def message(self) -> str:
        num = str(int(self.value)) if isinstance(self.value, float) and self.value.is_integer() else str(self.value)
        return (f"json: cannot unmarshal number {num} into Go struct field "
                f"{self.struct}.{self.path} of type {self.format}")


@dataclass
class _Decoding:
    """What one decoding walk collects: unknown field paths, integers out of range."""

    unknown: list[str] = field(default_factory=list)
    overflows: list[IntOverflow] = field(default_factory=list)
    prune: bool = False


def decoding_problems(obj: dict[str, Any], resource: Resource, *,
                      prune: bool) -> tuple[list[str], list[IntOverflow]]:
    """The unknown fields of `obj` (removed from it with `prune`, as Kubernetes' decoding
    into its Go types drops them) and its integers out of their format's range."""
    root = schema.for_gvk(resource.group, resource.version, resource.kind)
    d = _Decoding(prune=prune)
    if root is not None and isinstance(obj, dict):
        _walk(obj, root, "", [], d, resource.kind)
    return d.unknown, d.overflows


def prune_unknown_fields(obj: dict[str, Any], resource: Resource) -> list[str]:
    """Remove the fields the schema does not define from `obj` and answer their paths."""
    return decoding_problems(obj, resource, prune=True)[0]


def _check_int(v: Any, s: dict[str, Any], path: str, owner: str, d: _Decoding) -> None:
    bounds = _INT_RANGES.get(s.get("format", ""))
    if bounds is None or isinstance(v, bool) or not isinstance(v, (int, float)):
        return
    if not bounds[0] <= v <= bounds[1]:
        go_path = re.sub(r"\[[^\]]*\]", "", path)
        d.overflows.append(IntOverflow(go_path, owner.rsplit(".", 1)[-1], v, s["format"]))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _walk(v: Any, s: dict[str, Any], path: str, errs: list[FieldError], unknown: _Decoding | None,
          owner: str = "") -> None:
    """Check `v` against schema `s`. With `unknown` set, only collect what decoding finds
    (unknown fields, removed when it prunes; integers out of range). `owner` names the
    schema of the object holding `v`."""
    ref = _ref_name(s)
    s = schema.resolve(s)
    if v is None:
        return  # null means unset for Kubernetes' decoders
    if unknown is not None and "format" in s:
        _check_int(v, s, path, owner, unknown)
    if ref.endswith("resource.Quantity"):
        if unknown is None:
            _check_quantity_value(v, path, errs)
        return
    if "oneOf" in s:
        opts = [t for o in s["oneOf"] for t in _types(schema.resolve(o)) if t != "null"]
        if unknown is None and not any(_type_ok(v, t) for t in opts):
            errs.append(type_invalid(path, json_type(v), ",".join(sorted(opts))))
        return
    types = [t for t in _types(s) if t != "null"]
    if types and not any(_type_ok(v, t) for t in types):
        if unknown is None:
            errs.append(type_invalid(path, json_type(v), types[0]))
        return
    if isinstance(v, dict):
        _walk_object(v, s, path, errs, unknown, ref or owner)
    elif isinstance(v, list):
        items = s.get("items")
        if isinstance(items, dict):
            for i, sub in enumerate(v):
                _walk(sub, items, f"{path}[{i}]", errs, unknown, owner)
    elif isinstance(v, str) and s.get("format") == "byte" and unknown is None:
        msg = base64_error(v)
        if msg:
            errs.append(invalid(path, v, msg))


def _walk_object(v: dict[str, Any], s: dict[str, Any], path: str, errs: list[FieldError],
                 unknown: _Decoding | None, owner: str) -> None:
    """The required fields and the fields of a JSON object `v` (schema `s`, resolved)."""
    props = s.get("properties")
    addl = s.get("additionalProperties")
    # Required fields as the schema lists them, except where Kubernetes' own validation
    # does not insist: in status (written by controllers) and on lists (semantic checks
    # require the lists that matter, e.g. spec.containers), nor an object's top-level
    # `spec` (1.37's schemas list it; the API server decodes a missing spec as an empty one
    # and names the spec's own missing fields).
    if unknown is None and not (path == "status" or path.startswith("status.")):
        for r in s.get("required", []):
            if "array" in _types(schema.resolve(props.get(r, {}) if props else {})) or (not path and r == "spec"):
                continue
            if v.get(r) is None:
                errs.append(required(_join(path, r)))
    drop: list[str] = []
    for k, sub in v.items():
        if props is not None and k in props:
            _walk(sub, props[k], _join(path, k), errs, unknown, owner)
        elif isinstance(addl, dict):
            keyed = schema.resolve(addl).get("format") == "byte"
            _walk(sub, addl, f"{path}[{k}]" if keyed else _join(path, k), errs, unknown, owner)
        elif props is not None and addl is None:
            if unknown is not None:
                unknown.unknown.append("." + _join(path, k))
                drop.append(k)
    if unknown is not None and unknown.prune:
        for k in drop:
            del v[k]


def _check_quantity_value(v: Any, path: str, errs: list[FieldError]) -> None:
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        errs.append(type_invalid(path, json_type(v), "string"))
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
