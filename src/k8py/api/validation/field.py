"""Field errors, as Kubernetes words them (k8s.io/apimachinery/pkg/util/validation/field).

A `FieldError` is (type, field path, message); the constructors below build the message
exactly as `field.Error.ErrorBody()` does: the type's words, then the bad value as Go's
`%#v` prints it (`go_repr`; a `Raw` value is printed as is), then the detail. Required,
Forbidden, TooLong and TooMany errors never print the value. Pure functions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

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


class Raw:
    """A pre-formatted bad value (printed as is)."""

    def __init__(self, text: str) -> None:
        self.text = text


def _err(type_: str, path: str, value: Any = None, detail: str = "") -> FieldError:
    s = _TYPE_WORDS[type_]
    if type_ not in (REQUIRED, FORBIDDEN, TOO_LONG, TOO_MANY):
        s += ": " + (value.text if isinstance(value, Raw) else go_repr(value))
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


def too_many(path: str, max_items: int) -> FieldError:
    return _err(TOO_MANY, path, detail=f"must have at most {max_items} items")


def not_found(path: str, value: Any) -> FieldError:
    return _err(NOT_FOUND, path, value)


def type_invalid(path: str, actual: str, expected: str) -> FieldError:
    return _err(TYPE_INVALID, path, actual, f"{path} in body must be of type {expected}: {json.dumps(actual)}")
