"""Patches: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and Kubernetes' strategic merge patch.

All functions are pure: they never modify their arguments and return a new object.
Bad patches raise PatchError (a ValueError) with a message that says what is wrong.

The strategic merge patch follows apimachinery's strategicpatch package, driven by the
OpenAPI schemas of `k8py.api.schema`: per field, `x-kubernetes-patch-strategy`
("merge", "replace", "retainKeys", "merge,retainKeys") and `x-kubernetes-patch-merge-key`.

- maps merge recursively; a null value deletes the key;
- lists with strategy merge and a merge key merge element by element on that key
  (containers by name, ports by containerPort, ...); new elements are added;
- lists with strategy merge and no merge key (finalizers) are unions;
- every other list is replaced by the patch's list;
- directives: `$patch: replace|delete` in maps, `{"$patch": "replace"}` and
  `{<key>: v, "$patch": "delete"}` in merging lists, `$deleteFromPrimitiveList/<field>`,
  `$setElementOrder/<field>` (the order of the result), `$retainKeys` (keys not listed
  are cleared). Like Kubernetes, `$patch: merge` is refused (it is the default anyway);
- results are the ones `kubectl patch --local` computes with Kubernetes' own code (the
  tests compare them);
- fields without a schema (custom resources, unknown fields) merge as JSON merge patch.

Ordering follows Kubernetes: `$setElementOrder` first, then the order of the patch list,
then the order of the live list (server-only items keep their place relative to
items the patch mentions).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import jsonpatch
import jsonpointer

from k8py.api import schema as schemas
from k8py.api.errors import PatchError

__all__ = ["PatchError", "json_merge_patch", "json_patch", "strategic_merge_patch", "field_patch_info"]

Json = Any
Schema = dict[str, Any] | None

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"
SET_ORDER = "$setElementOrder/"


# ---------------------------------------------------------------- RFC 7386


def json_merge_patch(original: Json, patch: Json) -> Json:
    """RFC 7386: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(original) if isinstance(original, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = json_merge_patch(result.get(k), v)
    return result


# ---------------------------------------------------------------- RFC 6902


def json_patch(original: Json, ops: Json) -> Json:
    """RFC 6902 JSON patch, applied with the `jsonpatch` library."""
    if not isinstance(ops, list):
        raise PatchError("json patch must be a list of operations")
    for i, op in enumerate(ops):
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"json patch operation {i} must be an object with 'op' and 'path'")
    try:
        return jsonpatch.JsonPatch(ops).apply(copy.deepcopy(original), in_place=True)
    except jsonpatch.JsonPatchTestFailed as e:
        raise PatchError(f"json patch test operation failed: {e}") from None
    except jsonpatch.JsonPatchConflict as e:
        raise PatchError(f"json patch cannot be applied: {e}") from None
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as e:
        raise PatchError(f"invalid json patch: {e}") from None
    except (TypeError, KeyError, IndexError, ValueError) as e:
        raise PatchError(f"invalid json patch: {e}") from None


# ---------------------------------------------------------------- schema lookups


def _types(s: Schema) -> set[str]:
    if not s:
        return set()
    t = s.get("type")
    if isinstance(t, list):
        return set(t)
    return {t} if isinstance(t, str) else set()


def field_patch_info(obj_schema: Schema, key: str) -> tuple[Schema, str, bool, str | None, Schema]:
    """Patch metadata of field `key` of an object schema.

    Returns (resolved field schema, strategy "merge"/"replace"/"", retainKeys flag,
    merge key, resolved item schema for lists). Unknown fields give (None, "", False, None, None).
    """
    if not obj_schema:
        return None, "", False, None, None
    prop = (obj_schema.get("properties") or {}).get(key)
    if prop is None:
        extra = obj_schema.get("additionalProperties")
        prop = extra if isinstance(extra, dict) else None
    if prop is None:
        return None, "", False, None, None
    parts = [p.strip() for p in str(prop.get("x-kubernetes-patch-strategy", "")).split(",") if p.strip()]
    retain = "retainKeys" in parts
    strategy = next((p for p in parts if p in ("merge", "replace")), "")
    resolved = schemas.resolve(prop)
    items = resolved.get("items") if isinstance(resolved.get("items"), dict) else None
    merge_key = prop.get("x-kubernetes-patch-merge-key")
    return resolved, strategy, retain, merge_key, schemas.resolve(items) if items else None


# ---------------------------------------------------------------- strategic merge patch


