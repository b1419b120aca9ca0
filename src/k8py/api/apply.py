"""Server-side apply and managed fields (metadata.managedFields), after Kubernetes' structured-merge-diff.

A field set is a set of paths; a path is a tuple of path elements ("f", field name),
("k", canonical JSON of a list-map item's key fields), ("v", JSON of a set item) or
("i", index). They serialize to FieldsV1 exactly as Kubernetes writes them:
`{"f:spec": {"f:containers": {"k:{\\"name\\":\\"nginx\\"}": {".": {}, "f:image": {}}}}}`.

A field set holds the leaves of an object: scalars, atomic lists and maps, empty maps,
and the items of associative (map) and set lists. Lists are typed from the schema:
`x-kubernetes-list-type` and `x-kubernetes-list-map-keys`, else patch strategy "merge"
with a merge key (map) or without (set), else atomic. Maps marked
`x-kubernetes-map-type: atomic` are leaves. apiVersion, kind and server-set metadata
(name, namespace, uid, resourceVersion, generation, creationTimestamp, managedFields, ...)
are never owned.

server_side_apply: the applied config is merged into the live object; fields this
manager applied before and no longer applies are removed unless someone else owns them;
a field whose live value differs from the applied value and that another manager owns
is a conflict (ApplyConflict, 409) unless force, which takes ownership away from them.
record_update: a non-apply write takes ownership of every field it changed, away from
every other manager, in an "Update" entry (per manager, apiVersion and subresource).
Both functions are pure: they return a new object and never modify their arguments.
"""

from __future__ import annotations

import copy
import datetime
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from k8py.api import schema as schemas
from k8py.api.errors import ApplyConflict

__all__ = [
    "ApplyConflict",
    "server_side_apply",
    "record_update",
    "fieldset",
    "to_fields_v1",
    "from_fields_v1",
    "path_string",
]

PathElement = tuple[str, str]
Path = tuple[PathElement, ...]
Json = Any
Node = dict[str, Any] | None  # an (unresolved) schema of a field, with its x-kubernetes-* metadata

_TOP_IGNORED = ("apiVersion", "kind")
_META_IGNORED = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
)
# Defaults that Kubernetes' OpenAPI declares for list map keys (ContainerPort.protocol,
# ServicePort.protocol, ...): an item that omits them still has that key.
_KEY_DEFAULTS: dict[str, Any] = {"protocol": "TCP"}


def _rfc3339(now: str | float | int) -> str:
    """Entry times are RFC 3339 strings in UTC; epoch seconds are accepted too."""
    if isinstance(now, (int, float)) and not isinstance(now, bool):
        t = datetime.datetime.fromtimestamp(now, tz=datetime.UTC)
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(now)


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


# ---------------------------------------------------------------- schema helpers


def _root_node(schema_name: str | None) -> Node:
    if not schema_name:
        return None
    return schemas.definitions().get(schema_name)


def _schema_name_for(obj: dict[str, Any]) -> str | None:
    api_version = str(obj.get("apiVersion") or "")
    group, _, version = api_version.rpartition("/")
    return schemas.name_for_gvk(group, version, str(obj.get("kind") or ""))


def _resolved(node: Node) -> dict[str, Any]:
    return schemas.resolve(node) if node else {}


def _child(node: Node, name: str) -> Node:
    s = _resolved(node)
    prop = (s.get("properties") or {}).get(name)
    if prop is None and isinstance(s.get("additionalProperties"), dict):
        prop = s["additionalProperties"]
    return prop


def _map_atomic(node: Node) -> bool:
    if not node:
        return False
    return node.get("x-kubernetes-map-type") == "atomic" or _resolved(node).get("x-kubernetes-map-type") == "atomic"


def _list_info(node: Node) -> tuple[str, list[str], Node]:
    """(list type "map" | "set" | "atomic", map keys, item node)."""
    if not node:
        return "atomic", [], None
    s = _resolved(node)
    items = node.get("items") or s.get("items")
    lt = node.get("x-kubernetes-list-type") or s.get("x-kubernetes-list-type")
    keys = node.get("x-kubernetes-list-map-keys") or s.get("x-kubernetes-list-map-keys")
    strategy = str(node.get("x-kubernetes-patch-strategy", ""))
    merge_key = node.get("x-kubernetes-patch-merge-key")
    if lt == "map" and keys:
        return "map", list(keys), items
    if lt == "set":
        return "set", [], items
    if lt is None and "merge" in strategy.split(","):
        if merge_key:
            return "map", [merge_key], items
        return "set", [], items
    return "atomic", [], items


