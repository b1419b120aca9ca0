"""Tables of custom resources: Name plus the CRD's additionalPrinterColumns.

As apiextensions-apiserver's table convertor: without printer columns a CRD shows Name
and Age; a column's cell is its JSONPath's value (`.spec.replicas`, `.status.conditions[0]
.type`, `.metadata.labels['app']`), None when absent (kubectl prints `<none>`), a `date`
column the time since the timestamp, an integer or number as a JSON number. `get_path`
is also what the scale subresource reads (specReplicasPath, ...). Invariants: never raises
on any object; an unparsable path gives an empty cell.
"""

from __future__ import annotations

import json
import re
from typing import Any

from k8py.api.customresource import CustomResource
from k8py.api.tables import Column, col, since

_TOKEN = re.compile(r"\.([A-Za-z0-9_\-$]+)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")
_MISSING = object()


def parse_path(path: str) -> list[str | int] | None:
    """`.a.b[0]['c.d']` (optionally in braces) -> ["a", "b", 0, "c.d"]; None if not such a path."""
    p = path.strip()
    if p.startswith("{") and p.endswith("}"):
        p = p[1:-1]
    out: list[str | int] = []
    pos = 0
    while pos < len(p):
        m = _TOKEN.match(p, pos)
        if m is None:
            return None
        if m.group(1) is not None:
            out.append(m.group(1))
        elif m.group(2) is not None:
            out.append(int(m.group(2)))
        else:
            out.append(m.group(3) if m.group(3) is not None else m.group(4))
        pos = m.end()
    return out


def get_path(obj: Any, path: str) -> Any:
    """The value at a simple JSONPath, or `MISSING`."""
    steps = parse_path(path)
    if steps is None:
        return _MISSING
    v = obj
    for s in steps:
        if isinstance(s, int) and isinstance(v, list) and s < len(v):
            v = v[s]
        elif isinstance(s, str) and isinstance(v, dict) and s in v:
            v = v[s]
        else:
            return _MISSING
    return v


def missing(v: Any) -> bool:
    return v is _MISSING


def set_path(obj: dict[str, Any], path: str, value: Any) -> bool:
    """Set the value at a dotted path, creating objects on the way; False if it cannot."""
    steps = parse_path(path)
    if not steps or not all(isinstance(s, str) for s in steps):
        return False
    v: Any = obj
    for s in steps[:-1]:
        nxt = v.get(s) if isinstance(v, dict) else None
        if nxt is None:
            nxt = v[s] = {}
        if not isinstance(nxt, dict):
            return False
        v = nxt
    v[steps[-1]] = value
    return True


def columns(r: CustomResource) -> list[Column]:
    cols = [col("Name", "string", "Name must be unique within a namespace. Is required when creating resources, "
                "although some resources may allow a client to request the generation of an appropriate name "
                "automatically.", fmt="name")]
    if not r.columns:
        return cols + [col("Age", "date", "Custom resource definition column (in JSONPath format): "
                           ".metadata.creationTimestamp")]
    for c in r.columns:
        cols.append(col(str(c.get("name", "")), str(c.get("type", "string")), str(c.get("description", "")),
                        int(c.get("priority") or 0), str(c.get("format") or "")))
    return cols


def _cell(v: Any, type_: str, now: float) -> Any:
    if missing(v) or v is None:
        return None
    if type_ == "date":
        return since(v, now) if isinstance(v, str) else None
    if type_ == "integer":
        return v if isinstance(v, int) and not isinstance(v, bool) else (int(v) if isinstance(v, float) else None)
    if type_ == "number":
        return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None
    if type_ == "boolean":
        return v if isinstance(v, bool) else None
    return v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))


def row(r: CustomResource, obj: dict[str, Any], now: float) -> list[Any]:
    name = (obj.get("metadata") or {}).get("name", "") if isinstance(obj.get("metadata"), dict) else ""
    if not r.columns:
        return [name, _cell(get_path(obj, ".metadata.creationTimestamp"), "date", now)]
    return [name] + [_cell(get_path(obj, str(c.get("jsonPath", ""))), str(c.get("type", "string")), now)
                     for c in r.columns]


def to_table(r: CustomResource, objs: list[dict[str, Any]], now: float,
             include_object: str = "Metadata") -> dict[str, Any]:
    rows = []
    for obj in objs:
        if not isinstance(obj, dict):
            continue
        out: dict[str, Any] = {"cells": row(r, obj, now)}
        if include_object == "Object":
            out["object"] = obj
        elif include_object != "None":
            out["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": obj.get("metadata") or {}}
        rows.append(out)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}, "columnDefinitions": columns(r),
            "rows": rows}
