"""Subresources other than status: scale, pods/binding, pods/eviction,
namespaces/finalize, and the node-served ones (log, exec, attach, portforward).

- scale: an autoscaling/v1 Scale view of spec.replicas/status.replicas/selector of
  deployments, replicasets, statefulsets and replicationcontrollers.
- binding: sets spec.nodeName once (409 if already bound) and PodScheduled=True.
- eviction: a graceful delete of the pod, within its disruption budget (`eviction`).
- log/exec/attach/portforward: forwarded to a registered node proxy (the kubelet's
  endpoint) when there is one; 400 with a clear message otherwise.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from k8py.api.customresource import CustomResource
from k8py.api.request import ApiRequest, ApiResponse
from k8py.api.resources import Resource
from k8py.api.types import Obj
from k8py.apiserver.errors import StatusError, bad_request, conflict, invalid
from k8py.apiserver.machinery import cause
from k8py.apiserver.storage import clone
from k8py.clock import rfc3339

NodeProxy = Callable[[ApiRequest, Obj, str], Awaitable[ApiResponse]]
NODE_SUBRESOURCES = ("log", "exec", "attach", "portforward")


def selector_string(r: Resource, obj: Obj) -> str:
    sel = (obj.get("spec") or {}).get("selector")
    if not isinstance(sel, dict):
        return ""
    if r.kind == "ReplicationController":
        return ",".join(f"{k}={v}" for k, v in sorted(sel.items()))
    try:
        from k8py.api.selectors import label_selector_from_dict
        return str(label_selector_from_dict(sel))
    except Exception:  # noqa: BLE001 - a malformed stored selector: show none
        return ""


def _custom_scale(r: CustomResource, obj: Obj) -> tuple[Any, Any, str]:
    """(spec replicas, status replicas, selector) of a custom resource, by its CRD's scale paths."""
    from k8py.api.crtables import get_path, missing
    paths = r.scale or {}
    spec = get_path(obj, str(paths.get("specReplicasPath", "")))
    status = get_path(obj, str(paths.get("statusReplicasPath", "")))
    sel = get_path(obj, str(paths.get("labelSelectorPath") or "")) if paths.get("labelSelectorPath") else ""
    return (0 if missing(spec) else spec, 0 if missing(status) else status,
            sel if isinstance(sel, str) else "")


def to_scale(r: Resource, obj: Obj) -> Obj:
    md = obj.get("metadata") or {}
    smd = {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in md}
    if isinstance(r, CustomResource):
        spec, status, sel = _custom_scale(r, obj)
    else:
        spec = (obj.get("spec") or {}).get("replicas", 0)
        status, sel = (obj.get("status") or {}).get("replicas", 0), selector_string(r, obj)
    return {
        "kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": smd,
        "spec": {"replicas": spec}, "status": {"replicas": status, "selector": sel},
    }


def apply_scale(r: Resource, obj: Obj, scale: Obj) -> Obj:
    """`obj` with spec.replicas from a Scale body (validated: integer >= 0)."""
    if not isinstance(scale, dict):
        raise bad_request("the body must be a Scale object")
    av, kind = scale.get("apiVersion"), scale.get("kind")
    if kind not in (None, "", "Scale") or av not in (None, "", "autoscaling/v1"):
        raise bad_request(f"the kind in the data ({av}, Kind={kind}) does not match the expected kind "
                          "(autoscaling/v1, Kind=Scale)")
    name = (obj.get("metadata") or {}).get("name", "")
    replicas = (scale.get("spec") or {}).get("replicas", 0) if isinstance(scale.get("spec"), dict) else 0
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise invalid("Scale", name, [cause("FieldValueInvalid", "spec.replicas",
                                            f"Invalid value: {replicas}: must be greater than or equal to 0")],
                      "autoscaling")
    out = clone(obj)
    if isinstance(r, CustomResource):
        from k8py.api.crtables import set_path
        if not set_path(out, str((r.scale or {}).get("specReplicasPath", "")), replicas):
            raise bad_request("the scale subresource's specReplicasPath cannot be set on this object")
        return out
    out.setdefault("spec", {})["replicas"] = replicas
    return out


def bind(pod: Obj, binding: Obj, now: float) -> Obj:
    """The pod bound as `binding` asks (raises 409 if it is bound or being deleted)."""
    if not isinstance(binding, dict):
        raise bad_request("the body must be a Binding object")
    if binding.get("kind") not in (None, "", "Binding"):
        raise bad_request(f"the kind in the data ({binding.get('kind')}) does not match the expected kind (Binding)")
    md = pod["metadata"]
    name = md["name"]
    target = binding.get("target") or {}
    node = target.get("name") if isinstance(target, dict) else None
    if not node or not isinstance(node, str):
        raise invalid("Binding", name, [cause("FieldValueRequired", "target.name", "Required value")])
    buid = (binding.get("metadata") or {}).get("uid")
    if buid and buid != md.get("uid"):
        raise conflict("pods/binding", name, "",
                       f"Precondition failed: UID in precondition: {buid}, UID in object meta: {md.get('uid')}")
    if md.get("deletionTimestamp"):
        raise conflict("pods/binding", name, "", f"pod {name} is being deleted, cannot be assigned to a host")
    current = (pod.get("spec") or {}).get("nodeName")
    if current:
        raise conflict("pods/binding", name, "", f'pod {name} is already assigned to node "{current}"')
    out = clone(pod)
    out.setdefault("spec", {})["nodeName"] = node
    bmd = binding.get("metadata") or {}
    if isinstance(bmd.get("annotations"), dict):
        out["metadata"].setdefault("annotations", {}).update(bmd["annotations"])
    status = out.setdefault("status", {})
    conds = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
    conds.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                  "lastTransitionTime": rfc3339(now)})
    status["conditions"] = conds
    return out


async def resize_node_present(registry: Any, pod: Obj, node: str) -> None:
    """A resize is applied by the pod's node: refuse it (422 on spec.nodeName) when that
    node is gone, rather than accept a change that nothing will ever apply."""
    from k8py.api import resources
    nodes = resources.lookup("", "nodes")
    assert nodes is not None
    try:
        await registry.get(nodes, None, node)
    except StatusError as e:
        if e.code != 404:
            raise
        name = pod["metadata"]["name"]
        raise invalid("Pod", name, [cause(
            "FieldValueForbidden", "spec.nodeName",
            f'Forbidden: node "{node}" of pod "{name}" no longer exists: its containers cannot be resized; '
            "delete the pod (its controller, if any, creates a new one)")]) from None


def no_node_proxy(pod: Obj, sub: str) -> StatusError:
    name = pod["metadata"]["name"]
    what = {"log": "log", "exec": "exec", "attach": "attach", "portforward": "port-forward"}.get(sub, sub)
    return bad_request(f'pod "{name}" has no {what} endpoint: k8py\'s node agent does not serve '
                       f"{'logs' if sub == 'log' else what} yet")


def pod_needs_node(pod: Obj, sub: str) -> None:
    if not (pod.get("spec") or {}).get("nodeName"):
        name = pod["metadata"]["name"]
        raise bad_request(f'pod "{name}" does not have a host assigned' if sub != "log" else
                          f'pod "{name}" is not scheduled yet: its logs are not available')
