"""How API objects map onto the Store: keys, encoding, and per-version conversion.

Invariants: values are compact JSON of the object WITHOUT metadata.resourceVersion;
every object read gets metadata.resourceVersion = str(kv.mod_revision). Resources
that share storage (core and events.k8s.io events; autoscaling/v1 and v2
HorizontalPodAutoscalers) are stored in the shape of the storage resource and
converted on the way in and out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from k8py.api import jsonfast, resources
from k8py.api.customresource import is_custom
from k8py.api.resources import Resource
from k8py.api.types import Obj
from k8py.apiserver import autoscaling, events
from k8py.apiserver.errors import StatusError
from k8py.store.protocol import KeyValue

# etcd's default --max-request-bytes (1.5 MiB): no stored object may be larger, whatever
# the store, so a cluster behaves the same on SQLite and on etcd.
MAX_OBJECT_BYTES = 1536 * 1024

_CORE_EVENTS = resources.lookup("", "events")


def storage_resource(r: Resource) -> Resource:
    """The resource whose storage `r` uses: itself, its preferred version for other
    served versions, core events for events.k8s.io events."""
    if r.group == "events.k8s.io" and r.plural == "events" and _CORE_EVENTS is not None:
        return _CORE_EVENTS
    return resources.preferred(r)


# Conversions of the resources stored as another: group -> (to storage, from storage).
_CONVERSIONS: dict[str, tuple[Callable[[Obj], Obj], Callable[[Obj], Obj]]] = {
    "events.k8s.io": (events.to_core, events.from_core),
    "autoscaling": (autoscaling.v1_to_v2, autoscaling.v2_to_v1),
}


def _to_storage(r: Resource, obj: Obj) -> Obj:
    if r.group not in _CONVERSIONS:
        raise AssertionError(f"no conversion from {r.group_version} {r.kind} to its storage version")
    return _CONVERSIONS[r.group][0](obj)


def _from_storage(r: Resource, obj: Obj) -> Obj:
    if r.group not in _CONVERSIONS:
        raise AssertionError(f"no conversion to {r.group_version} {r.kind} from its storage version")
    return _CONVERSIONS[r.group][1](obj)


def key(r: Resource, namespace: str | None, name: str) -> str:
    return storage_resource(r).storage_key(namespace, name)


def prefix(r: Resource, namespace: str | None = None) -> str:
    return storage_resource(r).storage_prefix(namespace)


def encode(r: Resource, obj: Obj) -> bytes:
    """Bytes to store: converted to the storage shape, resourceVersion dropped. An object
    over MAX_OBJECT_BYTES is refused with etcd's words, as 413 RequestEntityTooLarge
    (kube-apiserver passes etcd's error on as a 500; kubernetes/kubernetes#112152)."""
    if storage_resource(r) is not r:
        obj = _to_storage(r, obj)
    md = obj.get("metadata")
    if isinstance(md, dict) and "resourceVersion" in md:
        obj = dict(obj)
        obj["metadata"] = {k: v for k, v in md.items() if k != "resourceVersion"}
    data = jsonfast.dumps(obj)
    if len(data) > MAX_OBJECT_BYTES:
        raise StatusError(413, "RequestEntityTooLarge", "etcdserver: request is too large")
    return data


def decode(r: Resource, value: bytes, revision: int) -> Obj:
    """The object as resource `r` serves it, with resourceVersion = revision."""
    obj: Obj = jsonfast.loads(value)
    if storage_resource(r) is not r:
        obj = _from_storage(r, obj)
    elif is_custom(r):  # conversion None: every version is the stored object with its apiVersion
        obj["apiVersion"] = r.api_version
    obj.setdefault("metadata", {})["resourceVersion"] = str(revision)
    return obj


def clone(obj: Any) -> Any:
    """A deep copy of a JSON value (many times faster than copy.deepcopy)."""
    return jsonfast.clone(obj)


def from_kv(r: Resource, kv: KeyValue) -> Obj:
    return decode(r, kv.value, kv.mod_revision)
