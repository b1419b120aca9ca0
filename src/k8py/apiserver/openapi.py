"""OpenAPI v3, as kubectl reads it: /openapi/v3 (an index) and one document per group-version.

Schemas come from `k8py.api.schema.definitions()` (JSON Schema form) converted to
the form Kubernetes serves: refs `#/components/schemas/<name>` (wrapped in
`allOf` when they carry a description), nullable type lists collapsed to one
type, IntOrString and Quantity as the untyped oneOfs Kubernetes serves,
`x-kubernetes-*` extensions kept (merge keys drive `kubectl apply`'s strategic
merge; group-version-kind drives `kubectl explain`).

Paths list every resource's operations with their query parameters; PATCH
advertises `fieldValidation`, so kubectl validates on the server
(`fieldValidation=Strict`) instead of downloading /openapi/v2.

/openapi/v2 is a deliberately empty Swagger 2.0 document (no paths, no
definitions), in the protobuf form kubectl asks for: kubectl only falls back to
v2 for group-versions v3 does not list (a typo'd apiVersion), and with an empty
v2 document it then reports the real problem ("no matches for kind ... in
version ...") instead of failing to download v2.

Invariants: documents are rendered lazily, once per process, to bytes; the
index's `?hash=` is a content hash of the rendered document's inputs, so a
kubectl disk cache keyed by it never serves a stale document.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from pathlib import Path
from typing import Any, Protocol, cast

from k8py import KUBERNETES_VERSION, __version__
from k8py.api import resources
from k8py.api.request import ApiRequest, ApiResponse
from k8py.api.resources import Resource

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
REF = "#/components/schemas/"
_COMMON_DEFS = (META + "Status", META + "DeleteOptions", META + "WatchEvent", META + "Patch",
                META + "APIResourceList")
# Definitions whose JSON Schema form differs from what Kubernetes serves.
# Kubernetes serves these v3 definitions as a oneOf without a top-level type (their Go types
# declare OpenAPIV3OneOfTypes); that is also what makes `kubectl explain` print
# `<IntOrString>` and `map[string]Quantity` instead of `<string>`.
_SPECIAL: dict[str, dict[str, Any]] = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {
        "oneOf": [{"type": "integer"}, {"type": "string"}], "format": "int-or-string"},
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {"oneOf": [{"type": "string"}, {"type": "number"}]},
}
_lock = threading.Lock()


# -- schema conversion ------------------------------------------------------------
def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def convert(s: Any, *, drop_enum: bool = False) -> Any:
    """One JSON Schema node -> its OpenAPI 3.0 form as Kubernetes serves it."""
    if not isinstance(s, dict):
        return s
    out: dict[str, Any] = {}
    ref = s.get("$ref")
    for k, v in s.items():
        if k == "$ref":
            continue
        if k == "type":
            if isinstance(v, list):
                types = [t for t in v if t != "null"]
                v = types[0] if len(types) == 1 else types
                if isinstance(v, list):  # several real types: leave untyped
                    continue
            out[k] = v
        elif k == "properties":
            out[k] = {p: convert(ps, drop_enum=p in ("apiVersion", "kind")) for p, ps in v.items()}
        elif k in ("items", "additionalProperties", "not"):
            out[k] = convert(v) if isinstance(v, dict) else v
        elif k in ("allOf", "anyOf", "oneOf"):
            conv = [convert(x) for x in v]
            if k == "oneOf" and _is_int_or_string(conv):
                out["x-kubernetes-int-or-string"] = True
            else:
                out[k] = conv
        elif k == "enum" and drop_enum:
            continue
        elif k in ("$defs", "$schema"):
            continue
        else:
            out[k] = v
    if ref is not None:
        target = {"$ref": REF + _ref_name(ref)}
        if not out:
            return target
        return {"allOf": [target], **out}
    return out


def _is_int_or_string(variants: list[Any]) -> bool:
    types = sorted(x.get("type", "") for x in variants if isinstance(x, dict))
    return types == ["integer", "string"]


def _definition(name: str, defs: dict[str, Any]) -> dict[str, Any]:
    d = defs[name]
    if name in _SPECIAL:
        out = dict(_SPECIAL[name])
        if "description" in d:
            out["description"] = d["description"]
        return out
    return cast(dict[str, Any], convert(d))  # convert keeps a dict a dict


def _refs(s: Any, acc: set[str]) -> None:
    if isinstance(s, dict):
        r = s.get("$ref")
        if isinstance(r, str):
            acc.add(_ref_name(r))
        for v in s.values():
            _refs(v, acc)
    elif isinstance(s, list):
        for v in s:
            _refs(v, acc)


def closure(roots: list[str], defs: dict[str, Any]) -> list[str]:
    """Every definition reachable from `roots` (roots included), sorted."""
    seen: set[str] = set()
    todo = [r for r in roots if r in defs]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        acc: set[str] = set()
        _refs(defs[n], acc)
        todo.extend(a for a in acc if a not in seen and a in defs)
    return sorted(seen)


# -- paths ------------------------------------------------------------------------------
def _qp(name: str, desc: str, typ: str = "string", unique: bool = True) -> dict[str, Any]:
    p: dict[str, Any] = {"name": name, "in": "query", "description": desc, "schema": {"type": typ}}
    if unique:
        p["schema"]["uniqueItems"] = True
    return p


_PRETTY = _qp("pretty", "If 'true', then the output is pretty printed.")
_DRYRUN = _qp("dryRun", "When present, indicates that modifications should not be persisted. "
              "Valid values are: - All: all dry run stages will be processed")
_FIELD_MANAGER = _qp("fieldManager", "fieldManager is a name associated with the actor or entity "
                     "that is making these changes.")
_FIELD_VALIDATION = _qp("fieldValidation", "fieldValidation instructs the server on how to handle "
                        "objects in the request containing unknown or duplicate fields. Valid values "
                        "are: - Ignore - Warn - Strict")
_FORCE = _qp("force", "Force is going to \"force\" Apply requests.", "boolean")
_LIST_PARAMS = [
    _qp("allowWatchBookmarks", "allowWatchBookmarks requests watch events with type \"BOOKMARK\".", "boolean"),
    _qp("continue", "The continue option should be set when retrieving more results from the server."),
    _qp("fieldSelector", "A selector to restrict the list of returned objects by their fields."),
    _qp("labelSelector", "A selector to restrict the list of returned objects by their labels."),
    _qp("limit", "limit is a maximum number of responses to return for a list call.", "integer"),
    _qp("resourceVersion", "resourceVersion sets a constraint on what resource versions a request may be served from."),
    _qp("resourceVersionMatch", "resourceVersionMatch determines how resourceVersion is applied to list calls."),
    _qp("sendInitialEvents", "`sendInitialEvents=true` may be set together with `watch=true`.", "boolean"),
    _qp("timeoutSeconds", "Timeout for the list/watch call.", "integer"),
    _qp("watch", "Watch for changes to the described resources and return them as a stream of "
        "add, update, and remove notifications.", "boolean"),
]
_DELETE_PARAMS = [
    _DRYRUN,
    _qp("gracePeriodSeconds", "The duration in seconds before the object should be deleted.", "integer"),
    _qp("propagationPolicy", "Whether and how garbage collection will be performed."),
]
_PATCH_TYPES = ("application/apply-patch+yaml", "application/json-patch+json",
                "application/merge-patch+json", "application/strategic-merge-patch+json")
_RESPONSE_TYPES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")


def _body(schema_name: str) -> dict[str, Any]:
    return {"content": {"*/*": {"schema": {"$ref": REF + schema_name}}}, "required": True}


def _resp(schema_name: str, codes: tuple[str, ...] = ("200",)) -> dict[str, Any]:
    content = {ct: {"schema": {"$ref": REF + schema_name}} for ct in _RESPONSE_TYPES}
    out = {c: {"description": "OK" if c == "200" else "Created" if c == "201" else "Accepted",
               "content": content} for c in codes}
    out["401"] = {"description": "Unauthorized"}
    return out


def _op_id(verb: str, r: Resource, kind: str, namespaced: bool, suffix: str = "") -> str:
    g = "".join(p.capitalize() for p in (r.group.split(".")[0] or "core").split("-"))
    ns = "Namespaced" if namespaced else ""
    return f"{verb}{g}{r.version.capitalize()}{ns}{kind}{suffix}"


def _gvk_ext(g: str, v: str, k: str) -> dict[str, str]:
    return {"group": g, "version": v, "kind": k}


_WRITE_PARAMS = (_DRYRUN, _FIELD_MANAGER, _FIELD_VALIDATION)
_CONNECT_METHODS = {"create": "post", "get": "get", "update": "put", "delete": "delete", "patch": "patch"}


def _patch_body() -> dict[str, Any]:
    return {"content": {ct: {"schema": {"$ref": REF + META + "Patch"}} for ct in _PATCH_TYPES}, "required": True}


SchemaOf = dict[tuple[str, str, str], str]
"""The definition name of each (group, version, kind)."""


def _paths_for(r: Resource, schema_of: SchemaOf) -> tuple[dict[str, Any], list[str]]:
    """(paths, schema roots) of one resource."""
    obj = schema_of.get((r.group, r.version, r.kind))
    if obj is None:
        return {}, []
    rp = _ResourcePaths(r, obj, schema_of.get((r.group, r.version, r.list_kind_name)))
    paths = {rp.collection: rp.collection_ops(), rp.item: rp.item_ops()}
    if r.namespaced and "list" in rp.verbs and rp.lst:
        paths[f"{r.prefix}/{r.plural}"] = rp.all_namespaces_ops()
    for sub in r.subresources:
        paths[f"{rp.item}/{sub}"] = rp.subresource_ops(sub, schema_of)
    return paths, rp.roots


class _ResourcePaths:
    """The operations of one resource, path by path, as Kubernetes' OpenAPI v3 lists them.

    `obj` and `lst` name the schemas of the object and its list (none: not listable);
    `roots` collects every schema the operations refer to.
    """

    def __init__(self, r: Resource, obj: str, lst: str | None) -> None:
        self.r, self.obj, self.lst = r, obj, lst
        self.roots = [obj] + ([lst] if lst else [])
        self.gvk = _gvk_ext(r.group, r.version, r.kind)
        self.verbs = set(r.verbs)
        ns_param = {"name": "namespace", "in": "path", "required": True,
                    "schema": {"type": "string", "uniqueItems": True},
                    "description": "object name and auth scope, such as for teams and projects"}
        self.common = [ns_param] if r.namespaced else []
        self.name_param = {"name": "name", "in": "path", "required": True,
                           "schema": {"type": "string", "uniqueItems": True}, "description": f"name of the {r.kind}"}
        self.collection = r.prefix + ("/namespaces/{namespace}" if r.namespaced else "") + f"/{r.plural}"
        self.item = f"{self.collection}/{{name}}"

    def op(self, verb: str, action: str, op_id: str, params: list[Any], responses: dict[str, Any],
           body: dict[str, Any] | None = None, gvk: dict[str, str] | None = None,
           desc: str = "") -> dict[str, Any]:
        o: dict[str, Any] = {"description": desc or f"{verb} {self.r.kind}", "operationId": op_id,
                             "tags": [self.r.group_version.replace("/", "_")], "parameters": params,
                             "responses": responses, "x-kubernetes-action": action,
                             "x-kubernetes-group-version-kind": gvk or self.gvk}
        if body is not None:
            o["requestBody"] = body
        return o

    def op_id(self, verb: str, suffix: str = "") -> str:
        return _op_id(verb, self.r, self.r.kind, self.r.namespaced, suffix)

    def read(self, schema: str, desc: str, suffix: str = "", gvk: dict[str, str] | None = None) -> dict[str, Any]:
        return self.op("read", "get", self.op_id("read", suffix), [], _resp(schema), gvk=gvk, desc=desc)

    def replace(self, schema: str, desc: str, suffix: str = "", gvk: dict[str, str] | None = None) -> dict[str, Any]:
        return self.op("replace", "put", self.op_id("replace", suffix), list(_WRITE_PARAMS),
                       _resp(schema, ("200", "201")), _body(schema), gvk=gvk, desc=desc)

    def patch(self, schema: str, desc: str, suffix: str = "", gvk: dict[str, str] | None = None) -> dict[str, Any]:
        return self.op("patch", "patch", self.op_id("patch", suffix), [*_WRITE_PARAMS, _FORCE],
                       _resp(schema, ("200", "201")), _patch_body(), gvk=gvk, desc=desc)

    def create(self, schema: str, desc: str, suffix: str = "", gvk: dict[str, str] | None = None) -> dict[str, Any]:
        return self.op("create", "post", self.op_id("create", suffix), list(_WRITE_PARAMS),
                       _resp(schema, ("200", "201", "202")), _body(schema), gvk=gvk, desc=desc)

    def collection_ops(self) -> dict[str, Any]:
        """list (and watch), create, deletecollection."""
        k = self.r.kind
        c: dict[str, Any] = {"parameters": self.common + [_PRETTY]}
        if "list" in self.verbs and self.lst:
            c["get"] = self.op("list", "list", self.op_id("list"), list(_LIST_PARAMS), _resp(self.lst),
                               desc=f"list or watch objects of kind {k}")
        if "create" in self.verbs:
            c["post"] = self.create(self.obj, f"create a {k}")
        if "deletecollection" in self.verbs:
            c["delete"] = self.op("deletecollection", "deletecollection", self.op_id("deleteCollection"),
                                  _DELETE_PARAMS + _LIST_PARAMS, _resp(META + "Status"),
                                  desc=f"delete collection of {k}")
        return c

    def item_ops(self) -> dict[str, Any]:
        """read, replace, patch, delete."""
        k = self.r.kind
        i: dict[str, Any] = {"parameters": [self.name_param] + self.common + [_PRETTY]}
        if "get" in self.verbs:
            i["get"] = self.read(self.obj, f"read the specified {k}")
        if "update" in self.verbs:
            i["put"] = self.replace(self.obj, f"replace the specified {k}")
        if "patch" in self.verbs:
            i["patch"] = self.patch(self.obj, f"partially update the specified {k}")
        if "delete" in self.verbs:
            i["delete"] = self.op("delete", "delete", self.op_id("delete"), _DELETE_PARAMS,
                                  _resp(META + "Status", ("200", "202")), desc=f"delete a {k}")
        return i

    def all_namespaces_ops(self) -> dict[str, Any]:
        """list (and watch) across namespaces."""
        assert self.lst is not None
        return {
            "parameters": [_PRETTY],
            "get": self.op("list", "list", _op_id("list", self.r, self.r.kind, False, "ForAllNamespaces"),
                           list(_LIST_PARAMS), _resp(self.lst), desc=f"list or watch objects of kind {self.r.kind}"),
        }

    def subresource_ops(self, sub: str, schema_of: SchemaOf) -> dict[str, Any]:
        """log, connect-style subresources (strings in and out) and the others (status, scale, ...)."""
        from k8py.apiserver.discovery import _sub_info  # shared subresource table

        sg, sv, sk, sverbs = _sub_info(self.r, sub)
        sub_schema = schema_of.get((sg, sv, sk))
        p: dict[str, Any] = {"parameters": [self.name_param] + self.common + [_PRETTY]}
        sgvk = _gvk_ext(sg, sv, sk)
        if sub == "log":
            p["get"] = self._log()
        elif sub_schema is None:  # exec, attach, portforward, proxy
            for verb in sverbs:
                method = _CONNECT_METHODS[verb]
                p[method] = self._connect(sub, method, sgvk)
        else:
            self.roots.append(sub_schema)
            p.update(self._sub_object_ops(sub, sub_schema, sverbs, sgvk))
        return p

    def _log(self) -> dict[str, Any]:
        return self.op("read", "get", self.op_id("read", "Log"),
                       [_qp(n, n) for n in ("container", "follow", "previous", "sinceSeconds",
                                            "tailLines", "timestamps", "limitBytes")],
                       {"200": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}},
                       desc=f"read log of the specified {self.r.kind}")

    def _connect(self, sub: str, method: str, gvk: dict[str, str]) -> dict[str, Any]:
        """A connect-style subresource's operation: strings in, strings out."""
        ok = {"200": {"description": "OK", "content": {"*/*": {"schema": {"type": "string"}}}}}
        return self.op("connect", "connect", self.op_id(f"connect{method.capitalize()}", sub.capitalize()), [], ok,
                       gvk=gvk, desc=f"connect {method.upper()} requests to {sub} of {self.r.kind}")

    def _sub_object_ops(self, sub: str, schema: str, sverbs: tuple[str, ...], gvk: dict[str, str]) -> dict[str, Any]:
        """read, replace, patch and create of a subresource with an object schema (status, scale, ...)."""
        k, suffix = self.r.kind, sub.capitalize()
        p: dict[str, Any] = {}
        if "get" in sverbs:
            p["get"] = self.read(schema, f"read {sub} of the specified {k}", suffix, gvk)
        if "update" in sverbs:
            p["put"] = self.replace(schema, f"replace {sub} of the specified {k}", suffix, gvk)
        if "patch" in sverbs:
            p["patch"] = self.patch(schema, f"partially update {sub} of the specified {k}", suffix, gvk)
        if "create" in sverbs:
            p["post"] = self.create(schema, f"create {sub} of a {k}", suffix, gvk)
        return p