def _canon(v: Json) -> str:
    return json.dumps(v, sort_keys=True, separators=(",", ":"))


def _item_key(item: Json, keys: list[str]) -> dict[str, Any] | None:
    if not isinstance(item, dict):
        return None
    out: dict[str, Any] = {}
    for k in keys:
        if k in item and item[k] is not None:
            out[k] = item[k]
        elif k in _KEY_DEFAULTS:
            out[k] = _KEY_DEFAULTS[k]
        elif len(keys) == 1:
            return None
    return out or None


# ---------------------------------------------------------------- field sets


def _strip(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy without the fields nobody owns."""
    out = {k: v for k, v in obj.items() if k not in _TOP_IGNORED}
    meta = out.get("metadata")
    if isinstance(meta, dict):
        meta = {k: v for k, v in meta.items() if k not in _META_IGNORED}
        if meta:
            out["metadata"] = meta
        else:
            out.pop("metadata")
    return out


def fieldset(obj: dict[str, Any], schema_name: str | None) -> set[Path]:
    """The paths of the owned leaves of an object of the given definition."""
    return _fieldset(_strip(obj), _root_node(schema_name), ())


def _fieldset(value: Json, node: Node, prefix: Path) -> set[Path]:
    out: set[Path] = set()
    if isinstance(value, dict):
        if prefix and (not value or _map_atomic(node)):
            return {prefix}
        for k, v in value.items():
            if v is None:
                continue
            out |= _fieldset(v, _child(node, k), prefix + (("f", k),))
        return out
    if isinstance(value, list):
        lt, keys, item_node = _list_info(node)
        if lt == "map":
            elems = []
            for item in value:
                key = _item_key(item, keys)
                if key is None:
                    return {prefix}
                elems.append((("k", _canon(key)), item))
            for pe, item in elems:
                p = prefix + (pe,)
                out.add(p)
                out |= _fieldset(item, item_node, p)
            return out
        if lt == "set" and all(not isinstance(x, (dict, list)) for x in value):
            return {prefix + (("v", _canon(x)),) for x in value}
        return {prefix}
    return {prefix} if prefix else set()


def to_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    """FieldsV1 JSON of a field set."""
    paths = list(paths)
    root: dict[str, Any] = {}
    for p in paths:
        node = root
        for kind, text in p:
            node = node.setdefault(f"{kind}:{text}", {})
    for p in paths:
        node = root
        for kind, text in p:
            node = node[f"{kind}:{text}"]
        if node and "." not in node:
            node["."] = {}
    return _sorted_tree(root)


def _sorted_tree(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _sorted_tree(d[k]) for k in sorted(d)}


def from_fields_v1(d: dict[str, Any] | None, prefix: Path = ()) -> set[Path]:
    """The field set of FieldsV1 JSON."""
    out: set[Path] = set()
    for k, v in (d or {}).items():
        if k == ".":
            if prefix:
                out.add(prefix)
            continue
        kind, _, text = k.partition(":")
        if kind in ("k", "v"):
            try:
                text = _canon(json.loads(text))
            except ValueError:
                pass
        p = prefix + ((kind, text),)
        if isinstance(v, dict) and v:
            out |= from_fields_v1(v, p)
        else:
            out.add(p)
    return out


def path_string(p: Path) -> str:
    """Kubernetes' notation: .spec.containers[name="nginx"].image, .metadata.finalizers[="x"]."""
    parts: list[str] = []
    for kind, text in p:
        if kind == "f":
            parts.append("." + text)
        elif kind == "k":
            try:
                key = json.loads(text)
                parts.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(key.items())) + "]")
            except (ValueError, AttributeError):
                parts.append(f"[{text}]")
        elif kind == "v":
            parts.append(f"[={text}]")
        else:
            parts.append(f"[{text}]")
    return "".join(parts)


# ---------------------------------------------------------------- values at paths


def _find_item(items: list[Json], kind: str, text: str) -> int:
    if kind == "i":
        try:
            i = int(text)
        except ValueError:
            return -1
        return i if 0 <= i < len(items) else -1
    target = json.loads(text)
    for i, item in enumerate(items):
        if kind == "v" and item == target:
            return i
        if kind == "k" and isinstance(item, dict):
            key = _item_key(item, list(target))
            if key == target:
                return i
    return -1