def strategic_merge_patch(original: Json, patch: Json, schema_name: str | None) -> Json:
    """Apply a strategic merge patch to `original`, using the definition `schema_name`
    (e.g. "io.k8s.api.apps.v1.Deployment"); an unknown name merges as JSON merge patch
    (with the map directives still honoured)."""
    if not isinstance(patch, dict):
        raise PatchError("strategic merge patch must be a JSON object")
    root = schemas.definitions().get(schema_name) if schema_name else None
    base = copy.deepcopy(original) if isinstance(original, dict) else {}
    return _merge_map(base, patch, root, "")


def _where(path: str) -> str:
    return path or "<root>"


def _merge_map(orig: dict[str, Json], patch: dict[str, Json], s: Schema, path: str) -> dict[str, Json]:
    """Merge `patch` into `orig` (owned by us, modified in place) and return the result."""
    directive = patch.get(DIRECTIVE)
    if directive is not None:
        if directive == "replace":
            rest = {k: v for k, v in patch.items() if k != DIRECTIVE}
            return _merge_map({}, rest, s, path)
        if directive == "delete":
            return {}
        # Kubernetes accepts only replace and delete here ("$patch: merge" is refused too).
        raise PatchError(f"unknown patch type: {directive} in map at {_where(path)}")

    retain = patch.get(RETAIN_KEYS)
    if retain is not None:
        if not isinstance(retain, list):
            raise PatchError(f"$retainKeys at {_where(path)} must be a list of field names")
        if not all(isinstance(x, str) for x in retain):
            raise PatchError(f"$retainKeys at {_where(path)} must be a list of field names")
        allowed = set(retain)
        for k, v in patch.items():
            if k.startswith("$") or v is None:
                continue
            if k not in allowed:
                raise PatchError(f"field {k!r} at {_where(path)} is in the patch "
                                 f"but not in its $retainKeys list {retain}")
        for k in list(orig):
            if k not in allowed:
                del orig[k]

    done: set[str] = set()
    for k, order in patch.items():
        if k.startswith(SET_ORDER):
            name = k[len(SET_ORDER) :]
            if not isinstance(order, list):
                raise PatchError(f"{k} at {_where(path)} must be a list")
            if _apply_set_order(orig, patch, name, order, s, f"{path}.{name}"):
                done.add(name)

    for k, v in patch.items():
        if k in (DIRECTIVE, RETAIN_KEYS) or k.startswith(SET_ORDER) or k in done:
            continue
        if k.startswith(DELETE_PRIMITIVE):
            name = k[len(DELETE_PRIMITIVE) :]
            current = orig.get(name)
            if isinstance(current, list):
                if not isinstance(v, list):
                    raise PatchError(f"{k} at {_where(path)} must be a list")
                orig[name] = [x for x in current if x not in v]
            continue  # nothing to delete from (Kubernetes ignores it too)
        if k.startswith("$"):
            raise PatchError(f"unknown directive {k!r} at {_where(path)}")
        if v is None:
            orig.pop(k, None)
            continue
        fs, strategy, _retain, merge_key, item_s = field_patch_info(s, k)
        cur = orig.get(k)
        sub = f"{path}.{k}"
        if isinstance(v, dict):
            if isinstance(cur, dict) and strategy != "replace":
                orig[k] = _merge_map(cur, v, fs, sub)
            else:
                orig[k] = _merge_map({}, v, fs, sub)
        elif isinstance(v, list):
            base = cur if isinstance(cur, list) else []
            orig[k] = _merge_list(base, v, fs, strategy, merge_key, item_s, sub)
        else:
            orig[k] = v
    return orig


def _key_fn(merge_key: str | None) -> Callable[[Json], Json]:
    if merge_key:
        return lambda item: item.get(merge_key) if isinstance(item, dict) else None
    return lambda item: item


def _index(items: list[Json], value: Json, key: Callable[[Json], Json]) -> int:
    kv = key(value)
    for i, it in enumerate(items):
        if key(it) == kv:
            return i
    return -1


def _merge_list(
    orig: list[Json],
    patch: list[Json],
    list_schema: Schema,
    strategy: str,
    merge_key: str | None,
    item_s: Schema,
    path: str,
) -> list[Json]:
    if strategy != "merge":
        return copy.deepcopy(patch)  # replaced verbatim, as Kubernetes and RFC 7386 do
    if merge_key:
        return _merge_keyed_list(orig, patch, merge_key, item_s, path)
    if any(isinstance(x, (dict, list)) for x in patch):
        # Kubernetes refuses to merge lists of objects without a merge key; replace them.
        return copy.deepcopy(patch)  # replaced verbatim, as Kubernetes and RFC 7386 do
    merged = list(orig)
    for x in patch:
        if x not in merged:
            merged.append(x)
    patch_items = [x for x in merged if x in patch]
    server_only = [x for x in merged if x not in patch]
    return _normalize_order(patch_items, server_only, patch, orig, _key_fn(None))


