"""Request body decoding and response media-type negotiation.

Bodies are JSON or YAML (by content type; JSON first when it is absent). Decoding
never raises anything but `StatusError` (400 BadRequest / 415); duplicate keys are
reported so that `fieldValidation=Strict` can reject them. YAML is read as
Kubernetes reads it: timestamps stay strings, and a document whose aliases would
expand beyond go-yaml's budget (the "billion laughs" class, CVE-2019-11253) is
refused before anything is expanded (`yaml: document contains excessive aliasing`).
`decode_async` runs YAML (and large JSON) off the event loop, in a thread. A JSON
body that is exactly its value's compact encoding is read by orjson (`jsonfast`);
any other (spaces, escapes, duplicates) by the standard library, which finds them.
"""

from __future__ import annotations

import asyncio
import functools
import json
from dataclasses import dataclass
from typing import Any

from k8py.api import jsonfast
from k8py.apiserver.errors import StatusError, bad_request, unsupported_media_type

JSON_TYPES = ("application/json", "application/merge-patch+json", "application/json-patch+json",
              "application/strategic-merge-patch+json", "*/*", "")
PROTOBUF = "application/vnd.kubernetes.protobuf"
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "application/apply-patch+yaml")


@dataclass
class Decoded:
    value: Any
    duplicates: list[str]  # duplicate keys, as `duplicate field "x"` messages want them


# go-yaml's alias budget (gopkg.in/yaml.v2 >= 2.2.4, which sigs.k8s.io/yaml and so
# kube-apiserver use): once more than 100 of more than 1000 decode steps come from alias
# expansion, their share may not exceed 99% (documents up to 400,000 steps), falling
# linearly to 10% at 4,000,000 steps.
_ALIAS_LOW, _ALIAS_HIGH = 400_000, 4_000_000
EXCESSIVE_ALIASING = "yaml: document contains excessive aliasing"
# Bodies at least this large are decoded in a thread even when JSON.
THREAD_THRESHOLD = 256 * 1024


def allowed_alias_ratio(decodes: int) -> float:
    if decodes <= _ALIAS_LOW:
        return 0.99
    if decodes >= _ALIAS_HIGH:
        return 0.10
    return 0.99 - 0.89 * (decodes - _ALIAS_LOW) / (_ALIAS_HIGH - _ALIAS_LOW)


class AliasError(ValueError):
    """A YAML document whose alias expansion exceeds go-yaml's budget, or an anchor
    that contains itself."""


def _children(node: Any) -> list[Any]:
    value = node.value
    if isinstance(value, list):
        if value and isinstance(value[0], tuple):  # a mapping: (key, value) pairs
            return [n for pair in value for n in pair]
        return value
    return []


def _alias_slots(root: Any) -> set[tuple[int, int]]:
    """The (parent id, child index) slots of the composed graph that are aliases: the
    child node was defined earlier in document order. Raises AliasError on a cycle."""
    seen: set[int] = set()
    on_path: set[int] = set()
    aliases: set[tuple[int, int]] = set()
    stack: list[tuple[Any, int]] = [(root, 0)]
    seen.add(id(root))
    on_path.add(id(root))
    while stack:
        node, i = stack[-1]
        kids = _children(node)
        if i >= len(kids):
            stack.pop()
            on_path.discard(id(node))
            continue
        stack[-1] = (node, i + 1)
        kid = kids[i]
        if id(kid) in on_path:
            raise AliasError("yaml: anchor value contains itself")
        if id(kid) in seen:
            aliases.add((id(node), i))
            continue
        seen.add(id(kid))
        on_path.add(id(kid))
        stack.append((kid, 0))
    return aliases


def check_aliases(root: Any) -> None:
    """Walk the composed YAML graph in go-yaml's decode order, counting decode steps
    and those inside alias expansions; raise AliasError as soon as go-yaml would. The
    walk never expands more than the budget allows, so its cost is bounded by the
    document's size."""
    if root is None:
        return
    aliases = _alias_slots(root)
    if not aliases:
        return
    decodes = in_alias = 0
    stack: list[tuple[Any, int]] = [(root, 0)]  # (node, alias depth)
    while stack:
        node, depth = stack.pop()
        decodes += 1
        if depth:
            in_alias += 1
        if in_alias > 100 and decodes > 1000 and in_alias / decodes > allowed_alias_ratio(decodes):
            raise AliasError(EXCESSIVE_ALIASING)
        kids = _children(node)
        for i in range(len(kids) - 1, -1, -1):
            if (id(node), i) in aliases:
                # the alias node itself is one decode step, its target's are all alias steps
                decodes += 1
                if depth:
                    in_alias += 1
                stack.append((kids[i], depth + 1))
            else:
                stack.append((kids[i], depth))


