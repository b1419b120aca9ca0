"""PATCH bodies: JSON merge, JSON (RFC 6902), strategic merge, and server-side apply.

`apply_patch` turns (current object, patch body, content type) into the desired
object; the registry then applies its update rules to it. Decoding errors are 400,
patches that cannot apply are 422 (as Kubernetes), apply conflicts 409 with the
conflicting fields as causes, unknown patch types 415.
"""

from __future__ import annotations

from typing import Any

from k8py.api.customresource import is_custom
from k8py.api.errors import ApplyConflict, PatchError
from k8py.api.resources import Resource
from k8py.api.types import Obj
from k8py.apiserver import codec, machinery
from k8py.apiserver.errors import StatusError, bad_request

MERGE = "application/merge-patch+json"
JSON = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
APPLY_CBOR = "application/apply-patch+cbor"
PATCH_TYPES = (MERGE, JSON, STRATEGIC, APPLY)


def patch_type(content_type: str) -> str:
    mt = codec.media_type(content_type)
    if mt not in PATCH_TYPES:
        raise StatusError(415, "UnsupportedMediaType",
                          f'the server does not support the patch type "{mt}": supported types are '
                          + ", ".join(f'"{t}"' for t in PATCH_TYPES))
    return mt


async def decode_patch(body: bytes, mt: str) -> codec.Decoded:
    d = await codec.decode_async(body, "application/yaml" if mt == APPLY else "application/json")
    if d.value is None:
        raise bad_request("the body of the patch was empty")
    if mt == JSON and not isinstance(d.value, list):
        raise bad_request("json patch must be a list of operations")
    if mt != JSON and not isinstance(d.value, dict):
        raise bad_request(f"the body of a {mt} patch must be an object")
    return d


def apply_patch(r: Resource, current: Obj | None, patch: Any, mt: str, *, manager: str | None,
                force: bool, now: float) -> Obj:
    """The patched object (not yet validated). `current` is not modified."""
    try:
        if mt != APPLY:
            if current is None:
                raise StatusError(404, "NotFound", "nothing to patch")
            base: Obj = current
        if mt == MERGE:
            out = machinery.json_merge_patch(base, patch)
        elif mt == JSON:
            out = machinery.json_patch(base, patch)
        elif mt == STRATEGIC and is_custom(r):
            raise StatusError(415, "UnsupportedMediaType",
                              "the body of the request was in an unknown format - accepted media types include: "
                              "application/json-patch+json, application/merge-patch+json, "
                              "application/apply-patch+yaml")
        elif mt == STRATEGIC:
            out = machinery.strategic_merge_patch(base, patch, machinery.schema_name(r))
        else:
            if not manager:
                raise StatusError(422, "Invalid",
                                  'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                                  "is required for apply patch",
                                  {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [
                                      {"reason": "FieldValueRequired",
                                       "message": "Required value: is required for apply patch",
                                       "field": "fieldManager"}]})
            out = machinery.server_side_apply(current, patch, manager, machinery.schema_name(r), force, now)
    except ApplyConflict as e:
        # Kubernetes' wording (the conflicting manager with its subresource and apiVersion),
        # and its details: the FieldManagerConflict causes only.
        raise StatusError(409, "Conflict", str(e), {"causes": e.causes}) from None
    except PatchError as e:
        raise StatusError(422, "Invalid", f"the server rejected our request due to an error in our request: {e}",
                          {}) from None
    except (ValueError, TypeError, KeyError, IndexError, RecursionError) as e:
        raise StatusError(422, "Invalid", f"the patch could not be applied: {e}", {}) from None
    if not isinstance(out, dict):
        raise StatusError(422, "Invalid", "the patch must leave an object", {})
    return out
