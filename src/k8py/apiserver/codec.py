"""Request body decoding and response media-type negotiation.

Bodies are JSON or YAML (by content type; JSON first when it is absent). Decoding
never raises anything but `StatusError` (400 BadRequest / 415); duplicate keys are
reported so that `fieldValidation=Strict` can reject them. YAML is read as
Kubernetes reads it: timestamps stay strings.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from k8py.apiserver.errors import StatusError, bad_request, unsupported_media_type

JSON_TYPES = ("application/json", "application/merge-patch+json", "application/json-patch+json",
              "application/strategic-merge-patch+json", "*/*", "")
PROTOBUF = "application/vnd.kubernetes.protobuf"
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "application/apply-patch+yaml")


@dataclass
class Decoded:
    value: Any
    duplicates: list[str]  # duplicate keys, as `duplicate field "x"` messages want them


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
        value = loader.get_single_data()
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


def decode_object(body: bytes, content_type: str) -> Decoded:
    """Decode a body that must be a JSON object (create, update, options)."""
    d = decode(body, content_type)
    if d.value is None:
        raise bad_request("the body of the request was empty: an object was expected")
    if not isinstance(d.value, dict):
        raise bad_request(f"the body of the request must be an object, got {type(d.value).__name__}")
    return d


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


__all__ = ["Accept", "Decoded", "StatusError", "decode", "decode_object", "negotiate",
           "query_bool", "query_int", "media_type"]