# -- documents ------------------------------------------------------------------------
def _gv_key(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


@functools.cache
def _input_hash() -> str:
    """Hash of everything a document is a function of: the schema set, the resource table, this code."""
    from k8py.api import schema
    h = hashlib.sha256()
    h.update(f"{KUBERNETES_VERSION} {__version__} {schema.SCHEMA_VERSION}".encode())
    h.update(repr(resources.SERVED).encode())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest().upper()


def _doc_hash(key: str) -> str:
    return hashlib.sha256((_input_hash() + key).encode()).hexdigest().upper()[:64]


@functools.cache
def _index() -> bytes:
    paths = {}
    for g, v in resources.group_versions():
        key = _gv_key(g, v)
        paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={_doc_hash(key)}"}
    return json.dumps({"paths": paths}, separators=(",", ":")).encode()


def render(group: str, version: str) -> dict[str, Any]:
    """The OpenAPI 3.0 document of one group-version (uncached; see `_document`)."""
    from k8py.api import schema

    defs = schema.definitions()
    schema_of: SchemaOf = {}
    for name, d in defs.items():
        for gvk in d.get("x-kubernetes-group-version-kind", []):
            key = (gvk["group"], gvk["version"], gvk["kind"])
            if key not in schema_of or name.startswith("io.k8s.api."):
                schema_of[key] = name
    paths: dict[str, Any] = {}
    roots: list[str] = list(_COMMON_DEFS)
    for r in resources.SERVED:
        if r.group == group and r.version == version:
            p, rs = _paths_for(r, schema_of)
            paths.update(p)
            roots.extend(rs)
    names = closure(roots, defs)
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": f"{KUBERNETES_VERSION}-k8py"},
        "paths": paths,
        "components": {
            "schemas": {n: _definition(n, defs) for n in names},
            "securitySchemes": {"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication",
                                                "name": "authorization", "in": "header"}},
        },
    }