def _get(obj: Json, p: Path) -> Json:
    cur = obj
    for kind, text in p:
        if kind == "f":
            if not isinstance(cur, dict) or text not in cur:
                return MISSING
            cur = cur[text]
        else:
            if not isinstance(cur, list):
                return MISSING
            i = _find_item(cur, kind, text)
            if i < 0:
                return MISSING
            cur = cur[i]
    return cur


def _remove(obj: Json, p: Path) -> None:
    parent = _get(obj, p[:-1]) if len(p) > 1 else obj
    kind, text = p[-1]
    if kind == "f":
        if isinstance(parent, dict):
            parent.pop(text, None)
    elif isinstance(parent, list):
        i = _find_item(parent, kind, text)
        if i >= 0:
            del parent[i]


def _prefixes(paths: Iterable[Path]) -> set[Path]:
    out: set[Path] = set()
    for p in paths:
        for n in range(1, len(p) + 1):
            out.add(p[:n])
    return out


# ---------------------------------------------------------------- merge


def _without_nulls(v: Json) -> Json:
    if isinstance(v, dict):
        return {k: _without_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_without_nulls(x) for x in v]
    return v


def _merge(live: Json, applied: Json, node: Node) -> Json:
    if isinstance(applied, dict) and isinstance(live, dict) and not _map_atomic(node):
        out = dict(live)
        for k, v in applied.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = _merge(live.get(k, MISSING), v, _child(node, k))
        return out
    if isinstance(applied, list) and isinstance(live, list):
        lt, keys, item_node = _list_info(node)
        if lt == "map" and all(_item_key(x, keys) is not None for x in applied + live):
            out_list = list(live)
            for item in applied:
                key = _item_key(item, keys)
                i = next((n for n, x in enumerate(out_list) if _item_key(x, keys) == key), -1)
                if i >= 0:
                    out_list[i] = _merge(out_list[i], item, item_node)
                else:
                    out_list.append(_without_nulls(item))
            return out_list
        if lt == "set":
            return list(live) + [_without_nulls(x) for x in applied if x not in live]
    return _without_nulls(copy.deepcopy(applied))


# ---------------------------------------------------------------- managed fields entries


@dataclass
class _Entry:
    manager: str
    operation: str
    api_version: str
    time: str | None
    fields: set[Path] = field(default_factory=set)
    subresource: str = ""

    def ident(self) -> tuple[str, str, str, str]:
        # Appliers are one manager whatever version they apply; updaters are per version.
        return (self.manager, self.operation, "" if self.operation == "Apply" else self.api_version, self.subresource)

    def describe(self) -> str:
        s = json.dumps(self.manager)
        if self.subresource:
            s += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == "Update":
            # Kubernetes names the manager by its identifier, which never holds the time.
            s += f" using {self.api_version}"
        return s

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"manager": self.manager, "operation": self.operation, "apiVersion": self.api_version}
        if self.time:
            out["time"] = self.time
        out["fieldsType"] = "FieldsV1"
        out["fieldsV1"] = to_fields_v1(self.fields)
        if self.subresource:
            out["subresource"] = self.subresource
        return out


def _entries(obj: dict[str, Any] | None) -> list[_Entry]:
    if not obj:
        return []
    out: list[_Entry] = []
    for e in (obj.get("metadata") or {}).get("managedFields") or []:
        if not isinstance(e, dict):
            continue
        out.append(
            _Entry(
                manager=str(e.get("manager", "")),
                operation=str(e.get("operation", "Update")),
                api_version=str(e.get("apiVersion", "")),
                time=e.get("time"),
                fields=from_fields_v1(e.get("fieldsV1")),
                subresource=str(e.get("subresource", "") or ""),
            )
        )
    return out


def _with_managed(obj: dict[str, Any], entries: list[_Entry]) -> dict[str, Any]:
    meta = dict(obj.get("metadata") or {})
    kept = [e.to_json() for e in entries if e.fields]
    if kept:
        meta["managedFields"] = kept
    else:
        meta.pop("managedFields", None)
    out = dict(obj)
    out["metadata"] = meta
    return out


# ---------------------------------------------------------------- server-side apply


