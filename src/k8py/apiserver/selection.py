"""Which objects a list or watch selects: label and field selectors per kind.

Field selectors support exactly the fields Kubernetes supports for each kind (400
`field label not supported: x` otherwise). Matching runs on a flat "field set"
built per object (string values, "" for absent fields), as Kubernetes' field
selectors match `GetAttrs` rather than the raw object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from k8py.api.customresource import CustomResource
from k8py.api.resources import Resource
from k8py.api.types import Obj
from k8py.apiserver import machinery
from k8py.apiserver.errors import bad_request

_EVENT_FIELDS = ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                 "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                 "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type")
_EVENTS_V1_ALIASES = {  # events.k8s.io/v1 names -> core names
    "regarding.kind": "involvedObject.kind", "regarding.namespace": "involvedObject.namespace",
    "regarding.name": "involvedObject.name", "regarding.uid": "involvedObject.uid",
    "regarding.apiVersion": "involvedObject.apiVersion",
    "regarding.resourceVersion": "involvedObject.resourceVersion",
    "regarding.fieldPath": "involvedObject.fieldPath", "reportingController": "reportingComponent",
    "deprecatedSource": "source",
}

FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "pods"): ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                   "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP",
                   "status.podIPs", "status.nominatedNodeName"),
    ("", "secrets"): ("type",),
    ("", "events"): _EVENT_FIELDS,
    ("events.k8s.io", "events"): _EVENT_FIELDS + tuple(_EVENTS_V1_ALIASES),
    ("", "nodes"): ("spec.unschedulable",),
    ("", "namespaces"): ("status.phase",),
    ("", "replicationcontrollers"): ("status.replicas",),
    ("apps", "replicasets"): ("status.replicas",),
    ("batch", "jobs"): ("status.successful",),
    ("", "services"): ("spec.clusterIP", "spec.type"),
    ("", "persistentvolumeclaims"): (),
}
COMMON = ("metadata.name", "metadata.namespace")


def supported_fields(r: Resource) -> tuple[str, ...]:
    if isinstance(r, CustomResource):  # a CRD version's selectableFields (jsonPath ".spec.color")
        return COMMON + tuple(p.lstrip(".") for p in r.selectable_fields if p)
    return COMMON + FIELDS.get((r.group, r.plural), ())


def _field_names(selector: str) -> list[str]:
    names = []
    for term in selector.split(","):
        term = term.strip()
        if not term:
            continue
        for op in ("!=", "==", "="):
            if op in term:
                names.append(term.split(op, 1)[0].strip())
                break
        else:
            raise bad_request(f"invalid field selector: {term!r}: expected <field>=<value>")
    return names


def _str(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _get(obj: Obj, path: str) -> Any:
    cur: Any = obj
    for p in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(p)
    return cur


def field_set(r: Resource, obj: Obj) -> dict[str, str]:
    """The field values of `obj` that field selectors can match, by field name."""
    core_shape = obj
    if r.group == "events.k8s.io" and obj.get("apiVersion") == "events.k8s.io/v1":
        from k8py.apiserver.events import to_core
        core_shape = to_core(obj)
    out: dict[str, str] = {}
    for f in supported_fields(r):
        path = _EVENTS_V1_ALIASES.get(f, f) if r.plural == "events" else f
        if path == "source":
            v = _get(core_shape, "source.component")
        elif path == "status.podIPs":
            ips = _get(core_shape, "status.podIPs") or []
            v = ",".join(str(i.get("ip", "")) for i in ips if isinstance(i, dict))
        elif path == "spec.unschedulable" or path == "spec.hostNetwork":
            v = bool(_get(core_shape, path))
        else:
            v = _get(core_shape, path)
        out[f] = _str(v)
    return out


def nested_field_set(r: Resource, obj: Obj) -> Obj:
    return _nest(field_set(r, obj))


def _nest(flat: dict[str, str]) -> Obj:
    """{"a.b": "x"} -> {"a": {"b": "x"}, "a.b": "x"}: matchable by flat or dotted lookup."""
    nested: Obj = {}
    for k, v in flat.items():
        cur = nested
        parts = k.split(".")
        for p in parts[:-1]:
            nxt = cur.get(p)
            if not isinstance(nxt, dict):
                nxt = {}
                cur[p] = nxt
            cur = nxt
        if not isinstance(cur.get(parts[-1]), dict):
            cur[parts[-1]] = v
    for k, v in flat.items():
        if "." in k:
            nested[k] = v
    return nested


@dataclass
class Selection:
    """A compiled label + field selector for one resource."""

    resource: Resource
    label: Any = None
    field: Any = None
    namespace: str | None = None

    def matches(self, obj: Obj, fields: Obj | None = None) -> bool:
        """Whether `obj` is selected; `fields` is its (cached) `nested_field_set`."""
        md = obj.get("metadata") or {}
        if self.namespace is not None and self.resource.namespaced and md.get("namespace") != self.namespace:
            return False
        if self.label is not None and not self.label.matches(md.get("labels") or {}):
            return False
        if self.field is not None:
            if fields is None:
                fields = nested_field_set(self.resource, obj)
            if not self.field.matches(fields):
                return False
        return True

    def index(self) -> tuple[str, str] | None:
        """The most selective watch-cache index this selection allows: ("nodeName", n),
        ("name", n) or ("namespace", ns); None when it selects across all of them."""
        if self.field is not None:
            for f, kind in (("spec.nodeName", "nodeName"), ("metadata.name", "name")):
                if f in supported_fields(self.resource):
                    v = self.field.value_for(f)
                    if v is not None:
                        return kind, v
        if self.namespace is not None and self.resource.namespaced:
            return "namespace", self.namespace
        return None

    @property
    def empty(self) -> bool:
        return self.label is None and self.field is None and self.namespace is None


def compile_selection(r: Resource, label_selector: str | None, field_selector: str | None,
                      namespace: str | None = None, name: str | None = None) -> Selection:
    sel = Selection(r, namespace=namespace)
    if label_selector and label_selector.strip():
        sel.label = machinery.parse_label_selector(label_selector)
    fs = (field_selector or "").strip()
    if name is not None:
        fs = f"metadata.name={name}" + (f",{fs}" if fs else "")
    if fs:
        allowed = supported_fields(r)
        for f in _field_names(fs):
            if f not in allowed:
                raise bad_request(f"field label not supported: {f}")
        sel.field = machinery.parse_field_selector(fs)
    return sel