@functools.cache
def _document(key: str) -> tuple[bytes, str] | None:
    for g, v in resources.group_versions():
        if _gv_key(g, v) == key:
            body = json.dumps(render(g, v), separators=(",", ":")).encode()
            return body, _doc_hash(key)
    return None


def _pb_string(num: int, value: bytes) -> bytes:
    assert len(value) < 128
    return bytes([(num << 3) | 2, len(value)]) + value


@functools.cache
def _v2_empty() -> bytes:
    """gnostic openapi_v2.Document {swagger: "2.0", info: {title: "Kubernetes"}} as protobuf."""
    return _pb_string(1, b"2.0") + _pb_string(2, _pb_string(1, b"Kubernetes"))


V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


def _status(code: int, reason: str, message: str) -> ApiResponse:
    return ApiResponse(code, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                              "message": message, "reason": reason, "code": code})


class CustomDocs(Protocol):
    """The documents of group-versions served besides the table's (the CRDs': crdopenapi.py)."""

    def index_entries(self) -> dict[str, dict[str, str]]: ...

    def document(self, key: str) -> tuple[bytes, str] | None: ...


def _index_with(custom: CustomDocs | None) -> bytes:
    entries = custom.index_entries() if custom is not None else {}
    if not entries:
        return _index()
    doc = json.loads(_index())
    doc["paths"].update(entries)
    return json.dumps(doc, separators=(",", ":")).encode()