def server_side_apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    manager: str,
    schema_name: str | None,
    force: bool,
    now: str | float,
) -> dict[str, Any]:
    """The object after `manager` applies `applied` to `live` (None: create).

    `now` is the entry time, RFC 3339 ("2026-01-01T00:00:00Z") or epoch seconds."""
    now = _rfc3339(now)
    if not manager:
        raise ValueError("server-side apply requires a field manager")
    root = _root_node(schema_name)
    applied = copy.deepcopy(applied)
    if isinstance(applied.get("metadata"), dict):
        applied["metadata"].pop("managedFields", None)
    applied_fields = _fieldset(_strip(applied), root, ())
    api_version = str(applied.get("apiVersion") or (live or {}).get("apiVersion") or "")

    entries = _entries(live)
    if live is not None and not entries:
        entries = [
            _Entry(
                "before-first-apply",
                "Update",
                str(live.get("apiVersion") or api_version),
                now,
                _fieldset(_strip(live), root, ()),
            )
        ]
    me = _Entry(manager, "Apply", api_version, now)
    mine = next((e for e in entries if e.ident() == me.ident()), None)
    previous = mine.fields if mine else set()
    others = [e for e in entries if e is not mine]

    conflicts: list[tuple[_Entry, Path]] = []
    if live is not None:
        for p in sorted(applied_fields):
            if p[-1][0] in ("k", "v"):
                continue  # an item exists or not; its fields carry the values
            lv = _get(live, p)
            if lv is MISSING or lv == _without_nulls(_get(applied, p)):
                continue
            for e in others:
                if p in e.fields:
                    conflicts.append((e, p))
    if conflicts and not force:
        raise _conflict_error(conflicts)
    for e, p in conflicts:
        e.fields.discard(p)

    base = copy.deepcopy(live) if live is not None else {}
    merged = _merge(base, applied, root)

    owned_elsewhere = _prefixes(applied_fields)
    for e in others:
        owned_elsewhere |= _prefixes(e.fields)
    for p in sorted(previous - applied_fields, key=len):
        if p not in owned_elsewhere:
            _remove(merged, p)

    me.fields = applied_fields
    new_entries = [me if e is mine else e for e in entries]
    if mine is None:
        new_entries.append(me)
    return _with_managed(merged, new_entries)


def _conflict_error(conflicts: list[tuple[_Entry, Path]]) -> ApplyConflict:
    pairs = [(e.describe(), path_string(p)) for e, p in conflicts]
    causes = [{"type": "FieldManagerConflict", "message": f"conflict with {m}", "field": f} for m, f in pairs]
    if len(pairs) == 1:
        message = f"Apply failed with 1 conflict: conflict with {pairs[0][0]}: {pairs[0][1]}"
    else:
        by_manager: dict[str, list[str]] = {}
        for m, f in pairs:
            by_manager.setdefault(m, []).append(f)
        lines: list[str] = []
        for m in sorted(by_manager):
            lines.append(f"conflicts with {m}:")
            lines.extend(f"- {f}" for f in by_manager[m])
        message = f"Apply failed with {len(pairs)} conflicts: " + "\n".join(lines)
    return ApplyConflict(message, [(e.manager, path_string(p)) for e, p in conflicts], causes)


# ---------------------------------------------------------------- updates


def record_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    now: str | float,
    subresource: str | None = None,
) -> dict[str, Any]:
    """`new` with managedFields recording that `manager` wrote it over `old` (None: create).

    The manager's "Update" entry gains every field the write changed or added and loses
    removed ones; every other manager loses ownership of fields the write changed.
    managedFields sent in `new` are kept when present (an empty list resets them);
    otherwise those of `old` carry over. `now` is RFC 3339 or epoch seconds.
    The result is a new object and a new metadata; nested values are shared with `new`
    (no deep copy: the API server stores the result and drops `new`).
    """
    now = _rfc3339(now)
    root = _root_node(_schema_name_for(new))
    meta = new.get("metadata") or {}
    if "managedFields" in meta and meta["managedFields"] is not None:
        entries = _entries(new)
    else:
        entries = _entries(old)
    new_fields = _fieldset(_strip(new), root, ())
    if old is None:
        changed = new_fields
        removed: set[Path] = set()
    else:
        old_fields = _fieldset(_strip(old), root, ())
        changed = set()
        for p in new_fields:
            ov = _get(old, p)
            if ov is MISSING:
                changed.add(p)
            elif p[-1][0] not in ("k", "v") and ov != _get(new, p):
                changed.add(p)
        removed = old_fields - new_fields
    api_version = str(new.get("apiVersion") or "")
    me = _Entry(manager, "Update", api_version, now, subresource=subresource or "")
    mine = next((e for e in entries if e.ident() == me.ident()), None)
    touched = changed | removed
    if not touched:
        return _with_managed(new, entries)
    for e in entries:
        if e is not mine:
            e.fields -= touched
    if mine is not None:
        mine.fields = (mine.fields | changed) - removed
        mine.time = now
    else:
        me.fields = set(changed)
        entries.append(me)
    return _with_managed(new, entries)
