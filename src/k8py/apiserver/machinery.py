"""Bindings from the API server to the pure-data helpers of `k8py.api`.

Validation, defaulting, tables, selectors, patches and server-side apply live in
`k8py.api.*` (written and tested there); this module imports them lazily and turns
their results and errors into what the API server answers (Status causes,
StatusErrors). When a helper module is not installed yet, reads degrade (no
defaults, no validation, a name-only table) and features that need it answer a
clear 500/415 instead of crashing.
"""

from __future__ import annotations

import importlib
import logging
from types import ModuleType
from typing import Any

from k8py.api.resources import Resource
from k8py.apiserver.errors import StatusError, bad_request, internal

log = logging.getLogger(__name__)
Obj = dict[str, Any]

_REASONS = {
    "Required value": "FieldValueRequired",
    "Invalid value": "FieldValueInvalid",
    "Unsupported value": "FieldValueNotSupported",
    "Duplicate value": "FieldValueDuplicate",
    "Forbidden": "FieldValueForbidden",
    "Too long": "FieldValueTooLong",
    "Too many": "FieldValueTooMany",
    "Not found": "FieldValueNotFound",
    "Internal error": "InternalError",
    "FieldValueRequired": "FieldValueRequired",
    "FieldValueInvalid": "FieldValueInvalid",
    "FieldValueNotSupported": "FieldValueNotSupported",
    "FieldValueDuplicate": "FieldValueDuplicate",
    "FieldValueForbidden": "FieldValueForbidden",
    "FieldValueTooLong": "FieldValueTooLong",
    "FieldValueTooMany": "FieldValueTooMany",
    "FieldValueNotFound": "FieldValueNotFound",
    "FieldValueTypeInvalid": "FieldValueTypeInvalid",
}
_TYPE_TEXT = {v: k for k, v in _REASONS.items() if " " in k or k in ("Forbidden",)}
# A type error is its own reason but prints as "Invalid value" (field.ErrorTypeTypeInvalid).
_TYPE_TEXT["FieldValueTypeInvalid"] = "Invalid value"

_missing_warned: set[str] = set()


def _module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError as e:
        if e.name != name:
            raise
        if name not in _missing_warned:
            _missing_warned.add(name)
            log.warning("%s is not available yet; the API server degrades without it", name)
        return None


def cause(type_: str, field: str, message: str) -> dict[str, str]:
    """A Status cause in Kubernetes' shape from a field error's parts."""
    reason = _REASONS.get(type_, "FieldValueInvalid")
    text = _TYPE_TEXT.get(type_, type_)
    if not message:
        msg = text
    elif message.startswith(text):
        msg = message
    else:
        msg = f"{text}: {message}"
    return {"reason": reason, "message": msg, "field": field}


def field_error_cause(fe: Any) -> dict[str, str]:
    return cause(str(getattr(fe, "type", "Invalid value")), str(getattr(fe, "field", "")),
                 str(getattr(fe, "message", "") or getattr(fe, "detail", "")))


def validate(obj: Obj, r: Resource, old: Obj | None = None) -> list[dict[str, str]]:
    m = _module("k8py.api.validation")
    if m is None:
        return []
    return [field_error_cause(fe) for fe in m.validate(obj, r, old=old)]


def unknown_fields(obj: Obj, r: Resource) -> list[str]:
    m = _module("k8py.api.validation")
    if m is None or not hasattr(m, "unknown_fields"):
        return []
    return [str(f).lstrip(".") for f in m.unknown_fields(obj, r)]


def apply_defaults(obj: Obj, r: Resource) -> None:
    m = _module("k8py.api.defaults")
    if m is not None:
        m.apply_defaults(obj, r)


def to_table(r: Resource, objs: list[Obj], now: float, include_object: str = "Metadata") -> Obj:
    m = _module("k8py.api.tables")
    if m is not None:
        return m.to_table(r, objs, now, include_object=include_object)  # type: ignore[no-any-return]
    rows = []
    for o in objs:
        row: Obj = {"cells": [o.get("metadata", {}).get("name", "")]}
        if include_object != "None":
            row["object"] = o if include_object == "Object" else {
                "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                "metadata": o.get("metadata", {})}
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {},
            "columnDefinitions": [{"name": "Name", "type": "string", "format": "name",
                                   "description": "Name", "priority": 0}],
            "rows": rows}


# -- selectors ---------------------------------------------------------------

def _selectors() -> ModuleType:
    m = _module("k8py.api.selectors")
    if m is None:
        raise internal("label and field selectors are not available in this build")
    return m


def parse_label_selector(s: str) -> Any:
    m = _selectors()
    try:
        return m.parse_label_selector(s)
    except ValueError as e:
        raise bad_request(f"unable to parse requirement: {e}") from None


def parse_field_selector(s: str) -> Any:
    m = _selectors()
    try:
        return m.parse_field_selector(s)
    except ValueError as e:
        raise bad_request(f"invalid field selector: {e}") from None


# -- patches -----------------------------------------------------------------

def _merge() -> ModuleType:
    m = _module("k8py.api.merge")
    if m is None:
        raise StatusError(415, "UnsupportedMediaType", "patches are not supported by this build yet")
    return m


def json_merge_patch(orig: Obj, patch: Any) -> Any:
    return _merge().json_merge_patch(orig, patch)


def json_patch(orig: Obj, ops: Any) -> Any:
    return _merge().json_patch(orig, ops)


def strategic_merge_patch(orig: Obj, patch: Any, schema_name: str | None) -> Any:
    return _merge().strategic_merge_patch(orig, patch, schema_name)


def server_side_apply(live: Obj | None, applied: Obj, manager: str, schema_name: str | None,
                      force: bool, now: float) -> Obj:
    m = _module("k8py.api.apply")
    if m is None:
        raise StatusError(415, "UnsupportedMediaType", "server-side apply is not supported by this build yet")
    return m.server_side_apply(live, applied, manager, schema_name, force, now)  # type: ignore[no-any-return]


def record_update(old: Obj | None, new: Obj, manager: str, now: float, subresource: str | None = None) -> Obj:
    m = _module("k8py.api.apply")
    if m is None or not hasattr(m, "record_update"):
        return new
    return m.record_update(old, new, manager, now, subresource)  # type: ignore[no-any-return]


def schema_name(r: Resource) -> str | None:
    from k8py.api.schema import name_for_gvk
    return name_for_gvk(r.group, r.version, r.kind)


def _status_view(o: Obj) -> Obj:
    md = o.get("metadata") or {}
    view: Obj = {"apiVersion": o.get("apiVersion"), "kind": o.get("kind"),
                 "metadata": {k: md[k] for k in ("name", "namespace", "managedFields") if k in md}}
    if "status" in o:
        view["status"] = o["status"]
    return view


def record_status_update(old: Obj, new: Obj, manager: str, now: float) -> Obj:
    """record_update for a status write (only status differs between old and new),
    computed on status-only views: the same managedFields, without walking spec."""
    view = record_update(_status_view(old), _status_view(new), manager, now, "status")
    out = dict(new)
    md = dict(new.get("metadata") or {})
    if "managedFields" in view.get("metadata", {}):
        md["managedFields"] = view["metadata"]["managedFields"]
    else:
        md.pop("managedFields", None)
    out["metadata"] = md
    return out