def _merge_keyed_list(
    orig: list[Json], patch: list[Json], merge_key: str, item_s: Schema, path: str
) -> list[Json]:
    key = _key_fn(merge_key)
    plain: list[dict[str, Json]] = []
    replace = False
    orig = list(orig)
    for el in patch:
        if not isinstance(el, dict):
            raise PatchError(f"list {path} merges on key {merge_key!r}; its elements must be objects, got {el!r}")
        d = el.get(DIRECTIVE)
        if d is None:
            if merge_key not in el:
                raise PatchError(f"map {el} at {path} does not contain declared merge key: {merge_key}")
            plain.append(el)
        elif d == "delete":
            if merge_key not in el:
                raise PatchError(f"delete directive {el} at {path} does not contain declared merge key: {merge_key}")
            orig = [x for x in orig if not (isinstance(x, dict) and x.get(merge_key) == el[merge_key])]
        elif d == "replace":
            replace = True
        elif d == "merge":
            raise PatchError(f"merging lists cannot yet be specified in the patch ({path})")
        else:
            raise PatchError(f"unknown patch type {d!r} in list {path}")
    if replace:
        return [_merge_map({}, el, item_s, path) for el in plain]
    server_order = list(orig)
    merged = list(orig)
    for el in plain:
        i = _index(merged, el, key)
        if i >= 0 and isinstance(merged[i], dict):
            merged[i] = _merge_map(copy.deepcopy(merged[i]), el, item_s, f"{path}[{merge_key}={el[merge_key]}]")
        else:
            merged.append(_merge_map({}, el, item_s, f"{path}[{merge_key}={el[merge_key]}]"))
    patch_items = [x for x in merged if _index(plain, x, key) >= 0]
    server_only = [x for x in merged if _index(plain, x, key) < 0]
    return _normalize_order(patch_items, server_only, plain, server_order, key)


def _sort_by(items: list[Json], order: list[Json], key: Callable[[Json], Json]) -> list[Json]:
    def rank(x: Json) -> int:
        i = _index(order, x, key)
        return i if i >= 0 else len(order)

    return sorted(items, key=rank)  # stable


def _normalize_order(
    patch_items: list[Json],
    server_only: list[Json],
    patch_order: list[Json],
    server_order: list[Json],
    key: Callable[[Json], Json],
) -> list[Json]:
    """Kubernetes' normalizeElementOrder: patch items in patch order, server-only items in
    live order, interleaved so that a server-only item goes before a patch item only when
    both are in the live list and it came first there."""
    right = _sort_by(patch_items, patch_order, key)
    left = _sort_by(server_only, server_order, key)
    out: list[Json] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            out.append(right[j])
            j += 1
        elif j >= len(right):
            out.append(left[i])
            i += 1
        else:
            li, ri = _index(server_order, left[i], key), _index(server_order, right[j], key)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out


def _check_order(
    patch_list: list[Json], order: list[Json], key: Callable[[Json], Json], merge_key: str | None, path: str
) -> None:
    """The patch list's items (deletions aside) must appear in $setElementOrder, in its order."""
    items = [x for x in patch_list if not (isinstance(x, dict) and DIRECTIVE in x)] if merge_key else patch_list
    i = 0
    for o in order:
        if i < len(items) and key(items[i]) == key(o):
            i += 1
    if i < len(items):
        raise PatchError(f"the order in patch list {path} {patch_list} doesn't match its $setElementOrder list {order}")


def _apply_set_order(
    orig: dict[str, Json], patch: dict[str, Json], name: str, order: list[Json], s: Schema, path: str
) -> bool:
    """Merge list `name` under its `$setElementOrder`; True when the list was handled."""
    fs, strategy, _retain, merge_key, item_s = field_patch_info(s, name)
    cur = orig.get(name)
    pv = patch.get(name)
    if name in patch and not isinstance(pv, list):
        return False  # a null or a non-list replaces the field in the main loop
    cur_list = cur if isinstance(cur, list) else None
    patch_list = pv if isinstance(pv, list) else None
    if cur_list is None and patch_list is None:
        return True
    key = _key_fn(merge_key)
    if merge_key:
        for o in order:
            if not isinstance(o, dict) or merge_key not in o:
                raise PatchError(f"{SET_ORDER}{name} entries must be objects with the merge key {merge_key!r}")
    if patch_list is None:
        merged = list(cur_list or [])
    else:
        _check_order(patch_list, order, key, merge_key, path)
        merged = _merge_list(cur_list or [], patch_list, fs, strategy, merge_key, item_s, path)
    patch_items = [x for x in merged if _index(order, x, key) >= 0]
    server_only = [x for x in merged if _index(order, x, key) < 0]
    orig[name] = _normalize_order(patch_items, server_only, order, cur_list or [], key)
    return True