@functools.cache
def _yaml() -> tuple[Any, type]:
    """PyYAML and a SafeLoader that records duplicate mapping keys and keeps timestamps as
    strings; built at the first YAML body (importing PyYAML is not a startup cost)."""
    import yaml

    class DupLoader(yaml.SafeLoader):
        duplicates: list[str]

    def construct_mapping(loader: DupLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise yaml.constructor.ConstructorError(None, None, f"invalid map key: {key!r}",
                                                        key_node.start_mark)
            key = key if isinstance(key, str) else json.dumps(key)
            if key in out:
                loader.duplicates.append(key)
            out[key] = loader.construct_object(value_node, deep=True)
        return out

    def construct_str(loader: DupLoader, node: yaml.ScalarNode) -> str:
        return str(node.value)

    DupLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    DupLoader.add_constructor("tag:yaml.org,2002:timestamp", construct_str)
    return yaml, DupLoader


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _json_pairs(dups: list[str]) -> Any:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for k, v in pairs:
            if k in d:
                dups.append(k)
            d[k] = v
        return d
    return hook


def _reject_constants(c: str) -> Any:
    raise ValueError(f"invalid JSON constant {c}")


def decode(body: bytes, content_type: str) -> Decoded:
    """Decode a request body. Empty body -> value None."""
    mt = media_type(content_type)
    if mt == PROTOBUF:
        from k8py.apiserver import protobuf
        try:
            return Decoded(protobuf.decode(body), [])
        except Exception as e:  # noqa: BLE001 - any failure to decode is the body's fault
            raise bad_request(f"the body of the request could not be decoded as protobuf: {e}") from None
    if "protobuf" in mt or "cbor" in mt:
        raise unsupported_media_type(mt)
    if mt not in JSON_TYPES and mt not in YAML_TYPES:
        raise unsupported_media_type(mt)
    if not body or not body.strip():
        return Decoded(None, [])
    if mt in JSON_TYPES:
        try:  # compact JSON (kubectl's, the k8py client's): no duplicate keys, proven cheaply
            return Decoded(jsonfast.loads_unique(body), [])
        except jsonfast.NotCanonical:
            pass
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request("the body of the request is not valid UTF-8") from None
    dups: list[str] = []
    if mt in JSON_TYPES:
        try:
            return Decoded(json.loads(text, object_pairs_hook=_json_pairs(dups),
                                      parse_constant=_reject_constants), dups)
        except (ValueError, RecursionError) as e:
            if mt != "" and mt != "*/*":
                raise bad_request(f"the body of the request could not be decoded as JSON: {e}") from None
    yaml, loader_class = _yaml()
    try:
        loader = loader_class(text)
    except yaml.YAMLError as e:
        msg = str(e).replace("\n", " ")
        raise bad_request(f"the body of the request could not be decoded as YAML: {msg}") from None
    loader.duplicates = dups
    try:
        node = loader.get_single_node()
        check_aliases(node)
        value = loader.construct_document(node) if node is not None else None
    except AliasError as e:
        raise bad_request(f"error converting YAML to JSON: {e}") from None
    except (yaml.YAMLError, RecursionError, ValueError, TypeError) as e:
        msg = str(e).replace("\n", " ")
        raise bad_request(f"the body of the request could not be decoded as YAML: {msg}") from None
    finally:
        loader.dispose()
    try:  # must be representable as JSON (no sets, binary, ...)
        json.dumps(value)
    except (TypeError, ValueError) as e:
        raise bad_request(f"the body of the request is not a JSON-compatible document: {e}") from None
    return Decoded(value, dups)


def _off_loop(body: bytes, content_type: str) -> bool:
    mt = media_type(content_type)
    return len(body) >= THREAD_THRESHOLD or (bool(body) and mt in YAML_TYPES)


async def decode_async(body: bytes, content_type: str) -> Decoded:
    """`decode`, in a thread for YAML and large bodies: the event loop keeps serving."""
    if _off_loop(body, content_type):
        return await asyncio.to_thread(decode, body, content_type)
    return decode(body, content_type)


def check_object(d: Decoded) -> Decoded:
    if d.value is None:
        raise bad_request("the body of the request was empty: an object was expected")
    if not isinstance(d.value, dict):
        raise bad_request(f"the body of the request must be an object, got {type(d.value).__name__}")
    return d


async def decode_object_async(body: bytes, content_type: str) -> Decoded:
    return check_object(await decode_async(body, content_type))


def decode_object(body: bytes, content_type: str) -> Decoded:
    """Decode a body that must be a JSON object (create, update, options)."""
    return check_object(decode(body, content_type))


def summarize(body: bytes, limit: int = 30) -> str:
    """How kube-apiserver quotes a body it could not decode (JSON as text, else hex)."""
    if not body:
        return "<empty>"
    if body[:1] == b"{":
        return body[:limit].decode("utf-8", "replace") + (" ..." if len(body) > limit else "")
    return body[:limit].hex() + (" ..." if len(body) > limit else "")


@dataclass(frozen=True)
class Accept:
    as_kind: str  # "" (plain object), "Table", "PartialObjectMetadata", "PartialObjectMetadataList"
    version: str = "v1"


def negotiate(accept: str) -> Accept:
    """Pick the representation from an Accept header: kubectl offers Table first."""
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        params = {}
        for f in fields[1:]:
            k, _, v = f.partition("=")
            params[k.strip().lower()] = v.strip()
        if "protobuf" in fields[0].lower():
            continue
        as_kind = params.get("as", "")
        if as_kind in ("Table", "PartialObjectMetadata", "PartialObjectMetadataList") \
                and params.get("g", "meta.k8s.io") == "meta.k8s.io":
            return Accept(as_kind, params.get("v", "v1") or "v1")
        if as_kind == "":
            return Accept("")
    return Accept("")


def query_bool(q: dict[str, str], name: str) -> bool:
    return q.get(name, "").lower() in ("true", "1", "yes")


def query_int(q: dict[str, str], name: str) -> int | None:
    v = q.get(name)
    if v is None or v == "":
        return None
    try:
        return int(v)
    except ValueError:
        raise bad_request(f'invalid value for query parameter {name}: "{v}" is not an integer') from None


__all__ = ["Accept", "Decoded", "StatusError", "decode", "decode_async", "decode_object", "decode_object_async",
           "negotiate",
           "query_bool", "query_int", "media_type"]
