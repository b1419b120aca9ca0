"""Bindings from the API server to the pure-data helpers of `k8py.api`.

Validation, defaulting, tables, selectors, patches and server-side apply live in
`k8py.api.*` (written and tested there); this module turns their results and errors
into what the API server answers (Status causes, StatusErrors). Invariant: the
`k8py.api` modules are imported inside the functions that use them, so that the
server starts (and serves reads) without loading schemas or validation.
"""

from __future__ import annotations

from typing import Any

from k8py.api.resources import Resource
from k8py.api.types import Obj
from k8py.apiserver.errors import bad_request

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
    """The Status cause of a k8py.api.validation.field.FieldError."""
    return cause(fe.type, fe.field, fe.message)


def validate(obj: Obj, r: Resource, old: Obj | None = None) -> list[dict[str, str]]:
    from k8py.api import validation
    return [field_error_cause(fe) for fe in validation.validate(obj, r, old=old)]


def validate_resize(new: Obj, old: Obj) -> list[dict[str, str]]:
    """Causes of what a pods/resize write may not change (k8py.api.validation.podresize)."""
    from k8py.api.validation.podresize import validate_pod_resize
    return [field_error_cause(fe) for fe in validate_pod_resize(new, old)]


def unknown_fields(obj: Obj, r: Resource) -> list[str]:
    from k8py.api import validation
    return [str(f).lstrip(".") for f in validation.unknown_fields(obj, r)]


def decoding_problems(obj: Obj, r: Resource, prune: bool) -> tuple[list[str], list[str]]:
    """What decoding `obj` into Kubernetes' Go types finds: the unknown fields (dropped
    from `obj` with `prune`), and the messages of integers out of their field's range."""
    from k8py.api.customresource import CustomResource
    if isinstance(r, CustomResource):
        from k8py.api.validation import openapischema
        target = obj if prune else clone_json(obj)
        return openapischema.prune(target, r.schema), []
    from k8py.api.validation.structural import decoding_problems as problems
    unknown, overflows = problems(obj, r, prune=prune)
    return [str(f).lstrip(".") for f in unknown], [o.message() for o in overflows]


def apply_defaults(obj: Obj, r: Resource) -> None:
    from k8py.api.customresource import CustomResource
    if isinstance(r, CustomResource):
        from k8py.api.validation import openapischema
        openapischema.default(obj, r.schema)
        return
    from k8py.api import defaults
    defaults.apply_defaults(obj, r)


def to_table(r: Resource, objs: list[Obj], now: float, include_object: str = "Metadata") -> Obj:
    from k8py.api.customresource import CustomResource
    if isinstance(r, CustomResource):
        from k8py.api import crtables
        return crtables.to_table(r, objs, now, include_object=include_object)
    from k8py.api import tables
    return tables.to_table(r, objs, now, include_object=include_object)


def clone_json(obj: Any) -> Any:
    """A deep copy of a JSON value."""
    import json
    return json.loads(json.dumps(obj))


# -- selectors ---------------------------------------------------------------

def parse_label_selector(s: str) -> Any:
    from k8py.api import selectors
    try:
        return selectors.parse_label_selector(s)
    except ValueError as e:
        raise bad_request(f"unable to parse requirement: {e}") from None


def parse_field_selector(s: str) -> Any:
    from k8py.api import selectors
    try:
        return selectors.parse_field_selector(s)
    except ValueError as e:
        raise bad_request(f"invalid field selector: {e}") from None


# -- patches -----------------------------------------------------------------

def json_merge_patch(orig: Obj, patch: Any) -> Any:
    from k8py.api import merge
    return merge.json_merge_patch(orig, patch)


def json_patch(orig: Obj, ops: Any) -> Any:
    from k8py.api import merge
    return merge.json_patch(orig, ops)


def strategic_merge_patch(orig: Obj, patch: Any, schema_name: str | None) -> Any:
    from k8py.api import merge
    return merge.strategic_merge_patch(orig, patch, schema_name)


def server_side_apply(live: Obj | None, applied: Obj, manager: str, schema_name: str | None,
                      force: bool, now: float) -> Obj:
    from k8py.api import apply
    return apply.server_side_apply(live, applied, manager, schema_name, force, now)


def record_update(old: Obj | None, new: Obj, manager: str, now: float, subresource: str | None = None) -> Obj:
    from k8py.api import apply
    return apply.record_update(old, new, manager, now, subresource)


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
