"""CRD validation rules (`x-kubernetes-validations`) in CEL, compiled and evaluated by
`api.celexpr` (cel-python), as the admission objects' expressions are.

Each rule of a schema node is evaluated with `self` bound to the value there (and
`oldSelf` to the old object's value on an update; a rule that mentions `oldSelf` is a
transition rule, skipped when there is no old value). A rule that is false is the
error `<path>: Invalid value: "<type>": <message>` (its `message`, else
`failed rule: <rule>`), with its `fieldPath` appended to the path and its `reason`
as the cause type when given. `compile_errors` checks the rules of a CRD's schema.
Gaps: Kubernetes' CEL libraries beyond standard CEL (`isURL`, `quantity`, ...) and the
cost budget are not there; `messageExpression` is used only when it evaluates to a string.
Invariants: never raises; an evaluation error is reported as the rule failing, with why.
"""

from __future__ import annotations

from typing import Any

from k8py.api import celexpr
from k8py.api.validation.field import FieldError, invalid
from k8py.api.validation.structural import json_type

_TYPE_NAMES = {"array": "array", "object": "object", "string": "string", "integer": "integer",
               "number": "number", "boolean": "boolean"}


def compile_error(rule: str) -> str | None:
    """Why `rule` does not compile, or None."""
    err = celexpr.compile_error(rule)
    return f"compilation failed: {err.splitlines()[0]}" if err else None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def validate(obj: Any, old: Any, schema: dict[str, Any] | None) -> list[FieldError]:
    errs: list[FieldError] = []
    if isinstance(schema, dict):
        _walk(obj, old, schema, "", errs)
    return errs


def _walk(v: Any, old: Any, s: dict[str, Any], path: str, errs: list[FieldError]) -> None:
    if v is None:
        return
    for rule in s.get("x-kubernetes-validations") or []:
        if isinstance(rule, dict) and isinstance(rule.get("rule"), str):
            _check(v, old, rule, path, errs)
    props = s.get("properties") if isinstance(s.get("properties"), dict) else {}
    extra = s.get("additionalProperties")
    if isinstance(v, dict):
        o = old if isinstance(old, dict) else {}
        for k, x in v.items():
            ps = props.get(k) if isinstance(props, dict) else None
            if isinstance(ps, dict):
                _walk(x, o.get(k), ps, _join(path, k), errs)
            elif isinstance(extra, dict):
                _walk(x, o.get(k), extra, f"{path}[{k}]", errs)
    elif isinstance(v, list) and isinstance(s.get("items"), dict):
        for i, x in enumerate(v):
            _walk(x, None, s["items"], f"{path}[{i}]", errs)


def _check(v: Any, old: Any, rule: dict[str, Any], path: str, errs: list[FieldError]) -> None:
    text = rule["rule"]
    transition = "oldSelf" in text
    if transition and old is None:
        return
    where = path or "<root>"
    if isinstance(rule.get("fieldPath"), str) and rule["fieldPath"]:
        where = path + rule["fieldPath"] if path else rule["fieldPath"].lstrip(".")
    variables = {"self": v, **({"oldSelf": old} if transition else {})}
    try:
        failed, why = celexpr.evaluate(text, variables) is not True, ""
    except celexpr.CelError as e:  # an evaluation error fails the rule
        failed, why = True, f": {e}"
    if not failed:
        return
    msg = rule.get("message") if isinstance(rule.get("message"), str) and rule.get("message") else ""
    msg = msg or f"failed rule: {text}{why}"
    fe = invalid(where, _TYPE_NAMES.get(json_type(v), json_type(v)), msg)
    reason = rule.get("reason")
    if reason in ("FieldValueForbidden", "FieldValueRequired", "FieldValueDuplicate"):
        fe = FieldError(reason, fe.field, fe.message)
    errs.append(fe)


def compile_errors(schema: dict[str, Any], path: str) -> list[FieldError]:
    """The rules of a CRD schema that do not compile, named by their path."""
    out: list[FieldError] = []
    _compile_walk(schema, path, out)
    return out


def _compile_walk(s: dict[str, Any], path: str, out: list[FieldError]) -> None:
    for i, rule in enumerate(s.get("x-kubernetes-validations") or []):
        text = rule.get("rule") if isinstance(rule, dict) else None
        rp = f"{path}.x-kubernetes-validations[{i}].rule"
        if not isinstance(text, str) or not text:
            out.append(invalid(rp, text, "rule must be a non-empty string"))
            continue
        err = compile_error(text)
        if err:
            out.append(invalid(rp, text, err))
    for k, ps in (s.get("properties") or {}).items() if isinstance(s.get("properties"), dict) else ():
        if isinstance(ps, dict):
            _compile_walk(ps, f"{path}.properties[{k}]", out)
    for key in ("items", "additionalProperties"):
        if isinstance(s.get(key), dict):
            _compile_walk(s[key], f"{path}.{key}", out)