def respond(req: ApiRequest, custom: CustomDocs | None = None) -> ApiResponse | None:
    """Answer /openapi/v3[/<gv>] and /openapi/v2 (empty); None for other paths. `custom`: the
    documents of the custom resources' group-versions."""
    path = req.path.rstrip("/")
    if not path.startswith("/openapi"):
        return None
    if path == "/openapi/v3":
        return ApiResponse(200, _index_with(custom), headers={"Cache-Control": "no-cache, private"})
    if path.startswith("/openapi/v3/"):
        key = path.removeprefix("/openapi/v3/")
        with _lock:  # render each document once even if two threads ask at once
            found = _document(key)
            if found is None and custom is not None:
                found = custom.document(key)
        if found is None:
            return _status(404, "NotFound", f"no OpenAPI v3 document for {key}")
        body, etag = found
        headers = {"ETag": f'"{etag}"'}
        if req.query.get("hash") == etag:
            headers["Cache-Control"] = "public, immutable"
            headers["Expires"] = "Thu, 31 Dec 2099 23:59:59 GMT"
        else:
            headers["Cache-Control"] = "no-cache, private"
        inm = req.headers.get("if-none-match", "")
        if inm.strip('"') == etag:
            return ApiResponse(304, b"", headers=headers)
        return ApiResponse(200, body, headers=headers)
    if path == "/openapi/v2":
        if "protobuf" in req.headers.get("accept", ""):
            return ApiResponse(200, _v2_empty(), content_type=V2_PROTOBUF)
        return ApiResponse(200, {"swagger": "2.0", "info": {"title": "Kubernetes",
                                                           "version": f"{KUBERNETES_VERSION}-k8py"},
                                 "paths": {}, "definitions": {}})
    return _status(404, "NotFound", f"the server could not find the requested resource ({path})")
